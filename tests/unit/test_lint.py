"""netfence lint: every check has a positive and a negative test; redundancy is checked against
re-evaluation (remove what lint reports, re-run the engine, compare the connectivity).

Inputs are small YAML documents; expectations are derived from Kubernetes semantics
(SEMANTICS.md), never from netfence output.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Iterable
from typing import Any

import pytest
import yaml

from netfence import api
from netfence.checks import CHECKS, Finding, Level, LintOptions, LintReport, enabled_checks
from netfence.checks.context import DEFAULT_INGRESS_CONTROLLERS
from netfence.model.cluster import ClusterState
from netfence.model.policy import Direction, Policy, Rule
from netfence.render.findings import CheckView, FindingView
from netfence.render.gitlab import codequality
from netfence.render.sarif import sarif_log, uri

# -- builders ------------------------------------------------------------------------------------


def ns(name: str, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def pod(key: str, labels: dict[str, str] | None = None, ports: Iterable[tuple[Any, ...]] = (),
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Pod ``NS/NAME``; ports are (containerPort,) or (containerPort, name[, protocol])."""
    namespace, name = key.split("/")
    items = []
    for p in ports:
        item: dict[str, Any] = {"containerPort": p[0]}
        if len(p) > 1 and p[1]:
            item["name"] = p[1]
        if len(p) > 2:
            item["protocol"] = p[2]
        items.append(item)
    container: dict[str, Any] = {"name": "main", "image": "registry.example/app:1"}
    if items:
        container["ports"] = items
    meta: dict[str, Any] = {"name": name, "namespace": namespace,
                            "labels": labels if labels is not None else {"app": name}}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [container]}}


def netpol(key: str, spec: dict[str, Any], annotations: dict[str, str] | None = None,
           ) -> dict[str, Any]:
    namespace, name = key.split("/")
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
            "spec": spec}


def cnp(name: str, tier: str, priority: int, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "policy.networking.k8s.io/v1beta1", "kind": "ClusterNetworkPolicy",
            "metadata": {"name": name},
            "spec": {"tier": tier, "priority": priority, **spec}}


DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
DENY_INGRESS = {"podSelector": {}, "policyTypes": ["Ingress"]}
DNS_EGRESS = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
    "to": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}


def coredns() -> list[dict[str, Any]]:
    return [ns("kube-system"),
            pod("kube-system/coredns", {"k8s-app": "kube-dns"}, [(53, "dns", "UDP"),
                                                                 (53, "dns-tcp")])]


def load(docs: Iterable[dict[str, Any]]) -> api.Analysis:
    text = yaml.safe_dump_all(list(docs), sort_keys=False)
    state = api.load(["-"], stdin_text=text)
    errors = [d for d in state.diagnostics if d.severity >= 2]
    assert not errors, errors
    return api.analyze(state)


def lint(docs: Iterable[dict[str, Any]], **options: Any) -> LintReport:
    return api.lint(load(docs), LintOptions(**options))


def of(report: LintReport, check_id: str, *, suppressed: bool = False) -> list[Finding]:
    return [f for f in report.findings if f.id == check_id
            and (f.suppressed is not None) == suppressed]


def on(report: LintReport, check_id: str, obj: str) -> list[Finding]:
    """Findings of one check on one object, written 'ns/name' or 'name'."""
    out = []
    for f in of(report, check_id):
        key = f"{f.obj.namespace}/{f.obj.name}" if f.obj.namespace else f.obj.name
        if key == obj:
            out.append(f)
    return out


# A namespace fenced the zero-trust way: default deny, DNS; the baseline for negatives.
def fenced(name: str, *pods: dict[str, Any]) -> list[dict[str, Any]]:
    return [ns(name), *pods, netpol(f"{name}/default-deny", DENY_ALL),
            netpol(f"{name}/allow-dns", DNS_EGRESS)]


def base() -> list[dict[str, Any]]:
    return [*coredns(), netpol("kube-system/default-deny", DENY_INGRESS),
            netpol("kube-system/allow-dns", {"podSelector": {}, "policyTypes": ["Ingress"],
                                             "ingress": [{"from": [{"namespaceSelector": {}}],
                                                          "ports": [{"port": 53,
                                                                     "protocol": "UDP"}]}]})]


# -- the catalogue -------------------------------------------------------------------------------

def test_catalogue_ids_are_stable_unique_and_documented() -> None:
    ids = [c.id for c in CHECKS]
    assert ids == [f"NF{i:03d}" for i in range(1, len(ids) + 1)]
    assert len({c.name for c in CHECKS}) == len(CHECKS)
    for c in CHECKS:
        assert c.doc.count(". ") >= 1 and len(c.doc) > 200, c.id
        assert "\n" not in c.doc


def test_clean_baseline_has_no_findings() -> None:
    report = lint([*base(), *fenced("shop", pod("shop/web", {"app": "web"}, [(8080, "http")])),
                   netpol("shop/allow-web", {"podSelector": {"matchLabels": {"app": "web"}},
                                             "ingress": [{"from": [{"podSelector": {}}],
                                                          "ports": [{"port": "http"}]}]})])
    assert [(f.id, str(f.obj)) for f in report.findings] == []


# -- NF001-NF005: selectors and ports ------------------------------------------------------------

def test_nf001_policy_selecting_no_pod() -> None:
    docs = [*base(), *fenced("a", pod("a/web", {"app": "web"})),
            netpol("a/allow-typo", {"podSelector": {"matchLabels": {"app": "wbe"}},
                                    "ingress": [{}]})]
    report = lint(docs)
    assert len(on(report, "NF001", "a/allow-typo")) == 1
    assert not on(report, "NF001", "a/default-deny")


def test_nf001_cluster_policy_subject_selecting_no_pod() -> None:
    docs = [*base(), *fenced("a", pod("a/web")),
            cnp("guard", "Admin", 10, {"subject": {"pods": {
                "namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "ghost"}}}},
                "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]})]
    assert len(on(lint(docs), "NF001", "guard")) == 1


def test_nf002_peer_matching_no_pod() -> None:
    docs = [*base(), *fenced("a", pod("a/web"), pod("a/api")),
            netpol("a/allow-web", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "api"}}},
                          {"podSelector": {"matchLabels": {"app": "ghost"}}}]}]})]
    found = on(lint(docs), "NF002", "a/allow-web")
    assert len(found) == 1
    assert "peer 2" in found[0].message


def test_nf002_pod_selector_alone_looks_in_own_namespace_only() -> None:
    """sel-3: the label exists, but in another namespace."""
    docs = [*base(), *fenced("a", pod("a/web")), *fenced("b", pod("b/api")),
            netpol("a/allow-web", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}]})]
    assert len(on(lint(docs), "NF002", "a/allow-web")) == 1
    docs[-1]["spec"]["ingress"][0]["from"][0]["namespaceSelector"] = {}
    assert not on(lint(docs), "NF002", "a/allow-web")


def test_nf003_namespace_selector_on_missing_label() -> None:
    docs = [*base(), *fenced("a", pod("a/web")),
            netpol("a/allow-web", {"podSelector": {}, "ingress": [{"from": [
                {"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": "kube-sytem"}}}]}]})]
    report = lint(docs)
    found = on(report, "NF003", "a/allow-web")
    assert len(found) == 1 and "kube-sytem" in found[0].message
    assert not on(report, "NF002", "a/allow-web")  # one finding, the more precise one
    docs[-1]["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"][
        "kubernetes.io/metadata.name"] = "kube-system"
    assert not of(lint(docs), "NF003")


def test_nf003_cluster_policy_subject() -> None:
    docs = [*base(), *fenced("a", pod("a/web")),
            cnp("guard", "Baseline", 10, {"subject": {"namespaces": {"matchLabels": {
                "tier": "prod"}}}, "ingress": [{"action": "Deny", "from": [
                    {"namespaces": {}}]}]})]
    assert len(on(lint(docs), "NF003", "guard")) == 1
    docs[0]["metadata"]["labels"] = {"tier": "prod"}  # label namespace kube-system
    assert not on(lint(docs), "NF003", "guard")


def test_nf004_numeric_port_not_declared() -> None:
    docs = [*base(), *fenced("a", pod("a/web", {"app": "web"}, [(80, "http")]), pod("a/cli")),
            netpol("a/allow-web", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [
                {"from": [{"podSelector": {}}], "ports": [{"port": 8080}]}]})]
    found = on(lint(docs), "NF004", "a/allow-web")
    assert len(found) == 1 and found[0].level is Level.INFO
    docs[-1]["spec"]["ingress"][0]["ports"] = [{"port": 79, "endPort": 81}]
    assert not of(lint(docs), "NF004")


def test_nf004_not_judged_when_pods_declare_no_ports() -> None:
    docs = [*base(), *fenced("a", pod("a/web"), pod("a/cli")),
            netpol("a/allow-web", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [
                {"from": [{"podSelector": {}}], "ports": [{"port": 8080}]}]})]
    assert not of(lint(docs), "NF004")


def test_nf005_named_port_undefined_and_wrong_protocol() -> None:
    docs = [*base(), *fenced("a", pod("a/web", {"app": "web"}, [(80, "http")]),
                             pod("a/dns", {"app": "dns"}, [(53, "dns", "UDP")]), pod("a/cli")),
            netpol("a/allow-web", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [
                {"from": [{"podSelector": {}}], "ports": [{"port": "https"}]}]}),
            netpol("a/allow-dns-server", {"podSelector": {"matchLabels": {"app": "dns"}},
                                          "ingress": [
                {"from": [{"podSelector": {}}], "ports": [{"port": "dns"}]}]}),
            netpol("a/cli-out", {"podSelector": {"matchLabels": {"app": "cli"}},
                                 "policyTypes": ["Egress"], "egress": [
                {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": "http"}]},
                {"to": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                 "ports": [{"port": "http"}]}]})]
    report = lint(docs)
    assert "no selected pod defines" in on(report, "NF005", "a/allow-web")[0].message
    assert "only with protocol UDP" in on(report, "NF005", "a/allow-dns-server")[0].message
    egress = on(report, "NF005", "a/cli-out")
    assert len(egress) == 1 and "port-7" in egress[0].message


def test_nf005_named_port_defined() -> None:
    docs = [*base(), *fenced("a", pod("a/web", {"app": "web"}, [(80, "http")]), pod("a/cli")),
            netpol("a/allow-web", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [
                {"from": [{"podSelector": {}}], "ports": [{"port": "http"}]}]}),
            netpol("a/cli-out", {"podSelector": {"matchLabels": {"app": "cli"}},
                                 "policyTypes": ["Egress"], "egress": [
                {"to": [{"podSelector": {}}], "ports": [{"port": "http"}]}]})]
    assert not of(lint(docs), "NF005")


# -- NF006-NF010: posture ------------------------------------------------------------------------

def test_nf006_namespace_without_default_deny() -> None:
    docs = [*base(), ns("open"), pod("open/web")]
    found = on(lint(docs), "NF006", "open")
    assert len(found) == 1 and found[0].obj.kind == "Namespace"
    assert not on(lint([*base(), *fenced("a", pod("a/web"))]), "NF006", "a")


def test_nf006_pod_specific_policies_leave_future_pods_open() -> None:
    docs = [*base(), ns("a"), pod("a/web"),
            netpol("a/web-only", {"podSelector": {"matchLabels": {"app": "web"}},
                                  "ingress": [{"from": [{"podSelector": {}}]}]})]
    found = on(lint(docs), "NF006", "a")
    assert len(found) == 1 and "added later" in found[0].message
    assert "reach the default allow" not in found[0].message


def test_nf006_baseline_deny_of_everything_counts_as_default_deny() -> None:
    close_all = cnp("default-deny", "Baseline", 1000, {"subject": {"namespaces": {}}, "ingress": [
        {"action": "Deny", "from": [{"namespaces": {}}, {"networks": ["0.0.0.0/0", "::/0"]}]}]})
    assert not on(lint([*base(), ns("a"), pod("a/web"), close_all]), "NF006", "a")
    # ... but a Baseline that only denies other namespaces leaves external ingress open
    close_all["spec"]["ingress"][0]["from"] = [{"namespaces": {}}]
    found = on(lint([*base(), ns("a"), pod("a/web"), close_all]), "NF006", "a")
    assert len(found) == 1 and "reach the default allow" in found[0].message


def test_nf006_baseline_pass_reaches_default_allow() -> None:
    """D-6: Pass in the Baseline tier ends it; the traffic is default-allowed."""
    policy = cnp("pass-then-deny", "Baseline", 10, {"subject": {"namespaces": {}}, "ingress": [
        {"action": "Pass", "from": [{"namespaces": {"matchLabels": {
            "kubernetes.io/metadata.name": "kube-system"}}}]},
        {"action": "Deny", "from": [{"namespaces": {}}, {"networks": ["0.0.0.0/0", "::/0"]}]}]})
    assert len(on(lint([*base(), ns("a"), pod("a/web"), policy]), "NF006", "a")) == 1


def test_nf007_egress_default_deny_is_opt_in() -> None:
    docs = [*base(), ns("a"), pod("a/web"), netpol("a/deny-in", DENY_INGRESS)]
    assert not of(lint(docs), "NF007")
    egress = LintOptions(default_deny=frozenset({Direction.INGRESS, Direction.EGRESS}))
    found = on(api.lint(load(docs), egress), "NF007", "a")
    assert len(found) == 1
    assert not on(api.lint(load([*base(), *fenced("a", pod("a/web"))]), egress), "NF007", "a")


def test_nf008_workload_reachable_from_everywhere() -> None:
    docs = [*base(), *fenced("a", pod("a/web"), pod("a/api")),
            netpol("a/open-web", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [
                {"from": [{"namespaceSelector": {}}, {"ipBlock": {"cidr": "0.0.0.0/0"}}],
                 "ports": [{"port": 443}]}]})]
    found = on(lint(docs), "NF008", "a/web")
    assert len(found) == 1 and found[0].level is Level.HIGH and "TCP 443" in found[0].message
    assert not on(lint(docs), "NF008", "a/api")


def test_nf008_not_when_some_namespace_is_excluded() -> None:
    docs = [*base(), *fenced("a", pod("a/web")),
            netpol("a/open-web", {"podSelector": {}, "ingress": [
                {"from": [{"namespaceSelector": {"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                     "values": ["kube-system"]}]}}, {"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})]
    assert not of(lint(docs), "NF008")


def test_nf009_internet_ingress_to_non_controller() -> None:
    docs = [*base(), *fenced("edge", pod("edge/proxy", {"app.kubernetes.io/name": "ingress-nginx"}),
                             pod("edge/admin", {"app": "admin"})),
            netpol("edge/from-internet", {"podSelector": {}, "ingress": [{"from": [
                {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                "ports": [{"port": 443}]}]})]
    found = on(lint(docs), "NF009", "edge/from-internet")
    assert len(found) == 1
    assert "edge/admin" in found[0].message and "edge/proxy" not in found[0].message
    # only the controller selected: fine
    docs[-1]["spec"]["podSelector"] = {"matchLabels": {
        "app.kubernetes.io/name": "ingress-nginx"}}
    assert not of(lint(docs), "NF009")


def test_nf009_private_ranges_and_admin_denied_traffic_are_not_internet_ingress() -> None:
    docs = [*base(), *fenced("a", pod("a/web")),
            netpol("a/from-vpn", {"podSelector": {}, "ingress": [{"from": [
                {"ipBlock": {"cidr": "10.0.0.0/8"}}]}]})]
    assert not of(lint(docs), "NF009")
    docs[-1]["spec"]["ingress"][0]["from"][0]["ipBlock"]["cidr"] = "0.0.0.0/0"
    assert of(lint(docs), "NF009")
    guard = cnp("no-internet", "Admin", 1, {"subject": {"namespaces": {}}, "ingress": [
        {"action": "Deny", "from": [{"networks": ["0.0.0.0/0"]}]}]})
    assert not of(lint([*docs, guard]), "NF009")  # the verdict never lets it in


def test_nf009_configurable_controllers() -> None:
    docs = [*base(), *fenced("edge", pod("edge/gw", {"app": "edge-gateway"})),
            netpol("edge/from-internet", {"podSelector": {}, "ingress": [{"from": [
                {"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})]
    assert of(lint(docs), "NF009")
    from netfence.sources.selector_text import parse_selector
    mine = (parse_selector("app=edge-gateway"),)
    assert not of(lint(docs, ingress_controllers=mine), "NF009")
    assert mine != DEFAULT_INGRESS_CONTROLLERS


def test_nf010_egress_isolated_pod_without_dns() -> None:
    docs = [*base(), ns("a"), pod("a/web"), netpol("a/default-deny", DENY_ALL)]
    found = on(lint(docs), "NF010", "a/web")
    assert len(found) == 1 and "egress" in found[0].message and "fails" in found[0].message
    docs.append(netpol("a/allow-dns", DNS_EGRESS))
    assert not of(lint(docs), "NF010")


def test_nf010_coredns_ingress_refusing_dns() -> None:
    docs = [*coredns(), netpol("kube-system/default-deny", DENY_INGRESS),
            *fenced("a", pod("a/web"))]
    found = on(lint(docs), "NF010", "a/web")
    assert len(found) == 1 and "CoreDNS's ingress" in found[0].message


def test_nf010_skipped_without_coredns_and_for_unrestricted_pods() -> None:
    assert not of(lint([ns("a"), pod("a/web"), netpol("a/default-deny", DENY_ALL)]), "NF010")
    assert not of(lint([*base(), ns("a"), pod("a/web"),
                        netpol("a/deny-in", DENY_INGRESS)]), "NF010")


# -- NF011-NF015: redundancy ---------------------------------------------------------------------

WEB = {"matchLabels": {"app": "web"}}


def test_nf011_rule_covered_by_a_broader_rule() -> None:
    docs = [*base(), *fenced("a", pod("a/web"), pod("a/api"), pod("a/cli")),
            netpol("a/allow-web", {"podSelector": WEB, "ingress": [
                {"from": [{"podSelector": {}}]},
                {"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                 "ports": [{"port": 80}]}]})]
    found = on(lint(docs), "NF011", "a/allow-web")
    assert len(found) == 1 and found[0].detail == "ingress/1"
    assert "ingress rule 1" in found[0].message
    # each rule needed: different peers
    docs[-1]["spec"]["ingress"][0]["from"] = [{"podSelector": {"matchLabels": {"app": "cli"}}}]
    assert not of(lint(docs), "NF011")


def test_nf011_two_identical_rules_give_one_finding_that_says_keep_one() -> None:
    rule = {"from": [{"podSelector": {"matchLabels": {"app": "api"}}}], "ports": [{"port": 80}]}
    docs = [*base(), *fenced("a", pod("a/web"), pod("a/api")),
            netpol("a/allow-web", {"podSelector": WEB, "ingress": [rule, dict(rule)]})]
    found = of(lint(docs), "NF011")
    assert len(found) == 1
    assert "identical to ingress rule 1" in found[0].message and "keep" in found[0].message
    assert found[0].detail == "ingress/1"  # the second copy goes


def test_nf011_rule_covered_across_policies() -> None:
    docs = [*base(), *fenced("a", pod("a/web"), pod("a/api")),
            netpol("a/allow-all-internal", {"podSelector": {}, "ingress": [
                {"from": [{"podSelector": {}}]}]}),
            netpol("a/allow-web", {"podSelector": WEB, "policyTypes": ["Ingress", "Egress"],
                                   "ingress": [{"from": [{"podSelector": {"matchLabels": {
                                       "app": "api"}}}]}],
                                   "egress": [{"to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]}]})]
    found = on(lint(docs), "NF011", "a/allow-web")
    assert len(found) == 1 and "a/allow-all-internal" in found[0].message
    assert not on(lint(docs), "NF012", "a/allow-web")  # its egress rule is needed


def test_nf012_policy_covered_by_another() -> None:
    docs = [*base(), *fenced("a", pod("a/web"), pod("a/api")),
            netpol("a/allow-all-internal", {"podSelector": {}, "ingress": [
                {"from": [{"podSelector": {}}]}]}),
            netpol("a/allow-web", {"podSelector": WEB, "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}]})]
    report = lint(docs)
    found = on(report, "NF012", "a/allow-web")
    assert len(found) == 1 and found[0].level is Level.LOW
    assert not on(report, "NF011", "a/allow-web")  # one finding for the whole policy
    assert not on(report, "NF012", "a/allow-all-internal")


def test_nf012_never_advises_deleting_a_default_deny() -> None:
    """The trap: default-deny plus an allow policy that isolates the same pods."""
    docs = [*base(), ns("a"), pod("a/web"), netpol("a/allow-dns", DNS_EGRESS),
            netpol("a/default-deny", DENY_ALL),
            netpol("a/allow-internal", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                                        "ingress": [{"from": [{"podSelector": {}}]}],
                                        "egress": [{"to": [{"podSelector": {}}]}]})]
    report = lint(docs)
    assert not [f for f in report.findings if f.obj.name == "default-deny"]


def test_nf012_mutually_redundant_policies_give_one_finding() -> None:
    """Equivalent but not identical (one peer written two ways): one is reported, naming the
    other to keep; never both."""
    docs = [*base(), *fenced("a", pod("a/web"), pod("a/api")),
            netpol("a/allow-a", {"podSelector": WEB, "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}]}),
            netpol("a/allow-b", {"podSelector": WEB, "ingress": [
                {"from": [{"podSelector": {"matchExpressions": [
                    {"key": "app", "operator": "In", "values": ["api"]}]}}]}]})]
    found = of(lint(docs), "NF012")
    assert [f.obj.name for f in found] == ["allow-b"]
    assert "a/allow-a" in found[0].message


def test_nf013_identical_copies_one_finding_keep_one() -> None:
    spec = {"podSelector": WEB, "ingress": [{"from": [{"podSelector": {}}]}]}
    docs = [*base(), *fenced("a", pod("a/web")),
            netpol("a/allow-web", spec), netpol("a/allow-web-copy", dict(spec))]
    report = lint(docs)
    found = of(report, "NF013")
    assert [f.obj.name for f in found] == ["allow-web-copy"]
    assert "keep one" in found[0].message and "a/allow-web " in found[0].message
    assert not of(report, "NF011") and not of(report, "NF012")


def test_nf013_duplicate_default_deny_reported_once() -> None:
    docs = [*base(), *fenced("a", pod("a/web")), netpol("a/default-deny-2", DENY_ALL)]
    found = of(lint(docs), "NF013")
    assert [f.obj.name for f in found] == ["default-deny-2"]


def test_same_named_policies_in_two_namespaces_are_never_confused() -> None:
    """sp-5: same name and same spec in two namespaces: distinct policies, not duplicates;
    findings key on (kind, namespace, name)."""
    spec = {"podSelector": WEB, "ingress": [{"from": [{"podSelector": {"matchLabels": {
        "app": "ghost"}}}]}]}
    docs = [*base(), *fenced("a", pod("a/web")), *fenced("b", pod("b/web")),
            netpol("a/allow-web", spec), netpol("b/allow-web", spec)]
    report = lint(docs)
    assert not of(report, "NF013")
    found = of(report, "NF002")
    assert sorted((f.obj.namespace, f.obj.name) for f in found) == [
        ("a", "allow-web"), ("b", "allow-web")]
    assert len({f.fingerprint for f in found}) == 2


def test_nf014_shadowed_admin_rule() -> None:
    docs = [*base(), *fenced("a", pod("a/web")),
            cnp("guard", "Admin", 10, {"subject": {"namespaces": {}}, "ingress": [
                {"name": "deny-all", "action": "Deny", "from": [{"namespaces": {}}]},
                {"name": "accept-monitoring", "action": "Accept", "from": [
                    {"namespaces": {"matchLabels": {
                        "kubernetes.io/metadata.name": "kube-system"}}}]}]})]
    found = on(lint(docs), "NF014", "guard")
    assert len(found) == 1 and "accept-monitoring" in found[0].message
    assert "earlier rules of this policy" in found[0].message
    docs[-1]["spec"]["ingress"].reverse()  # the narrow rule first: both decide something
    assert not of(lint(docs), "NF014")


def test_nf014_baseline_rule_never_consulted() -> None:
    docs = [*base(), *fenced("a", pod("a/web")),
            cnp("fallback", "Baseline", 10, {"subject": {"namespaces": {"matchLabels": {
                "kubernetes.io/metadata.name": "a"}}}, "ingress": [
                {"action": "Deny", "from": [{"namespaces": {}}]}]})]
    found = on(lint(docs), "NF014", "fallback")
    assert len(found) == 1 and "tier-4" in found[0].message
    docs = [d for d in docs if d["metadata"]["name"] != "default-deny"]
    assert not of(lint(docs), "NF014")


def test_nf015_rule_decided_by_the_admin_tier() -> None:
    admin = cnp("dns", "Admin", 10, {"subject": {"namespaces": {}}, "egress": [
        {"action": "Accept", "to": [{"pods": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}}],
         "protocols": [{"udp": {"destinationPort": {"number": 53}}},
                       {"tcp": {"destinationPort": {"number": 53}}}]}]})
    docs = [*base(), *fenced("a", pod("a/web"))]
    assert not of(lint(docs), "NF015")
    found = on(lint([*docs, admin]), "NF015", "a/allow-dns")
    assert len(found) == 1 and found[0].level is Level.INFO and "defense in depth" in \
        found[0].message


def test_nf015_rule_denied_by_the_admin_tier() -> None:
    admin = cnp("no-web", "Admin", 10, {"subject": {"pods": {"namespaceSelector": {},
                                                              "podSelector": WEB}},
                                        "ingress": [{"action": "Deny", "from": [
                                            {"namespaces": {}}]}]})
    docs = [*base(), *fenced("a", pod("a/web"), pod("a/api")),
            netpol("a/allow-web", {"podSelector": WEB, "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}]}), admin]
    found = on(lint(docs), "NF015", "a/allow-web")
    assert len(found) == 1 and "denied" in found[0].message


# -- NF016: equal priorities ---------------------------------------------------------------------

def _pair(second_action: str, second_priority: int) -> list[dict[str, Any]]:
    frm = [{"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]
    return [*base(), *fenced("a", pod("a/web")),
            cnp("allow-ops", "Admin", 50, {"subject": {"namespaces": {}}, "ingress": [
                {"action": "Accept", "from": frm}]}),
            cnp("deny-ops", "Admin", second_priority, {"subject": {"namespaces": {}},
                                                        "ingress": [{"action": second_action,
                                                                     "from": frm}]})]


def test_nf016_equal_priority_whose_order_matters() -> None:
    found = of(lint(_pair("Deny", 50)), "NF016")
    assert len(found) == 1 and found[0].obj.name == "allow-ops"
    assert "deny-ops" in found[0].message


def test_nf016_equal_priority_whose_order_does_not_matter_or_distinct_priorities() -> None:
    assert not of(lint(_pair("Accept", 50)), "NF016")
    assert not of(lint(_pair("Deny", 51)), "NF016")


# -- suppressions, options -----------------------------------------------------------------------

def _typo(annotations: dict[str, str] | None) -> list[dict[str, Any]]:
    return [*base(), *fenced("a", pod("a/web")),
            netpol("a/allow-typo", {"podSelector": {"matchLabels": {"app": "wbe"}},
                                    "ingress": [{}]}, annotations)]


def test_suppression_with_reason_marks_the_finding_and_does_not_fail() -> None:
    report = lint(_typo({"netfence.dev/ignore": "NF001",
                         "netfence.dev/ignore-reason": "workload ships next sprint (ops-123)"}))
    assert not of(report, "NF001")
    sup = of(report, "NF001", suppressed=True)
    assert len(sup) == 1 and sup[0].suppressed == "workload ships next sprint (ops-123)"
    assert not report.failed(Level.INFO) or all(f.id != "NF001" for f in report.active)
    assert not of(report, "NF017") and not of(report, "NF018")


def test_nf017_suppression_without_reason_is_a_finding_and_not_applied() -> None:
    report = lint(_typo({"netfence.dev/ignore": "NF001"}))
    assert len(of(report, "NF001")) == 1
    found = on(report, "NF017", "a/allow-typo")
    assert len(found) == 1 and "not applied" in found[0].message
    report = lint(_typo({"netfence.dev/ignore": "NF001, NF999",
                         "netfence.dev/ignore-reason": "x"}))
    assert "NF999" in on(report, "NF017", "a/allow-typo")[0].message
    assert of(report, "NF001", suppressed=True)


def test_nf018_unused_suppression() -> None:
    report = lint(_typo({"netfence.dev/ignore": "NF001,NF004",
                         "netfence.dev/ignore-reason": "accepted"}))
    found = of(report, "NF018")
    assert len(found) == 1 and "NF004" in found[0].message and "NF001" not in found[0].message
    report = lint(_typo({"netfence.dev/ignore": "NF001", "netfence.dev/ignore-reason": "ok"}))
    assert not of(report, "NF018")


def test_suppression_on_namespace_and_workload() -> None:
    why = {"netfence.dev/ignore": "NF006", "netfence.dev/ignore-reason": "lab namespace"}
    space = ns("open")
    space["metadata"]["annotations"] = why
    report = lint([*base(), space, pod("open/web", annotations={
        "netfence.dev/ignore": "NF008", "netfence.dev/ignore-reason": "public demo"})])
    assert of(report, "NF006", suppressed=True) and not of(report, "NF006")
    assert of(report, "NF008", suppressed=True) and not of(report, "NF008")


def test_disable_and_fail_on() -> None:
    docs = _typo(None)
    report = lint(docs, disabled=frozenset({"NF001"}))
    assert not of(report, "NF001")
    assert "NF001" not in {c.id for c in report.checks}
    report = lint(docs)
    assert report.failed(Level.MEDIUM) and not report.failed(Level.HIGH)
    assert enabled_checks(LintOptions(default_deny=frozenset()))[5].id == "NF008"


def test_fingerprints_ignore_lines_and_message_wording() -> None:
    report = lint(_typo(None))
    f = of(report, "NF001")[0]
    moved = dataclasses.replace(f, source=f.source.at(f.source.line + 40),
                                message=f.message + " (reworded)")
    assert moved.fingerprint == f.fingerprint
    other = dataclasses.replace(f, obj=dataclasses.replace(f.obj, namespace="b"))
    assert other.fingerprint != f.fingerprint


# -- renderers -----------------------------------------------------------------------------------

def test_sarif_is_valid_and_points_at_file_and_line() -> None:
    import json
    from pathlib import Path

    import jsonschema

    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" /
                         "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    report = lint(_typo({"netfence.dev/ignore": "NF010", "netfence.dev/ignore-reason": "x"}))
    checks: list[CheckView] = list(report.checks)
    findings: list[FindingView] = list(report.findings)
    log = sarif_log(checks, findings, version="0.1.0")
    jsonschema.Draft4Validator(schema).validate(log)
    results = log["runs"][0]["results"]  # type: ignore[index]
    assert {r["ruleId"] for r in results} >= {"NF001"}
    for r in results:
        assert r["partialFingerprints"]["netfenceFinding/v1"]
        assert "physicalLocation" not in r["locations"][0]  # stdin input: no file to point at


def test_sarif_uris() -> None:
    assert uri("examples/a b.yaml") == ("examples/a%20b.yaml", "%SRCROOT%")
    assert uri("./x/y.yaml") == ("x/y.yaml", "%SRCROOT%")
    assert uri("/abs/p.yaml") == ("file:///abs/p.yaml", None)


def test_gitlab_leaves_out_suppressed_findings() -> None:
    report = lint(_typo({"netfence.dev/ignore": "NF001", "netfence.dev/ignore-reason": "x"}))
    issues = codequality(list(report.findings))
    assert all("NF001" not in str(i["check_name"]) for i in issues)
    assert len({i["fingerprint"] for i in issues}) == len(issues)


# -- redundancy is semantic: delete everything reported, re-evaluate, compare --------------------

def connectivity(state: ClusterState) -> set[tuple[str, str, str, bool]]:
    analysis = api.analyze(state)
    u = analysis.universe
    return {(r.src, r.dst, str(u.portset(r.ports)), r.dns) for r in analysis.rows("pod")}


def without(state: ClusterState, findings: Iterable[Finding]) -> ClusterState:
    """The state minus every policy (NF012, NF013) and rule (NF011, NF014, NF015) reported."""
    drop_policies: set[tuple[str, str, str]] = set()
    drop_rules: set[tuple[str, str, str, str, int]] = set()
    for f in findings:
        key = (f.obj.kind, f.obj.namespace, f.obj.name)
        if f.id in ("NF012", "NF013"):
            drop_policies.add(key)
        elif f.id in ("NF011", "NF014", "NF015"):
            direction, index = f.detail.split("/")
            drop_rules.add((*key, direction, int(index)))
    policies: list[Policy] = []
    for pol in state.policies:
        key = (pol.ref.kind, pol.ref.namespace, pol.ref.name)
        if key in drop_policies:
            continue

        def keep(direction: Direction, rules: tuple[Rule, ...] | None, key: Any = key,
                 ) -> tuple[Rule, ...] | None:
            if rules is None:
                return None
            return tuple(r for r in rules if (*key, str(direction), r.index) not in drop_rules)

        policies.append(dataclasses.replace(pol, ingress=keep(Direction.INGRESS, pol.ingress),
                                            egress=keep(Direction.EGRESS, pol.egress)))
    return dataclasses.replace(state, policies=tuple(policies))


def kept_rules(f: Finding) -> list[tuple[str, str]]:
    """(policy, 'direction/index') of the rules an NF011 message says to keep."""
    tail = f.message.split("allowed by ", 1)[-1].split("identical to ", 1)[-1]
    tail = tail.split(";")[0].split(": keep")[0]
    out = []
    for m in re.finditer(r"(ingress|egress) rule (\d+)(?: \([^)]*\))?(?: of (\S+ \S+))?",
                         tail):
        owner = m.group(3) or str(f.obj)
        out.append((owner, f"{m.group(1)}/{int(m.group(2)) - 1}"))
    assert out, f.message
    return out


def random_cluster(seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    apps = ["web", "api", "db", "cli"]
    docs: list[dict[str, Any]] = [*coredns()]
    spaces = ["a", "b"] if rnd.random() < 0.5 else ["a", "b", "c"]
    for s in spaces:
        docs.append(ns(s, zone=rnd.choice(["x", "y"])))
        for app in rnd.sample(apps, rnd.randint(1, 3)):
            docs.append(pod(f"{s}/{app}", {"app": app, "tier": rnd.choice(["1", "2"])},
                            [(80, "http"), (5432, rnd.choice(["pg", "db"]))]))

    def peer() -> dict[str, Any]:
        kind = rnd.randint(0, 5)
        if kind == 0:
            return {"podSelector": {}}
        if kind == 1:
            return {"podSelector": {"matchLabels": {"app": rnd.choice(apps)}}}
        if kind == 2:
            return {"namespaceSelector": {"matchLabels": {"zone": rnd.choice(["x", "y"])}}}
        if kind == 3:
            return {"namespaceSelector": {}, "podSelector": {"matchLabels": {
                "tier": rnd.choice(["1", "2"])}}}
        if kind == 4:
            return {"ipBlock": {"cidr": rnd.choice(["0.0.0.0/0", "10.0.0.0/8"])}}
        return {"namespaceSelector": {}}

    def rule(key: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if rnd.random() < 0.85:
            out[key] = [peer() for _ in range(rnd.randint(1, 2))]
        if rnd.random() < 0.6:
            out["ports"] = [rnd.choice([{"port": 80}, {"port": "http"}, {"port": "pg"},
                                        {"port": 5000, "endPort": 6000},
                                        {"port": 53, "protocol": "UDP"}])]
        return out

    made: list[dict[str, Any]] = []
    for i in range(rnd.randint(3, 8)):
        s = rnd.choice(spaces)
        types = rnd.choice([["Ingress"], ["Egress"], ["Ingress", "Egress"]])
        spec: dict[str, Any] = {"podSelector": rnd.choice([{}, {"matchLabels": {
            "app": rnd.choice(apps)}}]), "policyTypes": types}
        if "Ingress" in types and rnd.random() < 0.9:
            spec["ingress"] = [rule("from") for _ in range(rnd.randint(1, 3))]
        if "Egress" in types and rnd.random() < 0.9:
            spec["egress"] = [rule("to") for _ in range(rnd.randint(1, 3))]
        made.append(netpol(f"{s}/p{i}", spec))
        if rnd.random() < 0.2:  # an identical copy under another name
            made.append(netpol(f"{s}/p{i}-copy", yaml.safe_load(yaml.safe_dump(spec))))
    if rnd.random() < 0.5:
        made.append(cnp("admin", "Admin", 10, {"subject": {"namespaces": {}}, "ingress": [
            {"action": rnd.choice(["Accept", "Deny", "Pass"]), "from": [{"namespaces": {
                "matchLabels": {"zone": rnd.choice(["x", "y"])}}}]},
            {"action": rnd.choice(["Accept", "Deny"]), "from": [{"namespaces": {}}]}]}))
    if rnd.random() < 0.5:
        made.append(cnp("baseline", "Baseline", 10, {"subject": {"namespaces": {}}, "ingress": [
            {"action": "Deny", "from": [{"namespaces": {"matchLabels": {"zone": "x"}}}]},
            {"action": "Accept", "from": [{"namespaces": {}}]},
            {"action": "Deny", "from": [{"namespaces": {"matchLabels": {"zone": "y"}}}]}]}))
    return docs + made


@pytest.mark.parametrize("seed", range(60))
def test_deleting_everything_reported_redundant_keeps_connectivity(seed: int) -> None:
    analysis = load(random_cluster(seed))
    report = api.lint(analysis)
    reported = [f for f in report.findings if f.id in ("NF011", "NF012", "NF013", "NF014",
                                                       "NF015")]
    before = connectivity(analysis.state)
    assert connectivity(without(analysis.state, reported)) == before, \
        [(f.id, str(f.obj), f.detail) for f in reported]
    # nothing reported for deletion is named as a rule or policy to keep
    deleted_policies = {str(f.obj) for f in reported if f.id in ("NF012", "NF013")}
    deleted_rules = {(str(f.obj), f.detail) for f in reported if f.id == "NF011"}
    for f in reported:
        if f.id == "NF013" and str(f.related[0]) in deleted_policies:
            assert "delete this copy too" in f.message
            continue
        assert not deleted_policies & {str(r) for r in f.related}, f.message
        if f.id == "NF011":
            for kept in kept_rules(f):
                assert kept not in deleted_rules, (f.message, kept)


def test_redundancy_finds_something_in_the_random_clusters() -> None:
    """Guard against a vacuous property test."""
    counts = {"NF011": 0, "NF012": 0, "NF013": 0, "NF014": 0, "NF015": 0}
    for seed in range(60):
        for f in api.lint(load(random_cluster(seed))).findings:
            if f.id in counts:
                counts[f.id] += 1
    assert all(v > 0 for v in counts.values()), counts


def test_single_rule_reported_redundant_really_is() -> None:
    """Each NF011 finding alone: removing just that rule changes nothing either."""
    for seed in range(30):
        analysis = load(random_cluster(seed))
        before = connectivity(analysis.state)
        for f in of(api.lint(analysis), "NF011"):
            assert connectivity(without(analysis.state, [f])) == before, (seed, f.message)


def test_docs_cover_every_check() -> None:
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / "lint.md").read_text(
        encoding="utf-8")
    for c in CHECKS:
        assert f"### {c.id} {c.name}" in text, c.id
