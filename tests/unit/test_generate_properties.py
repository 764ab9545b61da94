"""For random zone models (areas, exceptions, fenced platform namespaces with ingress clients,
protected pods), the generated policies allow exactly the modelled connections: the engine's
self-check is exact, an independent oracle written here from docs/generate.md agrees with the
engine pod pair by pair (and from client addresses) on the probe cluster, and the self-check
notices every dropped policy that changes anything."""

from __future__ import annotations

import ipaddress
from typing import Any

import msgspec
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from netfence import api
from netfence.engine.query import External
from netfence.model.cluster import Pod
from netfence.model.ports import Protocol
from netfence.model.zones import SegmentationModel
from netfence.sources.files import TextFile
from netfence.sources.manifests import build_state
from netfence.sources.parse import parse_file
from netfence.sources.zones import SegmentationModelFile, convert
from netfence.synth.verify import verify
from netfence.synth.zones import generate_zones, probe_cluster

ROLE_NAMESPACES = ("kube-system", "mon")
CLIENTS = {"c1": "198.51.100.0/24", "c2": "203.0.113.0/28"}
EXTERNAL = ("198.51.100.7", "203.0.113.9", "192.0.2.77")
PROBES = [(Protocol.TCP, 8080), (Protocol.TCP, 9102), (Protocol.UDP, 53), (Protocol.TCP, 53),
          (Protocol.TCP, 8443)]


@st.composite
def models(draw: Any) -> dict[str, Any]:
    n_areas = draw(st.integers(1, 3))
    areas = [f"a{i}" for i in range(n_areas)]
    spec_areas = []
    ns_i = 0
    platform: list[Any] = []
    for a in areas:
        count = draw(st.integers(1, 2))
        nss = [f"ns{ns_i + j}" for j in range(count)]
        ns_i += count
        others = [x for x in areas if x != a]
        area: dict[str, Any] = {"name": a, "namespaces": nss,
                                "mayEnter": draw(st.lists(st.sampled_from(others), unique=True,
                                                          max_size=2)) if others else []}
        if draw(st.booleans()):
            ic: dict[str, Any] = {"namespace": f"ing-{a}", "podSelector": {"app": "ic"}}
            if draw(st.booleans()):  # fenced: clients on some ports
                platform.append(f"ing-{a}")
                ic["clients"] = draw(st.lists(st.sampled_from(sorted(CLIENTS)), unique=True,
                                              min_size=1))
                ic["clientPorts"] = draw(st.lists(st.sampled_from(
                    ["https", 8080, {"port": 8443, "protocol": "TCP"}]), unique_by=str))
            area["ingressController"] = ic
        area["networks"] = draw(st.lists(st.sampled_from(["n1", "n2"]), unique=True))
        spec_areas.append(area)
    for ns in (*ROLE_NAMESPACES, "plat"):
        if draw(st.booleans()):
            platform.append({"name": ns, "sameNamespace": True} if draw(st.booleans()) else ns)
    spec = {"areas": spec_areas,
            "dns": {"namespace": "kube-system", "podSelector": {"k8s-app": "kube-dns"}},
            "monitoring": {"namespace": "mon", "podSelector": {"app": "prom"},
                           "port": "metrics"},
            "endpointOnly": draw(st.lists(st.sampled_from(
                ["sameArea", "ingressController", "otherAreas"]), unique=True)),
            "networks": [{"name": "n1", "cidrs": ["10.20.0.0/16"],
                          "ports": [{"port": 9092, "endPort": 9094}]},
                         {"name": "n2", "cidrs": ["192.0.2.0/24"]},
                         *({"name": k, "cidrs": [v]} for k, v in sorted(CLIENTS.items()))],
            "egress": {"publicInternet": draw(st.booleans()),
                       "allAreas": draw(st.lists(st.sampled_from(["n1", "n2"]), unique=True))},
            "clusterCIDRs": ["10.244.0.0/16"]}
    if platform:
        spec["platformNamespaces"] = platform
    if draw(st.booleans()):
        spec["protected"] = [{"namespace": "ns0", "podSelector": {"tier": "db"}}]
    if n_areas > 1 and draw(st.booleans()):
        spec["exceptions"] = [{"name": "x", "namespace": "ns0", "area": areas[-1],
                               "allowIngressFromIngressControllerOf": [areas[0]]}]
    return {"apiVersion": "netfence.dev/v1alpha1", "kind": "SegmentationModel",
            "metadata": {"name": "m"}, "spec": spec}


def _model(doc: dict[str, Any]) -> SegmentationModel:
    errors: list[str] = []
    m = convert(msgspec.convert(doc, SegmentationModelFile), lambda p, e: errors.append(e))
    assert not errors, errors
    return m


# -- the oracle: docs/generate.md 'Meaning', written independently of synth/verify.py ----------

def _has(pod: Pod, labels: Any) -> bool:
    return all(pod.labels.get(k) == v for k, v in labels)


def _named(pod: Pod, name: str, proto: Protocol, port: int) -> bool:
    return any(cp.name == name and cp.protocol is proto and cp.port == port for cp in pod.ports)


def _port_in(spec: Any, dst: Pod, proto: Protocol, port: int) -> bool:
    if isinstance(spec.port, str):
        return _named(dst, spec.port, proto, port)
    return proto is spec.protocol and spec.port <= port <= (spec.end_port or spec.port)


class Oracle:
    def __init__(self, m: SegmentationModel) -> None:
        self.m = m
        self.model_ns = set(m.namespaces())
        self.platform = set(m.platform_namespaces)

    def protected(self, pod: Pod) -> bool:
        return any(pod.namespace == ref.namespace and _has(pod, ref.labels)
                   for ref in self.m.protected_pods)

    def monitoring(self, pod: Pod) -> bool:
        mon = self.m.monitoring
        return mon is not None and pod.namespace == mon.pods.namespace and _has(
            pod, mon.pods.labels)

    def dns(self, pod: Pod) -> bool:
        return pod.namespace == self.m.dns.namespace and _has(pod, self.m.dns.labels)

    def controller_of(self, pod: Pod) -> list[str]:
        return [a.name for a in self.m.areas if a.ingress_controller is not None
                and pod.namespace == a.ingress_controller.namespace
                and _has(pod, a.ingress_controller.labels)]

    def endpoint(self, pod: Pod) -> bool:
        return _has(pod, self.m.endpoint_label)

    def kind_ok(self, kind: str, dst: Pod) -> bool:
        return kind not in self.m.endpoint_only or self.endpoint(dst)

    def egress(self, src: Pod, dst: Pod, proto: Protocol, port: int) -> bool:
        m = self.m
        dns = self.dns(dst) and port == 53 and proto in (Protocol.UDP, Protocol.TCP)
        if src.namespace in self.model_ns:
            return dns or not self.protected(src)
        if src.namespace not in self.platform:
            return True  # not fenced: no egress policy
        if dns:
            return True
        if src.namespace in m.platform_same_namespace and dst.namespace == src.namespace:
            return True
        if self.monitoring(src) and m.monitoring is not None and _named(
                dst, m.monitoring.port, proto, port):
            return True
        for name in self.controller_of(src):
            d_area = m.area_of(dst.namespace)
            into = (d_area is not None and d_area.name == name) or any(
                ex.namespace == dst.namespace and name in ex.ingress_controllers_of
                for ex in m.exceptions)
            if into and self.kind_ok("ingressController", dst):
                return True
        return False

    def ingress(self, src: Pod, dst: Pod, proto: Protocol, port: int) -> bool:
        m = self.m
        if self.monitoring(src) and m.monitoring is not None and _named(
                dst, m.monitoring.port, proto, port) and dst.namespace in (
                    self.model_ns | self.platform):
            return True
        if dst.namespace in self.platform:
            if src.namespace == dst.namespace and dst.namespace in m.platform_same_namespace:
                return True
            return self.dns(dst) and port == 53 and proto in (Protocol.UDP, Protocol.TCP)
        d_area = m.area_of(dst.namespace)
        if d_area is None:
            return True  # not fenced
        if self.protected(dst) or self.protected(src):
            return False
        s_area = m.area_of(src.namespace)
        if src.namespace == dst.namespace:
            return True
        if s_area is not None and s_area.name == d_area.name and self.kind_ok("sameArea", dst):
            return True
        controllers = [d_area.name] + [a for ex in m.exceptions if ex.namespace == dst.namespace
                                       for a in ex.ingress_controllers_of]
        if set(controllers) & set(self.controller_of(src)) and self.kind_ok(
                "ingressController", dst):
            return True
        return (s_area is not None and d_area.name in s_area.may_enter
                and self.kind_ok("otherAreas", dst))

    def from_outside(self, addr: str, dst: Pod, proto: Protocol, port: int) -> bool:
        if dst.namespace in self.model_ns:
            return False
        if dst.namespace not in self.platform:
            return True
        for a in self.m.areas:
            if a.name in self.controller_of(dst) and any(
                    ipaddress.ip_address(addr) in ipaddress.ip_network(CLIENTS[c])
                    for c in a.clients) and (not a.client_ports or any(
                        _port_in(p, dst, proto, port) for p in a.client_ports)):
                return True
        return False


@settings(max_examples=40, deadline=None)
@given(doc=models())
def test_generated_policies_realise_exactly_the_model(doc: dict[str, Any]) -> None:
    m = _model(doc)
    objs = generate_zones(m) + probe_cluster(m)
    docs, diags = parse_file(TextFile("<t>", yaml.safe_dump_all(objs, sort_keys=False), False))
    state = build_state(docs, diags)
    assert not [d for d in state.diagnostics if d.severity >= 2], state.diagnostics
    an = api.analyze(state)
    proof = verify(m, an.evaluation)
    assert proof.ok, proof.gaps
    oracle = Oracle(m)
    q = an.query
    pods = [p for p in state.pods if not p.host_network]
    for s in pods:
        for d in pods:
            for proto, port in PROBES:
                want = s.key == d.key or (oracle.egress(s, d, proto, port)
                                          and oracle.ingress(s, d, proto, port))
                assert q.allowed(s, d, proto, port) == want, (s.key, d.key, proto, port)
        for addr in EXTERNAL:
            for proto, port in PROBES:
                assert q.allowed(External(addr), s, proto, port) == oracle.from_outside(
                    addr, s, proto, port), (addr, s.key, proto, port)
                if s.namespace in m.platform_namespaces or oracle.protected(s):
                    assert not q.allowed(s, External(addr), proto, port), (s.key, addr)


def test_dropping_a_generated_policy_is_a_gap_or_changes_nothing() -> None:
    """The self-check is not blind: on a model with every feature, removing any one generated
    policy either leaves every connection as it was or makes the proof find a gap."""
    doc = {"apiVersion": "netfence.dev/v1alpha1", "kind": "SegmentationModel",
           "metadata": {"name": "m"},
           "spec": {"areas": [
               {"name": "a0", "namespaces": ["ns0", "ns1"], "mayEnter": ["a1"],
                "networks": ["n1"],
                "ingressController": {"namespace": "ing-a0", "podSelector": {"app": "ic"},
                                      "clients": ["c1"], "clientPorts": ["https"]}},
               {"name": "a1", "namespaces": ["ns2"], "networks": ["n2"]}],
               "dns": {"namespace": "kube-system", "podSelector": {"k8s-app": "kube-dns"}},
               "monitoring": {"namespace": "mon", "podSelector": {"app": "prom"},
                              "port": "metrics"},
               "endpointOnly": ["ingressController"],
               "networks": [{"name": "n1", "cidrs": ["10.20.0.0/16"],
                             "ports": [{"port": 9092, "endPort": 9094}]},
                            {"name": "n2", "cidrs": ["192.0.2.0/24"]},
                            {"name": "c1", "cidrs": ["198.51.100.0/24"]}],
               "egress": {"publicInternet": True, "publicPorts": [{"port": 443}]},
               "platformNamespaces": ["ing-a0", "kube-system",
                                      {"name": "mon", "sameNamespace": True}],
               "protected": [{"namespace": "ns0", "podSelector": {"tier": "db"}}],
               "clusterCIDRs": ["10.244.0.0/16"]}}
    m = _model(doc)
    objs = generate_zones(m)
    probe = probe_cluster(m)

    def state_of(policies: list[dict[str, Any]]) -> Any:
        text = yaml.safe_dump_all(policies + probe, sort_keys=False)
        docs, diags = parse_file(TextFile("<t>", text, False))
        return build_state(docs, diags)

    base = state_of(objs)
    assert verify(m, api.analyze(base).evaluation).ok
    gaps = 0
    for i, obj in enumerate(objs):
        state = state_of(objs[:i] + objs[i + 1:])
        if verify(m, api.analyze(state).evaluation).ok:
            changes, _ = api.diff(base, state)
            assert not changes, obj["metadata"]
        else:
            gaps += 1
    assert gaps >= len(objs) // 2, gaps
