"""Tier truth table: ClusterNetworkPolicy / ANP / BANP scenarios with hand-derived verdicts.

Each scenario under ``tests/truth/tiers/<id>/`` has ``policies.yaml`` (CNP ``v1beta1``, plus
optional NetworkPolicies) and ``cases.yaml`` (a ``ConnectivityTest``). Each case's expectation
was worked out by hand from the Kubernetes semantics (SEMANTICS.md, Tiers section and D-5..D-7),
and its ``name`` gives the reasoning. Nothing here was produced by running netfence.

Every scenario runs in three API variants, converted mechanically from the single v1beta1 source
(field differences: docs/reference/cluster-network-policy.md):

- ``v1beta1``: the file as written;
- ``v1alpha2``: CNP ``policy.networking.k8s.io/v1alpha2`` (bundle v0.2.0). It has the same fields
  as v1beta1, so only ``apiVersion`` changes;
- ``v1alpha1``: Admin tier becomes ``AdminNetworkPolicy`` and Baseline tier becomes the singleton
  ``BaselineAdminNetworkPolicy`` named ``default``. ``Accept`` becomes ``Allow``, and
  ``protocols`` becomes ``ports`` (``portNumber`` / ``portRange`` / ``namedPort``).

The tests at the bottom check the scenario files and the converter themselves, so they do not
need netfence.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

TIERS = Path(__file__).resolve().parent.parent / "truth" / "tiers"
BASE_CLUSTER = TIERS / "_base" / "cluster.yaml"

GROUP = "policy.networking.k8s.io"
CNP_V1BETA1 = f"{GROUP}/v1beta1"
CNP_V1ALPHA2 = f"{GROUP}/v1alpha2"
ANP_V1ALPHA1 = f"{GROUP}/v1alpha1"
VARIANTS = ("v1beta1", "v1alpha2", "v1alpha1")

Doc = dict[str, Any]


class Unexpressible(Exception):
    """The v1beta1 source uses something the target API version cannot express."""


# --------------------------------------------------------------------------- scenario files


def load_docs(path: Path) -> list[Doc]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def scenario_dirs() -> list[Path]:
    return sorted(p for p in TIERS.iterdir() if p.is_dir() and not p.name.startswith("_"))


def is_cnp(doc: Doc) -> bool:
    return doc.get("kind") == "ClusterNetworkPolicy"


# --------------------------------------------------------------------------- conversion


def to_v1alpha2(docs: list[Doc]) -> list[Doc]:
    """CNP v1beta1 -> v1alpha2 (bundle v0.2.0): same schema, new apiVersion."""
    out = copy.deepcopy(docs)
    for doc in out:
        if is_cnp(doc):
            doc["apiVersion"] = CNP_V1ALPHA2
    return out


def v1alpha1_skip_reason(docs: list[Doc]) -> str | None:
    """Why the v1alpha1 API cannot express this scenario, or None when it can."""
    baseline = [d for d in docs if is_cnp(d) and d["spec"]["tier"] == "Baseline"]
    if len(baseline) > 1:
        return (
            f"BaselineAdminNetworkPolicy is a singleton named 'default'; the scenario has "
            f"{len(baseline)} Baseline-tier policies"
        )
    for doc in baseline:
        for direction in ("ingress", "egress"):
            for rule in doc["spec"].get(direction, []):
                if rule["action"] == "Pass":
                    return "BaselineAdminNetworkPolicy has no Pass action (Allow|Deny only)"
                peers = rule.get("to", [])
                if any("domainNames" in peer for peer in peers):
                    return "BaselineAdminNetworkPolicy egress peers have no domainNames"
    return None


def _ports_v1alpha1(protocols: list[Doc]) -> list[Doc]:
    ports: list[Doc] = []
    for item in protocols:
        if len(item) != 1:
            raise Unexpressible(f"protocol item must set exactly one field: {item}")
        ((key, value),) = item.items()
        if key == "destinationNamedPort":
            ports.append({"namedPort": value})
            continue
        if key not in ("tcp", "udp", "sctp"):
            raise Unexpressible(f"unknown protocol item {key!r}")
        dport = value["destinationPort"]
        proto = key.upper()
        if "number" in dport:
            ports.append({"portNumber": {"protocol": proto, "port": dport["number"]}})
        else:
            rng = dport["range"]
            ports.append(
                {"portRange": {"protocol": proto, "start": rng["start"], "end": rng["end"]}}
            )
    return ports


def _rule_v1alpha1(rule: Doc, direction: str, baseline: bool) -> Doc:
    action = {"Accept": "Allow", "Deny": "Deny", "Pass": "Pass"}[rule["action"]]
    if baseline and action == "Pass":
        raise Unexpressible("BANP has no Pass action")
    peer_key = "from" if direction == "ingress" else "to"
    out: Doc = {}
    if "name" in rule:
        out["name"] = rule["name"]
    out["action"] = action
    out[peer_key] = copy.deepcopy(rule[peer_key])
    if "protocols" in rule:
        out["ports"] = _ports_v1alpha1(rule["protocols"])
    return out


def to_v1alpha1(docs: list[Doc]) -> list[Doc]:
    """CNP v1beta1 -> ANP (Admin tier) / BANP named ``default`` (Baseline tier)."""
    reason = v1alpha1_skip_reason(docs)
    if reason is not None:
        raise Unexpressible(reason)
    out: list[Doc] = []
    for doc in docs:
        if not is_cnp(doc):
            out.append(copy.deepcopy(doc))
            continue
        spec = doc["spec"]
        baseline = spec["tier"] == "Baseline"
        new_spec: Doc = {}
        if not baseline:
            new_spec["priority"] = spec["priority"]
        new_spec["subject"] = copy.deepcopy(spec["subject"])
        for direction in ("ingress", "egress"):
            if direction in spec:
                new_spec[direction] = [
                    _rule_v1alpha1(r, direction, baseline) for r in spec[direction]
                ]
        out.append(
            {
                "apiVersion": ANP_V1ALPHA1,
                "kind": "BaselineAdminNetworkPolicy" if baseline else "AdminNetworkPolicy",
                "metadata": {"name": "default" if baseline else doc["metadata"]["name"]},
                "spec": new_spec,
            }
        )
    return out


def convert(docs: list[Doc], variant: str) -> list[Doc]:
    if variant == "v1beta1":
        return copy.deepcopy(docs)
    if variant == "v1alpha2":
        return to_v1alpha2(docs)
    if variant == "v1alpha1":
        return to_v1alpha1(docs)
    raise ValueError(variant)


# --------------------------------------------------------------------------- parametrization


@dataclass(frozen=True)
class Scenario:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def policies(self) -> Path:
        return self.path / "policies.yaml"

    @property
    def cases(self) -> Path:
        return self.path / "cases.yaml"


def _params() -> Iterator[Any]:
    for sdir in scenario_dirs():
        scenario = Scenario(sdir)
        skip = v1alpha1_skip_reason(load_docs(scenario.policies))
        for variant in VARIANTS:
            marks: list[pytest.MarkDecorator] = []
            if variant == "v1alpha1" and skip is not None:
                # The old API cannot express this scenario (reason printed by -ra).
                marks.append(pytest.mark.skip(reason=f"v1alpha1 cannot express it: {skip}"))
            yield pytest.param(scenario, variant, id=f"{scenario.id}-{variant}", marks=marks)


PARAMS = list(_params())


# --------------------------------------------------------------------------- the truth table


def _describe(result: Doc) -> str:
    return (
        f"  {result.get('name')!r}: {result.get('from')} -> {result.get('to')} "
        f"{result.get('port')}/{result.get('protocol')} expected {result.get('expect')}, "
        f"got {result.get('verdict')}\n    {result.get('explanation')}"
    )


@pytest.mark.parametrize(("scenario", "variant"), PARAMS)
def test_tier_truth_table(
    scenario: Scenario, variant: str, tmp_path: Path, netfence: Callable[..., Any]
) -> None:
    if variant == "v1beta1":
        policies = scenario.policies
    else:
        policies = tmp_path / f"policies-{variant}.yaml"
        policies.write_text(
            yaml.safe_dump_all(convert(load_docs(scenario.policies), variant), sort_keys=False),
            encoding="utf-8",
        )
    expected = load_docs(scenario.cases)[0]["spec"]["cases"]

    run = netfence(
        "test",
        "-f",
        str(BASE_CLUSTER),
        "-f",
        str(policies),
        "--expect",
        str(scenario.cases),
        "-o",
        "json",
    )
    assert run.code in (0, 1), f"exit {run.code}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    try:
        report = run.json()
    except ValueError:
        pytest.fail(
            f"stdout is not JSON (exit {run.code})\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
        )
    results = report["results"]
    assert len(results) == len(expected), (
        f"{len(results)} results for {len(expected)} cases\n{run.stdout}"
    )

    failures = []
    for case, result in zip(expected, results, strict=True):
        assert result["expect"] == case["expect"], f"case order changed: {result} vs {case}"
        if result["verdict"] != case["expect"] or not result["passed"]:
            failures.append(_describe(result))
    assert not failures, (
        f"{scenario.id} [{variant}]: {len(failures)} case(s) wrong\n"
        + "\n".join(failures)
        + f"\nstderr:\n{run.stderr}"
    )
    summary = report["summary"]
    assert (summary["passed"], summary["failed"]) == (len(expected), 0), summary
    assert run.code == 0, run.stderr


# --------------------------------------------------------------------------- self-checks
# These need no netfence: they keep the scenario files and the converter honest.

CASE_KEYS = {"name", "from", "to", "port", "protocol", "expect"}
POD_NAMES = {f"{ns}/{pod}" for ns in "xyz" for pod in "abc"}


def _check_cidr(cidr: str) -> None:
    net = ipaddress.ip_network(cidr, strict=True)  # v1beta1 requires a masked CIDR
    assert str(net) == cidr


def _check_selector(sel: Any) -> None:
    assert isinstance(sel, dict)
    assert set(sel) <= {"matchLabels", "matchExpressions"}, sel


def _check_peer(peer: Doc, egress: bool) -> None:
    assert len(peer) == 1, f"peer must set exactly one field: {peer}"
    ((key, value),) = peer.items()
    allowed = {"namespaces", "pods"} | ({"nodes", "networks", "domainNames"} if egress else set())
    assert key in allowed, key
    if key in ("namespaces", "nodes"):
        _check_selector(value)
    elif key == "pods":
        assert set(value) == {"namespaceSelector", "podSelector"}, value
        _check_selector(value["namespaceSelector"])
        _check_selector(value["podSelector"])
    elif key == "networks":
        assert 1 <= len(value) <= 25
        for cidr in value:
            _check_cidr(cidr)


def _check_protocols(protocols: list[Doc]) -> None:
    assert 1 <= len(protocols) <= 25
    for item in protocols:
        assert len(item) == 1, item
        ((key, value),) = item.items()
        assert key in ("tcp", "udp", "sctp", "destinationNamedPort"), key
        if key == "destinationNamedPort":
            assert isinstance(value, str) and value
            continue
        dport = value["destinationPort"]
        assert len(dport) == 1, dport
        if "number" in dport:
            assert 1 <= dport["number"] <= 65535
        else:
            assert dport["range"]["start"] < dport["range"]["end"]  # CEL: start < end


def _check_cnp_v1beta1(doc: Doc) -> None:
    assert doc["apiVersion"] == CNP_V1BETA1
    spec = doc["spec"]
    assert spec["tier"] in ("Admin", "Baseline")
    assert 0 <= spec["priority"] <= 1000
    assert len(spec["subject"]) == 1 and set(spec["subject"]) <= {"namespaces", "pods"}
    for direction in ("ingress", "egress"):
        rules = spec.get(direction, [])
        assert len(rules) <= 25
        for rule in rules:
            assert rule["action"] in ("Accept", "Deny", "Pass")
            peers = rule["from" if direction == "ingress" else "to"]
            assert 1 <= len(peers) <= 25
            for peer in peers:
                _check_peer(peer, egress=direction == "egress")
            if "protocols" in rule:
                _check_protocols(rule["protocols"])
                named = any("destinationNamedPort" in p for p in rule["protocols"])
                ip_peer = any(k in p for p in peers for k in ("networks", "nodes", "domainNames"))
                assert not (named and ip_peer), "named ports with networks/nodes/domainNames"


def _check_case(case: Doc) -> None:
    assert set(case) <= CASE_KEYS and {"from", "to", "port", "expect"} <= set(case), case
    assert case["expect"] in ("allow", "deny")
    assert case.get("protocol", "TCP") in ("TCP", "UDP", "SCTP")
    for end in (case["from"], case["to"]):
        if end.startswith("ip:"):
            ipaddress.ip_address(end[3:])
        else:
            assert end in POD_NAMES, end
    assert not (case["from"].startswith("ip:") and case["to"].startswith("ip:"))


def test_suite_is_large_enough() -> None:
    assert len(scenario_dirs()) >= 32


@pytest.mark.parametrize("sdir", scenario_dirs(), ids=lambda p: p.name)
def test_scenario_files_are_valid(sdir: Path) -> None:
    docs = load_docs(sdir / "policies.yaml")
    assert docs
    names = [d["metadata"]["name"] for d in docs if is_cnp(d)]
    assert len(names) == len(set(names)), "duplicate CNP names"
    for doc in docs:
        if is_cnp(doc):
            _check_cnp_v1beta1(doc)
        else:
            assert doc["kind"] == "NetworkPolicy", doc["kind"]
            assert doc["metadata"]["namespace"] in ("x", "y", "z")
    admin = sorted(
        d["spec"]["priority"] for d in docs if is_cnp(d) and d["spec"]["tier"] == "Admin"
    )
    baseline = sorted(
        d["spec"]["priority"] for d in docs if is_cnp(d) and d["spec"]["tier"] == "Baseline"
    )
    # Equal priorities are undefined by the API (D-5); the truth table never relies on them.
    assert len(admin) == len(set(admin)) and len(baseline) == len(set(baseline))

    (test,) = load_docs(sdir / "cases.yaml")
    assert test["apiVersion"] == "netfence.dev/v1alpha1"
    assert test["kind"] == "ConnectivityTest"
    assert test["metadata"]["name"] == sdir.name
    cases = test["spec"]["cases"]
    assert len(cases) >= 4
    for case in cases:
        _check_case(case)
    assert {c["expect"] for c in cases} == {"allow", "deny"}, "each scenario needs both verdicts"


def test_base_cluster_shape() -> None:
    docs = load_docs(BASE_CLUSTER)
    pods = {
        f"{d['metadata']['namespace']}/{d['metadata']['name']}": d
        for d in docs
        if d["kind"] == "Pod"
    }
    assert set(pods) == POD_NAMES
    ips = [p["status"]["podIP"] for p in pods.values()]
    assert len(set(ips)) == len(ips)
    assert pods["y/c"]["status"]["podIP"] == "10.244.2.3"
    for pod in pods.values():
        names = [port["name"] for c in pod["spec"]["containers"] for port in c["ports"]]
        assert len(names) == len(set(names))
        assert all(len(n) <= 15 and n == n.lower() for n in names)
    assert sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Node") == [
        "node-1",
        "node-2",
        "node-3",
    ]


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


@pytest.mark.parametrize("sdir", scenario_dirs(), ids=lambda p: p.name)
def test_conversion_shapes(sdir: Path) -> None:
    docs = load_docs(sdir / "policies.yaml")
    alpha2 = to_v1alpha2(docs)
    for old, new in zip(docs, alpha2, strict=True):
        if is_cnp(old):
            assert new["apiVersion"] == CNP_V1ALPHA2
            assert new["spec"] == old["spec"]
        else:
            assert new == old

    if v1alpha1_skip_reason(docs) is not None:
        with pytest.raises(Unexpressible):
            to_v1alpha1(docs)
        return
    alpha1 = to_v1alpha1(docs)
    assert sum(d["kind"] == "BaselineAdminNetworkPolicy" for d in alpha1) <= 1
    for doc in alpha1:
        if doc["kind"] == "NetworkPolicy":
            continue
        assert doc["apiVersion"] == ANP_V1ALPHA1
        keys = set(_keys(doc["spec"]))
        assert not keys & {"tier", "protocols", "destinationPort", "destinationNamedPort"}
        rules = doc["spec"].get("ingress", []) + doc["spec"].get("egress", [])
        actions = {rule["action"] for rule in rules}
        if doc["kind"] == "BaselineAdminNetworkPolicy":
            assert doc["metadata"]["name"] == "default"
            assert "priority" not in doc["spec"]
            assert actions <= {"Allow", "Deny"}
        else:
            assert 0 <= doc["spec"]["priority"] <= 1000
            assert actions <= {"Allow", "Deny", "Pass"}


def test_v1alpha1_port_conversion() -> None:
    protocols = [
        {"tcp": {"destinationPort": {"number": 80}}},
        {"udp": {"destinationPort": {"range": {"start": 80, "end": 81}}}},
        {"destinationNamedPort": "serve-81-sctp"},
    ]
    assert _ports_v1alpha1(protocols) == [
        {"portNumber": {"protocol": "TCP", "port": 80}},
        {"portRange": {"protocol": "UDP", "start": 80, "end": 81}},
        {"namedPort": "serve-81-sctp"},
    ]
