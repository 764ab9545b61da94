"""Decode intents files (msgspec, strict): ServiceIntents, ServiceTypeGroup and Otterize
ClientIntents. Errors name the JSON path of the field, the file and the line.

Otterize ClientIntents (group ``k8s.otterize.com``) are imported into ServiceIntents. The field
names follow otterize/intents-operator's Go types (the CRDs are generated from them):

- ``v2beta1`` / ``v2alpha1`` (``src/operator/api/v2beta1/clientintents_types.go``):
  ``spec.workload {name, kind}`` and ``spec.targets[]``, each target exactly one of
  ``kubernetes {name, kind, http}``, ``service {name, http}``, ``kafka {name, topics}``,
  ``sql {name, privileges}``, ``aws {arn, actions}``, ``gcp {resource, permissions}``,
  ``azure {scope, roles, keyVaultPolicy, actions, dataActions}``,
  ``internet {domains, ips, ports}``. Target names are ``"svc"`` or ``"svc.namespace"``
  (``GetTargetServerNamespace`` splits on the dot; no dot means the ClientIntents' own
  namespace); ``kubernetes.kind: Service`` or a ``service`` target means a Kubernetes Service.
- ``v1alpha3`` (``src/operator/api/v1alpha3/clientintents_types.go``): ``spec.service {name}``
  and ``spec.calls[] {name, type, kafkaTopics, HTTPResources, databaseResources, awsActions,
  gcpPermissions, azureRoles, azureKeyVaultPermissions, internet}``; ``type`` is one of http,
  kafka, database, aws, gcp, azure, internet; a ``svc:`` name prefix means a Kubernetes Service.
- ``v1alpha2`` (``src/operator/api/v1alpha2/intents_types.go``): ``spec.service {name}`` and
  ``spec.calls[] {name, type (http|kafka), topics, resources}``.

What is network-relevant is mapped (the callee workload or Service, Kafka brokers as a
workload, internet IPs and ports as egress CIDRs); the rest (HTTP paths and methods, Kafka
topics, SQL privileges, cloud IAM, internet domain names) is reported as an ``unsupported``
warning at its JSON path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from netfence.errors import Diagnostic, Severity, SourceRef
from netfence.model.intents import (
    ADDRESSES,
    SERVICE,
    WORKLOAD,
    Call,
    IntentSet,
    PortRef,
    Ref,
    ServiceIntents,
    ServiceTypeGroup,
)
from netfence.model.ports import Protocol
from netfence.sources.files import read_inputs
from netfence.sources.parse import Document, parse_file
from netfence.sources.specs import _line_for

_PATH = re.compile(r"\$((?:\.[A-Za-z_]\w*|\[\d+\])*)")
_DNS1123 = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NAME = re.compile(rf"^{_DNS1123}$")
_NSNAME = re.compile(rf"^{_DNS1123}/{_DNS1123}(\.{_DNS1123})*$")
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$")
KINDS = ("ServiceIntents", "ServiceTypeGroup", "ClientIntents")
OTTERIZE_GROUP = "k8s.otterize.com"
OTTERIZE_TARGETS = ("v2beta1", "v2alpha1")
OTTERIZE_CALLS = ("v1alpha3", "v1alpha2")

Err = Callable[[str, str], None]


class Strict(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    pass


class Meta(msgspec.Struct):
    name: str
    namespace: str | None = None


# -- netfence.dev/v1alpha1 ServiceIntents and ServiceTypeGroup --------------------------------

class PortSpec(Strict):
    port: int | str
    protocol: Literal["TCP", "UDP", "SCTP"] | None = None
    end_port: int | None = None


PortItem = int | str | PortSpec


class CallSpec(Strict):
    service: str | None = None
    cidrs: list[str] = []
    except_: list[str] = msgspec.field(default_factory=list, name="except")
    ports: list[PortItem] = []


class IntentsSpec(Strict):
    service: str
    calls: list[CallSpec] = []


class ServiceIntentsFile(Strict):
    api_version: Literal["netfence.dev/v1alpha1"]
    kind: Literal["ServiceIntents"]
    metadata: Meta
    spec: IntentsSpec


class GroupSpec(Strict):
    members: list[str]
    calls: Literal["all"] | list[str]
    ports: list[PortItem] = []


class ServiceTypeGroupFile(Strict):
    api_version: Literal["netfence.dev/v1alpha1"]
    kind: Literal["ServiceTypeGroup"]
    metadata: Meta
    spec: GroupSpec


def schema() -> dict[str, Any]:
    """The published JSON Schema of intents documents (either kind)."""
    refs, defs = msgspec.json.schema_components([ServiceIntentsFile, ServiceTypeGroupFile])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "netfence intents (ServiceIntents, ServiceTypeGroup)",
            "anyOf": list(refs), "$defs": defs}


# -- Otterize ClientIntents -------------------------------------------------------------------

class OStrict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class OWorkload(OStrict):
    name: str
    kind: str | None = None


class ONamed(OStrict):
    name: str
    kind: str | None = None
    http: list[Any] | None = None
    topics: list[Any] | None = None
    privileges: list[Any] | None = None


class OInternet(OStrict):
    domains: list[str] | None = None
    ips: list[str] | None = None
    ports: list[int] | None = None


class OTarget(OStrict):
    kubernetes: ONamed | None = None
    service: ONamed | None = None
    kafka: ONamed | None = None
    sql: ONamed | None = None
    aws: dict[str, Any] | None = None
    gcp: dict[str, Any] | None = None
    azure: dict[str, Any] | None = None
    internet: OInternet | None = None


class OTargetsSpec(OStrict):
    workload: OWorkload
    targets: list[OTarget] = []


class OCall(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    kind: str | None = None
    type: str | None = None
    kafkaTopics: list[Any] | None = None
    topics: list[Any] | None = None
    HTTPResources: list[Any] | None = None
    resources: list[Any] | None = None
    databaseResources: list[Any] | None = None
    awsActions: list[Any] | None = None
    gcpPermissions: list[Any] | None = None
    azureRoles: list[Any] | None = None
    azureKeyVaultPermissions: dict[str, Any] | None = None
    internet: OInternet | None = None


class OCallsSpec(OStrict):
    service: OWorkload
    calls: list[OCall] = []


class OTargetsFile(msgspec.Struct):
    apiVersion: str
    kind: str
    metadata: Meta
    spec: OTargetsSpec
    status: Any = None


class OCallsFile(msgspec.Struct):
    apiVersion: str
    kind: str
    metadata: Meta
    spec: OCallsSpec
    status: Any = None


# -- conversion ---------------------------------------------------------------------------------

def _port_item(item: PortItem, path: str, err: Err) -> PortRef | None:
    proto: Protocol | None = None
    end: int | None = None
    value: int | str
    if isinstance(item, PortSpec):
        value = item.port
        proto = Protocol(item.protocol) if item.protocol is not None else None
        end = item.end_port
        if end is not None and not isinstance(value, int):
            err(f"{path}.endPort", "endPort needs a numeric port")
            return None
        vpath = f"{path}.port"
    else:
        value = item
        vpath = path
    if isinstance(value, bool):
        err(vpath, f"port must be a number or a name, not {str(value).lower()}")
        return None
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            err(vpath, f"port {value} out of range 1-65535")
            return None
        if end is not None and not value <= end <= 65535:
            err(f"{path}.endPort", f"endPort {end} must be between port and 65535")
            return None
        return PortRef(port=value, end_port=end, protocol=proto)
    if value.isdigit():  # "8080" written as a string: the number
        return _port_item(PortSpec(int(value), item.protocol, item.end_port)
                          if isinstance(item, PortSpec) else int(value), path, err)
    if len(value) > 15 or not _PORT_NAME.match(value):
        err(vpath, f"invalid port name '{value}' (a container port name: at most 15 "
            "lowercase letters, digits and single dashes)")
        return None
    return PortRef(name=value, protocol=proto)


def _ports(d: _Doc, items: list[PortItem], path: str,
           ) -> tuple[tuple[PortRef, ...], tuple[Ref, ...]]:
    """The valid, distinct ports and where each was written."""
    out: list[PortRef] = []
    refs: list[Ref] = []
    for i, item in enumerate(items):
        got = _port_item(item, f"{path}[{i}]", d.err)
        if got is not None and got not in out:
            out.append(got)
            refs.append(d.ref(str(got), f"{path}[{i}]"))
    return tuple(out), tuple(refs)


def _cidr(text: str) -> str | None:
    """A CIDR in canonical form (a plain address becomes /32 or /128); None if invalid."""
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError:
        return None


def _nsname(text: str, path: str, err: Err) -> bool:
    if not _NSNAME.match(text):
        err(path, f"'{text}' is not NS/NAME (a namespace and a workload name)")
        return False
    return True


class _Doc:
    """One document being converted: makes Refs and diagnostics with file, line, path."""

    def __init__(self, doc: Document, diags: list[Diagnostic]) -> None:
        self.doc = doc
        self.diags = diags
        self.errors = 0

    def src(self, path: str) -> SourceRef:
        return SourceRef(self.doc.file, _line_for(self.doc.data, path) or self.doc.line,
                         self.doc.index)

    def ref(self, text: str, path: str) -> Ref:
        return Ref(text, path, self.src(path))

    def err(self, path: str, msg: str) -> None:
        self.errors += 1
        self.diags.append(Diagnostic(Severity.ERROR, "intents", f"{path}: {msg}",
                                     self.src(path)))

    def warn(self, path: str, msg: str) -> None:
        self.diags.append(Diagnostic(Severity.WARNING, "unsupported", f"{path}: {msg}",
                                     self.src(path)))


def _service_intents(d: _Doc, f: ServiceIntentsFile) -> ServiceIntents | None:
    _nsname(f.spec.service, "$.spec.service", d.err)
    calls = []
    for i, c in enumerate(f.spec.calls):
        path = f"$.spec.calls[{i}]"
        ports, port_refs = _ports(d, c.ports, f"{path}.ports")
        if (c.service is None) == (not c.cidrs):
            d.err(path, "a call names exactly one of 'service' (NS/NAME) or 'cidrs'")
            continue
        if c.service is not None:
            if c.except_:
                d.err(f"{path}.except", "'except' goes with 'cidrs'")
            if _nsname(c.service, f"{path}.service", d.err):
                calls.append(Call(d.ref(c.service, f"{path}.service"), WORKLOAD, ports,
                                  port_refs=port_refs))
            continue
        cidrs = _cidrs(d, c.cidrs, c.except_, path)
        if any(p.name is not None for p in ports):
            d.err(f"{path}.ports", "named ports cannot be resolved on addresses outside the "
                  "cluster: use numbers")
        if cidrs is not None:
            calls.append(Call(d.ref(",".join(c.cidrs), f"{path}.cidrs"), ADDRESSES, ports,
                              cidrs[0], cidrs[1], port_refs))
    return ServiceIntents(f.metadata.name, d.ref(f.spec.service, "$.spec.service"),
                          tuple(calls), d.src("$"))


def _cidrs(d: _Doc, cidrs: list[str], excepts: list[str],
           path: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    good: list[str] = []
    bad = False
    for j, c in enumerate(cidrs):
        got = _cidr(c)
        if got is None:
            d.err(f"{path}.cidrs[{j}]", f"invalid CIDR '{c}'")
            bad = True
        elif got not in good:
            good.append(got)
    ex: list[str] = []
    for j, c in enumerate(excepts):
        got = _cidr(c)
        if got is None:
            d.err(f"{path}.except[{j}]", f"invalid CIDR '{c}'")
            bad = True
            continue
        net = ipaddress.ip_network(got)
        if not any(net.version == ipaddress.ip_network(g).version and net.subnet_of(
                ipaddress.ip_network(g)) and net != ipaddress.ip_network(g)  # type: ignore[arg-type]
                for g in good):
            d.err(f"{path}.except[{j}]", f"'{c}' is not strictly inside one of the cidrs")
            bad = True
            continue
        ex.append(got)
    return None if bad else (tuple(good), tuple(ex))


def _group(d: _Doc, f: ServiceTypeGroupFile) -> ServiceTypeGroup:
    members = []
    for i, m in enumerate(f.spec.members):
        if _nsname(m, f"$.spec.members[{i}]", d.err):
            members.append(d.ref(m, f"$.spec.members[{i}]"))
    if not f.spec.members:
        d.err("$.spec.members", "a group needs at least one member")
    calls = []
    if isinstance(f.spec.calls, list):
        for i, c in enumerate(f.spec.calls):
            if _nsname(c, f"$.spec.calls[{i}]", d.err):
                calls.append(d.ref(c, f"$.spec.calls[{i}]"))
    if not _NAME.match(f.metadata.name):
        d.err("$.metadata.name", f"invalid group name '{f.metadata.name}' (a DNS label: it "
              "names the generated policies)")
    ports, port_refs = _ports(d, f.spec.ports, "$.spec.ports")
    return ServiceTypeGroup(f.metadata.name, tuple(members), f.spec.calls == "all",
                            tuple(calls), ports, d.src("$"), port_refs)


def _split_target(name: str, default_ns: str) -> tuple[str, str]:
    """Otterize ``svc`` / ``svc.namespace`` (``GetTargetServerNamespace``)."""
    parts = name.split(".")
    return (parts[1] if len(parts) > 1 else default_ns), parts[0]


def _otterize_target(d: _Doc, ns: str, name: str, kind: str | None, path: str,
                     calls: list[Call]) -> None:
    is_service = kind == "Service" or name.startswith("svc:")
    name = name.removeprefix("svc:")
    tns, tname = _split_target(name, ns)
    text = f"{tns}/{tname}"
    if not _nsname(text, path, d.err):
        return
    calls.append(Call(d.ref(text, path), SERVICE if is_service else WORKLOAD))


def _otterize_internet(d: _Doc, net: OInternet, path: str, calls: list[Call]) -> None:
    if net.domains:
        d.warn(f"{path}.domains", "domain names cannot be expressed in a NetworkPolicy: "
               "ignored (declare their addresses under 'ips')")
    if not net.ips:
        if not net.domains:
            d.warn(path, "an internet target without ips: nothing to allow")
        return
    cidrs: list[str] = []
    for j, ip in enumerate(net.ips):
        got = _cidr(ip)
        if got is None:
            d.err(f"{path}.ips[{j}]", f"invalid IP or CIDR '{ip}'")
        elif got not in cidrs:
            cidrs.append(got)
    ports = []
    for j, p in enumerate(net.ports or []):
        if not 1 <= p <= 65535:
            d.err(f"{path}.ports[{j}]", f"port {p} out of range 1-65535")
        else:
            ports.append(PortRef(port=p))
    if cidrs:
        calls.append(Call(d.ref(",".join(cidrs), f"{path}.ips"), ADDRESSES, tuple(ports),
                          tuple(cidrs)))


def _client_intents_targets(d: _Doc, f: OTargetsFile, ns: str) -> ServiceIntents:
    calls: list[Call] = []
    for i, t in enumerate(f.spec.targets):
        path = f"$.spec.targets[{i}]"
        set_fields = [k for k in OTarget.__struct_fields__ if getattr(t, k) is not None]
        if len(set_fields) != 1:
            d.err(path, "a target has exactly one of " + ", ".join(OTarget.__struct_fields__))
            continue
        which = set_fields[0]
        if which in ("kubernetes", "service", "kafka"):
            named: ONamed = getattr(t, which)
            kind = "Service" if which == "service" else named.kind
            _otterize_target(d, ns, named.name, kind, f"{path}.{which}.name", calls)
            if named.http:
                d.warn(f"{path}.{which}.http", "HTTP paths and methods are layer 7: the "
                       "NetworkPolicy allows the whole callee")
            if named.topics:
                d.warn(f"{path}.{which}.topics", "Kafka topics and operations are Kafka ACLs:"
                       " the NetworkPolicy allows the brokers' pods on every port")
            if named.privileges:
                d.warn(f"{path}.{which}.privileges", "ignored")
        elif which == "internet":
            assert t.internet is not None
            _otterize_internet(d, t.internet, f"{path}.internet", calls)
        else:
            d.warn(f"{path}.{which}", f"{which} targets are access rights outside the "
                   "cluster network (database users, cloud IAM): not a NetworkPolicy; ignored")
    wl = f.spec.workload
    text = f"{ns}/{wl.name}"
    _nsname(text, "$.spec.workload.name", d.err)
    return ServiceIntents(f"{ns}/{f.metadata.name}", d.ref(text, "$.spec.workload.name"),
                          tuple(calls), d.src("$"), "ClientIntents")


def _client_intents_calls(d: _Doc, f: OCallsFile, ns: str) -> ServiceIntents:
    calls: list[Call] = []
    for i, c in enumerate(f.spec.calls):
        path = f"$.spec.calls[{i}]"
        kind = c.type or "http"
        if kind in ("http", "kafka"):
            if not c.name:
                d.err(f"{path}.name", f"a {kind} call needs a name")
                continue
            _otterize_target(d, ns, c.name, c.kind, f"{path}.name", calls)
            for field, what in (("HTTPResources", "HTTP paths and methods are layer 7"),
                                ("resources", "HTTP paths and methods are layer 7"),
                                ("kafkaTopics", "Kafka topics are Kafka ACLs"),
                                ("topics", "Kafka topics are Kafka ACLs")):
                if getattr(c, field):
                    d.warn(f"{path}.{field}", f"{what}: the NetworkPolicy allows the callee "
                           "on every port")
        elif kind == "internet":
            if c.internet is None:
                d.err(f"{path}.internet", "an internet call needs 'internet'")
                continue
            _otterize_internet(d, c.internet, f"{path}.internet", calls)
        elif kind in ("database", "aws", "gcp", "azure"):
            d.warn(f"{path}.type", f"{kind} calls are access rights outside the cluster "
                   "network (database users, cloud IAM): not a NetworkPolicy; ignored")
        else:
            d.err(f"{path}.type", f"unknown call type '{kind}' (http, kafka, database, aws, "
                  "gcp, azure, internet)")
    text = f"{ns}/{f.spec.service.name}"
    _nsname(text, "$.spec.service.name", d.err)
    return ServiceIntents(f"{ns}/{f.metadata.name}", d.ref(text, "$.spec.service.name"),
                          tuple(calls), d.src("$"), "ClientIntents")


def _client_intents(d: _Doc) -> ServiceIntents | None:
    data = d.doc.data
    api = str(data.get("apiVersion", ""))
    group, _, version = api.partition("/")
    if group != OTTERIZE_GROUP or version not in (*OTTERIZE_TARGETS, *OTTERIZE_CALLS):
        d.err("$.apiVersion", f"unsupported ClientIntents apiVersion '{api}' (supported: "
              + ", ".join(f"{OTTERIZE_GROUP}/{v}" for v in (*OTTERIZE_TARGETS, *OTTERIZE_CALLS))
              + ")")
        return None
    meta = data.get("metadata")
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    if not ns:
        d.warn("$.metadata", "no metadata.namespace: the ClientIntents is read as namespace "
               "'default' (kubectl would use the context's namespace)")
        ns = "default"
    if version in OTTERIZE_TARGETS:
        t = _decode(d, OTargetsFile)
        return _client_intents_targets(d, t, str(ns)) if t is not None else None
    c = _decode(d, OCallsFile)
    return _client_intents_calls(d, c, str(ns)) if c is not None else None


def _decode(d: _Doc, typ: type[Any]) -> Any:
    try:
        return msgspec.convert(d.doc.data, typ)
    except msgspec.ValidationError as exc:
        text = str(exc)
        m = _PATH.search(text)
        d.err(m.group(0) if m else "$", text)
        return None


def load_intents(paths: list[str], *, require: bool = True,
                 ) -> tuple[IntentSet, list[Diagnostic]]:
    """Every intents document in ``paths``; other kinds (a SegmentationModel) are left to their
    loaders. Errors carry file, line and the JSON path; ``unsupported`` parts are warnings."""
    files, diags = read_inputs(paths, recursive=True)
    intents: list[ServiceIntents] = []
    groups: list[ServiceTypeGroup] = []
    seen: dict[tuple[str, str], SourceRef] = {}
    for tf in files:
        docs, d2 = parse_file(tf)
        diags.extend(d2)
        for doc in docs:
            if not isinstance(doc.data, dict) or doc.data.get("kind") not in KINDS:
                continue
            d = _Doc(doc, diags)
            kind = doc.data["kind"]
            got: ServiceIntents | ServiceTypeGroup | None = None
            if kind == "ClientIntents":
                got = _client_intents(d)
            elif kind == "ServiceIntents":
                f = _decode(d, ServiceIntentsFile)
                got = _service_intents(d, f) if f is not None else None
            else:
                g = _decode(d, ServiceTypeGroupFile)
                got = _group(d, g) if g is not None else None
            if got is None or d.errors:
                continue
            key = (kind, got.name)
            if key in seen:
                d.err("$.metadata.name", f"{kind} '{got.name}' is already defined at "
                      f"{seen[key].location()}")
                continue
            seen[key] = got.source
            if isinstance(got, ServiceTypeGroup):
                groups.append(got)
            else:
                intents.append(got)
    if require and not intents and not groups and not any(
            x.severity >= Severity.ERROR for x in diags):
        diags.append(Diagnostic(Severity.ERROR, "intents", "no ServiceIntents, "
                                "ServiceTypeGroup or ClientIntents document found",
                                SourceRef(", ".join(paths))))
    return IntentSet(tuple(intents), tuple(groups)), diags
