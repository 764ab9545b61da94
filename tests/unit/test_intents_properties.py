"""For random intent sets over a small generated cluster, the generated policies allow exactly
the declared edges (plus DNS, plus the zone defaults in ``all``): the engine's self-check is
exact, and an independent oracle written here from docs/generate.md agrees with the engine pod
pair by pair on a spread of ports."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netfence import api
from netfence.engine.query import External
from netfence.errors import SourceRef
from netfence.model.cluster import ClusterState, Pod
from netfence.model.intents import IntentSet
from netfence.model.ports import Protocol
from netfence.model.zones import PodRef, SegmentationModel
from netfence.sources.files import TextFile
from netfence.sources.intents import load_intents
from netfence.sources.manifests import build_state
from netfence.sources.parse import parse_file
from netfence.sources.zones import SegmentationModelFile, convert
from netfence.synth.intents import (
    WorkloadIndex,
    generate_intents,
    intended_egress_addresses,
    intended_ingress,
    protected_exclusions,
    resolve,
    verify_intents,
)
from netfence.synth.verify import verify
from netfence.synth.zones import generate_zones

NAMESPACES = ("n0", "n1", "n2")
PORTS = [  # (name, number, protocol) of every app container
    ("http", 8080, "TCP"), ("metrics", 9102, "TCP"), ("sync", 7000, "UDP")]
PROBES = [(Protocol.TCP, 8080), (Protocol.TCP, 9102), (Protocol.UDP, 7000),
          (Protocol.TCP, 7000), (Protocol.TCP, 5000), (Protocol.UDP, 53), (Protocol.TCP, 53),
          (Protocol.TCP, 443)]
PORT_CHOICES: list[Any] = ["http", 8080, "metrics", "sync", {"port": 7000, "protocol": "UDP"},
                           {"port": 5000, "endPort": 5010}]
DNS = PodRef("kube-system", (("k8s-app", "kube-dns"),))
EXTERNAL = ("198.51.100.7", "203.0.113.9")


def _workload(ns: str, name: str, replicas: int, bare: bool) -> dict[str, Any]:
    labels = {"app": name, "team": ns}
    containers = [{"name": "c", "image": "i", "ports": [
        {"name": n, "containerPort": p, "protocol": proto} for n, p, proto in PORTS]}]
    if bare:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": {"containers": containers}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": containers}}}}


@st.composite
def clusters(draw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    objs: list[dict[str, Any]] = []
    names: list[str] = []
    for ns in NAMESPACES:
        area = {"n0": {"area": "a0"}, "n1": {"area": "a1"}}.get(ns, {})  # n2: not onboarded
        objs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": area}})
        for i in range(draw(st.integers(1, 3))):
            name = f"w{i}"
            objs.append(_workload(ns, name, draw(st.integers(1, 2)), bare=draw(st.booleans())))
            names.append(f"{ns}/{name}")
    for ns, name, labels in (("kube-system", "coredns", {"k8s-app": "kube-dns"}),
                             ("mon", "prom", {"app": "prom"})):
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        objs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": name, "namespace": ns},
                     "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                              "template": {"metadata": {"labels": labels}, "spec": {
                                  "containers": [{"name": "c", "image": "i", "ports": [
                                      {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                      {"name": "metrics", "containerPort": 9153}]}]}}}})
    names.append("mon/prom")
    return objs, names


@st.composite
def intent_docs(draw: Any, names: list[str], prom_calls: bool = True) -> list[dict[str, Any]]:
    """Random ServiceIntents (and maybe a group) over ``names``; the last name is prometheus,
    never a callee (and, without ``prom_calls``, never a caller either)."""
    docs: list[dict[str, Any]] = []
    callers = names if prom_calls else names[:-1]
    for i, caller in enumerate(callers):
        callees = draw(st.lists(st.sampled_from(names[:-1]), max_size=3, unique=True))
        calls: list[dict[str, Any]] = []
        for c in callees:
            call: dict[str, Any] = {"service": c}
            ports = draw(st.lists(st.sampled_from(PORT_CHOICES), max_size=2))
            if ports:
                call["ports"] = ports
            calls.append(call)
        if draw(st.integers(0, 4)) == 0:
            calls.append({"cidrs": ["198.51.100.0/24"], "ports": [443]})
        if calls:
            docs.append({"apiVersion": "netfence.dev/v1alpha1", "kind": "ServiceIntents",
                         "metadata": {"name": f"i{i}"},
                         "spec": {"service": caller, "calls": calls}})
    if draw(st.booleans()):
        members = draw(st.lists(st.sampled_from(callers), min_size=1, max_size=2,
                                unique=True))
        every = draw(st.booleans())
        docs.append({"apiVersion": "netfence.dev/v1alpha1", "kind": "ServiceTypeGroup",
                     "metadata": {"name": "scrapers"},
                     "spec": {"members": members,
                              "calls": "all" if every else draw(st.lists(
                                  st.sampled_from(names[:-1]), min_size=1, max_size=2,
                                  unique=True)),
                              "ports": ["metrics"]}})
    return docs


def _load(tmp: Any, docs: list[dict[str, Any]]) -> IntentSet:
    path = tmp / "intents.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    got, diags = load_intents([str(path)], require=False)
    assert not [d for d in diags if d.severity >= 2], [d.line() for d in diags]
    return got


def _state(objs: list[dict[str, Any]]) -> ClusterState:
    docs, diags = parse_file(TextFile("<cluster>", yaml.safe_dump_all(objs), False))
    state = build_state(docs, diags)
    assert not [d for d in state.diagnostics if d.severity >= 2], state.diagnostics
    return state


def _with(state: ClusterState, objects: list[dict[str, Any]]) -> ClusterState:
    docs, diags = parse_file(TextFile("<gen>", yaml.safe_dump_all(objects, sort_keys=False),
                                      False))
    gen = build_state(docs, diags)
    return dataclasses.replace(state, policies=gen.policies)


# -- the oracle: docs/generate.md, written without reading synth/intents.py ---------------------

def _wl(pod: Pod) -> str:
    return f"{pod.workload.namespace}/{pod.workload.name}"


def _port_ok(spec: Any, dst: Pod, proto: Protocol, port: int) -> bool:
    if isinstance(spec, str):
        return any(cp.name == spec and cp.protocol is proto and cp.port == port
                   for cp in dst.ports)
    if isinstance(spec, int):
        return proto is Protocol.TCP and port == spec
    want = Protocol(spec.get("protocol", "TCP"))
    lo = spec["port"]
    return proto is want and lo <= port <= spec.get("endPort", lo)


class Oracle:
    def __init__(self, docs: list[dict[str, Any]], fenced: set[str] | None) -> None:
        self.edges: list[tuple[str, str, list[Any]]] = []
        self.addresses: dict[str, list[int]] = {}
        self.group_all: list[tuple[set[str], list[Any]]] = []
        for d in docs:
            spec = d["spec"]
            if d["kind"] == "ServiceIntents":
                for c in spec["calls"]:
                    if "service" in c:
                        self.edges.append((spec["service"], c["service"], c.get("ports", [])))
                    else:
                        self.addresses.setdefault(spec["service"], []).extend(c["ports"])
            elif spec["calls"] == "all":
                self.group_all.append((set(spec["members"]), spec["ports"]))
            else:
                for m in spec["members"]:
                    for c in spec["calls"]:
                        self.edges.append((m, c, spec["ports"]))
        self.callers = ({a for a, _, _ in self.edges} | set(self.addresses)
                        | {m for ms, _ in self.group_all for m in ms})
        self.callees = {b for _, b, _ in self.edges}
        # standalone: the callees' namespaces are fenced (default deny)
        self.fenced = fenced if fenced is not None else {c.split("/")[0] for c in self.callees}

    def declared(self, src: Pod, dst: Pod, proto: Protocol, port: int) -> bool:
        for a, b, ports in self.edges:
            if a == _wl(src) and b == _wl(dst) and (
                    not ports or any(_port_ok(p, dst, proto, port) for p in ports)):
                return True
        for members, ports in self.group_all:
            if _wl(src) in members and dst.namespace in self.fenced and any(
                    _port_ok(p, dst, proto, port) for p in ports):
                return True
        return False

    def governed(self, dst: Pod) -> bool:
        return dst.namespace in self.fenced or _wl(dst) in self.callees

    def egress_ok(self, src: Pod, dst: Pod, proto: Protocol, port: int) -> bool:
        if _wl(src) not in self.callers:
            return True
        if dst.namespace == "kube-system" and port == 53 and proto in (Protocol.UDP,
                                                                        Protocol.TCP):
            return True
        return self.declared(src, dst, proto, port)

    def external_ok(self, src: Pod, addr: str, proto: Protocol, port: int) -> bool:
        if _wl(src) not in self.callers:
            return True
        return addr.startswith("198.51.100.") and proto is Protocol.TCP and port in \
            self.addresses.get(_wl(src), [])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_policies_allow_exactly_the_declared_edges(tmp_path: Any, data: Any) -> None:
    objs, names = data.draw(clusters())
    docs = data.draw(intent_docs(names))
    state = _state(objs)
    index = WorkloadIndex(state)
    resolved, diags = resolve(_load(tmp_path, docs), index, DNS)
    assert not [d for d in diags if d.severity >= 2], [d.line() for d in diags]
    objects = generate_intents(resolved, index.by_ns)
    assert objects == generate_intents(resolved, index.by_ns)  # deterministic
    an = api.analyze(_with(state, objects))
    proof = verify_intents(resolved, an.evaluation, an.query)
    assert proof.ok, proof.gaps
    oracle = Oracle(docs, None)
    pods = list(state.pods)
    q = an.query
    for s in pods:
        for d in pods:
            for proto, port in PROBES:
                want = s.key == d.key or (
                    oracle.egress_ok(s, d, proto, port)
                    and (not oracle.governed(d) or oracle.declared(s, d, proto, port)))
                assert q.allowed(s, d, proto, port) == want, (s.key, d.key, proto, port)
        for addr in EXTERNAL:
            for proto, port in PROBES:
                assert q.allowed(s, External(addr), proto, port) == oracle.external_ok(
                    s, addr, proto, port), (s.key, addr, proto, port)


# -- generate all: a zone model with protected workloads, plus the intents ------------------------

MODEL = {
    "apiVersion": "netfence.dev/v1alpha1", "kind": "SegmentationModel", "metadata": {"name": "m"},
    "spec": {"areaLabel": "area",
             "areas": [{"name": "a0", "namespaces": ["n0"], "mayEnter": ["a1"]},
                       {"name": "a1", "namespaces": ["n1"]}],
             "dns": {"namespace": "kube-system", "podSelector": {"k8s-app": "kube-dns"}},
             "monitoring": {"namespace": "mon", "podSelector": {"app": "prom"},
                            "port": "metrics"}}}


def _model(protected: list[str]) -> SegmentationModel:
    doc = {**MODEL, "spec": {**MODEL["spec"], "protected": protected}}
    errors: list[str] = []
    m = convert(msgspec.convert(doc, SegmentationModelFile), lambda p, e: errors.append(e))
    assert not errors
    return m


def _zone_ok(m: SegmentationModel, src: Pod, dst: Pod, proto: Protocol, port: int) -> bool:
    """docs/generate.md 'Meaning' for this model (no endpoint-only kinds, no controllers)."""
    d_area = m.area_of(dst.namespace)
    assert d_area is not None
    if (src.namespace == "mon" and src.labels.get("app") == "prom"
            and any(cp.name == "metrics" and cp.protocol is proto and cp.port == port
                    for cp in dst.ports)):
        return True
    if _wl(dst) in m.protected:
        return False
    s_area = m.area_of(src.namespace)
    if src.namespace == dst.namespace or (s_area is not None and s_area.name == d_area.name):
        return True
    return s_area is not None and d_area.name in s_area.may_enter


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generate_all_allows_exactly_the_zone_defaults_plus_the_intents(tmp_path: Any,
                                                                       data: Any) -> None:
    objs, names = data.draw(clusters())
    # prometheus stays a plain scraper here: restricting its egress would contradict the
    # model's monitoring rule (a real gap, which the zone self-check reports)
    docs = data.draw(intent_docs(names, prom_calls=False))
    model_names = [n for n in names if n.split("/")[0] in ("n0", "n1")]
    protected = data.draw(st.lists(st.sampled_from(model_names), max_size=2, unique=True))
    m = _model(protected)
    state = _state(objs)
    index = WorkloadIndex(state)
    excl, pdiags = protected_exclusions(
        ((t, SourceRef("<model>"), "$") for t in m.protected), index)
    # the model's protected workloads, resolved: the self-check is told which pods they are
    assert not pdiags, [d.line() for d in pdiags]
    fenced = tuple(m.namespaces())
    resolved, diags = resolve(_load(tmp_path, docs), index, m.dns, fenced)
    assert not [d for d in diags if d.severity >= 2], [d.line() for d in diags]
    objects = generate_zones(m, "networkpolicy", excl) + generate_intents(resolved, index.by_ns)
    an = api.analyze(_with(state, objects))
    ev = an.evaluation
    zone_proof = verify(m, ev, intended_ingress(resolved, ev.u),
                        intended_egress_addresses(resolved, ev.u), excl)
    assert zone_proof.ok, zone_proof.gaps
    proof = verify_intents(resolved, ev, an.query, frozenset(fenced))
    assert proof.ok, proof.gaps
    oracle = Oracle(docs, set(fenced))
    q = an.query
    for s in state.pods:
        for d in state.pods:
            for proto, port in PROBES:
                if s.key == d.key:
                    continue
                if d.namespace in fenced:
                    ingress = (_zone_ok(m, s, d, proto, port)
                               or oracle.declared(s, d, proto, port))
                else:
                    ingress = not oracle.governed(d) or oracle.declared(s, d, proto, port)
                # in the model, the zone's egress-cluster rule reaches every pod; a protected
                # workload reaches only DNS and its declared callees
                if _wl(s) in m.protected:
                    egress = (d.namespace == "kube-system" and port == 53
                              and proto in (Protocol.UDP, Protocol.TCP)) or oracle.declared(
                                  s, d, proto, port)
                else:
                    egress = s.namespace in fenced or oracle.egress_ok(s, d, proto, port)
                assert q.allowed(s, d, proto, port) == (ingress and egress), (
                    s.key, d.key, proto, port)

