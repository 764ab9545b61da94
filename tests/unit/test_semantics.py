"""SEMANTICS.md checklist: one or more focused tests per item (iso, sel, port, ip, sp, tier, ex,
traps, D-decisions).

Every expectation here is derived from the Kubernetes API documentation, the upstream
network-policy-api types and the netfence decisions D-1..D-10 written down in SEMANTICS.md,
never from netfence output. Inputs are small YAML strings written to ``tmp_path`` and driven
in-process through ``netfence.api`` (the CLI only where an item is about CLI behaviour).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from netfence import api
from netfence.api import Analysis
from netfence.engine.explain import DirectionVerdict
from netfence.engine.query import External, FlowVerdict, MapRow, Point
from netfence.errors import Diagnostic, Severity
from netfence.model.cluster import ClusterState, Pod
from netfence.model.policy import Direction, Policy, Rule, Tier
from netfence.model.ports import PortSet, Protocol
from tests.conftest import run_netfence

TCP = Protocol.TCP
UDP = Protocol.UDP
SCTP = Protocol.SCTP

Netfence = Callable[..., Any]
PortSpec = tuple[str | None, int, str | None]  # (name, containerPort, protocol)


# -- YAML builders -------------------------------------------------------------------------------

def _dump(obj: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(obj), sort_keys=False, default_flow_style=False)


def namespace(name: str, **labels: str) -> str:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = dict(labels)
    return _dump({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})


def pod(key: str, labels: Mapping[str, str] | None = None, *, ports: Sequence[PortSpec] = (),
        ip: str | None = None, node: str | None = None, host_network: bool = False,
        phase: str | None = None) -> str:
    """A Pod manifest ``NS/NAME`` with optional container ports, IP, node and phase."""
    ns, name = key.split("/")
    container: dict[str, Any] = {"name": "main", "image": "registry.example/app:1"}
    if ports:
        items = []
        for pname, number, proto in ports:
            item: dict[str, Any] = {"containerPort": number}
            if pname is not None:
                item["name"] = pname
            if proto is not None:
                item["protocol"] = proto
            items.append(item)
        container["ports"] = items
    spec: dict[str, Any] = {"containers": [container]}
    if node is not None:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {"app": name})},
        "spec": spec,
    }
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if ip is not None:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    if status:
        obj["status"] = status
    return _dump(obj)


def node(name: str, address: str, **labels: str) -> str:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = dict(labels)
    return _dump({"apiVersion": "v1", "kind": "Node", "metadata": meta,
                  "status": {"addresses": [{"type": "InternalIP", "address": address}]}})


def doc(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


def cluster(*docs: str | Iterable[str]) -> str:
    parts: list[str] = []
    for d in docs:
        if isinstance(d, str):
            parts.append(doc(d))
        else:
            parts.extend(doc(x) for x in d)
    return "---\n".join(parts)


def base() -> list[str]:
    """Namespaces x (team=x) and y (team=y); pods x/a, x/b, x/c, y/a, y/b labelled app=NAME."""
    return [namespace("x", team="x"), namespace("y", team="y"),
            pod("x/a"), pod("x/b"), pod("x/c"), pod("y/a"), pod("y/b")]


# -- driving netfence ----------------------------------------------------------------------------

@dataclass
class World:
    """A loaded and analysed input, with small query helpers."""

    path: Path
    text: str
    state: ClusterState
    an: Analysis

    def point(self, text: str) -> Point:
        got = api.resolve(self.state, text)
        assert len(got) == 1, f"{text!r} resolves to {got!r}"
        return got[0]

    def flow(self, src: str, dst: str, port: int, proto: Protocol = TCP) -> FlowVerdict:
        return self.an.query.flow(self.point(src), self.point(dst), proto, port)

    def allowed(self, src: str, dst: str, port: int, proto: Protocol = TCP) -> bool:
        return self.flow(src, dst, port, proto).allowed

    def ingress(self, src: str, dst: str, port: int, proto: Protocol = TCP) -> DirectionVerdict:
        got = self.flow(src, dst, port, proto).ingress
        assert got is not None
        return got

    def egress(self, src: str, dst: str, port: int, proto: Protocol = TCP) -> DirectionVerdict:
        got = self.flow(src, dst, port, proto).egress
        assert got is not None
        return got

    def line(self, needle: str) -> int:
        """1-based line of the first line containing ``needle``."""
        for i, text in enumerate(self.text.splitlines(), 1):
            if needle in text:
                return i
        raise AssertionError(f"{needle!r} not in input")

    def object_line(self, needle: str) -> int:
        """Line where the document holding ``needle`` starts (its first key)."""
        lines = self.text.splitlines()
        i = self.line(needle) - 1
        while i > 0 and lines[i - 1].strip() != "---":
            i -= 1
        return i + 1

    def cite(self, needle: str) -> str:
        return f"{self.path}:{self.object_line(needle)}"

    def rows(self, by: str = "pod") -> list[MapRow]:
        return self.an.rows(by)

    def row_ports(self, src: str, dst: str, by: str = "pod") -> PortSet | None:
        for r in self.rows(by):
            if r.src == src and r.dst == dst:
                return self.an.universe.portset(r.ports)
        return None

    def policy(self, kind: str, namespace: str, name: str) -> Policy:
        got = [p for p in self.state.policies
               if (p.ref.kind, p.ref.namespace, p.ref.name) == (kind, namespace, name)]
        assert len(got) == 1, [str(p.ref) for p in self.state.policies]
        return got[0]


def errors(state: ClusterState) -> list[Diagnostic]:
    return [d for d in state.diagnostics if d.severity >= Severity.ERROR]


def warnings(state: ClusterState) -> list[Diagnostic]:
    return [d for d in state.diagnostics if d.severity is Severity.WARNING]


def world(tmp_path: Path, *docs: str | Iterable[str], name: str = "cluster.yaml",
          valid: bool = True) -> World:
    text = cluster(*docs)
    path = tmp_path / name
    path.write_text(text)
    state = api.load([str(path)])
    if valid:
        assert errors(state) == [], [d.line() for d in errors(state)]
    return World(path, text, state, api.analyze(state))


def text_of(dv: DirectionVerdict) -> str:
    return "\n".join(dv.sentences)


def rule_shape(rules: tuple[Rule, ...] | None) -> object:
    """Rules without their source line, for comparing converted policies."""
    if rules is None:
        return None
    return [(r.index, r.action, r.peers, r.ports, r.name) for r in rules]


def map_signature(w: World, by: str = "pod") -> list[tuple[str, str, str, bool]]:
    return [(r.src, r.dst, str(w.an.universe.portset(r.ports)), r.dns) for r in w.rows(by)]


# -- Isolation and combination -------------------------------------------------------------------

@pytest.mark.parametrize("policy_types", ["", "policyTypes: []"],
                         ids=["policytypes-absent", "policytypes-empty-list"])
def test_iso_1_empty_policytypes_means_ingress_plus_egress_when_egress_rules(
        tmp_path: Path, policy_types: str) -> None:
    w = world(tmp_path, base(), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: p, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: a}}}}
          {policy_types}
          egress:
          - to: [{{podSelector: {{matchLabels: {{app: b}}}}}}]
        """)
    # Ingress is always set: x/a has no ingress rules, so nothing enters.
    assert not w.allowed("x/b", "x/a", 80)
    assert not w.allowed("ip:203.0.113.9", "x/a", 80)
    # Egress was added because egress is non-empty: only x/b is reachable.
    assert w.allowed("x/a", "x/b", 80)
    assert not w.allowed("x/a", "x/c", 80)
    assert not w.allowed("x/a", "ip:8.8.8.8", 53, UDP)


@pytest.mark.parametrize("policy_types", ["", "policyTypes: []"],
                         ids=["policytypes-absent", "policytypes-empty-list"])
def test_iso_1_empty_policytypes_without_egress_rules_is_ingress_only(
        tmp_path: Path, policy_types: str) -> None:
    w = world(tmp_path, base(), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: p, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: a}}}}
          {policy_types}
          ingress:
          - from: [{{podSelector: {{matchLabels: {{app: b}}}}}}]
        """)
    assert w.allowed("x/b", "x/a", 80)
    assert not w.allowed("x/c", "x/a", 80)
    # Not egress-isolated.
    assert w.allowed("x/a", "x/c", 80)
    assert w.allowed("x/a", "ip:8.8.8.8", 53, UDP)


@pytest.mark.parametrize("ingress", ["ingress: []", ""], ids=["ingress-empty", "ingress-absent"])
def test_iso_2_ingress_type_without_rules_isolates(tmp_path: Path, ingress: str) -> None:
    w = world(tmp_path, base(), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: deny-in, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: a}}}}
          policyTypes: [Ingress]
          {ingress}
        """)
    for src in ("x/b", "x/c", "y/a", "ip:203.0.113.9"):
        for port, proto in ((80, TCP), (53, UDP), (9, SCTP)):
            assert not w.allowed(src, "x/a", port, proto), (src, port, proto)
    # egress of x/a is untouched
    assert w.allowed("x/a", "x/b", 80)


def test_iso_3_egress_empty_without_policytypes_does_not_isolate(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          egress: []
        """)
    assert w.allowed("x/a", "x/b", 80)
    assert w.allowed("x/a", "y/b", 443)
    assert w.allowed("x/a", "ip:8.8.8.8", 53, UDP)
    assert w.egress("x/a", "x/b", 80).tier is Tier.DEFAULT
    # ...but the policy still isolates ingress (iso-1)
    assert not w.allowed("x/b", "x/a", 80)


@pytest.mark.parametrize(("types", "direction"), [("[Ingress]", "egress"),
                                                  ("[Egress]", "ingress")])
def test_iso_4_rules_for_a_direction_not_in_policytypes_are_ignored(
        tmp_path: Path, types: str, direction: str) -> None:
    w = world(tmp_path, base(), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: p, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: a}}}}
          policyTypes: {types}
          ingress:
          - from: [{{podSelector: {{matchLabels: {{app: b}}}}}}]
          egress:
          - to: [{{podSelector: {{matchLabels: {{app: b}}}}}}]
        """)
    assert errors(w.state) == []
    if direction == "egress":  # egress rules ignored: x/a may reach x/c and the world
        assert w.allowed("x/a", "x/c", 80)
        assert w.allowed("x/a", "ip:8.8.8.8", 443)
        assert not w.allowed("x/c", "x/a", 80)
        assert w.allowed("x/b", "x/a", 80)
    else:  # ingress rules ignored: anyone may reach x/a
        assert w.allowed("x/c", "x/a", 80)
        assert w.allowed("ip:203.0.113.9", "x/a", 80)
        assert not w.allowed("x/a", "x/c", 80)
        assert w.allowed("x/a", "x/b", 80)


def test_iso_5_pod_selected_by_no_policy_is_not_isolated(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-a, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Ingress, Egress]
        """)
    assert not w.allowed("x/c", "x/a", 80)
    # x/b is selected by nothing: both directions open
    assert w.allowed("x/c", "x/b", 80)
    assert w.allowed("ip:203.0.113.9", "x/b", 22)
    assert w.allowed("x/b", "y/b", 5432)
    fv = w.flow("x/c", "x/b", 80)
    assert fv.ingress is not None and fv.ingress.tier is Tier.DEFAULT
    assert fv.ingress.policy is None


def test_iso_6_policies_are_additive(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: from-b, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: b}}}]
            ports: [{port: 80}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: from-c, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: c}}}]
            ports: [{port: 443}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-all, namespace: x}
        spec:
          podSelector: {}
          policyTypes: [Ingress]
        """)
    assert w.allowed("x/b", "x/a", 80)
    assert w.allowed("x/c", "x/a", 443)
    # a deny-all policy never subtracts; but rules of different policies do not mix
    assert not w.allowed("x/b", "x/a", 443)
    assert not w.allowed("x/c", "x/a", 80)
    assert not w.allowed("y/a", "x/a", 80)


def test_iso_7_pod_to_pod_needs_both_sides_external_only_pod_side(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: a-out, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Egress]
          egress:
          - to:
            - podSelector: {matchExpressions: [{key: app, operator: In, values: [b, c]}]}
            - ipBlock: {cidr: 198.51.100.0/24}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: c-in, namespace: x}
        spec:
          podSelector: {matchLabels: {app: c}}
          policyTypes: [Ingress]
        """)
    assert w.allowed("x/a", "x/b", 80)
    fv = w.flow("x/a", "x/c", 80)
    assert fv.egress is not None and fv.egress.allowed
    assert fv.ingress is not None and not fv.ingress.allowed
    assert not fv.allowed
    # to an external address only the egress side is checked
    out = w.flow("x/a", "ip:198.51.100.7", 443)
    assert out.allowed and out.ingress is None and out.egress is not None
    assert not w.allowed("x/a", "ip:203.0.113.7", 443)
    # from an external address only the ingress side is checked
    into = w.flow("ip:198.51.100.7", "x/b", 80)
    assert into.allowed and into.egress is None and into.ingress is not None
    assert not w.allowed("ip:198.51.100.7", "x/c", 80)


ISO8_POLICIES = {
    "networkpolicy": """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: iso8, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [DIRECTION]
        """,
    "admin": """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: iso8}
        spec:
          tier: Admin
          priority: 10
          subject:
            pods:
              namespaceSelector: {matchLabels: {team: x}}
              podSelector: {matchLabels: {app: a}}
          RULES
        """,
    "baseline": """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: iso8}
        spec:
          tier: Baseline
          priority: 10
          subject:
            pods:
              namespaceSelector: {matchLabels: {team: x}}
              podSelector: {matchLabels: {app: a}}
          RULES
        """,
}


@pytest.mark.parametrize("tier", sorted(ISO8_POLICIES))
@pytest.mark.parametrize("direction", ["Ingress", "Egress"])
def test_iso_8_ingress_and_egress_are_independent_in_every_tier(
        tmp_path: Path, tier: str, direction: str) -> None:
    rules = ("ingress: [{action: Deny, from: [{namespaces: {}}]}]" if direction == "Ingress"
             else "egress: [{action: Deny, to: [{namespaces: {}}]}]")
    text = ISO8_POLICIES[tier].replace("DIRECTION", direction).replace("RULES", rules)
    w = world(tmp_path, base(), text)
    if direction == "Ingress":
        assert not w.allowed("x/b", "x/a", 80)
        assert w.allowed("x/a", "x/b", 80)  # egress of x/a unaffected
        assert w.egress("x/a", "x/b", 80).tier is Tier.DEFAULT
    else:
        assert not w.allowed("x/a", "x/b", 80)
        assert w.allowed("x/b", "x/a", 80)  # ingress of x/a unaffected
        assert w.ingress("x/b", "x/a", 80).tier is Tier.DEFAULT


def test_iso_9_policy_judges_initiation_replies_need_no_rule(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: a-no-ingress, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Ingress]
        """)
    # x/a may open a connection to x/b even though x/b could not open one to x/a: the reply
    # packets of the allowed connection need no ingress rule at x/a.
    assert w.allowed("x/a", "x/b", 80)
    assert not w.allowed("x/b", "x/a", 80)
    pairs = {(r.src, r.dst) for r in w.rows()}
    assert ("x/a", "x/b") in pairs
    assert ("x/b", "x/a") not in pairs


# -- Peers and selectors -------------------------------------------------------------------------

@pytest.mark.parametrize("peers", ["", "from: []"], ids=["from-absent", "from-empty"])
def test_sel_1_missing_or_empty_from_matches_everyone_including_external(
        tmp_path: Path, peers: str) -> None:
    w = world(tmp_path, base(), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: web, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: b}}}}
          ingress:
          - ports: [{{port: 80}}]
            {peers}
        """)
    for src in ("x/a", "y/a", "ip:203.0.113.9", "ip:2001:db8::1"):
        assert w.allowed(src, "x/b", 80), src
        assert not w.allowed(src, "x/b", 81), src


@pytest.mark.parametrize("peers", ["", "to: []"], ids=["to-absent", "to-empty"])
def test_sel_1_missing_or_empty_to_matches_every_destination(tmp_path: Path, peers: str) -> None:
    w = world(tmp_path, base(), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: out, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: a}}}}
          policyTypes: [Egress]
          egress:
          - ports: [{{port: 443}}]
            {peers}
        """)
    for dst in ("x/b", "y/b", "ip:1.1.1.1", "ip:2001:db8::1"):
        assert w.allowed("x/a", dst, 443), dst
        assert not w.allowed("x/a", dst, 80), dst


def test_sel_2_empty_namespace_selector_matches_all_pods_but_no_external(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: ns-all, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Ingress, Egress]
          ingress:
          - from: [{namespaceSelector: {}}]
          egress:
          - to: [{namespaceSelector: {}}]
        """)
    assert w.allowed("x/b", "x/a", 80)
    assert w.allowed("y/b", "x/a", 80)
    assert not w.allowed("ip:203.0.113.9", "x/a", 80)
    assert w.allowed("x/a", "y/b", 80)
    assert not w.allowed("x/a", "ip:1.1.1.1", 80)


def test_sel_3_pod_selector_alone_matches_own_namespace_only(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: from-a, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: a}}}]
        """)
    assert w.allowed("x/a", "x/b", 80)
    assert not w.allowed("y/a", "x/b", 80)


def test_sel_4_namespace_and_pod_selector_in_one_peer_is_and(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: and, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from:
            - namespaceSelector: {matchLabels: {team: y}}
              podSelector: {matchLabels: {app: a}}
        """)
    assert w.allowed("y/a", "x/b", 80)
    assert not w.allowed("y/b", "x/b", 80)  # right namespace, wrong pod
    assert not w.allowed("x/a", "x/b", 80)  # right pod, wrong namespace


def test_sel_4_namespace_and_pod_selector_in_separate_peers_is_or(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: or, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from:
            - namespaceSelector: {matchLabels: {team: y}}
            - podSelector: {matchLabels: {app: a}}
        """)
    assert w.allowed("y/a", "x/b", 80)
    assert w.allowed("y/b", "x/b", 80)
    assert w.allowed("x/a", "x/b", 80)
    assert not w.allowed("x/c", "x/b", 80)


def test_sel_5_ports_and_peers_combine_within_one_rule_only(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: two-rules, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: a}}}]
            ports: [{port: 80}]
          - from: [{podSelector: {matchLabels: {app: c}}}]
            ports: [{port: 443}]
        """)
    assert w.allowed("x/a", "x/b", 80)
    assert w.allowed("x/c", "x/b", 443)
    assert not w.allowed("x/a", "x/b", 443)
    assert not w.allowed("x/c", "x/b", 80)


SEL6_CASES = {
    "NotIn": ("{key: tier, operator: NotIn, values: [web]}", {"x/nolabel", "x/db"}),
    "DoesNotExist": ("{key: tier, operator: DoesNotExist}", {"x/nolabel"}),
    "In": ("{key: tier, operator: In, values: [web, db]}", {"x/web", "x/db"}),
    "Exists": ("{key: tier, operator: Exists}", {"x/web", "x/db"}),
}


@pytest.mark.parametrize("op", sorted(SEL6_CASES))
def test_sel_6_notin_and_doesnotexist_match_objects_lacking_the_key(
        tmp_path: Path, op: str) -> None:
    expr, expected = SEL6_CASES[op]
    w = world(tmp_path, namespace("x"),
              pod("x/web", {"tier": "web"}), pod("x/db", {"tier": "db"}),
              pod("x/nolabel", {"app": "other"}), pod("x/target", {"role": "target"}), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: sel6, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{role: target}}}}
          ingress:
          - from: [{{podSelector: {{matchExpressions: [{expr}]}}}}]
        """)
    got = {src for src in ("x/web", "x/db", "x/nolabel") if w.allowed(src, "x/target", 80)}
    assert got == expected


@pytest.mark.parametrize(("expr", "expected"), [
    ("{key: team, operator: NotIn, values: [x]}", {"y/a", "z/a"}),
    ("{key: team, operator: DoesNotExist}", {"z/a"}),
    ("{key: team, operator: In, values: [x, y]}", {"x/a", "y/a"}),
    ("{key: team, operator: Exists}", {"x/a", "y/a"}),
], ids=["NotIn", "DoesNotExist", "In", "Exists"])
def test_sel_6_namespace_selector_expressions_and_label_less_namespaces(
        tmp_path: Path, expr: str, expected: set[str]) -> None:
    w = world(tmp_path, base(), namespace("z"), pod("z/a"), pod("x/t", {"role": "t"}), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: sel6ns, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{role: t}}}}
          ingress:
          - from: [{{namespaceSelector: {{matchExpressions: [{expr}]}}}}]
        """)
    got = {src for src in ("x/a", "y/a", "z/a") if w.allowed(src, "x/t", 80)}
    assert got == expected


def test_sel_7_metadata_name_label_is_implicit(tmp_path: Path) -> None:
    # y is declared without labels; w is not declared at all (implicit namespace)
    w = world(tmp_path, namespace("x"), namespace("y"), pod("x/a"), pod("x/b"), pod("y/a"),
              pod("w/a"), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: by-name, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from:
            - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}
            - namespaceSelector:
                matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [w]}]
        """)
    assert w.state.namespaces["y"].labels.get("kubernetes.io/metadata.name") == "y"
    assert w.allowed("y/a", "x/b", 80)
    assert w.allowed("w/a", "x/b", 80)
    assert not w.allowed("x/a", "x/b", 80)


def test_sel_7_metadata_name_label_always_equals_the_namespace_name(tmp_path: Path) -> None:
    # The API server overwrites kubernetes.io/metadata.name with the namespace's name
    # (SetDefaults_Namespace / namespace strategy Canonicalize), whatever the manifest says.
    w = world(tmp_path, doc("""
        apiVersion: v1
        kind: Namespace
        metadata:
          name: y
          labels: {kubernetes.io/metadata.name: other}
        """), namespace("x"), pod("x/b"), pod("y/a"), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: by-name, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: other}}}]
            ports: [{port: 80}]
          - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]
            ports: [{port: 443}]
        """)
    assert w.state.namespaces["y"].labels.get("kubernetes.io/metadata.name") == "y"
    assert w.allowed("y/a", "x/b", 443)
    assert not w.allowed("y/a", "x/b", 80)


@pytest.mark.parametrize(("peer", "code"), [
    ("- {}  # the-peer", "peer-empty"),
    ("- {ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}  # the-peer", "peer-ipblock-mixed"),
    ("- {ipBlock: {cidr: 10.0.0.0/8}, namespaceSelector: {}}  # the-peer", "peer-ipblock-mixed"),
], ids=["empty-peer", "ipblock-and-podselector", "ipblock-and-namespaceselector"])
@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_sel_8_peer_without_field_or_ipblock_with_selector_is_an_error(
        tmp_path: Path, peer: str, code: str, direction: str) -> None:
    key = "from" if direction == "ingress" else "to"
    w = world(tmp_path, base(), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: bad, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: b}}}}
          policyTypes: [Ingress, Egress]
          {direction}:
          - {key}:
            {peer}
        """, valid=False)
    errs = errors(w.state)
    assert [e.code for e in errs] == [code]
    assert errs[0].source.file == str(w.path)
    assert errs[0].source.line == w.line("# the-peer")
    # excluded (D-9): the pod is not isolated by the rejected policy
    assert w.state.policies == ()
    assert w.allowed("x/a", "x/b", 80)
    assert w.allowed("x/b", "x/a", 80)


# -- Ports ---------------------------------------------------------------------------------------

def test_port_1_policy_protocol_defaults_to_tcp(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p80, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - ports: [{port: 80}]
        """)
    assert w.allowed("x/a", "x/b", 80, TCP)
    assert not w.allowed("x/a", "x/b", 80, UDP)
    assert not w.allowed("x/a", "x/b", 80, SCTP)


@pytest.mark.parametrize(("entry", "allowed"), [
    ("{port: web}", {(TCP, 8080)}), ("{port: web, protocol: TCP}", {(TCP, 8080)}),
    ("{port: web, protocol: UDP}", set()),
], ids=["policy-default", "policy-tcp", "policy-udp"])
def test_port_1_container_port_protocol_defaults_to_tcp(
        tmp_path: Path, entry: str, allowed: set[tuple[Protocol, int]]) -> None:
    w = world(tmp_path, namespace("x"), pod("x/a"),
              pod("x/b", ports=[("web", 8080, None)]), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: named, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: b}}}}
          ingress:
          - ports: [{entry}]
        """)
    got = {(proto, port) for proto in (TCP, UDP) for port in (8080,)
           if w.allowed("x/a", "x/b", port, proto)}
    assert got == allowed


@pytest.mark.parametrize("ports", ["", "ports: []"], ids=["ports-absent", "ports-empty"])
def test_port_2_missing_or_empty_ports_match_all_ports_and_protocols(
        tmp_path: Path, ports: str) -> None:
    w = world(tmp_path, base(), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: all-ports, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: b}}}}
          ingress:
          - from: [{{podSelector: {{matchLabels: {{app: a}}}}}}]
            {ports}
        """)
    for proto, port in ((TCP, 1), (TCP, 65535), (UDP, 53), (SCTP, 9)):
        assert w.allowed("x/a", "x/b", port, proto)
    ps = w.row_ports("x/a", "x/b")
    assert ps is not None
    assert ps.is_all() and ps.other  # ICMP and every other protocol too
    assert w.row_ports("x/c", "x/b") is None


def test_port_2_protocol_only_port_entry_does_not_match_icmp(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: tcp-only, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - ports: [{protocol: TCP}]
        """)
    assert w.allowed("x/a", "x/b", 12345, TCP)
    assert not w.allowed("x/a", "x/b", 53, UDP)
    ps = w.row_ports("x/a", "x/b")
    assert ps is not None and not ps.other and str(ps) == "TCP all"


def test_port_3_endport_is_inclusive(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: range, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - ports: [{port: 8080, endPort: 8082}, {port: 9000, endPort: 9000}]
        """)
    got = [p for p in (8079, 8080, 8081, 8082, 8083, 8999, 9000, 9001)
           if w.allowed("x/a", "x/b", p)]
    assert got == [8080, 8081, 8082, 9000]


@pytest.mark.parametrize("entry", [
    "{endPort: 90}  # the-port",
    "{port: web, endPort: 90}  # the-port",
    "{port: 90, endPort: 80}  # the-port",
], ids=["without-port", "named-port", "below-port"])
def test_port_3_endport_needs_a_numeric_port_not_above_it(tmp_path: Path, entry: str) -> None:
    w = world(tmp_path, base(), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: bad-range, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: b}}}}
          ingress:
          - ports:
            - {entry}
        """, valid=False)
    errs = errors(w.state)
    assert len(errs) == 1 and errs[0].code == "endport"
    assert errs[0].source.line == w.line("# the-port")
    assert w.state.policies == ()
    assert w.allowed("x/a", "x/b", 85)


def test_port_4_numeric_port_matches_whether_or_not_declared(tmp_path: Path) -> None:
    w = world(tmp_path, namespace("x"), pod("x/a"), pod("x/b"),
              pod("x/c", ports=[("pg", 5432, "TCP")]), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: pg, namespace: x}
        spec:
          podSelector: {matchExpressions: [{key: app, operator: In, values: [b, c]}]}
          ingress:
          - ports: [{port: 5432}]
        """)
    assert w.allowed("x/a", "x/b", 5432)  # x/b declares no ports at all
    assert w.allowed("x/a", "x/c", 5432)
    assert not w.allowed("x/a", "x/b", 5433)


@pytest.mark.parametrize(("entry", "allowed"), [
    ("{port: dns}", set()),
    ("{port: dns, protocol: TCP}", set()),
    ("{port: dns, protocol: UDP}", {(UDP, 53)}),
    ("{port: web}", {(TCP, 8080)}),
    ("{port: metrics}", set()),
], ids=["dns-default-tcp", "dns-tcp", "dns-udp", "web", "undeclared-name"])
def test_port_5_named_port_matches_same_name_and_protocol_only(
        tmp_path: Path, entry: str, allowed: set[tuple[Protocol, int]]) -> None:
    w = world(tmp_path, namespace("x"), pod("x/a"),
              pod("x/b", ports=[("dns", 53, "UDP"), ("web", 8080, None)]), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: named, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: b}}}}
          ingress:
          - ports: [{entry}]
        """)
    got = {(proto, port) for proto in (TCP, UDP) for port in (53, 8080, 9090)
           if w.allowed("x/a", "x/b", port, proto)}
    assert got == allowed


def port6_pods() -> list[str]:
    return [namespace("x"), pod("x/a", ports=[("web", 7070, "TCP")]),
            pod("x/b", ports=[("web", 8080, "TCP")]), pod("x/c", ports=[("web", 9090, "TCP")])]


def test_port_6_named_port_resolved_on_each_selected_pod_for_ingress(tmp_path: Path) -> None:
    w = world(tmp_path, port6_pods(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: web-in, namespace: x}
        spec:
          podSelector: {matchExpressions: [{key: app, operator: In, values: [b, c]}]}
          ingress:
          - from: [{podSelector: {matchLabels: {app: a}}}]
            ports: [{port: web}]
        """)
    assert w.allowed("x/a", "x/b", 8080)
    assert not w.allowed("x/a", "x/b", 9090)
    assert w.allowed("x/a", "x/c", 9090)
    assert not w.allowed("x/a", "x/c", 8080)
    assert not w.allowed("x/a", "x/b", 7070)  # the source's own 'web' is irrelevant


def test_port_6_named_port_resolved_on_the_peer_pod_for_egress(tmp_path: Path) -> None:
    w = world(tmp_path, port6_pods(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: web-out, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Egress]
          egress:
          - to: [{podSelector: {}}]
            ports: [{port: web}]
        """)
    assert w.allowed("x/a", "x/b", 8080)
    assert w.allowed("x/a", "x/c", 9090)
    assert not w.allowed("x/a", "x/b", 9090)
    assert not w.allowed("x/a", "x/c", 8080)
    assert not w.allowed("x/a", "x/b", 7070)  # 7070 is x/a's own 'web', not the peer's
    ps = w.row_ports("x/a", "x/b")
    assert ps is not None and str(ps) == "TCP 8080"
    ps = w.row_ports("x/a", "x/c")
    assert ps is not None and str(ps) == "TCP 9090"


def test_port_6_cnp_destination_named_port_resolves_on_peer_with_its_protocol(
        tmp_path: Path) -> None:
    w = world(tmp_path, namespace("x"), pod("x/a", ports=[("svc", 7070, "TCP")]),
              pod("x/b", ports=[("svc", 8080, "TCP")]), pod("x/c", ports=[("svc", 53, "UDP")]),
              """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: deny-svc}
        spec:
          tier: Admin
          priority: 1
          subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}
          egress:
          - action: Deny
            to: [{pods: {namespaceSelector: {}, podSelector: {}}}]
            protocols: [{destinationNamedPort: svc}]
        """)
    assert not w.allowed("x/a", "x/b", 8080, TCP)
    assert w.allowed("x/a", "x/b", 8080, UDP)
    assert not w.allowed("x/a", "x/c", 53, UDP)
    assert w.allowed("x/a", "x/c", 53, TCP)
    assert w.allowed("x/a", "x/b", 7070, TCP)  # x/a's own 'svc' means nothing here


def test_port_7_named_ports_never_match_external_addresses(tmp_path: Path) -> None:
    w = world(tmp_path, port6_pods(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: web-out, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Egress]
          egress:
          - to: [{ipBlock: {cidr: 0.0.0.0/0}}, {ipBlock: {cidr: "::/0"}}]
            ports: [{port: web}]
        """)
    for port in (7070, 8080, 9090, 80):
        assert not w.allowed("x/a", "ip:203.0.113.9", port)
        assert not w.allowed("x/a", "ip:2001:db8::9", port)
    assert not any(r.src == "x/a" for r in w.rows())


# -- ipBlock and pod IPs -------------------------------------------------------------------------

def ip_pods() -> list[str]:
    return [namespace("x"), pod("x/a", ip="10.1.0.1"), pod("x/b", ip="10.1.0.2"),
            pod("x/c", ip="10.2.0.1")]


def test_ip_1_ipblock_matches_known_pod_ips(tmp_path: Path) -> None:
    w = world(tmp_path, ip_pods(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-in, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{ipBlock: {cidr: 10.1.0.0/16}}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: a-out, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Egress]
          egress:
          - to: [{ipBlock: {cidr: 10.2.0.0/16}}]
        """)
    assert w.allowed("x/a", "x/c", 80)      # a's egress ipBlock matches c's pod IP
    assert not w.allowed("x/a", "x/b", 80)  # b's IP is outside a's egress block
    assert w.allowed("x/c", "x/b", 80) is False  # c's IP is outside b's ingress block
    assert w.ingress("x/a", "x/b", 80).allowed  # a's IP is inside b's ingress block


@pytest.mark.parametrize(("cidr", "exc"), [
    ("10.0.0.0/16", "10.0.0.0/16"),
    ("10.0.0.0/16", "10.1.0.0/24"),
    ("10.0.0.0/16", "10.0.0.0/8"),
    ("10.0.0.0/16", "fd00::/64"),
], ids=["equal", "disjoint", "superset", "other-family"])
def test_ip_2_except_must_be_a_strict_subset_of_cidr(
        tmp_path: Path, cidr: str, exc: str) -> None:
    w = world(tmp_path, base(), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: bad-except, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: b}}}}
          ingress:
          - from:
            - ipBlock:
                cidr: {cidr}
                except:
                - "{exc}"  # the-except
        """, valid=False)
    errs = errors(w.state)
    assert len(errs) == 1
    assert errs[0].source.line == w.line("# the-except")
    assert w.state.policies == ()
    assert w.allowed("ip:10.0.5.5", "x/b", 80)


def test_ip_2_strict_subset_except_is_valid(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: ok-except, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.1.0/24]}}]
        """)
    assert w.allowed("ip:10.0.0.1", "x/b", 80)
    assert not w.allowed("ip:10.0.1.1", "x/b", 80)


@pytest.mark.parametrize("layout", ["same-rule", "separate-rules", "separate-policies"])
def test_ip_3_except_removes_addresses_from_its_own_peer_only(
        tmp_path: Path, layout: str) -> None:
    wide = "{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}"
    narrow = "{ipBlock: {cidr: 10.1.2.0/24}}"

    def policy(name: str, *rules: str) -> str:
        return ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                f"metadata: {{name: {name}, namespace: x}}\n"
                "spec:\n  podSelector: {matchLabels: {app: b}}\n  ingress:\n"
                + "".join(f"  - from: {r}\n" for r in rules))

    if layout == "same-rule":
        docs = [policy("p", f"[{wide}, {narrow}]")]
    elif layout == "separate-rules":
        docs = [policy("p", f"[{wide}]", f"[{narrow}]")]
    else:
        docs = [policy("p1", f"[{wide}]"), policy("p2", f"[{narrow}]")]
    w = world(tmp_path, base(), *docs)
    assert w.allowed("ip:10.1.2.3", "x/b", 80)      # excepted by one peer, allowed by another
    assert not w.allowed("ip:10.1.3.3", "x/b", 80)  # excepted and covered by nothing else
    assert w.allowed("ip:10.2.0.1", "x/b", 80)
    assert not w.allowed("ip:11.0.0.1", "x/b", 80)


def test_ip_4_cnp_networks_peer_matches_pod_ips(tmp_path: Path) -> None:
    w = world(tmp_path, ip_pods(), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: no-10-1}
        spec:
          tier: Admin
          priority: 10
          subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}
          egress:
          - name: deny-net
            action: Deny
            to: [{networks: [10.1.0.0/16]}]
        """)
    fv = w.flow("x/a", "x/b", 80)  # x/b is 10.1.0.2
    assert not fv.allowed
    assert fv.egress is not None and fv.egress.tier is Tier.ADMIN
    assert w.allowed("x/a", "x/c", 80)  # 10.2.0.1
    assert not w.allowed("x/a", "ip:10.1.9.9", 80)


@pytest.mark.parametrize(("cidr", "allowed", "denied"), [
    ("0.0.0.0/0", "ip:198.51.100.1", "ip:2001:db8::1"),
    ('"::/0"', "ip:2001:db8::1", "ip:198.51.100.1"),
], ids=["v4-block", "v6-block"])
def test_ip_5_address_families_never_cross(
        tmp_path: Path, cidr: str, allowed: str, denied: str) -> None:
    w = world(tmp_path, base(), pod("x/v4", ip="10.9.0.1"), pod("x/v6", ip="fd00::9"), f"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: fam, namespace: x}}
        spec:
          podSelector: {{matchLabels: {{app: a}}}}
          policyTypes: [Ingress, Egress]
          ingress:
          - from: [{{ipBlock: {{cidr: {cidr}}}}}]
          egress:
          - to: [{{ipBlock: {{cidr: {cidr}}}}}]
        """)
    assert w.allowed("x/a", allowed, 443)
    assert not w.allowed("x/a", denied, 443)
    assert w.allowed(allowed, "x/a", 443)
    assert not w.allowed(denied, "x/a", 443)
    v4_ok = cidr == "0.0.0.0/0"
    assert w.allowed("x/a", "x/v4", 443) is v4_ok
    assert w.allowed("x/a", "x/v6", 443) is not v4_ok


# -- Special pods and traffic --------------------------------------------------------------------

def hostnet_cluster() -> list[str]:
    """x/h is a hostNetwork pod labelled like x/a on node n1; everything else runs on n2."""
    return [namespace("x", team="x"), namespace("y", team="y"),
            node("n1", "192.168.0.11"), node("n2", "192.168.0.12"),
            pod("x/a", ip="10.1.0.1", node="n2"), pod("x/b", ip="10.1.0.2", node="n2"),
            pod("x/c", ip="10.1.0.3", node="n2"), pod("y/b", ip="10.1.0.4", node="n2"),
            pod("x/h", {"app": "a"}, ip="192.168.0.11", node="n1", host_network=True)]


def test_sp_1_hostnetwork_pod_is_not_selected_by_policies(tmp_path: Path) -> None:
    w = world(tmp_path, hostnet_cluster(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-a, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Ingress, Egress]
        ---
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: deny-x}
        spec:
          tier: Admin
          priority: 1
          subject: {namespaces: {matchLabels: {team: x}}}
          egress:
          - {action: Deny, to: [{networks: [0.0.0.0/0]}]}
        """)
    assert not w.allowed("y/b", "x/a", 80)
    assert w.allowed("y/b", "x/h", 80)
    assert w.allowed("x/h", "ip:198.51.100.1", 443)
    assert not w.allowed("x/c", "ip:198.51.100.1", 443)


def test_sp_1_hostnetwork_pod_is_not_matched_by_pod_or_namespace_selectors(
        tmp_path: Path) -> None:
    w = world(tmp_path, hostnet_cluster(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-in, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: a}}}]
          - from: [{namespaceSelector: {}}]
            ports: [{port: 443}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-out, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          policyTypes: [Egress]
          egress:
          - to: [{namespaceSelector: {}, podSelector: {}}]
        """)
    assert w.allowed("x/a", "x/b", 80)
    assert not w.allowed("x/h", "x/b", 80)
    assert not w.allowed("x/h", "x/b", 443)
    assert w.allowed("x/a", "x/b", 443)
    assert w.allowed("x/b", "x/a", 80)
    assert not w.allowed("x/b", "x/h", 80)


def test_sp_1_cnp_pods_and_namespaces_peers_exclude_hostnetwork_pods(tmp_path: Path) -> None:
    w = world(tmp_path, hostnet_cluster(), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: deny-pods}
        spec:
          tier: Admin
          priority: 1
          subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: c}}}}
          ingress:
          - {action: Deny, from: [{namespaces: {}}]}
          - {action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {}}}]}
          egress:
          - {action: Deny, to: [{namespaces: {}}]}
          - {action: Deny, to: [{pods: {namespaceSelector: {}, podSelector: {}}}]}
        """)
    assert not w.allowed("x/a", "x/c", 80)
    assert not w.allowed("x/c", "x/a", 80)
    assert w.allowed("x/h", "x/c", 80)
    assert w.allowed("x/c", "x/h", 80)


@pytest.mark.parametrize("tier", ["networkpolicy", "admin"])
def test_sp_2_pod_can_always_reach_itself_even_through_its_service(
        tmp_path: Path, tier: str) -> None:
    deny = ("""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-all, namespace: x}
        spec:
          podSelector: {}
          policyTypes: [Ingress, Egress]
        """ if tier == "networkpolicy" else """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: deny-all}
        spec:
          tier: Admin
          priority: 0
          subject: {namespaces: {}}
          ingress: [{action: Deny, from: [{namespaces: {}}]}]
          egress: [{action: Deny, to: [{namespaces: {}}, {networks: [0.0.0.0/0]}]}]
        """)
    w = world(tmp_path, namespace("x"), pod("x/a", ip="10.1.0.1", ports=[("http", 8080, None)]),
              pod("x/b", ip="10.1.0.2"), """
        apiVersion: v1
        kind: Service
        metadata: {name: a-svc, namespace: x}
        spec:
          selector: {app: a}
          ports: [{port: 80, targetPort: http}]
        """, deny)
    assert not w.allowed("x/b", "x/a", 8080)
    for port in (8080, 80, 22):
        assert w.allowed("x/a", "x/a", port)
    # hairpin through the Service lands on the pod itself at targetPort 8080
    assert w.allowed("x/a", "ip:10.1.0.1", 8080)


def test_sp_3_traffic_between_a_pod_and_its_own_node_is_always_allowed(tmp_path: Path) -> None:
    w = world(tmp_path, namespace("x"), node("n1", "192.168.0.11"), node("n2", "192.168.0.12"),
              pod("x/a", ip="10.1.0.1", node="n1"),
              pod("x/h", {"app": "agent"}, ip="192.168.0.11", node="n1", host_network=True),
              pod("x/g", {"app": "agent"}, ip="192.168.0.12", node="n2", host_network=True), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-all, namespace: x}
        spec:
          podSelector: {}
          policyTypes: [Ingress, Egress]
        ---
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: deny-out}
        spec:
          tier: Admin
          priority: 0
          subject: {namespaces: {}}
          egress: [{action: Deny, to: [{networks: [0.0.0.0/0]}, {nodes: {}}]}]
        """)
    assert w.allowed("ip:192.168.0.11", "x/a", 10250)
    assert w.allowed("x/a", "ip:192.168.0.11", 10250)
    assert w.allowed("x/h", "x/a", 8080)
    assert w.allowed("x/a", "x/h", 8080)
    # another node is not special
    assert not w.allowed("ip:192.168.0.12", "x/a", 10250)
    assert not w.allowed("x/a", "ip:192.168.0.12", 10250)
    assert not w.allowed("x/g", "x/a", 8080)
    assert not w.allowed("x/a", "x/g", 8080)


def test_sp_3_map_lists_traffic_between_pod_and_own_node(tmp_path: Path) -> None:
    w = world(tmp_path, namespace("x"), node("n1", "192.168.0.11"),
              pod("x/a", ip="10.1.0.1", node="n1"),
              pod("x/h", {"app": "agent"}, ip="192.168.0.11", node="n1", host_network=True), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-a, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Ingress, Egress]
        """)
    ps = w.row_ports("x/h", "x/a")
    assert ps is not None and ps.is_all()
    ps = w.row_ports("x/a", "x/h")
    assert ps is not None and ps.is_all()
    # the node's own address, not only its hostNetwork pods (explain says allowed: ex-3)
    node_ip = ipaddress.ip_address("192.168.0.11")
    assert w.allowed("ip:192.168.0.11", "x/a", 10250)
    assert w.allowed("x/a", "ip:192.168.0.11", 10250)
    into = [r for r in w.rows() if r.dst == "x/a" and ext_contains(r.src, node_ip)]
    out_of = [r for r in w.rows() if r.src == "x/a" and ext_contains(r.dst, node_ip)]
    assert into and w.an.universe.portset(into[0].ports).contains(TCP, 10250)
    assert out_of and w.an.universe.portset(out_of[0].ports).contains(TCP, 10250)


def test_sp_4_pod_to_own_ip_is_not_subject_to_admin_policy(tmp_path: Path) -> None:
    w = world(tmp_path, namespace("x"), pod("x/a", ip="10.1.0.1"), pod("x/b", ip="10.1.0.2"), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: deny-everything}
        spec:
          tier: Admin
          priority: 0
          subject: {namespaces: {}}
          ingress: [{action: Deny, from: [{namespaces: {}}]}]
          egress: [{action: Deny, to: [{namespaces: {}}, {networks: [0.0.0.0/0]}]}]
        """)
    assert not w.allowed("x/b", "x/a", 80)
    assert not w.allowed("x/a", "ip:10.1.0.2", 80)
    fv = w.flow("x/a", "ip:10.1.0.1", 80)
    assert fv.allowed
    assert w.allowed("x/a", "x/a", 443, UDP)


def sp5_cluster() -> tuple[list[str], str]:
    policies = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: default-deny
          namespace: x  # sp5-x
        spec:
          podSelector: {}
          policyTypes: [Ingress]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: default-deny
          namespace: y  # sp5-y
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{namespaceSelector: {matchLabels: {team: x}}}]
            ports: [{port: 80}]
        """
    return base(), policies


def test_sp_5_same_named_policies_in_two_namespaces_are_distinct(tmp_path: Path) -> None:
    pods, policies = sp5_cluster()
    w = world(tmp_path, pods, policies)
    refs = sorted((p.ref.namespace, p.ref.name) for p in w.state.policies)
    assert refs == [("x", "default-deny"), ("y", "default-deny")]
    # x's default-deny isolates every pod of x, nothing in y
    dx = w.ingress("y/a", "x/a", 80)
    assert not dx.allowed
    assert dx.policy is not None
    assert (dx.policy.ref.namespace, dx.policy.ref.name) == ("x", "default-deny")
    assert dx.policy.source.line == w.object_line("# sp5-x")
    assert w.cite("# sp5-x") in text_of(dx)
    assert w.cite("# sp5-y") not in text_of(dx)
    # y's default-deny selects only y/b, and allows x's pods on 80
    dy = w.ingress("x/a", "y/b", 80)
    assert dy.allowed
    assert dy.policy is not None
    assert (dy.policy.ref.namespace, dy.policy.ref.name) == ("y", "default-deny")
    assert w.cite("# sp5-y") in text_of(dy)
    assert w.cite("# sp5-x") not in text_of(dy)
    assert not w.allowed("x/a", "y/b", 443)
    assert w.allowed("x/a", "y/a", 443)  # y/a is selected by neither
    assert w.ingress("x/a", "y/a", 443).policy is None


def test_sp_5_same_named_policies_are_distinct_in_cli_explain(
        tmp_path: Path, netfence: Netfence) -> None:
    pods, policies = sp5_cluster()
    w = world(tmp_path, pods, policies)
    for src, dst, ns in (("y/a", "x/b", "x"), ("x/a", "y/b", "y")):
        run = netfence("explain", "-f", str(w.path), src, dst, "--port", "443", "-o", "json")
        assert run.code == 0, run.stderr
        ing = run.json()["flows"][0]["ingress"]
        assert ing["policy"]["namespace"] == ns
        assert ing["policy"]["name"] == "default-deny"
        assert ing["policy"]["line"] == w.object_line(f"# sp5-{ns}")


# -- Tiers ---------------------------------------------------------------------------------------

def test_tier_1_admin_then_networkpolicy_then_baseline_then_default(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: admin-deny-a}
        spec:
          tier: Admin
          priority: 10
          subject: {namespaces: {}}
          ingress:
          - action: Deny
            from:
            - pods:
                namespaceSelector: {matchLabels: {team: x}}
                podSelector: {matchLabels: {app: a}}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-allow-x, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{podSelector: {}}]
        ---
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: baseline-deny-c}
        spec:
          tier: Baseline
          priority: 10
          subject: {namespaces: {}}
          ingress:
          - action: Deny
            from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: c}}}}]
        """)
    admin = w.ingress("x/a", "x/b", 80)
    assert not admin.allowed and admin.tier is Tier.ADMIN
    netpol = w.ingress("x/c", "x/b", 80)
    assert netpol.allowed and netpol.tier is Tier.NETWORK_POLICY
    baseline = w.ingress("x/c", "y/b", 80)
    assert not baseline.allowed and baseline.tier is Tier.BASELINE
    default = w.ingress("y/a", "y/b", 80)
    assert default.allowed and default.tier is Tier.DEFAULT


@pytest.mark.parametrize(("accept_prio", "deny_prio", "allowed"), [
    (10, 20, True), (20, 10, False),
])
def test_tier_2_admin_lower_priority_first(
        tmp_path: Path, accept_prio: int, deny_prio: int, allowed: bool) -> None:
    # names sort the opposite way to the expected order
    w = world(tmp_path, base(), f"""
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {{name: z-accept}}
        spec:
          tier: Admin
          priority: {accept_prio}
          subject: {{namespaces: {{}}}}
          ingress: [{{action: Accept, from: [{{namespaces: {{matchLabels: {{team: y}}}}}}]}}]
        ---
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {{name: a-deny}}
        spec:
          tier: Admin
          priority: {deny_prio}
          subject: {{namespaces: {{}}}}
          ingress: [{{action: Deny, from: [{{namespaces: {{matchLabels: {{team: y}}}}}}]}}]
        """)
    dv = w.ingress("y/a", "x/b", 80)
    assert dv.allowed is allowed
    assert dv.policy is not None
    assert dv.policy.ref.name == ("z-accept" if allowed else "a-deny")
    assert dv.ambiguous == ()


def test_tier_2_admin_rules_are_first_match_in_written_order(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: ordered}
        spec:
          tier: Admin
          priority: 10
          subject: {namespaces: {matchLabels: {team: x}}}
          ingress:
          - name: deny-80
            action: Deny
            from: [{namespaces: {matchLabels: {team: y}}}]
            protocols: [{tcp: {destinationPort: {number: 80}}}]
          - name: accept-all
            action: Accept
            from: [{namespaces: {matchLabels: {team: y}}}]
          - name: deny-all-never-reached
            action: Deny
            from: [{namespaces: {matchLabels: {team: y}}}]
        """)
    d80 = w.ingress("y/a", "x/b", 80)
    assert not d80.allowed and d80.rule is not None and d80.rule.name == "deny-80"
    d81 = w.ingress("y/a", "x/b", 81)
    assert d81.allowed and d81.rule is not None and d81.rule.name == "accept-all"


def test_tier_3_admin_accept_and_deny_are_final(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: final}
        spec:
          tier: Admin
          priority: 10
          subject:
            pods:
              namespaceSelector: {matchLabels: {team: x}}
              podSelector: {matchLabels: {app: b}}
          ingress:
          - name: accept-a
            action: Accept
            from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}]
          - name: deny-c
            action: Deny
            from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: c}}}}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-only-from-c, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: c}}}]
        ---
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: baseline-allow}
        spec:
          tier: Baseline
          priority: 10
          subject: {namespaces: {}}
          ingress:
          - {action: Accept, from: [{namespaces: {}}]}
        """)
    accepted = w.ingress("x/a", "x/b", 80)  # the NetworkPolicy would deny; Accept is final
    assert accepted.allowed and accepted.tier is Tier.ADMIN
    denied = w.ingress("x/c", "x/b", 80)  # the NetworkPolicy would allow; Deny is final
    assert not denied.allowed and denied.tier is Tier.ADMIN


@pytest.mark.parametrize("with_netpol", [True, False], ids=["netpol", "no-netpol"])
def test_tier_3_pass_skips_rest_of_admin_tier(tmp_path: Path, with_netpol: bool) -> None:
    netpol = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-from-a, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: a}}}]
        """
    admin = """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: pass-a}
        spec:
          tier: Admin
          priority: 1
          subject: {namespaces: {}}
          ingress:
          - action: Pass
            from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}]
        ---
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: deny-a}
        spec:
          tier: Admin
          priority: 2
          subject: {namespaces: {}}
          ingress:
          - action: Deny
            from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}]
        ---
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: baseline-deny-a}
        spec:
          tier: Baseline
          priority: 1
          subject: {namespaces: {}}
          ingress:
          - action: Deny
            from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}]
        """
    w = world(tmp_path, base(), admin, *([netpol] if with_netpol else []))
    dv = w.ingress("x/a", "x/b", 80)
    if with_netpol:
        assert dv.allowed and dv.tier is Tier.NETWORK_POLICY
    else:
        assert not dv.allowed and dv.tier is Tier.BASELINE
        assert dv.policy is not None and dv.policy.ref.name == "baseline-deny-a"
    # Pass is not a Deny: x/c is untouched by everything
    assert w.allowed("x/c", "y/b", 80)


def test_tier_3_v1alpha1_allow_is_final_like_accept(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: AdminNetworkPolicy
        metadata: {name: allow-a}
        spec:
          priority: 10
          subject: {namespaces: {}}
          ingress:
          - action: Allow
            from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-all, namespace: x}
        spec:
          podSelector: {}
          policyTypes: [Ingress]
        """)
    dv = w.ingress("y/a", "x/b", 80)
    assert dv.allowed and dv.tier is Tier.ADMIN
    assert not w.allowed("y/b", "x/b", 80)


def test_tier_4_isolated_and_not_allowed_is_denied_without_consulting_baseline(
        tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-from-c, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: c}}}]
        ---
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: BaselineAdminNetworkPolicy
        metadata: {name: default}
        spec:
          subject: {namespaces: {}}
          ingress:
          - action: Allow
            from:
            - pods:
                namespaceSelector: {matchLabels: {team: x}}
                podSelector: {matchLabels: {app: a}}
          - action: Deny
            from:
            - pods:
                namespaceSelector: {matchLabels: {team: x}}
                podSelector: {matchLabels: {app: c}}
        """)
    isolated = w.ingress("x/a", "x/b", 80)
    assert not isolated.allowed and isolated.tier is Tier.NETWORK_POLICY
    allowed = w.ingress("x/c", "x/b", 80)
    assert allowed.allowed and allowed.tier is Tier.NETWORK_POLICY
    # y/b is not isolated by any NetworkPolicy: the Baseline decides
    base_deny = w.ingress("x/c", "y/b", 80)
    assert not base_deny.allowed and base_deny.tier is Tier.BASELINE
    base_allow = w.ingress("x/a", "y/b", 80)
    assert base_allow.allowed and base_allow.tier is Tier.BASELINE


@pytest.mark.parametrize(("accept_prio", "deny_prio", "allowed"), [
    (5, 10, True), (10, 5, False),
])
def test_tier_5_baseline_first_match_by_priority(
        tmp_path: Path, accept_prio: int, deny_prio: int, allowed: bool) -> None:
    w = world(tmp_path, base(), f"""
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {{name: z-accept}}
        spec:
          tier: Baseline
          priority: {accept_prio}
          subject: {{namespaces: {{}}}}
          ingress: [{{action: Accept, from: [{{namespaces: {{matchLabels: {{team: y}}}}}}]}}]
        ---
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {{name: a-deny}}
        spec:
          tier: Baseline
          priority: {deny_prio}
          subject: {{namespaces: {{}}}}
          ingress: [{{action: Deny, from: [{{namespaces: {{matchLabels: {{team: y}}}}}}]}}]
        """)
    dv = w.ingress("y/a", "x/b", 80)
    assert dv.allowed is allowed and dv.tier is Tier.BASELINE


def test_tier_5_baseline_rule_order_and_no_match_allows(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: baseline}
        spec:
          tier: Baseline
          priority: 1
          subject: {namespaces: {matchLabels: {team: x}}}
          ingress:
          - name: deny-80
            action: Deny
            from: [{namespaces: {matchLabels: {team: y}}}]
            protocols: [{tcp: {destinationPort: {number: 80}}}]
          - name: accept-y
            action: Accept
            from: [{namespaces: {matchLabels: {team: y}}}]
          - name: deny-rest
            action: Deny
            from: [{namespaces: {}}]
        """)
    assert not w.allowed("y/a", "x/b", 80)
    accepted = w.ingress("y/a", "x/b", 81)
    assert accepted.allowed and accepted.rule is not None and accepted.rule.name == "accept-y"
    assert not w.allowed("x/a", "x/b", 81)
    # an external source matches no rule: default allow
    ext = w.ingress("ip:203.0.113.9", "x/b", 80)
    assert ext.allowed and ext.tier is Tier.DEFAULT


def test_tier_6_admin_accept_on_egress_does_not_bypass_destination_ingress(
        tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: a-out}
        spec:
          tier: Admin
          priority: 1
          subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}
          egress:
          - name: to-b
            action: Accept
            to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: b}}}}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-closed, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          policyTypes: [Ingress]
        """)
    fv = w.flow("x/a", "x/b", 80)
    assert fv.egress is not None and fv.egress.allowed and fv.egress.tier is Tier.ADMIN
    assert fv.ingress is not None and not fv.ingress.allowed
    assert fv.ingress.tier is Tier.NETWORK_POLICY
    assert not fv.allowed
    assert w.allowed("x/a", "y/b", 80)


TIER7_SUBJECT = ("{pods: {namespaceSelector: {matchLabels: {team: x}}, "
                 "podSelector: {matchLabels: {app: b}}}}")

TIER7_ANP = f"""
    apiVersion: policy.networking.k8s.io/v1alpha1
    kind: AdminNetworkPolicy
    metadata: {{name: t7}}
    spec:
      priority: 10
      subject: {TIER7_SUBJECT}
      ingress:
      - name: deny-a-80
        action: Deny
        from: [{{pods: {{namespaceSelector: {{}}, podSelector: {{matchLabels: {{app: a}}}}}}}}]
        ports: [{{portNumber: {{protocol: TCP, port: 80}}}}]
      - name: pass-x
        action: Pass
        from: [{{namespaces: {{matchLabels: {{team: x}}}}}}]
        ports:
        - portRange: {{protocol: UDP, start: 5000, end: 5010}}
        - namedPort: web
      - name: allow-y
        action: Allow
        from: [{{namespaces: {{matchLabels: {{team: y}}}}}}]
      egress:
      - name: deny-net
        action: Deny
        to: [{{networks: [203.0.113.0/24]}}]
        ports: [{{portNumber: {{port: 443}}}}]
    """

TIER7_CNP = f"""
    apiVersion: policy.networking.k8s.io/VERSION
    kind: ClusterNetworkPolicy
    metadata: {{name: t7}}
    spec:
      tier: Admin
      priority: 10
      subject: {TIER7_SUBJECT}
      ingress:
      - name: deny-a-80
        action: Deny
        from: [{{pods: {{namespaceSelector: {{}}, podSelector: {{matchLabels: {{app: a}}}}}}}}]
        protocols: [{{tcp: {{destinationPort: {{number: 80}}}}}}]
      - name: pass-x
        action: Pass
        from: [{{namespaces: {{matchLabels: {{team: x}}}}}}]
        protocols:
        - udp: {{destinationPort: {{range: {{start: 5000, end: 5010}}}}}}
        - destinationNamedPort: web
      - name: allow-y
        action: Accept
        from: [{{namespaces: {{matchLabels: {{team: y}}}}}}]
      egress:
      - name: deny-net
        action: Deny
        to: [{{networks: [203.0.113.0/24]}}]
        protocols: [{{tcp: {{destinationPort: {{number: 443}}}}}}]
    """

TIER7_BANP = """
    apiVersion: policy.networking.k8s.io/v1alpha1
    kind: BaselineAdminNetworkPolicy
    metadata: {name: default}
    spec:
      subject: {namespaces: {}}
      ingress:
      - name: allow-a
        action: Allow
        from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}]
        ports: [{portNumber: {protocol: UDP, port: 53}}, {portRange: {start: 80, end: 81}}]
      - name: deny-x
        action: Deny
        from: [{namespaces: {matchLabels: {team: x}}}]
      egress:
      - name: deny-nodes
        action: Deny
        to: [{nodes: {matchLabels: {role: db}}}, {networks: [198.51.100.0/24]}]
    """

TIER7_CNP_BASELINE = """
    apiVersion: policy.networking.k8s.io/v1beta1
    kind: ClusterNetworkPolicy
    metadata: {name: default}
    spec:
      tier: Baseline
      priority: 0
      subject: {namespaces: {}}
      ingress:
      - name: allow-a
        action: Accept
        from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}]
        protocols:
        - udp: {destinationPort: {number: 53}}
        - tcp: {destinationPort: {range: {start: 80, end: 81}}}
      - name: deny-x
        action: Deny
        from: [{namespaces: {matchLabels: {team: x}}}]
      egress:
      - name: deny-nodes
        action: Deny
        to: [{nodes: {matchLabels: {role: db}}}, {networks: [198.51.100.0/24]}]
    """


def tier7_pods() -> list[str]:
    return [namespace("x", team="x"), namespace("y", team="y"), node("db1", "10.0.0.50",
                                                                       role="db"),
            pod("x/a", ip="10.1.0.1"), pod("x/b", ip="10.1.0.2", ports=[("web", 8080, "TCP")]),
            pod("x/c", ip="10.1.0.3"), pod("y/a", ip="10.2.0.1"), pod("y/b", ip="10.2.0.2")]


@pytest.mark.parametrize(("old", "new"), [
    ("anp", "v1beta1"), ("anp", "v1alpha2"), ("banp", "baseline"),
])
def test_tier_7_v1alpha1_kinds_convert_to_the_cnp_model(
        tmp_path: Path, old: str, new: str) -> None:
    old_text = TIER7_ANP if old == "anp" else TIER7_BANP
    new_text = (TIER7_CNP.replace("VERSION", new) if new != "baseline" else TIER7_CNP_BASELINE)
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    w_old = world(tmp_path / "old", tier7_pods(), textwrap.dedent(old_text))
    w_new = world(tmp_path / "new", tier7_pods(), textwrap.dedent(new_text))
    p_old = next(p for p in w_old.state.policies if p.ref.name in ("t7", "default"))
    p_new = next(p for p in w_new.state.policies if p.ref.name in ("t7", "default"))
    assert p_old.tier is p_new.tier is (Tier.ADMIN if old == "anp" else Tier.BASELINE)
    if old == "anp":
        assert p_old.priority == p_new.priority == 10
    assert p_old.subject == p_new.subject
    assert rule_shape(p_old.ingress) == rule_shape(p_new.ingress)
    assert rule_shape(p_old.egress) == rule_shape(p_new.egress)
    assert map_signature(w_old) == map_signature(w_new)


def test_tier_7_converted_policies_evaluate_as_written(tmp_path: Path) -> None:
    w = world(tmp_path, tier7_pods(), textwrap.dedent(TIER7_ANP))
    assert not w.allowed("x/a", "x/b", 80)
    assert w.allowed("x/a", "x/b", 81)                   # no rule: default
    assert w.ingress("x/c", "x/b", 5005, UDP).tier is Tier.DEFAULT  # Pass, then nothing
    assert w.ingress("x/c", "x/b", 8080).tier is Tier.DEFAULT       # named port 'web'
    assert w.ingress("y/a", "x/b", 22).tier is Tier.ADMIN
    assert not w.allowed("x/b", "ip:203.0.113.5", 443)
    assert w.allowed("x/b", "ip:203.0.113.5", 443, UDP)


@pytest.mark.parametrize(("tier", "first"), [("Admin", "a-deny"), ("Baseline", "a-deny")])
def test_tier_8_equal_priorities_are_flagged_and_ordered_deterministically(
        tmp_path: Path, tier: str, first: str) -> None:
    w = world(tmp_path, base(), *[f"""
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {{name: {name}}}
        spec:
          tier: {tier}
          priority: 7
          subject: {{namespaces: {{}}}}
          ingress: [{{action: {action}, from: [{{namespaces: {{matchLabels: {{team: y}}}}}}]}}]
        """ for name, action in (("b-accept", "Accept"), ("a-deny", "Deny"))])
    dv = w.ingress("y/a", "x/b", 80)
    assert dv.ambiguous, "equal priorities must be warned about (D-5)"
    assert any("a-deny" in a and "b-accept" in a for a in dv.ambiguous)
    assert dv.policy is not None and dv.policy.ref.name == first
    assert not dv.allowed


# -- Explain -------------------------------------------------------------------------------------

def test_ex_1_admin_verdict_names_tier_policy_rule_peer_and_port(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: web-access}
        spec:
          tier: Admin
          priority: 10
          subject:
            pods:
              namespaceSelector: {matchLabels: {team: x}}
              podSelector: {matchLabels: {app: b}}
          ingress:
          - name: deny-ssh
            action: Deny
            from: [{namespaces: {}}]
            protocols: [{tcp: {destinationPort: {number: 22}}}]
          - name: accept-y-web
            action: Accept
            from: [{namespaces: {matchLabels: {team: q}}}, {namespaces: {matchLabels: {team: y}}}]
            protocols:
            - udp: {destinationPort: {number: 53}}
            - tcp: {destinationPort: {number: 443}}
        """)
    dv = w.ingress("y/a", "x/b", 443)
    assert dv.allowed
    assert dv.direction is Direction.INGRESS
    assert dv.tier is Tier.ADMIN and dv.tier.label() == "Admin"
    assert dv.policy is not None
    assert (dv.policy.ref.kind, dv.policy.ref.namespace, dv.policy.ref.name) == (
        "ClusterNetworkPolicy", "", "web-access")
    assert dv.rule is not None and dv.rule.index == 1 and dv.rule.name == "accept-y-web"
    text = text_of(dv)
    assert "ClusterNetworkPolicy web-access" in text
    assert "'accept-y-web'" in text
    assert "team=y" in text  # the peer that matched (the second one)
    assert "TCP 443" in text  # the port clause that matched
    assert w.cite("name: web-access") in text


def test_ex_1_networkpolicy_verdict_names_policy_rule_peer_and_port(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-in, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          policyTypes: [Ingress, Egress]
          ingress:
          - from: [{podSelector: {matchLabels: {app: c}}}]
          - from: [{podSelector: {matchLabels: {app: a}}}]
            ports: [{protocol: UDP, port: 53}, {port: 8443}]
          egress:
          - to: [{namespaceSelector: {matchLabels: {team: y}}}]
        """)
    dv = w.ingress("x/a", "x/b", 8443)
    assert dv.allowed and dv.direction is Direction.INGRESS
    assert dv.tier is Tier.NETWORK_POLICY
    assert dv.policy is not None
    assert (dv.policy.ref.kind, dv.policy.ref.namespace, dv.policy.ref.name) == (
        "NetworkPolicy", "x", "b-in")
    assert dv.rule is not None and dv.rule.index == 1
    text = text_of(dv)
    assert "NetworkPolicy x/b-in" in text and "ingress rule 1" in text
    assert "app=a" in text and "TCP 8443" in text
    assert w.cite("name: b-in") in text
    eg = w.egress("x/b", "y/a", 80)
    assert eg.allowed and eg.direction is Direction.EGRESS
    assert eg.rule is not None and eg.rule.index == 0
    assert "egress rule 0" in text_of(eg)


def test_ex_2_networkpolicy_denial_names_isolating_policies_and_nearest_miss(
        tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: from-a-tls, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: a}}}]
            ports: [{port: 443}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: from-c-http, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: c}}}]
            ports: [{port: 80}]
        """)
    dv = w.ingress("x/a", "x/b", 80)
    assert not dv.allowed and dv.tier is Tier.NETWORK_POLICY
    assert dv.policy is not None and dv.policy.ref.name in ("from-a-tls", "from-c-http")
    text = text_of(dv)
    assert "NetworkPolicy x/from-a-tls" in text and "NetworkPolicy x/from-c-http" in text
    assert "none of their rules" in text
    lines = dv.sentences
    tls = next(s for s in lines if "from-a-tls" in s and "rule 0" in s)
    http = next(s for s in lines if "from-c-http" in s and "rule 0" in s)
    assert "peer matches, the port does not" in tls
    assert "the peer does not match" in http
    assert w.cite("name: from-a-tls") in text
    assert w.cite("name: from-c-http") in text


def test_ex_2_policy_isolating_without_rules_is_named(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-egress, namespace: x}
        spec:
          podSelector: {}
          policyTypes: [Egress]
        """)
    dv = w.egress("x/a", "ip:1.1.1.1", 443)
    assert not dv.allowed and dv.tier is Tier.NETWORK_POLICY
    assert dv.policy is not None and dv.policy.ref.name == "deny-egress"
    assert "NetworkPolicy x/deny-egress" in text_of(dv)


EX3_CLUSTER = [
    namespace("x", team="x"), namespace("y", team="y"),
    node("n1", "192.168.0.11"), node("n2", "192.168.0.12"),
    pod("x/a", ip="10.1.0.1", node="n1", ports=[("web", 8080, "TCP")]),
    pod("x/b", ip="10.1.0.2", node="n2", ports=[("web", 9090, "TCP"), ("dns", 53, "UDP")]),
    pod("x/c", {"app": "c", "tier": "db"}, ip="10.1.0.3", node="n2"),
    pod("y/a", ip="10.2.0.1", node="n1"),
    pod("y/b", {"app": "b", "tier": "web"}, ip="10.2.0.2", node="n2",
        ports=[("web", 8080, "TCP")]),
    pod("y/d1", {"app": "d"}, ip="10.2.0.11", node="n1"),
    pod("y/d2", {"app": "d"}, ip="10.2.0.12", node="n2"),
    pod("x/h", {"app": "agent"}, ip="192.168.0.11", node="n1", host_network=True),
    """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: default-deny, namespace: x}
    spec:
      podSelector: {}
      policyTypes: [Ingress]
    """,
    """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: b-web, namespace: x}
    spec:
      podSelector: {matchLabels: {app: b}}
      ingress:
      - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}]
        ports: [{port: web}, {protocol: UDP, port: dns}]
      - from: [{ipBlock: {cidr: 10.2.0.0/16, except: [10.2.0.0/28]}}]
        ports: [{port: 80, endPort: 90}]
    """,
    """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: d-out, namespace: y}
    spec:
      podSelector: {matchLabels: {app: d}}
      egress:
      - to: [{namespaceSelector: {matchLabels: {team: x}}}]
        ports: [{port: web}, {port: 80}]
    """,
    """
    apiVersion: policy.networking.k8s.io/v1beta1
    kind: ClusterNetworkPolicy
    metadata: {name: admin}
    spec:
      tier: Admin
      priority: 5
      subject: {namespaces: {matchLabels: {team: x}}}
      ingress:
      - name: pass-y
        action: Pass
        from: [{namespaces: {matchLabels: {team: y}}}]
        protocols: [{tcp: {destinationPort: {number: 85}}}]
      - name: deny-d
        action: Deny
        from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: d}}}}]
      - name: accept-db
        action: Accept
        from: [{namespaces: {}}]
        protocols: [{tcp: {destinationPort: {range: {start: 5432, end: 5433}}}}]
    """,
    """
    apiVersion: policy.networking.k8s.io/v1beta1
    kind: ClusterNetworkPolicy
    metadata: {name: baseline}
    spec:
      tier: Baseline
      priority: 5
      subject: {namespaces: {matchLabels: {team: y}}}
      ingress:
      - name: deny-x-web
        action: Deny
        from: [{namespaces: {matchLabels: {team: x}}}]
        protocols: [{destinationNamedPort: web}]
      egress:
      - name: deny-db
        action: Deny
        to:
        - pods:
            namespaceSelector: {}
            podSelector: {matchExpressions: [{key: tier, operator: In, values: [db]}]}
    """,
]

EX3_PORTS = [(TCP, 80), (TCP, 85), (TCP, 91), (TCP, 5432), (TCP, 8080), (TCP, 9090),
             (UDP, 53), (SCTP, 80)]


def test_ex_3_explain_verdict_equals_map_for_every_sampled_flow(tmp_path: Path) -> None:
    w = world(tmp_path, EX3_CLUSTER)
    rows: dict[tuple[str, str], PortSet] = {
        (r.src, r.dst): w.an.universe.portset(r.ports) for r in w.rows("pod")}
    pods = list(w.state.pods)
    assert len(pods) == 8
    checked = 0
    mismatches: list[str] = []
    for s, d in itertools.permutations(pods, 2):
        for proto, port in EX3_PORTS:
            verdict = w.an.query.flow(s, d, proto, port).allowed
            ps = rows.get((s.key, d.key))
            in_map = ps is not None and ps.contains(proto, port)
            checked += 1
            if verdict != in_map:
                mismatches.append(f"{s.key} -> {d.key} {proto}/{port}: explain={verdict} "
                                  f"map={in_map}")
    assert checked == 8 * 7 * len(EX3_PORTS)
    assert mismatches == []


def test_ex_3_explain_verdict_equals_map_for_external_addresses(tmp_path: Path) -> None:
    w = world(tmp_path, EX3_CLUSTER)
    rows = w.rows("pod")
    pods = list(w.state.pods)

    def in_map(src: str | None, dst: str | None, addr: str, proto: Protocol,
               port: int) -> bool:
        ip = ipaddress.ip_address(addr)
        for r in rows:
            ext = r.src if dst is not None else r.dst
            if (dst is not None and r.dst != dst) or (src is not None and r.src != src):
                continue
            if not w.an.universe.portset(r.ports).contains(proto, port):
                continue
            if ext_contains(ext, ip):
                return True
        return False

    mismatches: list[str] = []
    for addr in ("10.2.0.5", "10.2.0.200", "203.0.113.1", "2001:db8::1"):
        ext = External(addr)
        for p in pods:
            for proto, port in EX3_PORTS:
                got_in = w.an.query.flow(ext, p, proto, port).allowed
                if got_in != in_map(None, p.key, addr, proto, port):
                    mismatches.append(f"ip:{addr} -> {p.key} {proto}/{port}")
                got_out = w.an.query.flow(p, ext, proto, port).allowed
                if got_out != in_map(p.key, None, addr, proto, port):
                    mismatches.append(f"{p.key} -> ip:{addr} {proto}/{port}")
    assert mismatches == []


IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def ext_parts(text: str) -> list[tuple[IPNet, list[IPNet]]] | None:
    """Parse a map endpoint made of CIDRs ('A,B' or 'WHOLE except C,D'); None for pods."""
    out: list[tuple[IPNet, list[IPNet]]] = []
    for item in text.split(","):
        head, sep, exc = item.partition(" except ")
        try:
            net = ipaddress.ip_network(head)
        except ValueError:
            return None
        if sep:
            out.append((net, [ipaddress.ip_network(exc)]))
        elif out and out[-1][1] and out[-1][0].version == net.version:
            out[-1][1].append(net)
        else:
            out.append((net, []))
    return out


def ext_contains(text: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a map endpoint text covers the address ``ip``."""
    parts = ext_parts(text)
    if parts is None:
        return False
    return any(net.version == ip.version and ip in net
               and not any(ip in e for e in excs) for net, excs in parts)


# A small, independent reference model of NetworkPolicy semantics (iso, sel, port, ip items)
# for a property test: random policies over a fixed cluster, compared with explain and map.

REF_NS: dict[str, dict[str, str]] = {"x": {"team": "x"}, "y": {"team": "y"}, "z": {}}


@dataclass(frozen=True)
class RefPod:
    key: str
    labels: Mapping[str, str]
    ip: str
    ports: tuple[PortSpec, ...]

    @property
    def ns(self) -> str:
        return self.key.split("/")[0]


REF_PODS = (
    RefPod("x/a", {"app": "a", "tier": "web"}, "10.0.1.1", (("web", 8080, "TCP"),
                                                           ("dns", 53, "UDP"))),
    RefPod("x/b", {"app": "b"}, "10.0.1.2", (("web", 9090, "TCP"),)),
    RefPod("y/a", {"app": "a"}, "10.0.2.1", (("web", 8080, "UDP"),)),
    RefPod("y/c", {"app": "c", "tier": "db"}, "10.0.2.3", ()),
    RefPod("z/d", {"app": "d"}, "fd00::4", (("web", 8500, None),)),
)
REF_EXTERNAL = ("10.0.1.200", "192.0.2.1", "2001:db8::1")
REF_PORTS = ((TCP, 80), (TCP, 8080), (TCP, 8500), (TCP, 9090), (UDP, 53), (UDP, 8080),
             (SCTP, 80), (TCP, 22))
REF_SELECTORS: tuple[dict[str, Any], ...] = (
    {}, {"matchLabels": {"app": "a"}},
    {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
    {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]},
    {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]},
)
REF_PEERS: tuple[dict[str, Any], ...] = (
    {"podSelector": {"matchLabels": {"app": "a"}}},
    {"podSelector": {}},
    {"namespaceSelector": {"matchLabels": {"team": "y"}}},
    {"namespaceSelector": {}},
    {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}},
    {"namespaceSelector": {}, "podSelector": {"matchExpressions": [
        {"key": "tier", "operator": "Exists"}]}},
    {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.2.0/24"]}},
    {"ipBlock": {"cidr": "0.0.0.0/0"}},
    {"ipBlock": {"cidr": "fd00::/8"}},
)
REF_PORT_ENTRIES: tuple[dict[str, Any], ...] = (
    {"port": 80}, {"port": 8080}, {"port": "web"}, {"port": "dns", "protocol": "UDP"},
    {"protocol": "UDP"}, {"port": 8000, "endPort": 9000}, {"port": "web", "protocol": "UDP"},
)


def ref_selects(sel: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in sel.get("matchLabels", {}).items()):
        return False
    for e in sel.get("matchExpressions", []):
        key, op, vals = e["key"], e["operator"], e.get("values", [])
        ok = {"In": key in labels and labels[key] in vals,
              "NotIn": key not in labels or labels[key] not in vals,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


RefPoint = RefPod | str  # a pod, or an external address


def ref_peer(peer: Mapping[str, Any], policy_ns: str, ep: RefPoint) -> bool:
    if "ipBlock" in peer:
        addr = ipaddress.ip_address(ep.ip if isinstance(ep, RefPod) else ep)
        net = ipaddress.ip_network(peer["ipBlock"]["cidr"])
        if addr.version != net.version or addr not in net:
            return False
        return not any(addr in ipaddress.ip_network(e) for e in peer["ipBlock"].get(
            "except", []) if ipaddress.ip_network(e).version == addr.version)
    if not isinstance(ep, RefPod):
        return False
    if "namespaceSelector" in peer:
        if not ref_selects(peer["namespaceSelector"], {**REF_NS[ep.ns],
                                                       "kubernetes.io/metadata.name": ep.ns}):
            return False
    elif ep.ns != policy_ns:
        return False
    return "podSelector" not in peer or ref_selects(peer["podSelector"], ep.labels)


def ref_port(entry: Mapping[str, Any], dst: RefPoint, proto: Protocol, port: int) -> bool:
    if Protocol(entry.get("protocol", "TCP")) is not proto:
        return False
    want = entry.get("port")
    if want is None:
        return True
    if isinstance(want, int):
        end: int = entry.get("endPort", want)
        return want <= port <= end
    return isinstance(dst, RefPod) and any(
        name == want and Protocol(p or "TCP") is proto and number == port
        for name, number, p in dst.ports)


def ref_types(spec: Mapping[str, Any]) -> set[str]:
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if spec.get("egress") else set())


def ref_direction(policies: Sequence[Mapping[str, Any]], subject: RefPod, direction: str,
                  peer: RefPoint, dst: RefPoint, proto: Protocol, port: int) -> bool:
    key, peer_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [p for p in policies if p["metadata"]["namespace"] == subject.ns
                 and ref_selects(p["spec"]["podSelector"], subject.labels)
                 and direction in ref_types(p["spec"])]
    if not selecting:
        return True
    for pol in selecting:
        for rule in pol["spec"].get(key) or []:
            peers = rule.get(peer_key) or []
            ports = rule.get("ports") or []
            if peers and not any(ref_peer(x, pol["metadata"]["namespace"], peer)
                                 for x in peers):
                continue
            if ports and not any(ref_port(x, dst, proto, port) for x in ports):
                continue
            return True
    return False


def ref_flow(policies: Sequence[Mapping[str, Any]], src: RefPoint, dst: RefPoint,
             proto: Protocol, port: int) -> bool:
    if isinstance(src, RefPod) and isinstance(dst, RefPod) and src.key == dst.key:
        return True
    eg = not isinstance(src, RefPod) or ref_direction(policies, src, "Egress", dst, dst,
                                                       proto, port)
    ing = not isinstance(dst, RefPod) or ref_direction(policies, dst, "Ingress", src, dst,
                                                        proto, port)
    return eg and ing


def _ref_rules(draw: Any, peer_key: str) -> list[dict[str, Any]]:
    from hypothesis import strategies as st
    rules: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 2))):
        rule: dict[str, Any] = {}
        peers = draw(st.one_of(st.none(), st.lists(st.sampled_from(REF_PEERS), max_size=2)))
        if peers is not None:
            rule[peer_key] = peers
        ports = draw(st.one_of(st.none(), st.lists(st.sampled_from(REF_PORT_ENTRIES),
                                                   min_size=1, max_size=2)))
        if ports is not None:
            rule["ports"] = ports
        rules.append(rule)
    return rules


def _ref_policy(draw: Any, i: int) -> dict[str, Any]:
    from hypothesis import strategies as st
    spec: dict[str, Any] = {"podSelector": draw(st.sampled_from(REF_SELECTORS))}
    types = draw(st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    if types is not None:
        spec["policyTypes"] = types
    for key, peer_key in (("ingress", "from"), ("egress", "to")):
        if draw(st.booleans()):
            spec[key] = _ref_rules(draw, peer_key)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"p{i}", "namespace": draw(st.sampled_from(sorted(REF_NS)))},
            "spec": spec}


def test_ex_3_property_random_networkpolicies_agree_with_reference_and_map() -> None:
    import tempfile

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @st.composite
    def policy_sets(draw: Any) -> list[dict[str, Any]]:
        return [_ref_policy(draw, i) for i in range(draw(st.integers(1, 4)))]

    cluster_docs = [namespace(n, **labels) for n, labels in REF_NS.items()] + [
        pod(p.key, p.labels, ports=p.ports, ip=p.ip) for p in REF_PODS]

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(policy_sets())
    def check(policies: list[dict[str, Any]]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            w = world(Path(tmp), cluster_docs, *[_dump(p) for p in policies])
            rows = {(r.src, r.dst): w.an.universe.portset(r.ports) for r in w.rows("pod")}
            refs: dict[str, RefPoint] = {p.key: p for p in REF_PODS}
            refs.update({f"ip:{a}": a for a in REF_EXTERNAL})
            bad: list[str] = []
            for s_name, d_name in itertools.permutations(refs, 2):
                s_ref, d_ref = refs[s_name], refs[d_name]
                if isinstance(s_ref, str) and isinstance(d_ref, str):
                    continue
                for proto, port in REF_PORTS:
                    want = ref_flow(policies, s_ref, d_ref, proto, port)
                    got = w.allowed(s_name, d_name, port, proto)
                    if got != want:
                        bad.append(f"{s_name} -> {d_name} {proto}/{port}: reference={want} "
                                   f"netfence={got}")
                    if isinstance(s_ref, RefPod) and isinstance(d_ref, RefPod):
                        ps = rows.get((s_name, d_name))
                        in_map = ps is not None and ps.contains(proto, port)
                        if in_map != got:
                            bad.append(f"{s_name} -> {d_name} {proto}/{port}: explain={got} "
                                       f"map={in_map}")
            assert bad == [], yaml.safe_dump_all(policies) + "\n".join(bad[:10])

    check()


def test_ex_4_explanations_are_deterministic_sentences_citing_file_line(
        tmp_path: Path) -> None:
    w = world(tmp_path, EX3_CLUSTER)
    again = world(tmp_path, EX3_CLUSTER, name="cluster.yaml")
    flows = [("x/c", "x/b", 8080), ("x/a", "x/b", 9090), ("y/d1", "x/a", 80),
             ("x/a", "y/b", 8080), ("y/a", "x/b", 85)]
    for src, dst, port in flows:
        one = w.flow(src, dst, port).sentences()
        two = again.flow(src, dst, port).sentences()
        assert one == two
        assert one == w.flow(src, dst, port).sentences()
        for s in one:
            assert s.strip()
    deciders = {
        ("x/a", "x/b", 9090): "name: b-web",          # allowed by the named port
        ("y/d1", "x/a", 80): "name: admin",           # Admin Deny
        ("x/a", "y/b", 8080): "name: baseline",       # Baseline Deny
    }
    for (src, dst, port), needle in deciders.items():
        dv = w.ingress(src, dst, port)
        assert dv.policy is not None
        assert dv.policy.source.file == str(w.path)
        assert dv.policy.source.line == w.object_line(needle)
        assert w.cite(needle) in text_of(dv), (src, dst, text_of(dv))
    # a NetworkPolicy denial cites every isolating policy
    denied = text_of(w.ingress("x/c", "x/b", 8080))
    assert w.cite("name: default-deny") in denied
    assert w.cite("name: b-web") in denied


def test_ex_4_cli_explain_is_deterministic_and_cites_file_line(
        tmp_path: Path, netfence: Netfence) -> None:
    w = world(tmp_path, EX3_CLUSTER)
    runs = [netfence("explain", "-f", str(w.path), "y/d1", "x/a", "--port", "80")
            for _ in range(2)]
    assert runs[0].code == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert w.cite("name: admin") in runs[0].stdout
    assert "DENIED" in runs[0].stdout


# -- Traps other tools fell into -----------------------------------------------------------------

def test_trap_same_named_policies_across_namespaces_linked_to_own_pods(
        tmp_path: Path) -> None:
    text = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: default-deny, namespace: x}  # trap-x
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Ingress]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: default-deny, namespace: y}  # trap-y
        spec:
          podSelector: {matchLabels: {app: b}}
          policyTypes: [Ingress]
        """
    w = world(tmp_path, base(), text)
    assert not w.allowed("x/c", "x/a", 80)
    assert w.allowed("x/c", "x/b", 80)   # y's default-deny selects app=b in y only
    assert w.allowed("x/c", "y/a", 80)   # x's default-deny selects app=a in x only
    assert not w.allowed("x/c", "y/b", 80)
    dx = w.ingress("x/c", "x/a", 80)
    dy = w.ingress("x/c", "y/b", 80)
    assert dx.policy is not None and dy.policy is not None
    assert dx.policy.ref.namespace == "x" and dy.policy.ref.namespace == "y"
    assert w.cite("# trap-x") in text_of(dx) and w.cite("# trap-y") not in text_of(dx)
    assert w.cite("# trap-y") in text_of(dy) and w.cite("# trap-x") not in text_of(dy)


def test_trap_and_peer_keeps_its_namespace_half_and_podselector_stays_local(
        tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: and-peer, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from:
            - namespaceSelector: {matchLabels: {team: y}}
              podSelector: {matchLabels: {app: a}}
            ports: [{port: 80}]
          - from:
            - podSelector: {matchLabels: {app: c}}
            ports: [{port: 443}]
        """)
    # dropping the namespaceSelector half would let x/a in
    assert not w.allowed("x/a", "x/b", 80)
    assert w.allowed("y/a", "x/b", 80)
    # podSelector alone must not match pods of another namespace
    assert w.allowed("x/c", "x/b", 443)
    (tmp_path / "local").mkdir()
    w2 = world(tmp_path / "local", namespace("x"), namespace("y"), pod("x/b"), pod("x/c"),
               pod("y/c", {"app": "c"}), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: local, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{podSelector: {matchLabels: {app: c}}}]
        """)
    assert w2.allowed("x/c", "x/b", 80)
    assert not w2.allowed("y/c", "x/b", 80)


def test_trap_match_expressions_are_not_ignored(tmp_path: Path) -> None:
    w = world(tmp_path, namespace("x"), pod("x/t", {"role": "t"}),
              pod("x/p", {"env": "prod"}), pod("x/s", {"env": "staging"}),
              pod("x/n", {"other": "1"}), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: exprs, namespace: x}
        spec:
          podSelector:
            matchLabels: {role: t}
            matchExpressions: [{key: role, operator: Exists}]
          ingress:
          - from:
            - podSelector:
                matchExpressions: [{key: env, operator: NotIn, values: [staging]}]
        """)
    assert w.allowed("x/p", "x/t", 80)
    assert w.allowed("x/n", "x/t", 80)      # label-less: NotIn matches
    assert not w.allowed("x/s", "x/t", 80)  # ignoring the expression would allow this


def test_trap_named_ports_are_resolved_with_protocol_not_compared_as_strings(
        tmp_path: Path) -> None:
    w = world(tmp_path, namespace("x"), pod("x/a"),
              pod("x/b", ports=[("http", 8080, "TCP"), ("metrics", 9090, "UDP")]), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: named, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - ports: [{port: http}, {port: metrics, protocol: TCP}]
        """)
    assert w.allowed("x/a", "x/b", 8080, TCP)
    assert not w.allowed("x/a", "x/b", 8080, UDP)
    assert not w.allowed("x/a", "x/b", 9090, UDP)  # name matches, protocol does not
    assert not w.allowed("x/a", "x/b", 9090, TCP)
    assert not w.allowed("x/a", "x/b", 80, TCP)
    ps = w.row_ports("x/a", "x/b")
    assert ps is not None and str(ps) == "TCP 8080"


def test_trap_quoted_number_port_is_a_name_and_rejected(tmp_path: Path) -> None:
    w = world(tmp_path, namespace("x"), pod("x/a"), pod("x/b", ports=[(None, 8080, "TCP")]), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: quoted, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - ports: [{port: "8080"}]  # the-port
        """, valid=False)
    errs = errors(w.state)
    assert len(errs) == 1 and errs[0].source.line == w.line("# the-port")
    assert w.state.policies == ()


def test_trap_egress_empty_without_policytypes_is_not_egress_isolation(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: trap, namespace: x}
        spec:
          podSelector: {}
          ingress:
          - from: [{podSelector: {}}]
          egress: []
        """)
    for dst in ("x/b", "y/a", "ip:8.8.8.8"):
        assert w.allowed("x/a", dst, 53, UDP), dst
    assert not w.allowed("y/a", "x/a", 80)
    assert w.allowed("x/c", "x/a", 80)


def test_trap_except_is_not_a_deny_outside_its_peer(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: ext, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Egress]
          egress:
          - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.96.0.0/12]}}]
            ports: [{port: 443}]
          - to: [{ipBlock: {cidr: 10.96.0.10/32}}]
            ports: [{protocol: UDP, port: 53}]
          - to: [{namespaceSelector: {}}]
        """)
    assert w.allowed("x/a", "ip:10.1.2.3", 443)
    assert not w.allowed("x/a", "ip:10.96.0.10", 443)
    assert w.allowed("x/a", "ip:10.96.0.10", 53, UDP)  # another rule covers it
    assert w.allowed("x/a", "y/b", 443)               # the except says nothing about pods here


def test_trap_unknown_kinds_are_warned_and_known_cluster_kinds_are_modelled(
        tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: AdminNetworkPolicy
        metadata: {name: deny-y}
        spec:
          priority: 1
          subject: {namespaces: {matchLabels: {team: x}}}
          ingress: [{action: Deny, from: [{namespaces: {matchLabels: {team: y}}}]}]
        ---
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: BaselineAdminNetworkPolicy
        metadata: {name: default}
        spec:
          subject: {namespaces: {matchLabels: {team: y}}}
          ingress: [{action: Deny, from: [{namespaces: {matchLabels: {team: x}}}]}]
        ---
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {name: cnp, namespace: x}
        spec:
          endpointSelector: {matchLabels: {app: a}}
          ingress: [{fromEndpoints: [{matchLabels: {app: b}}]}]
        ---
        apiVersion: projectcalico.org/v3
        kind: NetworkPolicy
        metadata: {name: calico, namespace: x}
        spec:
          selector: app == 'a'
          types: [Ingress]
        """)
    assert not w.allowed("y/a", "x/a", 80)  # ANP modelled
    assert not w.allowed("x/a", "y/a", 80)  # BANP modelled
    assert w.allowed("x/b", "x/a", 80)
    unmodelled = {(u.ref.kind, u.api_version) for u in w.state.unmodelled}
    assert unmodelled == {("CiliumNetworkPolicy", "cilium.io/v2"),
                          ("NetworkPolicy", "projectcalico.org/v3")}
    codes = [(d.code, d.source.obj.kind if d.source.obj else "") for d in warnings(w.state)]
    assert ("unmodelled", "CiliumNetworkPolicy") in codes
    assert ("unmodelled", "NetworkPolicy") in codes


def allow_b_from_a(rules: int) -> str:
    """x/b accepts x/a through ``rules`` identical ingress rules (0: isolated, no rules)."""
    body = "  ingress:\n" + "  - from: [{podSelector: {matchLabels: {app: a}}}]\n" * rules \
        if rules else "  policyTypes: [Ingress]\n"
    return ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            "metadata: {name: allow, namespace: x}\n"
            "spec:\n  podSelector: {matchLabels: {app: b}}\n" + body)


DEFAULT_DENY_X = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: default-deny, namespace: x}
    spec:
      podSelector: {}
      policyTypes: [Ingress]
    """


def test_trap_redundancy_default_deny_and_mutually_redundant_rules_are_load_bearing(
        tmp_path: Path) -> None:
    variants = {"both": (allow_b_from_a(2), DEFAULT_DENY_X), "no-deny": (allow_b_from_a(2),),
                "one-rule": (allow_b_from_a(1), DEFAULT_DENY_X),
                "no-rules": (allow_b_from_a(0), DEFAULT_DENY_X)}
    maps = {}
    for label, docs in variants.items():
        (tmp_path / label).mkdir()
        maps[label] = map_signature(world(tmp_path / label, base(), *docs))
    # the default-deny isolates x/a and x/c, which the allow policy does not select
    assert maps["both"] != maps["no-deny"]
    # each of the two identical rules is redundant given the other...
    assert maps["both"] == maps["one-rule"]
    # ...but not both at once
    assert maps["both"] != maps["no-rules"]
    assert ("x/a", "x/b") in {(a, b) for a, b, _p, _d in maps["both"]}
    assert ("x/a", "x/b") not in {(a, b) for a, b, _p, _d in maps["no-rules"]}


def test_trap_audit_mode_never_changes_isolation(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: audit-only
          namespace: x
          annotations: {netfence.dev/mode: audit}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Ingress]
        ---
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata:
          name: audit-admin
          annotations: {netfence.dev/mode: audit}
        spec:
          tier: Admin
          priority: 1
          subject: {namespaces: {matchLabels: {team: y}}}
          ingress: [{action: Deny, from: [{namespaces: {matchLabels: {team: x}}}]}]
        """)
    # neither the audit NetworkPolicy's isolation nor the audit Admin Deny takes effect
    assert w.allowed("x/b", "x/a", 80)
    assert w.allowed("x/b", "y/a", 80)
    assert w.allowed("x/b", "x/c", 80)


def test_trap_dns_egress_to_labels_coredns_lacks_is_denied(tmp_path: Path) -> None:
    coredns = _dump({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "coredns-1", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns"}},
        "spec": {"containers": [{"name": "coredns", "image": "coredns:1", "ports": [
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}]}]}})
    policy = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: dns, namespace: x}
        spec:
          podSelector: {}
          policyTypes: [Egress]
          egress:
          - to:
            - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
              podSelector: {matchLabels: {LABEL}}
            ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
        """
    (tmp_path / "wrong").mkdir()
    (tmp_path / "right").mkdir()
    wrong = world(tmp_path / "wrong", base(), namespace("kube-system"), coredns,
                  policy.replace("LABEL", "app: coredns"))
    right = world(tmp_path / "right", base(), namespace("kube-system"), coredns,
                  policy.replace("LABEL", "k8s-app: kube-dns"))
    assert not wrong.allowed("x/a", "kube-system/coredns-1", 53, UDP)
    assert not wrong.egress("x/a", "kube-system/coredns-1", 53, UDP).allowed
    assert right.allowed("x/a", "kube-system/coredns-1", 53, UDP)
    assert right.allowed("x/a", "kube-system/coredns-1", 53, TCP)


# -- Decisions -----------------------------------------------------------------------------------

def d1_docs(policy_port: str) -> list[str]:
    return [namespace("x"), pod("x/a", ip="10.1.0.1"),
            pod("x/b", ip="10.1.0.2", ports=[("http", 8080, "TCP")]),
            """
            apiVersion: v1
            kind: Service
            metadata: {name: b-svc, namespace: x}
            spec:
              selector: {app: b}
              ports: [{port: 80, targetPort: http}]
            """,
            """
            apiVersion: v1
            kind: Service
            metadata: {name: b-svc-2, namespace: x}
            spec:
              selector: {app: b}
              ports: [{port: 81, targetPort: 8080}]
            """,
            f"""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {{name: b-in, namespace: x}}
            spec:
              podSelector: {{matchLabels: {{app: b}}}}
              ingress:
              - ports: [{{port: {policy_port}}}]
            """]


def test_d_1_policy_is_judged_on_backend_pod_and_target_port(tmp_path: Path) -> None:
    w = world(tmp_path, d1_docs("8080"))
    assert len(w.state.services) == 2
    assert w.allowed("x/a", "x/b", 8080)   # the targetPort on the backend pod
    ps = w.row_ports("x/a", "x/b")
    assert ps is not None and str(ps) == "TCP 8080"
    endpoints = {r.src for r in w.rows()} | {r.dst for r in w.rows()}
    assert not any("svc" in e for e in endpoints)
    for by in ("workload", "namespace"):
        assert not any("svc" in r.src or "svc" in r.dst for r in w.rows(by))


def test_d_1_service_port_does_not_open_the_target_port(tmp_path: Path) -> None:
    w = world(tmp_path, d1_docs("80"))
    # the policy names the Service port 80, but after DNAT the packet arrives on 8080
    assert not w.allowed("x/a", "x/b", 8080)
    ps = w.row_ports("x/a", "x/b")
    assert ps is not None and str(ps) == "TCP 80"


def test_d_1_service_count_never_enters_the_model(tmp_path: Path) -> None:
    with_svc = world(tmp_path, d1_docs("http"))
    (tmp_path / "nosvc").mkdir()
    docs = [d for d in d1_docs("http") if "kind: Service" not in d]
    without = world(tmp_path / "nosvc", docs)
    assert map_signature(with_svc) == map_signature(without)
    assert with_svc.allowed("x/a", "x/b", 8080)


def test_d_2_external_sources_are_evaluated_per_address_atom(tmp_path: Path) -> None:
    w = world(tmp_path, namespace("x"), pod("x/b", ports=[("http", 8080, "TCP")]), """
        apiVersion: v1
        kind: Service
        metadata: {name: lb, namespace: x}
        spec:
          type: LoadBalancer
          externalTrafficPolicy: Local
          selector: {app: b}
          ports: [{port: 443, targetPort: http}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-in, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.128/25]}}]
            ports: [{port: http}]
        """)
    assert w.allowed("ip:203.0.113.5", "x/b", 8080)
    assert not w.allowed("ip:203.0.113.200", "x/b", 8080)
    assert not w.allowed("ip:198.51.100.1", "x/b", 8080)
    sources = [r.src for r in w.rows() if r.dst == "x/b"]
    assert sources == ["203.0.113.0/25"]


def test_d_2_external_traffic_policy_cluster_warns_about_snat(tmp_path: Path) -> None:
    w = world(tmp_path, namespace("x"), pod("x/b", ports=[("http", 8080, "TCP")]), """
        apiVersion: v1
        kind: Service
        metadata: {name: lb, namespace: x}
        spec:
          type: LoadBalancer
          externalTrafficPolicy: Cluster
          selector: {app: b}
          ports: [{port: 443, targetPort: http}]
        """)
    snat = [d for d in warnings(w.state) if "SNAT" in d.message or "snat" in d.message.lower()]
    assert snat, [d.line() for d in w.state.diagnostics]
    assert snat[0].source.obj is not None and snat[0].source.obj.name == "lb"


def test_d_3_hostnetwork_peers_are_matched_only_by_ipblock_networks_or_nodes(
        tmp_path: Path) -> None:
    w = world(tmp_path, hostnet_cluster(), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-in, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{namespaceSelector: {}, podSelector: {}}]
          - from: [{ipBlock: {cidr: 192.168.0.0/24}}]
            ports: [{port: 10250}]
        ---
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: c-out}
        spec:
          tier: Admin
          priority: 1
          subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: c}}}}
          egress:
          - name: pods
            action: Deny
            to: [{namespaces: {}}]
            protocols: [{tcp: {destinationPort: {number: 80}}}]
          - name: nodes
            action: Deny
            to: [{nodes: {}}]
            protocols: [{tcp: {destinationPort: {number: 81}}}]
          - name: nets
            action: Deny
            to: [{networks: [192.168.0.0/24]}]
            protocols: [{tcp: {destinationPort: {number: 82}}}]
        """)
    assert not w.allowed("x/h", "x/b", 80)     # selectors do not match the hostNetwork pod
    assert w.allowed("x/h", "x/b", 10250)      # the ipBlock of the node address does
    assert w.allowed("ip:192.168.0.11", "x/b", 10250)
    assert not w.allowed("ip:192.168.0.11", "x/b", 80)
    assert w.allowed("x/c", "x/h", 80)         # CNP namespaces peer does not match it
    assert not w.allowed("x/c", "x/a", 80)
    assert not w.allowed("x/c", "x/h", 81)     # CNP nodes peer does
    assert not w.allowed("x/c", "ip:192.168.0.11", 81)
    assert not w.allowed("x/c", "x/h", 82)     # CNP networks peer does
    assert w.allowed("x/c", "x/a", 81)         # nodes do not match ordinary pods


@pytest.mark.parametrize(("kind", "replicas"), [
    ("Deployment", 3), ("StatefulSet", 2), ("DaemonSet", None), ("Job", None),
    ("CronJob", None),
])
def test_d_4_manifest_only_workloads_yield_representative_pods(
        tmp_path: Path, kind: str, replicas: int | None) -> None:
    template = {"metadata": {"labels": {"app": "w", "tier": "api"}},
                "spec": {"containers": [{"name": "m", "image": "i", "ports": [
                    {"name": "http", "containerPort": 8080}]}]}}
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "w"}}, "template": template}
    if replicas is not None:
        spec["replicas"] = replicas
    group = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    if kind == "Job":
        spec = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}
    workload = _dump({"apiVersion": group, "kind": kind,
                      "metadata": {"name": "w", "namespace": "x"}, "spec": spec})
    w = world(tmp_path, namespace("x"), pod("x/b"), workload, """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-in, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{ipBlock: {cidr: 0.0.0.0/0}}]
          - from: [{podSelector: {matchLabels: {tier: api}}}]
            ports: [{port: 443}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: w-in, namespace: x}
        spec:
          podSelector: {matchLabels: {app: w}}
          ingress:
          - ports: [{port: http}]
        """)
    reps = [p for p in w.state.pods if p.synthetic]
    assert len(reps) == (replicas or 1)
    for rep in reps:
        assert rep.namespace == "x"
        assert dict(rep.labels) == {"app": "w", "tier": "api"}
        assert rep.ips == ()
        assert [(cp.name, cp.port, cp.protocol) for cp in rep.ports] == [("http", 8080, TCP)]
        assert rep.workload.kind == kind and rep.workload.name == "w"
    got = api.resolve(w.state, "x/w")
    assert {p.key for p in got if isinstance(p, Pod)} == {p.key for p in reps}
    src = reps[0]
    b = w.point("x/b")
    # ipBlock 0.0.0.0/0 does not match a pod without an IP; the label rule does
    assert not w.an.query.flow(src, b, TCP, 80).allowed
    assert w.an.query.flow(src, b, TCP, 443).allowed
    assert w.allowed("ip:198.51.100.1", "x/b", 80)
    # template ports are the representative's ports
    assert w.an.query.flow(b, src, TCP, 8080).allowed
    assert not w.an.query.flow(b, src, TCP, 8081).allowed


D4_INPUT = """
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: x}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: i}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-pods, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.9.0/24]}}]
  - from: [{ipBlock: {cidr: 192.168.0.0/16}}]
"""
D4_NODE = """
---
apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {podCIDR: 10.244.3.0/24}
"""


def _d4_warnings(state: ClusterState) -> list[str]:
    return [d.message for d in state.diagnostics if d.code == "ipblock-pod-cidr"]


def test_d_4_warns_about_ipblocks_overlapping_the_configured_pod_cidrs(tmp_path: Path) -> None:
    """D-4: without pod IPs an ipBlock over the pod network matches no pod; say so."""
    (tmp_path / "in.yaml").write_text(D4_INPUT, encoding="utf-8")
    state = api.load([str(tmp_path)], pod_cidrs=["10.244.0.0/16"])
    got = _d4_warnings(state)
    assert len(got) == 1 and "ipBlock 10.244.0.0/16 except 10.244.9.0/24 overlaps" in got[0]
    assert "D-4" in got[0]  # 192.168.0.0/16 is outside the pod network: no warning
    assert _d4_warnings(api.load([str(tmp_path)])) == []  # nothing configured: nothing said
    run = run_netfence("map", "-f", str(tmp_path), "--pod-cidr", "10.244.0.0/16")
    assert run.code == 0 and "overlaps the pod network (10.244.0.0/16)" in run.stderr
    bad = run_netfence("map", "-f", str(tmp_path), "--pod-cidr", "10.244.0.0/33")
    assert bad.code == 2 and "not a CIDR" in bad.stderr


def test_d_4_node_pod_cidrs_count_and_pods_with_ips_need_no_warning(tmp_path: Path) -> None:
    (tmp_path / "in.yaml").write_text(D4_INPUT + D4_NODE, encoding="utf-8")
    got = _d4_warnings(api.load([str(tmp_path)]))
    assert len(got) == 1 and "(10.244.3.0/24)" in got[0]
    live = tmp_path / "live"
    live.mkdir()
    (live / "in.yaml").write_text(D4_INPUT.replace(
        "kind: Deployment\nmetadata: {name: web, namespace: x}\nspec:\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n"
        "    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: i}]}",
        "kind: Pod\nmetadata: {name: web, namespace: x, labels: {app: web}}\n"
        "spec: {containers: [{name: c, image: i}]}\nstatus: {podIP: 10.244.3.7}").replace(
        "apiVersion: apps/v1", "apiVersion: v1") + D4_NODE, encoding="utf-8")
    state = api.load([str(live)])
    assert [p.ips for p in state.pods] == [("10.244.3.7",)]
    assert _d4_warnings(state) == []  # pod IPs known: ipBlocks match pods (ip-1)


def test_d_5_equal_priorities_warn_and_order_by_kind_then_name(tmp_path: Path) -> None:
    # AdminNetworkPolicy sorts before ClusterNetworkPolicy; within a kind, by name.
    w = world(tmp_path, base(), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: aa-accept}
        spec:
          tier: Admin
          priority: 3
          subject: {namespaces: {}}
          ingress: [{action: Accept, from: [{namespaces: {matchLabels: {team: y}}}]}]
        ---
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: AdminNetworkPolicy
        metadata: {name: zz-deny}
        spec:
          priority: 3
          subject: {namespaces: {}}
          ingress:
          - action: Deny
            from: [{namespaces: {matchLabels: {team: y}}}]
            ports: [{portNumber: {port: 80}}]
        """)
    d80 = w.ingress("y/a", "x/b", 80)
    assert not d80.allowed
    assert d80.policy is not None and d80.policy.ref.kind == "AdminNetworkPolicy"
    assert d80.ambiguous
    assert any("zz-deny" in a and "aa-accept" in a for a in d80.ambiguous)
    d81 = w.ingress("y/a", "x/b", 81)
    assert d81.allowed and d81.policy is not None and d81.policy.ref.name == "aa-accept"
    warned = [s for s in w.flow("y/a", "x/b", 80).sentences() if s.strip().startswith(
        "warning:")]
    assert warned


def test_d_5_distinct_priorities_do_not_warn(tmp_path: Path) -> None:
    w = world(tmp_path, base(), *[f"""
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {{name: p{prio}}}
        spec:
          tier: Admin
          priority: {prio}
          subject: {{namespaces: {{}}}}
          ingress: [{{action: Pass, from: [{{namespaces: {{matchLabels: {{team: y}}}}}}]}}]
        """ for prio in (1, 2)])
    assert w.ingress("y/a", "x/b", 80).ambiguous == ()


def test_d_6_pass_in_the_baseline_tier_ends_baseline_evaluation(tmp_path: Path) -> None:
    w = world(tmp_path, base(), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: pass}
        spec:
          tier: Baseline
          priority: 1
          subject: {namespaces: {}}
          ingress: [{action: Pass, from: [{namespaces: {matchLabels: {team: y}}}]}]
        ---
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: deny}
        spec:
          tier: Baseline
          priority: 2
          subject: {namespaces: {}}
          ingress: [{action: Deny, from: [{namespaces: {}}]}]
        """)
    dv = w.ingress("y/a", "x/b", 80)
    assert dv.allowed and dv.tier is Tier.DEFAULT
    assert not w.allowed("x/a", "x/b", 80)


def d7_docs() -> list[str]:
    return [namespace("x"), pod("x/a"), pod("x/b"), """
        apiVersion: policy.networking.k8s.io/v1beta1
        kind: ClusterNetworkPolicy
        metadata: {name: egress-control}
        spec:
          tier: Admin
          priority: 1
          subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}
          egress:
          - name: api
            action: Accept
            to: [{domainNames: ["api.example.com", "*.example.org"]}]
            protocols: [{tcp: {destinationPort: {number: 443}}}]
          - name: rest
            action: Deny
            to: [{networks: [0.0.0.0/0]}]
        """]


def test_d_7_domain_names_make_the_verdict_conditional_on_dns(tmp_path: Path) -> None:
    w = world(tmp_path, d7_docs())
    fv = w.flow("x/a", "ip:93.184.216.34", 443)
    assert fv.dns_conditional
    assert fv.egress is not None and fv.egress.dns_conditional
    assert "DNS" in "\n".join(fv.sentences())
    # the domain rule has ports: other ports are decided without DNS
    assert not w.flow("x/a", "ip:93.184.216.34", 80).dns_conditional
    assert not w.allowed("x/a", "ip:93.184.216.34", 80)
    # pod destinations are never domain-matched
    assert not w.flow("x/a", "x/b", 443).dns_conditional
    dns_rows = [r for r in w.rows() if r.dns]
    assert dns_rows and all(r.src == "x/a" for r in dns_rows)
    assert not any(r.dns for r in w.rows() if r.src != "x/a")


def test_d_7_domain_names_are_counted_separately_in_cli_map(
        tmp_path: Path, netfence: Netfence) -> None:
    w = world(tmp_path, d7_docs())
    run = netfence("map", "-f", str(w.path), "--by", "pod", "-o", "json")
    assert run.code == 0, run.stderr
    data = run.json()
    assert data["summary"]["dnsConditional"] >= 1
    flagged = [c for c in data["connections"] if c["dnsConditional"]]
    assert flagged and all(c["from"] == "x/a" for c in flagged)


def d8_docs() -> list[str]:
    return [namespace("x"), pod("x/a"), pod("x/b"), """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: cilium-allow
          namespace: x
        spec:
          endpointSelector: {matchLabels: {app: a}}
          ingress: [{fromEndpoints: [{matchLabels: {app: b}}]}]
        """]


def test_d_8_unsupported_kind_warns_with_file_line_kind_and_is_unmodelled(
        tmp_path: Path) -> None:
    w = world(tmp_path, d8_docs())
    warn = [d for d in warnings(w.state) if d.code == "unmodelled"]
    assert len(warn) == 1
    assert warn[0].source.file == str(w.path)
    assert warn[0].source.line == w.object_line("name: cilium-allow")
    assert warn[0].source.obj is not None
    assert (warn[0].source.obj.kind, warn[0].source.obj.name) == (
        "CiliumNetworkPolicy", "cilium-allow")
    assert [(u.ref.kind, u.ref.namespace, u.ref.name) for u in w.state.unmodelled] == [
        ("CiliumNetworkPolicy", "x", "cilium-allow")]
    assert w.state.policies == ()


def test_d_8_unmodelled_is_in_outputs_and_strict_fails(tmp_path: Path, netfence: Netfence) -> None:
    w = world(tmp_path, d8_docs())
    run = netfence("map", "-f", str(w.path), "-o", "json")
    assert run.code == 0, run.stderr
    assert [u["kind"] for u in run.json()["unmodelled"]] == ["CiliumNetworkPolicy"]
    assert "CiliumNetworkPolicy" in run.stderr
    strict = netfence("map", "-f", str(w.path), "--strict")
    assert strict.code == 3


def d9_docs() -> list[str]:
    return [namespace("x"), pod("x/a"), pod("x/b"), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: broken, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from:
            - ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}  # bad-except
          - ports:
            - {endPort: 90}  # bad-port
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: fine, namespace: x}
        spec:
          podSelector: {matchLabels: {app: a}}
          policyTypes: [Ingress]
        """]


def test_d_9_invalid_objects_are_errors_with_file_line_and_excluded(tmp_path: Path) -> None:
    w = world(tmp_path, d9_docs(), valid=False)
    errs = errors(w.state)
    assert {e.source.line for e in errs} == {w.line("# bad-except"), w.line("# bad-port")}
    assert all(e.source.file == str(w.path) for e in errs)
    assert all(e.source.obj is not None and e.source.obj.name == "broken" for e in errs)
    assert [p.ref.name for p in w.state.policies] == ["fine"]
    assert w.allowed("x/a", "x/b", 80)   # 'broken' is excluded: x/b is not isolated
    assert not w.allowed("x/b", "x/a", 80)


def test_d_9_invalid_objects_make_the_run_exit_non_zero(
        tmp_path: Path, netfence: Netfence) -> None:
    w = world(tmp_path, d9_docs(), valid=False)
    run = netfence("map", "-f", str(w.path), "-o", "json")
    assert run.code == 3
    data = json.loads(run.stdout)
    assert data["complete"] is False
    assert f"{w.path}:{w.line('# bad-except')}" in run.stderr


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_d_10_terminated_pod_with_ip_is_listed_but_not_matched_by_ipblock(
        tmp_path: Path, phase: str) -> None:
    w = world(tmp_path, namespace("x"), pod("x/b", ip="10.1.0.2"),
              pod("x/done", {"app": "batch"}, ip="10.1.0.7", phase=phase),
              pod("x/pending", {"app": "batch"}, phase="Pending"),
              pod("x/run", {"app": "run"}, ip="10.1.0.8", phase="Running"), """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: b-in, namespace: x}
        spec:
          podSelector: {matchLabels: {app: b}}
          ingress:
          - from: [{ipBlock: {cidr: 10.1.0.0/24}}]
        """)
    keys = {p.key for p in w.state.pods}
    assert {"x/done", "x/pending"} <= keys
    done = w.point("x/done")
    assert isinstance(done, Pod)
    assert not w.allowed("x/done", "x/b", 80)
    assert not w.allowed("x/pending", "x/b", 80)
    assert w.allowed("x/run", "x/b", 80)
    # the address itself is no longer the terminated pod's
    assert isinstance(w.point("ip:10.1.0.7"), External)
