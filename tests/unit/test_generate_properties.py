"""For random zone models, the generated policies allow exactly the modelled connections: the
engine's self-check is exact, and an independent oracle written here from docs/generate.md
agrees with the engine pod pair by pair on the probe cluster."""

from __future__ import annotations

from typing import Any

import msgspec
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from netfence import api
from netfence.model.cluster import Pod
from netfence.model.ports import Protocol
from netfence.model.zones import SegmentationModel
from netfence.sources.files import TextFile
from netfence.sources.manifests import build_state
from netfence.sources.parse import parse_file
from netfence.sources.zones import SegmentationModelFile, convert
from netfence.synth.verify import verify
from netfence.synth.zones import generate_zones, probe_cluster


@st.composite
def models(draw: Any) -> dict[str, Any]:
    n_areas = draw(st.integers(1, 3))
    areas = [f"a{i}" for i in range(n_areas)]
    spec_areas = []
    ns_i = 0
    for a in areas:
        count = draw(st.integers(1, 2))
        nss = [f"ns{ns_i + j}" for j in range(count)]
        ns_i += count
        others = [x for x in areas if x != a]
        area: dict[str, Any] = {"name": a, "namespaces": nss,
                                "mayEnter": draw(st.lists(st.sampled_from(others), unique=True,
                                                          max_size=2)) if others else []}
        if draw(st.booleans()):
            area["ingressController"] = {"namespace": f"ing-{a}",
                                         "podSelector": {"app": "ic"}}
        area["networks"] = draw(st.lists(st.sampled_from(["n1", "n2"]), unique=True))
        spec_areas.append(area)
    spec = {"areas": spec_areas,
            "dns": {"namespace": "kube-system", "podSelector": {"k8s-app": "kube-dns"}},
            "monitoring": {"namespace": "mon", "podSelector": {"app": "prom"},
                           "port": "metrics"},
            "endpointOnly": draw(st.lists(st.sampled_from(
                ["sameArea", "ingressController", "otherAreas"]), unique=True)),
            "networks": [{"name": "n1", "cidrs": ["10.20.0.0/16"],
                          "ports": [{"port": 9092, "endPort": 9094}]},
                         {"name": "n2", "cidrs": ["192.0.2.0/24"]}],
            "egress": {"publicInternet": draw(st.booleans()),
                       "allAreas": draw(st.lists(st.sampled_from(["n1", "n2"]), unique=True))},
            "clusterCIDRs": ["10.244.0.0/16"]}
    return {"apiVersion": "netfence.dev/v1alpha1", "kind": "SegmentationModel",
            "metadata": {"name": "m"}, "spec": spec}


def _model(doc: dict[str, Any]) -> SegmentationModel:
    errors: list[str] = []
    m = convert(msgspec.convert(doc, SegmentationModelFile), lambda p, e: errors.append(e))
    assert not errors
    return m


def _oracle(m: SegmentationModel, src: Pod, dst: Pod, port: int) -> bool:
    """docs/generate.md 'Meaning', written independently of synth/verify.py (TCP only)."""
    d_area = m.area_of(dst.namespace)
    if d_area is None or src.key == dst.key:
        return True  # destinations outside the model are not governed; self always allowed
    endpoint = all(dst.labels.get(k) == v for k, v in m.endpoint_label)
    s_area = m.area_of(src.namespace)
    ok_kind = {k: (k not in m.endpoint_only or endpoint)
               for k in ("sameArea", "ingressController", "otherAreas")}
    if src.namespace == dst.namespace:
        return True
    if s_area is not None and s_area.name == d_area.name and ok_kind["sameArea"]:
        return True
    controllers = [d_area.name] + [a for ex in m.exceptions if ex.namespace == dst.namespace
                                   for a in ex.ingress_controllers_of]
    for name in controllers:
        area = m.area(name)
        ic = area.ingress_controller if area else None
        if ic is not None and src.namespace == ic.namespace and all(
                src.labels.get(k) == v for k, v in ic.labels) and ok_kind["ingressController"]:
            return True
    if s_area is not None and d_area.name in s_area.may_enter and ok_kind["otherAreas"]:
        return True
    if m.monitoring is not None and src.namespace == m.monitoring.pods.namespace and all(
            src.labels.get(k) == v for k, v in m.monitoring.pods.labels):
        return any(cp.name == m.monitoring.port and cp.port == port for cp in dst.ports)
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
    pods = [p for p in state.pods if not p.host_network]
    for s in pods:
        for d in pods:
            for port in (8080, 9102):
                assert an.query.allowed(s, d, Protocol.TCP, port) == _oracle(m, s, d, port), (
                    s.key, d.key, port)
