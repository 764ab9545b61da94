"""ServiceIntents -> NetworkPolicies, and the exact self-check of the result.

Pure: resolution reads a ``ClusterState`` (workloads, pods, Services), generation returns plain
dicts in a deterministic order, verification reads an ``Evaluation``. The policies per callee,
per caller and per fenced namespace are documented in docs/generate.md.

Workloads are ``NS/NAME`` (a Deployment, StatefulSet, DaemonSet, Job, CronJob... or a bare
pod). Their pods are selected by a stable subset of the labels all their pods share:
``app.kubernetes.io/name`` / ``app`` (and more of the usual keys if needed) when that subset
selects exactly the workload's pods in its namespace, else every stable label; a workload that
no label subset tells apart from another is an error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netfence.engine.classes import EndpointClass, Universe, bits
from netfence.engine.evaluate import Evaluation
from netfence.engine.query import Query
from netfence.errors import Diagnostic, Severity, SourceRef
from netfence.model.cluster import METADATA_NAME, ClusterState, Pod, Service
from netfence.model.intents import (
    ADDRESSES,
    SERVICE,
    Call,
    IntentSet,
    PortRef,
    Ref,
    ServiceIntents,
)
from netfence.model.net import IPSet
from netfence.model.ports import PortSet, Protocol
from netfence.model.zones import PodRef
from netfence.synth.verify import address_mismatches
from netfence.synth.zones import network_policy

MANAGED_BY = {"app.kubernetes.io/managed-by": "netfence"}
ANNOTATION = "netfence.dev/generated-from"
# labels the controllers add per pod or per revision: never part of a generated selector
UNSTABLE = frozenset({
    "pod-template-hash", "controller-revision-hash", "pod-template-generation",
    "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index",
    "controller-uid", "batch.kubernetes.io/controller-uid", "job-name",
    "batch.kubernetes.io/job-name"})
PREFERRED = ("app.kubernetes.io/name", "app", "app.kubernetes.io/instance",
             "app.kubernetes.io/component", "k8s-app", "name", "component")
DNS_PORTS = (PortRef(port=53, protocol=Protocol.UDP), PortRef(port=53, protocol=Protocol.TCP))
MAX_NAME = 253
OUTSIDE = "outside the zone model"


# -- workloads --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, eq=False)
class Workload:
    """A resolved ``NS/NAME``: its pods and the labels generated policies select them by."""

    namespace: str
    name: str
    kind: str
    pods: tuple[Pod, ...]
    selector: tuple[tuple[str, str], ...]
    key: str = field(default="", compare=False)  # NS/NAME

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.namespace}/{self.name}")

    def peer(self) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {METADATA_NAME: self.namespace}},
                "podSelector": {"matchLabels": dict(self.selector)}}


class WorkloadIndex:
    """Workloads, pods and Services of a cluster state by name (as ``api.resolve`` does)."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.by_ns: dict[str, list[Pod]] = {}
        self.groups: dict[tuple[str, str], list[Pod]] = {}
        for p in state.pods:
            self.by_ns.setdefault(p.namespace, []).append(p)
            self.groups.setdefault((p.workload.namespace, p.workload.name), []).append(p)
        self.services: dict[tuple[str, str], Service] = {
            (s.namespace, s.name): s for s in state.services}
        self._cache: dict[str, Workload | str] = {}

    def workload(self, text: str) -> Workload | str:
        """The workload ``NS/NAME``, or an error message naming it."""
        got = self._cache.get(text)
        if got is None:
            got = self._workload(text)
            self._cache[text] = got
        return got

    def _workload(self, text: str) -> Workload | str:
        ns, _, name = text.partition("/")
        pods = self.groups.get((ns, name))
        if not pods:
            owner = next((p.workload for p in self.by_ns.get(ns, ()) if p.name == name), None)
            if owner is not None:
                return (f"'{text}' is a pod of {owner.kind} {owner.namespace}/{owner.name}: "
                        "name the workload")
            if ns not in self.state.namespaces and ns not in self.by_ns:
                return f"unknown workload '{text}': no namespace '{ns}' in the cluster manifests"
            return (f"unknown workload '{text}': no Deployment, StatefulSet, DaemonSet, Job, "
                    f"CronJob or pod named '{name}' in namespace '{ns}'")
        kinds = sorted({p.workload.kind for p in pods})
        if len(kinds) > 1:
            return f"'{text}' is ambiguous: a {' and a '.join(kinds)} share the name"
        common = self._common(pods)
        if not common:
            return f"'{text}' has no stable labels a NetworkPolicy could select its pods by"
        others = [p for p in self.by_ns.get(ns, ()) if p.workload != pods[0].workload]
        pref = [(k, common[k]) for k in PREFERRED if k in common]
        candidates = [tuple(pref[:i]) for i in range(1, len(pref) + 1)]
        candidates.append(tuple(sorted(common.items())))
        for cand in candidates:
            clash = [o for o in others if all(o.labels.get(k) == v for k, v in cand)]
            if not clash:
                return Workload(ns, name, kinds[0], tuple(pods), tuple(sorted(cand)))
        o = clash[0].workload
        return (f"the labels of '{text}' also select pods of {o.kind} {o.namespace}/{o.name}: "
                "give it a label of its own")

    @staticmethod
    def _common(pods: Iterable[Pod]) -> dict[str, str]:
        it = iter(pods)
        first = next(it)
        common = {k: v for k, v in first.labels.items() if k not in UNSTABLE}
        for p in it:
            common = {k: v for k, v in common.items() if p.labels.get(k) == v}
        return common

    def exclusion_label(self, wl: Workload) -> tuple[str, str] | str:
        """One label only ``wl``'s pods carry in their namespace (for a NotIn), or an error."""
        common = self._common(wl.pods)
        others = [p for p in self.by_ns.get(wl.namespace, ()) if p.workload != wl.pods[0].workload]
        order = [k for k in PREFERRED if k in common] + sorted(
            k for k in common if k not in PREFERRED)
        for k in order:
            if not any(o.labels.get(k) == common[k] for o in others):
                return k, common[k]
        return (f"no single label tells '{wl.key}' apart from the other pods of namespace "
                f"'{wl.namespace}': give it one (e.g. app.kubernetes.io/name)")

    def service(self, text: str) -> tuple[list[Workload], tuple[PortRef, ...]] | str:
        """The workloads behind Service ``NS/NAME`` and its target ports."""
        ns, _, name = text.partition("/")
        svc = self.services.get((ns, name))
        if svc is None:
            return f"unknown Service '{text}'"
        if not svc.selector:
            return f"Service '{text}' has no selector: its endpoints are not workloads"
        sel = svc.selector
        owners: dict[str, None] = {}
        for p in self.by_ns.get(ns, ()):
            if not p.host_network and all(p.labels.get(k) == v for k, v in sel.items()):
                owners[p.workload.name] = None
        if not owners:
            return f"Service '{text}' selects no pod"
        out: list[Workload] = []
        for w in owners:
            got = self.workload(f"{ns}/{w}")
            if isinstance(got, str):
                return got
            out.append(got)
        ports: list[PortRef] = []
        for sp in svc.ports:
            ref = (PortRef(name=sp.target, protocol=sp.protocol) if isinstance(sp.target, str)
                   else PortRef(port=sp.target, protocol=sp.protocol))
            if ref not in ports:
                ports.append(ref)
        return out, tuple(ports)


# -- resolution -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, eq=False)
class Edge:
    """caller -> callee on ports (resolved: every name carries its protocol; () = all)."""

    caller: Workload
    callee: Workload
    ports: tuple[PortRef, ...]
    origin: str


@dataclass(frozen=True, slots=True, eq=False)
class AddressCall:
    caller: Workload
    cidrs: tuple[str, ...]
    except_: tuple[str, ...]
    ports: tuple[PortRef, ...]
    origin: str

    def ipset(self) -> IPSet:
        ips = IPSet()
        for c in self.cidrs:
            ips = ips | IPSet.parse(c)
        for c in self.except_:
            ips = ips - IPSet.parse(c)
        return ips


@dataclass(frozen=True, slots=True, eq=False)
class GroupAll:
    """Members that call every workload of the fenced namespaces on ``ports``."""

    name: str
    members: tuple[Workload, ...]
    ports: tuple[PortRef, ...]
    origin: str


@dataclass
class Resolved:
    """Intents bound to the cluster: what generation and the self-check work from.

    ``fenced`` namespaces are those whose pods only declared callers may enter: the callees'
    namespaces (given a default deny) for ``generate intents``, the model's for ``all``."""

    edges: list[Edge] = field(default_factory=list)
    addresses: list[AddressCall] = field(default_factory=list)
    group_all: list[GroupAll] = field(default_factory=list)
    fenced: tuple[str, ...] = ()
    default_deny: bool = True
    dns: PodRef = field(default_factory=lambda: PodRef("kube-system", (("k8s-app",
                                                                         "kube-dns"),)))

    def callers(self) -> list[Workload]:
        seen: dict[str, Workload] = {}
        for e in self.edges:
            seen.setdefault(e.caller.key, e.caller)
        for a in self.addresses:
            seen.setdefault(a.caller.key, a.caller)
        for g in self.group_all:
            for m in g.members:
                seen.setdefault(m.key, m)
        return [seen[k] for k in sorted(seen)]

    def callees(self) -> list[Workload]:
        seen = {e.callee.key: e.callee for e in self.edges}
        return [seen[k] for k in sorted(seen)]


def _origin(si: ServiceIntents) -> str:
    return f"{si.kind}/{si.name}"


class _Resolver:
    def __init__(self, index: WorkloadIndex, dns: PodRef) -> None:
        self.index = index
        self.dns = dns
        self.diags: list[Diagnostic] = []

    def error(self, ref: Ref, msg: str, path: str | None = None) -> None:
        self.diags.append(Diagnostic(Severity.ERROR, "intents", f"{path or ref.path}: {msg}",
                                     ref.source))

    def warn(self, ref: Ref, msg: str, path: str | None = None) -> None:
        self.diags.append(Diagnostic(Severity.WARNING, "intents", f"{path or ref.path}: {msg}",
                                     ref.source))

    def workload(self, ref: Ref) -> Workload | None:
        got = self.index.workload(ref.text)
        if isinstance(got, str):
            self.error(ref, got)
            return None
        return got

    def callee_ports(self, ref: Ref, callee: Workload, ports: tuple[PortRef, ...],
                     port_refs: tuple[Ref, ...] = (), strict: bool = True,
                     ) -> tuple[PortRef, ...] | None:
        """Names resolved on the callee pods (one entry per protocol they use there)."""
        out: list[PortRef] = []
        for i, p in enumerate(ports):
            where = port_refs[i] if i < len(port_refs) else ref
            if p.name is None:
                out.append(PortRef(port=p.port, end_port=p.end_port,
                                   protocol=p.protocol or Protocol.TCP))
                continue
            per_pod = [{cp.protocol for cp in pod.ports if cp.name == p.name
                        and (p.protocol is None or cp.protocol is p.protocol)}
                       for pod in callee.pods]
            protos = set().union(*per_pod) if per_pod else set()
            if not protos:
                if strict:
                    what = f"{p.protocol} port" if p.protocol else "port"
                    self.error(where, f"'{p.name}' is not a named {what} of {callee.kind} "
                               f"{callee.key}")
                    return None
                continue
            if any(not s for s in per_pod):
                self.warn(where, f"only some pods of {callee.key} name a port '{p.name}': "
                          "the others are not reachable on it")
            for proto in sorted(protos, key=str):
                out.append(PortRef(name=p.name, protocol=proto))
        return tuple(dict.fromkeys(out))

    def is_dns(self, wl: Workload) -> bool:
        return wl.namespace == self.dns.namespace and all(
            all(p.labels.get(k) == v for k, v in self.dns.labels) for p in wl.pods)


def resolve(intents: IntentSet, index: WorkloadIndex, dns: PodRef,
            model_namespaces: tuple[str, ...] | None = None,
            ) -> tuple[Resolved, list[Diagnostic]]:
    """Bind intents to the cluster; unknown workloads, ports and Services are errors that name
    the reference, its JSON path, file and line. ``model_namespaces`` (``generate all``) are
    the fenced namespaces; without it (``generate intents``) the callees' namespaces are."""
    rs = _Resolver(index, dns)
    out = Resolved(dns=dns, default_deny=model_namespaces is None)
    for si in intents.intents:
        caller = rs.workload(si.service)
        for call in si.calls:
            _resolve_call(rs, out, si, caller, call)
    for g in intents.groups:
        origin = f"ServiceTypeGroup/{g.name}"
        members = [m for m in (rs.workload(r) for r in g.members) if m is not None]
        if g.calls_all:
            out.group_all.append(GroupAll(g.name, tuple(members), g.ports, origin))
            continue
        for ref in g.calls:
            callee = rs.workload(ref)
            if callee is None:
                continue
            if rs.is_dns(callee):
                rs.error(ref, _DNS_CALL)
                continue
            ports = rs.callee_ports(ref, callee, g.ports, g.port_refs)
            if ports is None:
                continue
            for m in members:
                out.edges.append(Edge(m, callee, ports, origin))
    if model_namespaces is None:
        out.fenced = tuple(sorted({e.callee.namespace for e in out.edges}))
    else:
        out.fenced = tuple(sorted(model_namespaces))
    return out, rs.diags


_DNS_CALL = ("calls to the DNS pods are implicit (every caller may resolve names); an ingress "
             "policy for them would cut everyone else off")


def _resolve_call(rs: _Resolver, out: Resolved, si: ServiceIntents, caller: Workload | None,
                  call: Call) -> None:
    origin = _origin(si)
    ref = call.target
    if call.kind == ADDRESSES:
        if caller is not None:
            out.addresses.append(AddressCall(caller, call.cidrs, call.except_, call.ports,
                                             origin))
        return
    if call.kind == SERVICE:
        got = rs.index.service(ref.text)
        if isinstance(got, str):
            rs.error(ref, got)
            return
        callees, svc_ports = got
        for callee in callees:
            if rs.is_dns(callee):
                rs.error(ref, _DNS_CALL)
                return
            ports = rs.callee_ports(ref, callee, call.ports or svc_ports,
                                    call.port_refs if call.ports else (),
                                    strict=bool(call.ports))
            if ports is not None and caller is not None:
                out.edges.append(Edge(caller, callee, ports, origin))
        return
    target = rs.workload(ref)
    if target is None:
        return
    if rs.is_dns(target):
        rs.error(ref, _DNS_CALL)
        return
    ports = rs.callee_ports(ref, target, call.ports, call.port_refs)
    if ports is not None and caller is not None:
        out.edges.append(Edge(caller, target, ports, origin))


# -- generation -------------------------------------------------------------------------------

def policy_name(prefix: str, name: str) -> str:
    """``prefix + name``, shortened with a hash suffix when longer than a name may be."""
    full = prefix + name
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:10]
    return f"{full[:MAX_NAME - 11].rstrip('-.')}-{digest}"


def _np(name: str, ns: str, origins: Iterable[str], subject: dict[str, Any],
        types: list[str], ingress: list[dict[str, Any]] | None = None,
        egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return network_policy({"name": name, "namespace": ns, "labels": dict(MANAGED_BY),
                           "annotations": {ANNOTATION: ", ".join(sorted(set(origins)))}},
                          subject, types, ingress, egress)


def _entries(ports: Iterable[PortRef]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in ports:
        entry: dict[str, Any] = {"protocol": str(p.protocol or Protocol.TCP),
                                 "port": p.name if p.name is not None else p.port}
        if p.name is None and p.end_port is not None and p.end_port != p.port:
            entry["endPort"] = p.end_port
        if entry not in out:
            out.append(entry)
    return sorted(out, key=lambda e: (e["protocol"], isinstance(e["port"], str),
                                      str(e["port"]).zfill(5)))


def _rule(peers: list[dict[str, Any]], ports: tuple[PortRef, ...] | None,
          key: str) -> dict[str, Any]:
    rule: dict[str, Any] = {key: peers}
    if ports:
        rule["ports"] = _entries(ports)
    return rule


def _merge(a: tuple[PortRef, ...] | None, b: tuple[PortRef, ...]) -> tuple[PortRef, ...]:
    """Union of two port lists, () meaning every port."""
    if a is None:
        return b
    if not a or not b:
        return ()
    return tuple(dict.fromkeys((*a, *b)))


def _group_ports(g: GroupAll, pods: Iterable[Pod]) -> tuple[PortRef, ...]:
    """A group's named ports without a protocol resolve to the protocols the pods use."""
    out: list[PortRef] = []
    pods = list(pods)
    for p in g.ports:
        if p.name is None or p.protocol is not None:
            out.append(p if p.protocol is not None else PortRef(
                port=p.port, end_port=p.end_port, protocol=Protocol.TCP))
            continue
        protos = {cp.protocol for pod in pods for cp in pod.ports if cp.name == p.name}
        for proto in sorted(protos or {Protocol.TCP}, key=str):
            out.append(PortRef(name=p.name, protocol=proto))
    return tuple(dict.fromkeys(out))


def generate_intents(r: Resolved, pods_by_ns: Mapping[str, list[Pod]]) -> list[dict[str, Any]]:
    """The policies for resolved intents, ordered by namespace then name."""
    objs: list[dict[str, Any]] = []
    if r.default_deny:
        for ns in r.fenced:
            deny_origins = {f"{e.origin}#default-deny/{ns}" for e in r.edges
                       if e.callee.namespace == ns}
            objs.append(_np("netfence-intents-default-deny", ns, deny_origins, {},
                            ["Ingress"]))
            if ns == r.dns.namespace:  # fencing the DNS namespace must not cut DNS off
                objs.append(_np("netfence-intents-allow-dns-queries", ns, deny_origins,
                                {"matchLabels": dict(r.dns.labels)}, ["Ingress"],
                                ingress=[{"from": [{"namespaceSelector": {}}],
                                          "ports": [{"protocol": "UDP", "port": 53},
                                                    {"protocol": "TCP", "port": 53}]}]))
    by_callee: dict[str, list[Edge]] = {}
    for e in r.edges:
        by_callee.setdefault(e.callee.key, []).append(e)
    for key in sorted(by_callee):
        edges = by_callee[key]
        callee = edges[0].callee
        merged: dict[str, tuple[Workload, tuple[PortRef, ...] | None]] = {}
        for e in edges:
            wl, ports = merged.get(e.caller.key, (e.caller, None))
            merged[e.caller.key] = (wl, _merge(ports, e.ports))
        rules = [_rule([wl.peer()], ports, "from") for wl, ports in
                 (merged[k] for k in sorted(merged))]
        objs.append(_np(policy_name("netfence-intents-", callee.name), callee.namespace,
                        {f"{e.origin}#callee/{key}" for e in edges},
                        {"matchLabels": dict(callee.selector)}, ["Ingress"], ingress=rules))
    for g in sorted(r.group_all, key=lambda g: g.name):
        if not g.members:
            continue
        for ns in r.fenced:
            objs.append(_np(policy_name("netfence-intents-group-", g.name), ns,
                            [f"{g.origin}#group/{ns}"], {}, ["Ingress"],
                            ingress=[_rule([m.peer() for m in g.members],
                                           _group_ports(g, pods_by_ns.get(ns, ())) or None,
                                           "from")]))
    dns_peer = {"namespaceSelector": {"matchLabels": {METADATA_NAME: r.dns.namespace}},
                "podSelector": {"matchLabels": dict(r.dns.labels)}}
    edges_of: dict[str, list[Edge]] = {}
    for e in r.edges:
        edges_of.setdefault(e.caller.key, []).append(e)
    addresses_of: dict[str, list[AddressCall]] = {}
    for a in r.addresses:
        addresses_of.setdefault(a.caller.key, []).append(a)
    fenced_pods = [p for ns in r.fenced for p in pods_by_ns.get(ns, ())]
    for caller in r.callers():
        origins: set[str] = set()
        rules = [_rule([dns_peer], DNS_PORTS, "to")]
        targets: dict[str, tuple[Workload, tuple[PortRef, ...] | None]] = {}
        for e in edges_of.get(caller.key, ()):
            wl, ports = targets.get(e.callee.key, (e.callee, None))
            targets[e.callee.key] = (wl, _merge(ports, e.ports))
            origins.add(f"{e.origin}#caller/{caller.key}")
        rules += [_rule([wl.peer()], ports, "to") for wl, ports in
                  (targets[k] for k in sorted(targets))]
        for g in sorted(r.group_all, key=lambda g: g.name):
            if any(m.key == caller.key for m in g.members) and r.fenced:
                rules.append(_rule([{"namespaceSelector": {"matchExpressions": [{
                    "key": METADATA_NAME, "operator": "In", "values": list(r.fenced)}]}}],
                    _group_ports(g, fenced_pods) or None, "to"))
                origins.add(f"{g.origin}#caller/{caller.key}")
        for a in addresses_of.get(caller.key, ()):
            blocks = []
            for c in a.cidrs:
                block: dict[str, Any] = {"cidr": c}
                inside = [x for x in a.except_ if IPSet.parse(x).issubset(IPSet.parse(c))]
                if inside:
                    block["except"] = inside
                blocks.append({"ipBlock": block})
            rules.append(_rule(blocks, a.ports, "to"))
            origins.add(f"{a.origin}#caller/{caller.key}")
        objs.append(_np(policy_name("netfence-intents-egress-", caller.name), caller.namespace,
                        origins, {"matchLabels": dict(caller.selector)}, ["Egress"],
                        egress=rules))
    objs.sort(key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
    return objs


# -- self-check -------------------------------------------------------------------------------

@dataclass
class IntentsProof:
    """Counts and the first gaps; ``ok`` when the policies realise the intents exactly."""

    edges: int = 0
    pair_checks: int = 0
    destinations: int = 0
    namespaces: int = 0
    port_classes: int = 0
    intended: int = 0
    callers: int = 0
    dns_sources: int = 0
    scope: str = "in the fenced namespaces"
    gaps: list[str] = field(default_factory=list)
    gap_count: int = 0

    @property
    def ok(self) -> bool:
        return self.gap_count == 0

    def line(self) -> str:
        verdict = "exact" if self.ok else f"{self.gap_count} GAP(S)"
        inside = ("inside the zone model the intents are checked as part of its proof; "
                  if self.scope == OUTSIDE else "")
        return (f"proof: {verdict}: {self.edges} declared edges allowed on every pod pair "
                f"({self.pair_checks} pair x port checks); {inside}{self.destinations} "
                f"destination pod classes {self.scope} ({self.namespaces} namespaces) x "
                f"{self.port_classes} port classes admit exactly their declared callers "
                f"({self.intended} intended (source class, destination class, port class) "
                f"connections) and nothing else; egress of {self.callers} caller classes "
                f"{'outside the model ' if inside else ''}exactly as declared; DNS reachable "
                f"from all {self.dns_sources} {'such ' if inside else ''}source classes")

    def gap(self, text: str) -> None:
        self.gap_count += 1
        if len(self.gaps) < 20:
            self.gaps.append(text)


def _cls_name(cls: EndpointClass) -> str:
    pod = cls.pods[0]
    more = f" (+{len(cls.pods) - 1} like it)" if len(cls.pods) > 1 else ""
    return f"{pod.key}{more}"


def port_mask(u: Universe, cls: EndpointClass, ports: tuple[PortRef, ...]) -> int:
    """The port classes ``ports`` mean on destination ``cls``; () is every port."""
    if not ports:
        return u.all_ports
    mask = 0
    for p in ports:
        if p.name is not None:
            mask |= u.named_mask(cls, p.name, p.protocol)
        else:
            mask |= u.range_mask(p.protocol or Protocol.TCP, p.port or 0,
                                 p.end_port or p.port or 0)
    return mask


def _classes(u: Universe, wl: Workload) -> list[int]:
    out = {u.class_of_pod[p.key] for p in wl.pods if not p.host_network}
    return sorted(out)


def _bitsof(u: Universe, wl: Workload) -> int:
    mask = 0
    for c in _classes(u, wl):
        mask |= 1 << c
    return mask


def intended_ingress(r: Resolved, u: Universe,
                     ) -> dict[int, dict[int, int]]:
    """Destination class -> {port-class mask: source classes} the intents admit."""
    out: dict[int, dict[int, int]] = {}

    def add(d: int, pm: int, srcs: int) -> None:
        if pm and srcs:
            row = out.setdefault(d, {})
            row[pm] = row.get(pm, 0) | srcs

    for e in r.edges:
        srcs = _bitsof(u, e.caller)
        for d in _classes(u, e.callee):
            add(d, port_mask(u, u.classes[d], e.ports), srcs)
    fenced = set(r.fenced)
    for g in r.group_all:
        srcs = 0
        for m in g.members:
            srcs |= _bitsof(u, m)
        for cls in u.classes:
            if cls.namespace in fenced and not cls.host_network:
                add(cls.index, port_mask(u, cls, g.ports), srcs)
    if r.default_deny and r.dns.namespace in fenced:  # the fenced DNS namespace's queries
        pods = 0
        for cls in u.classes:
            if not cls.host_network:
                pods |= 1 << cls.index
        dns_ports = (PortRef(port=53, protocol=Protocol.UDP), PortRef(port=53,
                                                                   protocol=Protocol.TCP))
        for cls in u.classes:
            if cls.namespace == r.dns.namespace and not cls.host_network and all(
                    cls.pods[0].labels.get(k) == v for k, v in r.dns.labels):
                add(cls.index, port_mask(u, cls, dns_ports), pods)
    return out


def intended_egress_addresses(r: Resolved, u: Universe) -> dict[int, list[tuple[IPSet, PortSet]]]:
    """Source class -> the (addresses, ports) its address calls declare."""
    out: dict[int, list[tuple[IPSet, PortSet]]] = {}
    for a in r.addresses:
        ports = PortSet()
        for p in a.ports:
            ports = ports | PortSet.of(p.protocol or Protocol.TCP, p.port or 0,
                                       p.end_port or p.port or 0)
        target = (a.ipset(), ports if a.ports else PortSet.all())
        for s in _classes(u, a.caller):
            out.setdefault(s, []).append(target)
    return out


class _Egress:
    """Egress peers per (source class, port class), built on first use; sources whose egress
    reaches every pod on every port are ``open`` and need no lookup."""

    def __init__(self, ev: Evaluation) -> None:
        self.ev = ev
        u = ev.u
        self.open = 0
        for cls in u.classes:
            covered = 0  # the rows of a class have disjoint port masks
            for pm, peers in ev.egress[cls.index].rows:
                if (peers & u.pod_mask) == u.pod_mask:
                    covered |= pm
            if covered == u.all_ports:
                self.open |= 1 << cls.index
        self._at: dict[int, list[int]] = {}

    def at(self, s: int) -> list[int]:
        got = self._at.get(s)
        if got is None:
            got = [0] * self.ev.u.n_ports
            for pm, peers in self.ev.egress[s].rows:
                for i in bits(pm):
                    got[i] |= peers
            self._at[s] = got
        return got


def _ingress_allowed(ev: Evaluation, d: int, p: int, eg: _Egress) -> tuple[int, int]:
    """Pod sources allowed into class ``d`` on port class ``p`` (both ends), and external
    atoms allowed in."""
    u = ev.u
    allowed = 0
    for pm, peers in ev.ingress[d].rows:
        if (pm >> p) & 1:
            allowed |= peers
    ext = allowed & u.ext_mask
    allowed &= u.pod_mask & ~u.hostnet_mask
    for s in bits(allowed & ~eg.open):
        if not (eg.at(s)[p] >> d) & 1:
            allowed &= ~(1 << s)
    return allowed, ext


def verify_intents(r: Resolved, ev: Evaluation, q: Query,
                   skip_namespaces: frozenset[str] = frozenset()) -> IntentsProof:
    """Check the generated policies against the resolved intents, exactly.

    1. every declared edge is allowed on every (caller pod, callee pod) pair and declared port
       (named ports resolved on the callee pod), through ``Query.allowed``;
    2. every destination class in a fenced namespace or of a callee admits exactly its
       declared callers per port class, and no external address (bitsets, as in verify.py);
    3. every caller with a generated egress policy reaches exactly its callees, the DNS pods
       on UDP/TCP 53 and its declared addresses (on their ports);
    4. DNS is reachable from every caller and every pod of a fenced namespace.
    Destinations and callers in ``skip_namespaces`` (the zone model's, for ``generate all``)
    are left to the zone self-check, which is given ``intended_ingress`` as extra intent."""
    u = ev.u
    proof = IntentsProof(port_classes=u.n_ports)
    if skip_namespaces:
        proof.scope = OUTSIDE
    _check_edges(r, ev, q, proof)
    intended = intended_ingress(r, u)
    eg = _Egress(ev)
    fenced = set(r.fenced) - skip_namespaces
    governed: set[int] = {cls.index for cls in u.classes
                          if cls.namespace in fenced and not cls.host_network}
    for e in r.edges:
        governed.update(d for d in _classes(u, e.callee)
                        if u.classes[d].namespace not in skip_namespaces)
    namespaces: set[str] = set()
    for d in sorted(governed):
        cls = u.classes[d]
        namespaces.add(cls.namespace)
        proof.destinations += 1
        single_self = (1 << d) if len(cls.pods) == 1 else 0
        rows = intended.get(d, {})
        for p in range(u.n_ports):
            want = 0
            for pm, srcs in rows.items():
                if (pm >> p) & 1:
                    want |= srcs
            want &= ~single_self & ~u.hostnet_mask
            allowed, ext = _ingress_allowed(ev, d, p, eg)
            allowed &= ~single_self
            proof.intended += (want & allowed).bit_count()
            ports = u.port_classes[p].portset()
            for s in bits(allowed & ~want):
                proof.gap(f"allowed but not declared: {_cls_name(u.classes[s])} -> "
                          f"{_cls_name(cls)} on {ports}")
            for s in bits(want & ~allowed):
                proof.gap(f"declared but denied: {_cls_name(u.classes[s])} -> "
                          f"{_cls_name(cls)} on {ports}")
            for a in bits(ext):
                proof.gap(f"external {u.atoms.ipset(a - u.n_classes)} may enter "
                          f"{_cls_name(cls)} on {ports}")
    proof.namespaces = len(namespaces)
    dns_bits = 0
    for cls in u.classes:
        if cls.namespace == r.dns.namespace and not cls.host_network and all(
                cls.pods[0].labels.get(k) == v for k, v in r.dns.labels):
            dns_bits |= 1 << cls.index
    if not dns_bits:
        proof.gap(f"the DNS selector {dict(r.dns.labels)} in namespace {r.dns.namespace} "
                  "matches no pod: name resolution would fail")
    callers = [c for c in r.callers() if c.namespace not in skip_namespaces]
    caller_classes: set[int] = set()
    for c in callers:
        caller_classes.update(_classes(u, c))
    _check_caller_egress(r, ev, callers, dns_bits, proof)
    sources = set(caller_classes) | {cls.index for cls in u.classes
                                     if cls.namespace in fenced and not cls.host_network}
    for s in sorted(sources):
        proof.dns_sources += 1
        src = u.classes[s].pods[0]
        for d in bits(dns_bits):
            dst = u.classes[d].pods[0]
            if not (q.allowed(src, dst, Protocol.UDP, 53) and q.allowed(src, dst, Protocol.TCP,
                                                                         53)):
                proof.gap(f"DNS: {_cls_name(u.classes[s])} cannot reach {dst.key} on UDP and "
                          "TCP 53")
    return proof


def _resolve_on(pod: Pod, p: PortRef) -> list[tuple[Protocol, int]]:
    if p.name is None:
        proto = p.protocol or Protocol.TCP
        ends = {p.port or 0, p.end_port or p.port or 0}
        return [(proto, n) for n in sorted(ends)]
    return [(cp.protocol, cp.port) for cp in pod.ports
            if cp.name == p.name and (p.protocol is None or cp.protocol is p.protocol)]


def _check_edges(r: Resolved, ev: Evaluation, q: Query, proof: IntentsProof) -> None:
    u = ev.u
    cache: dict[tuple[int, int, Protocol, int], bool] = {}
    for e in r.edges:
        proof.edges += 1
        for src in e.caller.pods:
            if src.host_network:
                continue
            for dst in e.callee.pods:
                if dst.host_network or src.key == dst.key:
                    continue
                s = u.class_of_pod[src.key]
                d = u.class_of_pod[dst.key]
                if not e.ports:
                    proof.pair_checks += 1
                    got = _pair_ports(ev, s, d)
                    if got != u.all_ports:
                        proof.gap(f"declared edge {e.caller.key} -> {e.callee.key} (all ports,"
                                  f" {e.origin}): {src.key} -> {dst.key} allowed only on "
                                  f"{u.portset(got)}")
                    continue
                for p in e.ports:
                    for proto, number in _resolve_on(dst, p):
                        proof.pair_checks += 1
                        key = (s, d, proto, number)
                        ok = cache.get(key)
                        if ok is None:
                            ok = q.allowed(src, dst, proto, number)
                            cache[key] = ok
                        if not ok:
                            proof.gap(f"declared edge {e.caller.key} -> {e.callee.key} "
                                      f"({e.origin}): {src.key} -> {dst.key} on {proto} "
                                      f"{number} ({p}) is denied")


def _pair_ports(ev: Evaluation, s: int, d: int) -> int:
    """Port classes on which class ``s`` may connect to class ``d`` (both ends)."""
    out = 0
    for pm, peers in ev.egress[s].rows:
        if (peers >> d) & 1:
            out |= pm
    inn = 0
    for pm, peers in ev.ingress[d].rows:
        if (peers >> s) & 1:
            inn |= pm
    return out & inn


def _check_caller_egress(r: Resolved, ev: Evaluation, callers: list[Any], dns_bits: int,
                         proof: IntentsProof) -> None:
    u = ev.u
    dns_pm = u.range_mask(Protocol.UDP, 53, 53) | u.range_mask(Protocol.TCP, 53, 53)
    addresses = intended_egress_addresses(r, u)
    fenced = set(r.fenced)
    edges_of: dict[str, list[Edge]] = {}
    for e in r.edges:
        edges_of.setdefault(e.caller.key, []).append(e)
    for caller in callers:
        want: dict[int, int] = {}

        def add(d: int, pm: int, _want: dict[int, int] = want) -> None:
            if pm:
                _want[d] = _want.get(d, 0) | pm

        for d in bits(dns_bits):
            add(d, dns_pm)
        for e in edges_of.get(caller.key, ()):
            for d in _classes(u, e.callee):
                add(d, port_mask(u, u.classes[d], e.ports))
        for g in r.group_all:
            if any(m.key == caller.key for m in g.members):
                for cls in u.classes:
                    if cls.namespace in fenced and not cls.host_network:
                        add(cls.index, port_mask(u, cls, g.ports))
        for s in _classes(u, caller):
            proof.callers += 1
            rows = ev.egress[s].rows
            got: dict[int, int] = {}
            for pm, peers in rows:
                for d in bits(peers & u.pod_mask & ~u.hostnet_mask):
                    got[d] = got.get(d, 0) | pm
            single_self = len(u.classes[s].pods) == 1
            for d in sorted(got.keys() | want.keys()):
                if d == s and single_self:
                    continue
                if got.get(d, 0) != want.get(d, 0):
                    proof.gap(f"egress {_cls_name(u.classes[s])} -> {_cls_name(u.classes[d])}: "
                              f"allowed {u.portset(got.get(d, 0))}, declared "
                              f"{u.portset(want.get(d, 0))}")
            for atom, actual, intended in address_mismatches(ev, s, addresses.get(s, [])):
                proof.gap(f"egress {_cls_name(u.classes[s])} -> {atom}: allowed {actual}, "
                          f"declared {intended}")


# -- protected workloads of a zone model --------------------------------------------------------

def protected_exclusions(protected: Iterable[tuple[str, SourceRef, str]], index: WorkloadIndex,
                         ) -> tuple[dict[str, list[tuple[str, str]]], list[Diagnostic]]:
    """Namespace -> the (key, value) labels of its protected workloads (for NotIn on the zone
    rules' subjects); unknown or indistinct workloads are errors naming them."""
    out: dict[str, list[tuple[str, str]]] = {}
    diags: list[Diagnostic] = []
    for text, src, path in protected:
        wl = index.workload(text)
        label = wl if isinstance(wl, str) else index.exclusion_label(wl)
        if isinstance(label, str):
            diags.append(Diagnostic(Severity.ERROR, "model", f"{path}: {label}", src))
            continue
        assert isinstance(wl, Workload)
        if label not in out.setdefault(wl.namespace, []):
            out[wl.namespace].append(label)
    return out, diags
