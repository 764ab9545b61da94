"""Decode SegmentationModel files (msgspec, strict): errors name the JSON path of the field.

The msgspec Structs here are also the source of the published JSON Schema
(``schemas/segmentation-model.schema.json``, written by ``netfence generate --schema``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Any, Literal

import msgspec

from netfence.errors import Diagnostic, Severity, SourceRef
from netfence.model.net import IPSet
from netfence.model.ports import Protocol
from netfence.model.zones import (
    ENDPOINT_KINDS,
    Area,
    Exception_,
    Monitoring,
    NetPort,
    Network,
    PodRef,
    SegmentationModel,
)
from netfence.sources.files import read_inputs
from netfence.sources.parse import parse_file
from netfence.sources.specs import _line_for

_LABEL = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_WORKLOAD = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class Strict(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    pass


class PodsSpec(Strict):
    namespace: str
    pod_selector: dict[str, str] = {}


class PortSpec(Strict):
    port: int
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    end_port: int | None = None


class NetworkSpec(Strict):
    name: str
    cidrs: list[str]
    ports: list[PortSpec] = []
    labels: dict[str, str] = {}


class AreaSpec(Strict):
    name: str
    namespaces: list[str]
    ingress_controller: PodsSpec | None = None
    may_enter: list[str] = []
    networks: list[str] = []


class MonitoringSpec(Strict):
    namespace: str
    pod_selector: dict[str, str]
    port: str


class EgressSpec(Strict):
    public_internet: bool = False
    public_ports: list[PortSpec] = []
    all_areas: list[str] = []


class ExceptionSpec(Strict):
    name: str
    namespace: str
    area: str
    allow_ingress_from_ingress_controller_of: list[str] = []


class ModelSpec(Strict):
    areas: list[AreaSpec]
    dns: PodsSpec
    area_label: str = "networkArea"
    endpoint_only: list[Literal["sameArea", "ingressController", "otherAreas"]] = []
    endpoint_label: dict[str, str] = msgspec.field(default_factory=lambda: {"endpoint": "true"})
    cluster_cidrs: list[str] = msgspec.field(default_factory=list, name="clusterCIDRs")
    monitoring: MonitoringSpec | None = None
    networks: list[NetworkSpec] = []
    egress: EgressSpec = msgspec.field(default_factory=EgressSpec)
    exceptions: list[ExceptionSpec] = []
    protected: list[str] = []


class Meta(msgspec.Struct):
    name: str


class SegmentationModelFile(Strict):
    api_version: Literal["netfence.dev/v1alpha1"]
    kind: Literal["SegmentationModel"]
    metadata: Meta
    spec: ModelSpec


def schema() -> dict[str, Any]:
    """The published JSON Schema of SegmentationModel files."""
    out: dict[str, Any] = msgspec.json.schema(SegmentationModelFile)
    return out


_PATH = re.compile(r"\$((?:\.[A-Za-z_]\w*|\[\d+\])*)")


def _ports(specs: list[PortSpec], path: str, err: Any) -> tuple[NetPort, ...]:
    out = []
    for i, p in enumerate(specs):
        if not 1 <= p.port <= 65535:
            err(f"{path}[{i}].port", f"port {p.port} out of range 1-65535")
        if p.end_port is not None and not p.port <= p.end_port <= 65535:
            err(f"{path}[{i}].endPort", f"endPort {p.end_port} must be between port and 65535")
        out.append(NetPort(Protocol(p.protocol), p.port, p.end_port))
    return tuple(out)


def _labels(d: dict[str, str], path: str, err: Any) -> tuple[tuple[str, str], ...]:
    for k, v in d.items():
        if not _LABEL.match(k):
            err(f"{path}.{k}", f"invalid label key '{k}'")
        if (v and not _LABEL.match(v)) or len(v) > 63:
            err(f"{path}.{k}", f"invalid label value '{v}'")
    return tuple(sorted(d.items()))


def convert(doc: SegmentationModelFile, err: Any) -> SegmentationModel:
    """Cross-field validation (references, CIDRs, names) and conversion to the model."""
    spec = doc.spec
    area_names = [a.name for a in spec.areas]
    net_names = [n.name for n in spec.networks]
    networks = []
    for i, n in enumerate(spec.networks):
        ips = IPSet()
        for j, c in enumerate(n.cidrs):
            try:
                ips = ips | IPSet.parse(str(ipaddress.ip_network(c, strict=True)))
            except ValueError:
                err(f"$.spec.networks[{i}].cidrs[{j}]", f"invalid CIDR '{c}'")
        networks.append(Network(n.name, tuple(n.cidrs), ips,
                                _ports(n.ports, f"$.spec.networks[{i}].ports", err),
                                _labels(n.labels, f"$.spec.networks[{i}].labels", err)))
    for i, c in enumerate(spec.cluster_cidrs):
        try:
            ipaddress.ip_network(c, strict=True)
        except ValueError:
            err(f"$.spec.clusterCIDRs[{i}]", f"invalid CIDR '{c}'")
    seen: dict[str, str] = {}
    areas = []
    for i, a in enumerate(spec.areas):
        if not _NAME.match(a.name):
            err(f"$.spec.areas[{i}].name", f"invalid area name '{a.name}'")
        for j, ns in enumerate(a.namespaces):
            if ns in seen:
                err(f"$.spec.areas[{i}].namespaces[{j}]",
                    f"namespace '{ns}' is already in area '{seen[ns]}'")
            seen[ns] = a.name
        for j, other in enumerate(a.may_enter):
            if other not in area_names:
                err(f"$.spec.areas[{i}].mayEnter[{j}]", f"unknown area '{other}'")
            elif other == a.name:
                err(f"$.spec.areas[{i}].mayEnter[{j}]", f"area '{other}' cannot list itself "
                    "(same-area traffic is the sameArea rule)")
        for j, net in enumerate(a.networks):
            if net not in net_names:
                err(f"$.spec.areas[{i}].networks[{j}]", f"unknown network '{net}'")
        ic = None
        if a.ingress_controller is not None:
            ic = PodRef(a.ingress_controller.namespace, _labels(
                a.ingress_controller.pod_selector,
                f"$.spec.areas[{i}].ingressController.podSelector", err))
        areas.append(Area(a.name, tuple(a.namespaces), ic, tuple(a.may_enter),
                          tuple(a.networks)))
    for j, net in enumerate(spec.egress.all_areas):
        if net not in net_names:
            err(f"$.spec.egress.allAreas[{j}]", f"unknown network '{net}'")
    exceptions = []
    for i, ex in enumerate(spec.exceptions):
        if ex.area not in area_names:
            err(f"$.spec.exceptions[{i}].area", f"unknown area '{ex.area}'")
        for j, other in enumerate(ex.allow_ingress_from_ingress_controller_of):
            if other not in area_names:
                err(f"$.spec.exceptions[{i}].allowIngressFromIngressControllerOf[{j}]",
                    f"unknown area '{other}'")
        exceptions.append(Exception_(ex.name, ex.namespace, ex.area,
                                     tuple(ex.allow_ingress_from_ingress_controller_of)))
    monitoring = None
    if spec.monitoring is not None:
        monitoring = Monitoring(PodRef(spec.monitoring.namespace, _labels(
            spec.monitoring.pod_selector, "$.spec.monitoring.podSelector", err)),
            spec.monitoring.port)
    model_ns = {ns for a in spec.areas for ns in a.namespaces} | {
        ex.namespace for ex in spec.exceptions}
    for i, ref in enumerate(spec.protected):
        ns, _, name = ref.partition("/")
        if not (_NAME.match(ns) and name and _WORKLOAD.match(name)):
            err(f"$.spec.protected[{i}]", f"'{ref}' is not NS/NAME (a namespace and a workload "
                "name)")
        elif ns not in model_ns:
            err(f"$.spec.protected[{i}]", f"namespace '{ns}' is in no area of the model: "
                "protecting a workload there means nothing")
    assert set(spec.endpoint_only) <= set(ENDPOINT_KINDS)
    return SegmentationModel(
        name=doc.metadata.name, area_label=spec.area_label, areas=tuple(areas),
        dns=PodRef(spec.dns.namespace, _labels(spec.dns.pod_selector,
                                                "$.spec.dns.podSelector", err)),
        networks=tuple(networks), monitoring=monitoring,
        endpoint_only=frozenset(spec.endpoint_only),
        endpoint_label=_labels(spec.endpoint_label, "$.spec.endpointLabel", err),
        cluster_cidrs=tuple(spec.cluster_cidrs), public_internet=spec.egress.public_internet,
        public_ports=_ports(spec.egress.public_ports, "$.spec.egress.publicPorts", err),
        all_areas=tuple(spec.egress.all_areas), exceptions=tuple(exceptions),
        protected=tuple(spec.protected))


def load_models(paths: list[str]) -> tuple[list[SegmentationModel], list[Diagnostic]]:
    """Every SegmentationModel document in ``paths``; other kinds are left to their loaders."""
    files, diags = read_inputs(paths, recursive=True)
    out: list[SegmentationModel] = []
    for tf in files:
        docs, d2 = parse_file(tf)
        diags.extend(d2)
        for doc in docs:
            if not isinstance(doc.data, dict) or doc.data.get("kind") != "SegmentationModel":
                continue

            def err(path: str, msg: str, _doc: Any = doc, _tf: Any = tf) -> None:
                line = _line_for(_doc.data, path) or _doc.line
                diags.append(Diagnostic(Severity.ERROR, "model", f"{path}: {msg}",
                                        SourceRef(_tf.name, line, _doc.index)))
            try:
                parsed = msgspec.convert(doc.data, SegmentationModelFile)
            except msgspec.ValidationError as exc:
                text = str(exc)
                m = _PATH.search(text)
                path = m.group(0) if m else "$"
                err(path, text)
                continue
            before = len(diags)
            model = convert(parsed, err)
            if len(diags) == before:
                if model.protected:
                    model = dataclasses.replace(model, protected_sources=tuple(
                        SourceRef(tf.name, _line_for(doc.data, f"$.spec.protected[{i}]")
                                  or doc.line, doc.index)
                        for i in range(len(model.protected))))
                out.append(model)
    return out, diags
