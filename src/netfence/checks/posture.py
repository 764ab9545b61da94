"""Zero-trust posture checks: NF006-NF010 (default deny, exposure, internet ingress, DNS).

Verdicts come from the engine: the evaluated ingress/egress rows, ``Engine.decide`` on the
compiled per-class views, and ``Query.allowed`` for concrete pod pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from netfence.checks.catalogue import check
from netfence.checks.context import (
    DNS_NAMESPACE,
    DNS_SELECTOR,
    PUBLIC_V4,
    PUBLIC_V6,
    Context,
    lowest,
    names,
    policy_obj,
    port_groups,
    rule_label,
    rule_source,
    workload_obj,
)
from netfence.checks.findings import Finding
from netfence.engine.classes import bits
from netfence.engine.evaluate import CRule, Subjected
from netfence.errors import ObjectRef
from netfence.model.cluster import Namespace, WorkloadRef
from netfence.model.net import IPSet
from netfence.model.policy import (
    ALL,
    Action,
    AnyPeer,
    Direction,
    IPPeer,
    NamespaceScope,
    Policy,
    PolicyRef,
    Rule,
    Subject,
    Tier,
)
from netfence.model.ports import PortSet, Protocol
from netfence.selectors import matches, namespace_matches

_SENTINEL_POLICY = Policy(PolicyRef("netfence-lint", "", "default-allow"), Tier.BASELINE, 1001,
                          Subject(NamespaceScope(selector=ALL)), None, None)
_SENTINEL_RULE = Rule(0, Action.DENY, (AnyPeer(),), None)


# -- NF006 / NF007 ---------------------------------------------------------------------------

def check_default_deny(ctx: Context) -> Iterator[Finding]:
    by_ns: dict[str, list[int]] = {}
    for cls in ctx.pod_classes():
        by_ns.setdefault(cls.namespace, []).append(cls.index)
    candidates: dict[str, list[Policy]] = {}  # NetworkPolicies by namespace, "" = cluster
    for pol in ctx.engine.policies:
        if pol.subject.pods is None or matches(pol.subject.pods, {}):
            key = pol.ref.namespace if pol.tier is Tier.NETWORK_POLICY else ""
            candidates.setdefault(key, []).append(pol)
    for d, cid in ((Direction.INGRESS, "NF006"), (Direction.EGRESS, "NF007")):
        if d not in ctx.options.default_deny or not ctx.on(cid):
            continue
        for ns_name in sorted(ctx.state.namespaces):
            ns = ctx.state.namespaces[ns_name]
            members = by_ns.get(ns_name, [])
            if not members and ns.implicit:
                continue
            open_mask = 0
            reached = 0
            for c in members:
                peers = _default_reached(ctx, c, d)
                if peers:
                    open_mask |= 1 << c
                    reached |= peers
            future = _future_fenced(ns, d, [*candidates.get(ns_name, ()),
                                                *candidates.get("", ())])
            if not open_mask and future:
                continue
            parts: list[str] = []
            if open_mask:
                wls = ctx.workloads_of(open_mask)
                u = ctx.universe
                kinds = [k for k, m in (("pods", u.pod_mask), ("external addresses",
                                                                 u.ext_mask)) if reached & m]
                side = "from" if d is Direction.INGRESS else "to"
                parts.append(f"{len(wls)} workload(s) ({names([w.name for w in wls])}) reach "
                             f"the default allow for {d} {side} {' and '.join(kinds)}")
            if not future:
                parts.append(f"nothing fences pods added later (no NetworkPolicy selects an "
                             f"unlabelled pod for {d}, and no Admin or Baseline policy for the "
                             f"whole namespace denies {d})")
            yield Finding(check(cid), ObjectRef("Namespace", "", ns_name), ns.source,
                          f"namespace {ns_name} has no default deny for {d}: "
                          + "; ".join(parts), str(d))


def _default_reached(ctx: Context, c: int, d: Direction) -> int:
    """Peers that reach the default allow for class ``c`` in direction ``d`` (0: fenced)."""
    eng = ctx.engine
    u = ctx.universe
    view = eng.subjected(c, d)
    if view.isolated_by:
        return 0
    if not (view.admin or view.baseline):
        return u.all_mask
    # Same tiers with Baseline Pass turned into Deny and a final deny-all: whatever the real
    # pipeline allows beyond this one is what reached the default allow (D-6 included).
    closed = Subjected(admin=view.admin, baseline=[
        *(_as_deny(cr) if cr.rule.action is Action.PASS else cr for cr in view.baseline),
        CRule(_SENTINEL_POLICY, _SENTINEL_RULE, (u.all_mask,), u.all_mask, False, True, 0, {},
              ())])
    reached = 0
    for group in port_groups(view, u.all_ports):
        p = lowest(group)
        real = eng.decide(view, p, u.all_mask)
        fenced = eng.decide(closed, p, u.all_mask)
        reached |= real.allow & ~fenced.allow
    return reached & ~(1 << c)


def _as_deny(cr: CRule) -> CRule:
    return CRule(cr.policy, replace(cr.rule, action=Action.DENY), cr.peer_masks, cr.peers,
                 cr.dns, cr.all_ports, cr.static_ports, cr.named_ports, cr.clause_masks)


def _future_fenced(ns: Namespace, d: Direction, candidates: list[Policy]) -> bool:
    """A pod added later without labels would be isolated, or denied by a namespace-wide
    cluster policy (``candidates`` select unlabelled pods)."""
    for pol in candidates:
        rules = pol.rules(d)
        if rules is None or not namespace_matches(pol.subject.namespaces, ns.name, ns.labels):
            continue
        if pol.tier is Tier.NETWORK_POLICY:
            return True
        if any(r.action is Action.DENY for r in rules):
            return True
    return False


# -- NF008 -----------------------------------------------------------------------------------

def check_exposure(ctx: Context) -> Iterator[Finding]:
    u = ctx.universe
    ev = ctx.evaluation
    n = u.n_classes
    off6 = u.atoms.offset[6]
    ext4 = ((1 << off6) - 1) << n
    ext6 = ((1 << (u.atoms.count - off6)) - 1) << (n + off6)
    pods = u.pod_mask & ~u.hostnet_mask
    per_workload: dict[WorkloadRef, int] = {}
    for cls in ctx.pod_classes():
        need = pods & ~(1 << cls.index)
        ports = 0
        for pm, peers in ev.ingress[cls.index].rows:
            if peers & need == need and (peers & ext4 == ext4 or peers & ext6 == ext6):
                ports |= pm
        if ports:
            for ref in ctx.workloads_of(1 << cls.index):
                per_workload[ref] = per_workload.get(ref, 0) | ports
    for ref in sorted(per_workload, key=lambda r: (r.namespace, r.kind, r.name)):
        yield Finding(check("NF008"), workload_obj(ref), ctx.workload_source(ref),
                      f"{ref.kind} {ref.namespace}/{ref.name} accepts ingress from every pod "
                      f"of every namespace and every external address on "
                      f"{_ports_text(u.portset(per_workload[ref]))}")


def _ports_text(ports: PortSet) -> str:
    return "every port and protocol" if ports.is_all() else str(ports)


# -- NF009 -----------------------------------------------------------------------------------

def check_internet_ingress(ctx: Context) -> Iterator[Finding]:
    eng = ctx.engine
    u = ctx.universe
    ev = ctx.evaluation
    for pol in eng.policies:
        for rule in pol.ingress or ():
            if rule.action is not Action.ALLOW:
                continue
            ips = IPSet()
            texts: list[str] = []
            for peer in rule.peers:
                if isinstance(peer, AnyPeer):
                    ips = IPSet.everything()
                    texts.append("every source (empty from)")
                elif isinstance(peer, IPPeer):
                    ips = ips | peer.ips
                    texts.append(peer.text)
            if not (PUBLIC_V4.issubset(ips) or PUBLIC_V6.issubset(ips)):
                continue
            atoms = 0
            for a in u.atoms.atoms_in(ips):
                atom_ips = u.atoms.ipset(a)
                if atom_ips & PUBLIC_V4 or atom_ips & PUBLIC_V6:
                    atoms |= 1 << u.atom_endpoint(a)
            exposed: set[WorkloadRef] = set()
            for c in bits(eng.subject_mask(pol.subject)):
                cls = u.classes[c]
                pods = [p for p in cls.pods if not ctx.is_controller(p.labels)]
                if not pods:
                    continue
                cr = _compiled(ctx, c, pol, rule)
                if cr is None:
                    continue
                rports = u.all_ports if cr.all_ports else cr.static_ports
                for p in cr.named_ports:
                    rports |= 1 << p
                if any(pm & rports and peers & atoms for pm, peers in ev.ingress[c].rows):
                    exposed.update(p.workload for p in pods)
            if not exposed:
                continue
            refs = sorted(exposed, key=lambda r: (r.namespace, r.kind, r.name))
            what = ("is not an ingress controller" if len(refs) == 1
                    else "are not ingress controllers")
            yield Finding(check("NF009"), policy_obj(pol), rule_source(pol, rule),
                          f"{rule_label(Direction.INGRESS, rule)} admits the internet "
                          f"({', '.join(texts)}) into {names(refs)}, which {what}",
                          f"ingress/{rule.index}", tuple(workload_obj(r) for r in refs))


def _compiled(ctx: Context, c: int, pol: Policy, rule: Rule) -> CRule | None:
    view = ctx.engine.subjected(c, Direction.INGRESS)
    for cr in (*view.admin, *view.netpol, *view.baseline):
        if cr.rule is rule and cr.policy is pol:
            return cr
    return None


# -- NF010 -----------------------------------------------------------------------------------

def check_dns(ctx: Context) -> Iterator[Finding]:
    u = ctx.universe
    ev = ctx.evaluation
    eng = ctx.engine
    dns = [cls for cls in ctx.pod_classes() if cls.namespace == DNS_NAMESPACE
           and any(matches(DNS_SELECTOR, p.labels) for p in cls.pods)]
    if not dns:
        return
    dns_set = {cls.index for cls in dns}
    p53 = u.port_class_of(Protocol.UDP, 53)
    # workload -> (denied everywhere?, denied at egress?, denied at CoreDNS ingress?)
    problems: dict[WorkloadRef, list[bool]] = {}
    for cls in ctx.pod_classes():
        if cls.index in dns_set:
            continue
        view = eng.subjected(cls.index, Direction.EGRESS)
        if not (view.admin or view.netpol or view.baseline or view.isolated_by):
            continue
        src = cls.pods[0]
        denied = [d for d in dns if not ctx.query.allowed(src, d.pods[0], Protocol.UDP, 53)]
        if not denied:
            continue
        at_egress = any(not any((pm >> p53) & 1 and (peers >> d.index) & 1
                                for pm, peers in ev.egress[cls.index].rows) for d in denied)
        at_ingress = any(not any((pm >> p53) & 1 and (peers >> cls.index) & 1
                                 for pm, peers in ev.ingress[d.index].rows) for d in denied)
        for ref in ctx.workloads_of(1 << cls.index):
            cur = problems.setdefault(ref, [False, False, False])
            cur[0] |= len(denied) == len(dns)
            cur[1] |= at_egress
            cur[2] |= at_ingress
    coredns = names(ctx.workloads_of(sum(1 << i for i in dns_set)))
    for ref in sorted(problems, key=lambda r: (r.namespace, r.kind, r.name)):
        everywhere, at_egress, at_ingress = problems[ref]
        sides = [s for s, on in (("the pod's egress policies", at_egress),
                                 ("CoreDNS's ingress policies", at_ingress)) if on]
        scope = "any CoreDNS pod" if everywhere else "some CoreDNS pods"
        yield Finding(check("NF010"), workload_obj(ref), ctx.workload_source(ref),
                      f"{ref.kind} {ref.namespace}/{ref.name} cannot reach {scope} ({coredns}) "
                      f"on UDP 53: denied by {' and '.join(sides)}; name resolution "
                      f"{'fails' if everywhere else 'is flaky'}")
