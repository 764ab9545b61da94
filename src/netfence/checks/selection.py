"""Selector and port checks: NF001-NF005 (what policies select, match and name)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from netfence.checks.catalogue import check
from netfence.checks.context import Context, names, policy_obj, rule_label, rule_source
from netfence.checks.findings import Finding
from netfence.engine.evaluate import DIRECTIONS
from netfence.model.policy import (
    Action,
    AnyPeer,
    Direction,
    IPPeer,
    LabelSelector,
    NodePeer,
    Operator,
    PodPeer,
    Policy,
    PortClause,
    Rule,
)
from netfence.model.ports import PROTOCOLS, Protocol
from netfence.selectors import matches


class _Indexes:
    """Label and port facts about namespaces and pod classes, computed once."""

    def __init__(self, ctx: Context) -> None:
        u = ctx.universe
        self.ns_kv: set[tuple[str, str]] = set()
        self.ns_keys: set[str] = set()
        for labels in u.ns_labels.values():
            for k, v in labels.items():
                self.ns_kv.add((k, v))
                self.ns_keys.add(k)
        # named port -> protocol -> classes defining it (destination lookup, port-5/6)
        self.named: dict[str, dict[Protocol, int]] = {}
        # declared container ports (named or not; NF004): (protocol, port) -> classes
        declared: dict[Protocol, dict[int, int]] = {p: {} for p in PROTOCOLS}
        self.declaring = 0  # classes with at least one declared port
        for cls in u.classes:
            bit = 1 << cls.index
            for (name, proto) in cls.named:
                per = self.named.setdefault(name, {})
                per[proto] = per.get(proto, 0) | bit
            for pod in cls.pods:
                for cp in pod.ports:
                    per_port = declared[cp.protocol]
                    per_port[cp.port] = per_port.get(cp.port, 0) | bit
                    self.declaring |= bit
        self.declared = {proto: sorted(per.items()) for proto, per in declared.items()}
        self.declared_ports = {proto: [port for port, _ in items]
                               for proto, items in self.declared.items()}

    def unknown_labels(self, sel: LabelSelector) -> list[str]:
        """Requirements of a namespace selector that no namespace can satisfy on its own."""
        out: list[str] = []
        for k, v in sel.match_labels:
            if (k, v) not in self.ns_kv:
                out.append(f"{k}={v}")
        for r in sel.match_expressions:
            if r.operator is Operator.EXISTS and r.key not in self.ns_keys:
                out.append(r.key)
            elif r.operator is Operator.IN and not any((r.key, v) in self.ns_kv
                                                        for v in r.values):
                out.append(f"{r.key} in ({','.join(r.values)})")
        return out

    def declares(self, mask: int, protocols: tuple[Protocol, ...], lo: int, hi: int) -> bool:
        """Some class of ``mask`` declares a port in [lo, hi] with one of ``protocols``."""
        for proto in protocols:
            items = self.declared[proto]
            ports = self.declared_ports[proto]
            for i in range(bisect.bisect_left(ports, lo), bisect.bisect_right(ports, hi)):
                if items[i][1] & mask:
                    return True
        return False


def _unknown_text(sel: LabelSelector, unknown: list[str]) -> str:
    text = f"no namespace carries {', '.join(unknown)}"
    if [str(sel)] != unknown:
        text += f", so namespace selector {sel} selects nothing"
    return text


def check_selection(ctx: Context) -> Iterator[Finding]:
    idx = _Indexes(ctx)
    for pol in ctx.engine.policies:
        yield from _policy(ctx, idx, pol)


def _policy(ctx: Context, idx: _Indexes, pol: Policy) -> Iterator[Finding]:
    eng = ctx.engine
    obj = policy_obj(pol)
    subject = eng.subject_mask(pol.subject)
    scope = pol.subject.namespaces
    unknown = [] if scope.selector is None else idx.unknown_labels(scope.selector)
    if unknown and ctx.on("NF003") and scope.selector is not None:
        yield Finding(check("NF003"), obj, pol.source,
                      f"subject: {_unknown_text(scope.selector, unknown)}", "subject")
    if subject == 0 and not unknown and ctx.on("NF001"):
        where = (f"in namespace {scope.name}" if scope.name is not None
                 else f"in {scope}")
        sel = pol.subject.pods
        what = "pod selector {}" if sel is None else f"pod selector {sel}"
        yield Finding(check("NF001"), obj, pol.source,
                      f"{what} matches no pod {where}: the policy has no effect", "subject")
    for d in DIRECTIONS:
        for rule in pol.rules(d) or ():
            yield from _peers(ctx, idx, pol, d, rule)
            if rule.ports:
                yield from _ports(ctx, idx, pol, d, rule, subject)


def _peers(ctx: Context, idx: _Indexes, pol: Policy, d: Direction,
           rule: Rule) -> Iterator[Finding]:
    eng = ctx.engine
    u = ctx.universe
    obj = policy_obj(pol)
    src = rule_source(pol, rule)
    for i, peer in enumerate(rule.peers):
        where = f"{rule_label(d, rule)} peer {i + 1}"
        detail = f"{d}/{rule.index}/peer/{i}"
        if isinstance(peer, PodPeer):
            sel = peer.namespaces.selector
            if sel is not None:
                unknown = idx.unknown_labels(sel)
                if unknown:
                    if ctx.on("NF003"):
                        yield Finding(check("NF003"), obj, src,
                                      f"{where}: {_unknown_text(sel, unknown)}", detail)
                    continue
            if eng.peer_mask(peer) & u.pod_mask or not ctx.on("NF002"):
                continue
            if sel is not None and not ctx.ns_index.select(sel):
                why = f"namespace selector {sel} matches no namespace"
            else:
                why = "no pod matches it"
            yield Finding(check("NF002"), obj, src, f"{where} ({peer}): {why}", detail)
        elif (isinstance(peer, NodePeer) and ctx.on("NF002")
              and not any(matches(peer.selector, n.labels) for n in ctx.state.nodes)):
            yield Finding(check("NF002"), obj, src, f"{where} ({peer}): no node matches it",
                          detail)


def _ports(ctx: Context, idx: _Indexes, pol: Policy, d: Direction, rule: Rule,
           subject: int) -> Iterator[Finding]:
    obj = policy_obj(pol)
    src = rule_source(pol, rule)
    assert rule.ports is not None
    dest: int | None = None
    for i, clause in enumerate(rule.ports):
        detail = f"{d}/{rule.index}/port/{i}"
        if clause.name is not None:
            if not ctx.on("NF005"):
                continue
            if dest is None:
                dest = _destinations(ctx, pol, d, rule, subject)
            msg = _named_port_problem(idx, clause, dest, d, rule)
            if msg:
                yield Finding(check("NF005"), obj, src,
                              f"{rule_label(d, rule)}: {msg}", detail)
        elif (d is Direction.INGRESS and clause.port is not None and subject
              and rule.action is Action.ALLOW and ctx.on("NF004")):
            if not subject & idx.declaring:
                continue  # the selected pods declare no ports at all: nothing to judge
            protos = (clause.protocol,) if clause.protocol is not None else PROTOCOLS
            hi = clause.end_port if clause.end_port is not None else clause.port
            if idx.declares(subject, protos, clause.port, hi):
                continue
            pods = ctx.workloads_of(subject)
            yield Finding(check("NF004"), obj, src,
                          f"{rule_label(d, rule)}: port {_clause_text(clause)} is not a "
                          f"containerPort of the selected pods ({names(pods)}); it still "
                          "matches (port-4)", detail)


def _clause_text(clause: PortClause) -> str:
    proto = str(clause.protocol) if clause.protocol else "any protocol"
    if clause.end_port is not None:
        return f"{proto} {clause.port}-{clause.end_port}"
    return f"{proto} {clause.port}"


def _destinations(ctx: Context, pol: Policy, d: Direction, rule: Rule, subject: int) -> int:
    """Pod classes a named port of this rule is looked up on (port-6)."""
    if d is Direction.INGRESS:
        return subject
    u = ctx.universe
    mask = 0
    for peer in rule.peers:
        if isinstance(peer, AnyPeer):
            return u.pod_mask
        mask |= ctx.engine.peer_mask(peer)
    if not rule.peers:
        return u.pod_mask
    return mask & u.pod_mask


def _named_port_problem(idx: _Indexes, clause: PortClause, dest: int, d: Direction,
                        rule: Rule) -> str:
    name = clause.name
    assert name is not None
    per = idx.named.get(name, {})
    want = (clause.protocol,) if clause.protocol is not None else PROTOCOLS
    if not dest:
        if d is Direction.EGRESS and rule.peers and all(isinstance(p, IPPeer)
                                                        for p in rule.peers):
            return (f"named port '{name}' never matches external addresses (port-7), and no "
                    "pod has an IP in these blocks")
        return ""  # the peers match nothing: NF002 says so
    if any(per.get(p, 0) & dest for p in want):
        return ""
    others = sorted(str(p) for p in PROTOCOLS if p not in want and per.get(p, 0) & dest)
    side = "selected" if d is Direction.INGRESS else "destination"
    if others:
        return (f"named port '{name}' is defined on the {side} pods only with protocol "
                f"{', '.join(others)}, not {clause.protocol}: it matches nothing (port-5)")
    return f"no {side} pod defines named port '{name}': the clause matches nothing (port-5)"
