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
    PodPort,
    PodRef,
    SegmentationModel,
)
from netfence.sources.files import read_inputs
from netfence.sources.parse import parse_file
from netfence.sources.specs import _line_for

_LABEL = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_WORKLOAD = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$")


class Strict(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    pass


class PodsSpec(Strict):
    namespace: str
    pod_selector: dict[str, str] = {}


class PortSpec(Strict):
    port: int
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    end_port: int | None = None


class PodPortSpec(Strict):
    port: int | str
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    end_port: int | None = None


PodPortItem = int | str | PodPortSpec


class IngressControllerSpec(Strict):
    namespace: str
    pod_selector: dict[str, str] = {}
    clients: list[str] = []
    client_ports: list[PodPortItem] = []


class PlatformNamespaceSpec(Strict):
    name: str
    same_namespace: bool = False


class ProtectedSpec(Strict):
    namespace: str
    pod_selector: dict[str, str]


class NetworkSpec(Strict):
    name: str
    cidrs: list[str]
    ports: list[PortSpec] = []
    labels: dict[str, str] = {}


class AreaSpec(Strict):
    name: str
    namespaces: list[str]
    ingress_controller: IngressControllerSpec | None = None
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
    protected: list[str | ProtectedSpec] = []
    platform_namespaces: list[str | PlatformNamespaceSpec] = []


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


def _pod_ports(items: list[PodPortItem], path: str, err: Any) -> tuple[PodPort, ...]:
    out = []
    for i, item in enumerate(items):
        spec = item if isinstance(item, PodPortSpec) else PodPortSpec(port=item)
        where = f"{path}[{i}]" + (".port" if isinstance(item, PodPortSpec) else "")
        if isinstance(spec.port, str):
            if not (_PORT_NAME.match(spec.port) and len(spec.port) <= 15):
                err(where, f"invalid port name '{spec.port}' (IANA_SVC_NAME: at most 15 "
                    "lowercase letters, digits and single hyphens, with a letter)")
            if spec.end_port is not None:
                err(f"{path}[{i}].endPort", "a named port takes no endPort")
        elif not 1 <= spec.port <= 65535:
            err(where, f"port {spec.port} out of range 1-65535")
        elif spec.end_port is not None and not spec.port <= spec.end_port <= 65535:
            err(f"{path}[{i}].endPort",
                f"endPort {spec.end_port} must be between port and 65535")
        out.append(PodPort(Protocol(spec.protocol), spec.port, spec.end_port))
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

    def namespace_name(ns: str, where: str) -> None:
        if not _NAME.match(ns) or len(ns) > 63:
            err(where, f"invalid namespace name '{ns}' (RFC 1123 label)")

    def twice(names: list[str], what: str, where: str) -> None:
        for i, name in enumerate(names):
            if names.index(name) != i:
                err(where.format(i=i), f"{what} '{name}' is defined twice")

    twice(net_names, "network", "$.spec.networks[{i}].name")
    twice(area_names, "area", "$.spec.areas[{i}].name")
    if not _LABEL.match(spec.area_label) or len(spec.area_label.rpartition("/")[2]) > 63:
        err("$.spec.areaLabel", f"invalid label key '{spec.area_label}'")
    namespace_name(spec.dns.namespace, "$.spec.dns.namespace")
    if any(spec.dns.namespace in a.namespaces for a in spec.areas) or any(
            spec.dns.namespace == ex.namespace for ex in spec.exceptions):
        err("$.spec.dns.namespace", f"the DNS namespace '{spec.dns.namespace}' is in an area "
            "(or an exception): its default deny would cut name resolution; list it in "
            "platformNamespaces instead (it then accepts DNS queries from every pod)")
    for i, n in enumerate(spec.networks):
        ips = IPSet()
        if not n.cidrs:
            err(f"$.spec.networks[{i}].cidrs", "give at least one CIDR (an empty list would "
                "be an empty peer list: every destination)")
        for j, c in enumerate(n.cidrs):
            try:
                if "/" not in c:
                    raise ValueError(c)  # a bare address: write ADDR/32 (or /128)
                ips = ips | IPSet.parse(str(ipaddress.ip_network(c, strict=True)))
            except ValueError:
                err(f"$.spec.networks[{i}].cidrs[{j}]",
                    f"invalid CIDR '{c}' (ADDRESS/PREFIX, no host bits set)")
        networks.append(Network(n.name, tuple(n.cidrs), ips,
                                _ports(n.ports, f"$.spec.networks[{i}].ports", err),
                                _labels(n.labels, f"$.spec.networks[{i}].labels", err)))
    for i, c in enumerate(spec.cluster_cidrs):
        try:
            ipaddress.ip_network(c, strict=True)
        except ValueError:
            err(f"$.spec.clusterCIDRs[{i}]", f"invalid CIDR '{c}'")
    seen: dict[str, str] = {}
    platform = [p if isinstance(p, PlatformNamespaceSpec) else PlatformNamespaceSpec(p)
                for p in spec.platform_namespaces]
    platform_names = [p.name for p in platform]
    fenced_platform = set(platform_names)
    areas = []
    for i, a in enumerate(spec.areas):
        if not _NAME.match(a.name):
            err(f"$.spec.areas[{i}].name", f"invalid area name '{a.name}'")
        for j, ns in enumerate(a.namespaces):
            namespace_name(ns, f"$.spec.areas[{i}].namespaces[{j}]")
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
        clients: tuple[str, ...] = ()
        client_ports: tuple[PodPort, ...] = ()
        if a.ingress_controller is not None:
            spec_ic = a.ingress_controller
            where = f"$.spec.areas[{i}].ingressController"
            namespace_name(spec_ic.namespace, f"{where}.namespace")
            ic = PodRef(spec_ic.namespace, _labels(spec_ic.pod_selector,
                                                   f"{where}.podSelector", err))
            for j, net in enumerate(spec_ic.clients):
                if net not in net_names:
                    err(f"{where}.clients[{j}]", f"unknown network '{net}'")
            if (spec_ic.clients or spec_ic.client_ports) and (
                    spec_ic.namespace not in fenced_platform):
                err(f"{where}.{'clients' if spec_ic.clients else 'clientPorts'}",
                    f"the controller's namespace '{spec_ic.namespace}' is not in "
                    "platformNamespaces: its clients would mean nothing (the namespace is not "
                    "fenced)")
            clients = tuple(spec_ic.clients)
            client_ports = _pod_ports(spec_ic.client_ports, f"{where}.clientPorts", err)
        areas.append(Area(a.name, tuple(a.namespaces), ic, tuple(a.may_enter),
                          tuple(a.networks), clients, client_ports))
    for j, net in enumerate(spec.egress.all_areas):
        if net not in net_names:
            err(f"$.spec.egress.allAreas[{j}]", f"unknown network '{net}'")
    exceptions = []
    for i, ex in enumerate(spec.exceptions):
        namespace_name(ex.namespace, f"$.spec.exceptions[{i}].namespace")
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
        namespace_name(spec.monitoring.namespace, "$.spec.monitoring.namespace")
        if not (_PORT_NAME.match(spec.monitoring.port) and len(spec.monitoring.port) <= 15):
            err("$.spec.monitoring.port", f"invalid port name '{spec.monitoring.port}' "
                "(a named container port, IANA_SVC_NAME: at most 15 lowercase letters, "
                "digits and single hyphens, with a letter)")
        monitoring = Monitoring(PodRef(spec.monitoring.namespace, _labels(
            spec.monitoring.pod_selector, "$.spec.monitoring.podSelector", err)),
            spec.monitoring.port)
    model_ns = {ns for a in spec.areas for ns in a.namespaces} | {
        ex.namespace for ex in spec.exceptions}
    protected: list[str] = []
    protected_paths: list[str] = []
    protected_pods: list[PodRef] = []
    for i, ref in enumerate(spec.protected):
        where = f"$.spec.protected[{i}]"
        if isinstance(ref, ProtectedSpec):
            labels = _labels(ref.pod_selector, f"{where}.podSelector", err)
            if len(labels) != 1:
                err(f"{where}.podSelector", "give exactly one label: the zone rules leave the "
                    "protected pods out with a NotIn on it (a NotIn cannot exclude pods by "
                    "several labels at once)")
            if ref.namespace not in model_ns:
                err(f"{where}.namespace", f"namespace '{ref.namespace}' is in no area of the "
                    "model: protecting pods there means nothing")
            protected_pods.append(PodRef(ref.namespace, labels))
            continue
        ns, _, name = ref.partition("/")
        if not (_NAME.match(ns) and name and _WORKLOAD.match(name)):
            err(where, f"'{ref}' is not NS/NAME (a namespace and a workload name)")
        elif ns not in model_ns:
            err(where, f"namespace '{ns}' is in no area of the model: "
                "protecting a workload there means nothing")
        protected.append(ref)
        protected_paths.append(where)
    for i, ns in enumerate(platform_names):
        where = f"$.spec.platformNamespaces[{i}]"
        if isinstance(spec.platform_namespaces[i], PlatformNamespaceSpec):
            where += ".name"
        if not _NAME.match(ns):
            err(where, f"invalid namespace name '{ns}'")
        elif ns in model_ns:
            err(where, f"namespace '{ns}' is in an area (or an exception) of the model; "
                "platform namespaces are the others")
        elif platform_names.index(ns) != i:
            err(where, f"namespace '{ns}' is listed twice")
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
        protected=tuple(protected), protected_paths=tuple(protected_paths),
        protected_pods=tuple(protected_pods),
        platform_namespaces=tuple(platform_names),
        platform_same_namespace=frozenset(p.name for p in platform if p.same_namespace))


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
                        SourceRef(tf.name, _line_for(doc.data, path) or doc.line, doc.index)
                        for path in model.protected_paths))
                out.append(model)
    return out, diags
