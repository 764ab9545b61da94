"""Semantic diff of two states' connectivity (pure).

Both states are evaluated and aggregated into the same view (workload, pod, namespace or zone);
connections are compared by endpoint pair as port sets, so reordering YAML, renaming a policy or
splitting one policy in two yields no change. External endpoints are compared over the common
refinement of both sides' address sets, so different CIDR cuts never show as spurious changes.
Each change names the deciding policies on both sides, from an explained representative flow.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from netfence.engine.evaluate import Evaluation
from netfence.engine.query import External, MapRow, Point, Query, describe_ips, view_rows
from netfence.model.cluster import Pod
from netfence.model.net import IPSet
from netfence.model.ports import PROTOCOLS, PortSet


@dataclass(frozen=True, slots=True)
class Change:
    """One connection whose allowed ports differ between base and head."""

    src: str
    dst: str
    before: PortSet
    after: PortSet
    base_policies: tuple[str, ...] = ()
    head_policies: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        if not self.before:
            return "added"
        if not self.after:
            return "removed"
        return "changed"

    @property
    def gained(self) -> PortSet:
        return self.after - self.before

    @property
    def lost(self) -> PortSet:
        return self.before - self.after

    def to_json(self) -> dict[str, object]:
        return {"change": self.kind, "from": self.src, "to": self.dst,
                "before": str(self.before), "after": str(self.after),
                "gained": str(self.gained), "lost": str(self.lost),
                "basePolicies": list(self.base_policies),
                "headPolicies": list(self.head_policies)}


def _ports(ev: Evaluation, row: MapRow) -> PortSet:
    return ev.u.portset(row.ports)


def _split_external(rows: Iterable[MapRow], ev: Evaluation,
                    ) -> tuple[dict[tuple[str, str], PortSet],
                               dict[tuple[str, bool], list[tuple[IPSet, PortSet]]]]:
    internal: dict[tuple[str, str], PortSet] = {}
    external: dict[tuple[str, bool], list[tuple[IPSet, PortSet]]] = {}
    for r in rows:
        if r.ips is None:
            internal[(r.src, r.dst)] = _ports(ev, r)
        else:
            other = r.dst if r.inbound else r.src
            external.setdefault((other, r.inbound), []).append((r.ips, _ports(ev, r)))
    return internal, external


def _refine(base: list[tuple[IPSet, PortSet]], head: list[tuple[IPSet, PortSet]],
            ) -> list[tuple[IPSet, PortSet, PortSet]]:
    """Address blocks where the allowed ports differ, as (block, before, after)."""
    out: dict[tuple[PortSet, PortSet], IPSet] = {}
    for fam in (4, 6):
        cuts: set[int] = set()
        entries = [(0, ips, ps) for ips, ps in base] + [(1, ips, ps) for ips, ps in head]
        for _, ips, _ in entries:
            for lo, hi in (ips.v4 if fam == 4 else ips.v6):
                cuts.add(lo)
                cuts.add(hi + 1)
        points = sorted(cuts)
        for i in range(len(points) - 1):
            lo, hi = points[i], points[i + 1] - 1
            before = PortSet()
            after = PortSet()
            for side, ips, ps in entries:
                if ips.contains_int(fam, lo):
                    if side == 0:
                        before = before | ps
                    else:
                        after = after | ps
            if before != after:
                seg = IPSet(v4=((lo, hi),)) if fam == 4 else IPSet(v6=((lo, hi),))
                key = (before, after)
                out[key] = out[key] | seg if key in out else seg
    return [(ips, b, a) for (b, a), ips in out.items()]


def _first_pods(q: Query, by: str) -> dict[str, Pod]:
    """One representative pod per endpoint id of the view."""
    out: dict[str, Pod] = {}
    for pod in q.u.state.pods:
        key = {"pod": pod.key, "namespace": pod.namespace}.get(by, str(pod.workload))
        out.setdefault(key, pod)
    return out


def _representative(pods: dict[str, Pod], ident: str, ips: IPSet | None) -> Point | None:
    if ips is not None:
        for fam, iv in ((4, ips.v4), (6, ips.v6)):
            if iv:
                lo = iv[0][0]
                addr = ipaddress.IPv4Address(lo) if fam == 4 else ipaddress.IPv6Address(lo)
                return External(str(addr))
        return None
    return pods.get(ident)


def _sample_port(ports: PortSet) -> tuple[object, int] | None:
    for proto in PROTOCOLS:
        iv = ports.get(proto)
        if iv:
            return proto, iv[0][0]
    return None


def _deciders(q: Query, src: Point | None, dst: Point | None, ports: PortSet,
              ) -> tuple[str, ...]:
    sample = _sample_port(ports)
    if src is None or dst is None or sample is None:
        return ()
    proto, port = sample
    flow = q.flow(src, dst, proto, port)  # type: ignore[arg-type]
    names: list[str] = []
    for d in (flow.egress, flow.ingress):
        if d is None:
            continue
        word = "allowed" if d.allowed else "denied"
        if d.policy is None:
            names.append(f"{d.direction} {word} by default")
        elif d.rule is None and not d.allowed:
            names.append(f"{d.direction} denied: isolated by {d.policy.ref}"
                         + (" and others" if d.steps and len({s.policy.ref for s in d.steps})
                            > 1 else ""))
        else:
            names.append(f"{d.direction} {word} by {d.policy.ref} ({d.tier.label()})")
    if not names and flow.note:
        names.append(flow.note)
    return tuple(dict.fromkeys(names))


def diff(base: Evaluation, head: Evaluation, by: str = "workload",
         zone_label: str = "networkArea", explain: bool = True) -> list[Change]:
    """Connections added, removed or changed from ``base`` to ``head``, in a stable order."""
    b_rows = view_rows(base, by, zone_label)
    h_rows = view_rows(head, by, zone_label)
    b_int, b_ext = _split_external(b_rows, base)
    h_int, h_ext = _split_external(h_rows, head)
    raw: list[tuple[str, str, PortSet, PortSet, IPSet | None, bool]] = []
    seg_ips: IPSet
    for key in sorted(b_int.keys() | h_int.keys()):
        before = b_int.get(key, PortSet())
        after = h_int.get(key, PortSet())
        if before != after:
            raw.append((key[0], key[1], before, after, None, False))
    for ext_key in sorted(b_ext.keys() | h_ext.keys()):
        other, inbound = ext_key
        for seg_ips, before, after in _refine(b_ext.get(ext_key, []), h_ext.get(ext_key, [])):
            text = describe_ips(seg_ips)
            src, dst = (text, other) if inbound else (other, text)
            raw.append((src, dst, before, after, seg_ips, inbound))
    bq, hq = Query(base), Query(head)
    b_pods, h_pods = (_first_pods(bq, by), _first_pods(hq, by)) if explain else ({}, {})
    out: list[Change] = []
    for src, dst, before, after, ext_ips, ext_in in raw:
        bp: tuple[str, ...] = ()
        hp: tuple[str, ...] = ()
        if explain and by != "zone":
            probe = (after - before) or (before - after)
            ends = []
            for pods in (b_pods, h_pods):
                s = _representative(pods, src, ext_ips if ext_in else None)
                d = _representative(pods, dst, None if ext_in else ext_ips)
                ends.append((s, d))
            bp = _deciders(bq, *ends[0], probe)
            hp = _deciders(hq, *ends[1], probe)
        out.append(Change(src, dst, before, after, bp, hp))
    out.sort(key=lambda c: (c.src, c.dst))
    return out


__all__ = ["Change", "diff"]
