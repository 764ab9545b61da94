"""Questions asked of an evaluation: one flow between concrete endpoints, and views.

Endpoints are pods, workloads (all their pods), namespaces or external addresses. A flow between
two pods takes both directions (iso-7); self traffic (sp-2) and traffic between a pod and its own
node (sp-3) are always allowed. Everything reuses ``Engine.decide`` through ``explain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from netfence.engine.classes import Universe
from netfence.engine.evaluate import Evaluation
from netfence.model.cluster import Pod, WorkloadRef
from netfence.model.net import IPSet, ip_to_int
from netfence.model.policy import Direction
from netfence.model.ports import Protocol

if TYPE_CHECKING:  # explanations load on first use: `netfence map` never asks for one
    from netfence.engine.explain import DirectionVerdict


@dataclass(frozen=True, slots=True)
class External:
    """An external address (not a known pod IP)."""

    address: str

    def __str__(self) -> str:
        return f"ip:{self.address}"


Point = Pod | External


def point_name(p: Point) -> str:
    return p.key if isinstance(p, Pod) else str(p)


@dataclass(frozen=True, slots=True)
class FlowVerdict:
    """The verdict for one (source, destination, protocol, port) between concrete endpoints."""

    src: Point
    dst: Point
    protocol: Protocol
    port: int
    allowed: bool
    egress: DirectionVerdict | None
    ingress: DirectionVerdict | None
    note: str = ""

    @property
    def dns_conditional(self) -> bool:
        return bool(self.egress and self.egress.dns_conditional)

    def sentences(self) -> list[str]:
        verdict = "ALLOWED" if self.allowed else "DENIED"
        head = (f"{point_name(self.src)} -> {point_name(self.dst)} {self.protocol}/{self.port}: "
                f"{verdict}")
        out = [head]
        if self.note:
            out.append(self.note)
            return out
        for label, d in (("egress at source", self.egress), ("ingress at destination",
                                                              self.ingress)):
            if d is None:
                out.append(f"[{label}] not checked: the endpoint is outside the cluster (iso-7).")
                continue
            word = "allowed" if d.allowed else "denied"
            out.append(f"[{label}] {word} by the {d.tier.label()} tier:")
            out.extend(f"  {s}" for s in d.sentences)
            out.extend(f"  warning: {a}" for a in d.ambiguous)
        if self.dns_conditional:
            out.append("Depends on DNS: a domainNames rule may also match this destination "
                       "(D-7).")
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "from": point_name(self.src), "to": point_name(self.dst),
            "protocol": str(self.protocol), "port": self.port,
            "verdict": "allow" if self.allowed else "deny",
            "dnsConditional": self.dns_conditional,
            "note": self.note or None,
            "egress": None if self.egress is None else self.egress.to_json(),
            "ingress": None if self.ingress is None else self.ingress.to_json(),
        }


class Query:
    """Per-flow questions over one evaluation."""

    def __init__(self, ev: Evaluation) -> None:
        self.ev = ev
        self.u: Universe = ev.u
        self.pods_by_ip: dict[tuple[int, int], Pod] = {}
        for pod in ev.u.state.pods:
            if pod.host_network:
                continue
            for ip in pod.ips:
                self.pods_by_ip.setdefault(ip_to_int(ip), pod)
        self.node_ips: dict[str, set[tuple[int, int]]] = {
            name: {ip_to_int(a) for a in addrs} for name, addrs in ev.u.node_addrs.items()}

    def endpoint(self, p: Point) -> int:
        if isinstance(p, Pod):
            return self.u.class_of_pod[p.key]
        return self.u.atom_endpoint(self.u.atoms.atom_of(*ip_to_int(p.address)))

    def allowed(self, src: Point, dst: Point, protocol: Protocol, port: int) -> bool:
        """The verdict alone, read from the evaluated rows (no trace): for bulk tests."""
        if isinstance(src, Pod) and isinstance(dst, Pod) and src.key == dst.key:
            return True
        if self._same_node(src, dst):
            return True
        s = self.endpoint(src)
        d = self.endpoint(dst)
        p = self.u.port_class_of(protocol, port)
        ev = self.ev
        if isinstance(src, Pod) and not any(
                (pm >> p) & 1 and (peers >> d) & 1 for pm, peers in ev.egress[s].rows):
            return False
        return not isinstance(dst, Pod) or any(
            (pm >> p) & 1 and (peers >> s) & 1 for pm, peers in ev.ingress[d].rows)

    def flow(self, src: Point, dst: Point, protocol: Protocol, port: int) -> FlowVerdict:
        from netfence.engine.explain import explain_direction

        if isinstance(src, Pod) and isinstance(dst, Pod) and src.key == dst.key:
            return FlowVerdict(src, dst, protocol, port, True, None, None,
                               "A pod can always reach itself (sp-2).")
        if self._same_node(src, dst):
            return FlowVerdict(src, dst, protocol, port, True, None, None,
                               "Traffic between a pod and its own node is always allowed "
                               "(sp-3).")
        s = self.endpoint(src)
        d = self.endpoint(dst)
        p = self.u.port_class_of(protocol, port)
        eng = self.ev.engine
        egress = ingress = None
        if isinstance(src, Pod):
            view = eng.subjected(s, Direction.EGRESS)
            egress = explain_direction(eng, view, Direction.EGRESS, p, d, src.key,
                                       point_name(dst))
        if isinstance(dst, Pod):
            view = eng.subjected(d, Direction.INGRESS)
            ingress = explain_direction(eng, view, Direction.INGRESS, p, s, dst.key,
                                        point_name(src))
        allowed = (egress is None or egress.allowed) and (ingress is None or ingress.allowed)
        return FlowVerdict(src, dst, protocol, port, allowed, egress, ingress)

    def _same_node(self, a: Point, b: Point) -> bool:
        for x, y in ((a, b), (b, a)):
            if isinstance(x, Pod) and x.node:
                if isinstance(y, Pod) and y.host_network and y.node == x.node:
                    return True
                if isinstance(y, External) and ip_to_int(y.address) in self.node_ips.get(
                        x.node, set()):
                    return True
        return False


# -- views -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MapRow:
    """One allowed connection in a view: endpoint ids and port-class mask; ``ips`` is the
    address set of the external side, if any."""

    src: str
    dst: str
    ports: int
    dns: bool
    ips: IPSet | None = None
    inbound: bool = False


def _workload_id(ref: WorkloadRef) -> str:
    return str(ref)


_DESCRIBED: dict[IPSet, str] = {}


def describe_ips(ips: IPSet) -> str:
    """CIDRs of ``ips``; per family, 'ALL except [X]' when that is shorter (memoised: views
    repeat the same few address sets for every workload)."""
    got = _DESCRIBED.get(ips)
    if got is None:
        got = _describe(ips)
        if len(_DESCRIBED) < 100_000:
            _DESCRIBED[ips] = got
    return got


def _describe(ips: IPSet) -> str:
    parts: list[str] = []
    for fam, whole, iv in ((4, "0.0.0.0/0", ips.v4), (6, "::/0", ips.v6)):
        if not iv:
            continue
        fam_set = IPSet(v4=iv) if fam == 4 else IPSet(v6=iv)
        full = IPSet.parse(whole)
        direct = fam_set.cidrs()
        missing = (full - fam_set).cidrs()
        if missing and len(missing) < len(direct):
            parts.append(f"{whole} except [{','.join(missing)}]")
        else:
            parts.extend(direct)
    return ",".join(parts)


def view_rows(ev: Evaluation, by: str, zone_label: str = "networkArea") -> list[MapRow]:
    """Aggregate class connections into a view: 'workload', 'pod', 'namespace' or 'zone'
    (namespaces grouped by the value of ``zone_label``).

    Aggregation runs over classes; the pod-level matrix is built only for ``by == 'pod'``.
    External IP atoms with identical connections merge into one endpoint.
    """
    ns_labels = ev.u.ns_labels
    u = ev.u
    n = u.n_classes
    acc: dict[tuple[str, str], list[int]] = {}
    members: list[list[tuple[str, int]]] = []
    for cls in u.classes:
        counts: dict[str, int] = {}
        for pod in cls.pods:
            if by == "pod":
                key = pod.key
            elif by == "namespace":
                key = pod.namespace
            elif by == "zone":
                key = "zone:" + ns_labels.get(pod.namespace, {}).get(zone_label, "(none)")
            else:
                key = _workload_id(pod.workload)
            counts[key] = counts.get(key, 0) + 1
        members.append(sorted(counts.items()))
    ext_key = "\x00ext"
    for s, d, pm, dns in ev.connections():
        srcs = members[s] if s < n else [(f"{ext_key}{s - n}", 1)]
        dsts = members[d] if d < n else [(f"{ext_key}{d - n}", 1)]
        for a, ca in srcs:
            for b, _cb in dsts:
                if a == b and s == d and ca == 1 and by not in ("namespace", "zone"):
                    continue  # the same single pod: self traffic is not a connection
                if a == b and by == "pod":
                    continue
                cur = acc.get((a, b))
                if cur is None:
                    acc[(a, b)] = [pm, int(dns)]
                else:
                    cur[0] |= pm
                    cur[1] |= int(dns)
    # per row, merge the external atoms that reach (or are reached by) the same endpoint
    # on the same ports into one address set
    groups: dict[tuple[int, str, int, int], IPSet] = {}
    merged: dict[tuple[str, str], tuple[int, bool, IPSet | None, bool]] = {}
    for (a, b), (pm, dns_i) in acc.items():
        if a.startswith(ext_key) or b.startswith(ext_key):
            inbound = a.startswith(ext_key)
            atom_key, other = (a, b) if inbound else (b, a)
            ips = u.atoms.ipset(int(atom_key[len(ext_key):]))
            gk = (int(inbound), other, pm, dns_i)
            groups[gk] = groups[gk] | ips if gk in groups else ips
        else:
            merged[(a, b)] = (pm, bool(dns_i), None, False)
    for (inbound_i, other, pm, dns_i), ips in groups.items():
        text = describe_ips(ips)
        merged[(text, other) if inbound_i else (other, text)] = (pm, bool(dns_i), ips,
                                                                  bool(inbound_i))
    return [MapRow(a, b, pm, dns, ips, inbound)
            for (a, b), (pm, dns, ips, inbound) in sorted(merged.items())]
