"""diff is semantic: refactorings that keep meaning give an empty diff; an added rule gives
exactly its new connections (checked pair by pair against the verdict path)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.gen import generate
from netfence import api
from netfence.model.ports import Protocol

BASE = generate(6, seed=3)
NETPOLS = [i for i, o in enumerate(BASE) if o["kind"] == "NetworkPolicy"]
APPS = sorted({(o["metadata"]["namespace"], o["metadata"]["name"]) for o in BASE
               if o["kind"] == "Deployment" and o["metadata"]["namespace"].startswith("ns-")})


def _state(objs: list[dict[str, Any]], tmp: Path, name: str) -> Any:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(objs, sort_keys=False))
    return api.load([str(path)])


def _refactor(objs: list[dict[str, Any]], ops: list[tuple[str, int]]) -> list[dict[str, Any]]:
    out = copy.deepcopy(objs)
    for op, k in ops:
        pols = [o for o in out if o["kind"] == "NetworkPolicy"]
        pol = pols[k % len(pols)]
        spec = pol["spec"]
        if op == "rename":
            pol["metadata"]["name"] += "-renamed"
        elif op == "duplicate":
            dup = copy.deepcopy(pol)
            dup["metadata"]["name"] += "-copy"
            out.append(dup)
        elif op == "split":
            for direction in ("ingress", "egress"):
                rules = spec.get(direction) or []
                if len(rules) < 2:
                    continue
                types = spec.get("policyTypes") or (
                    ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
                first = copy.deepcopy(pol)
                first["spec"][direction] = rules[:1]
                first["spec"]["policyTypes"] = types
                pol["metadata"]["name"] += "-rest"
                spec[direction] = rules[1:]
                spec["policyTypes"] = types
                out.append(first)
                break
        elif op == "expressions":
            ml = spec.get("podSelector", {}).get("matchLabels")
            if ml:
                spec["podSelector"] = {"matchExpressions": [
                    {"key": key, "operator": "In", "values": [v]} for key, v in ml.items()]}
        elif op == "reverse-peers":
            for direction, key in (("ingress", "from"), ("egress", "to")):
                for rule in spec.get(direction) or []:
                    if rule.get(key):
                        rule[key] = list(reversed(rule[key]))
                    if rule.get("ports"):
                        rule["ports"] = list(reversed(rule["ports"]))
        elif op == "shuffle":
            out = out[k % len(out):] + out[:k % len(out)]
    return out


OPS = st.lists(st.tuples(st.sampled_from(["rename", "duplicate", "split", "expressions",
                                          "reverse-peers", "shuffle"]),
                         st.integers(0, 10_000)), min_size=1, max_size=6)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_semantics_preserving_refactorings_give_an_empty_diff(
        tmp_path: Path, ops: list[tuple[str, int]]) -> None:
    base = _state(BASE, tmp_path, "base")
    head = _state(_refactor(BASE, ops), tmp_path, "head")
    changes, _ = api.diff(base, head)
    assert changes == [], [c.to_json() for c in changes[:3]]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(callee=st.sampled_from(APPS), caller=st.sampled_from(APPS),
       port=st.sampled_from([8080, 8443, 9090, 7777]))
def test_an_added_rule_gives_exactly_its_new_connections(
        tmp_path: Path, callee: tuple[str, str], caller: tuple[str, str], port: int) -> None:
    extra = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "pr-added-rule", "namespace": callee[0]},
             "spec": {"podSelector": {"matchLabels": {"app": callee[1]}},
                      "policyTypes": ["Ingress"],
                      "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                          "kubernetes.io/metadata.name": caller[0]}},
                          "podSelector": {"matchLabels": {"app": caller[1]}}}],
                          "ports": [{"port": port}]}]}}
    base = _state(BASE, tmp_path, "base")
    head = _state([*BASE, extra], tmp_path, "head")
    changes, _ = api.diff(base, head)
    assert all(not c.lost for c in changes)  # an allow rule never removes a connection
    reported = {(c.src, c.dst) for c in changes if c.gained.contains(Protocol.TCP, port)}
    # brute force over workload pairs with the verdict path on the same port
    b, h = api.analyze(base), api.analyze(head)
    expected = set()
    for src in {str(p.workload) for p in base.pods}:
        for dst in {str(p.workload) for p in base.pods}:
            sp, dp = b.resolve(src), b.resolve(dst)
            hs, hd = h.resolve(src), h.resolve(dst)
            before = any(b.query.allowed(s, d, Protocol.TCP, port) for s in sp for d in dp
                         if s is not d)
            after = any(h.query.allowed(s, d, Protocol.TCP, port) for s in hs for d in hd
                        if s is not d)
            if after and not before:
                expected.add((src, dst))
    assert reported == expected
    # every change is on the callee, from the caller, and cites the new policy
    for c in changes:
        assert c.dst == f"{callee[0]}/deployment/{callee[1]}"
        assert any("pr-added-rule" in p for p in c.head_policies), c.head_policies
