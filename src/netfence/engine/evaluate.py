"""The verdict pipeline over equivalence classes (pure).

Per subject class and direction the pipeline is (SEMANTICS tier-1..tier-5, D-6):

1. Admin tier: policies by (priority, kind, name); rules first-match in written order.
   Allow and Deny are final; Pass leaves the tier.
2. NetworkPolicy tier: only if some NetworkPolicy isolates the class in this direction; then the
   union of their rules allows and everything else is denied (Baseline is not consulted).
3. Baseline tier: first match; Pass ends the tier.
4. Default allow.

Bitsets: ``peers`` is a Python int over endpoints (pod classes, then IP atoms). For one port
class ``p`` a rule hits ``peers & ports_match(p)``; a ``decided`` mask implements first match.
``decide`` is the single implementation; ``explain`` calls it with a trace collector.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from netfence.engine.classes import EndpointClass, Universe, bits
from netfence.model.net import IPSet
from netfence.model.policy import (
    Action,
    AnyPeer,
    Direction,
    DomainPeer,
    IPPeer,
    LabelSelector,
    NamespaceScope,
    NodePeer,
    NoPeer,
    Peer,
    PodPeer,
    Policy,
    PortClause,
    Rule,
    Subject,
    Tier,
)
from netfence.model.ports import PROTOCOLS
from netfence.selectors import matches
from netfence.selectors.index import LabelIndex

DIRECTIONS = (Direction.INGRESS, Direction.EGRESS)


@dataclass(slots=True)
class CRule:
    """A rule compiled for one subject class and direction."""

    policy: Policy
    rule: Rule
    peer_masks: tuple[int, ...]
    peers: int
    dns: bool
    all_ports: bool
    static_ports: int
    named_ports: dict[int, int]
    clause_masks: tuple[int | dict[int, int], ...]

    def hit(self, p: int) -> int:
        if self.all_ports or (self.static_ports >> p) & 1:
            return self.peers
        return self.peers & self.named_ports.get(p, 0)


@dataclass(slots=True)
class Subjected:
    """The compiled policy view of one class in one direction."""

    admin: list[CRule] = field(default_factory=list)
    isolated_by: list[Policy] = field(default_factory=list)
    netpol: list[CRule] = field(default_factory=list)
    baseline: list[CRule] = field(default_factory=list)

    def port_signature(self, p: int) -> tuple[int, ...]:
        """What tells port class ``p`` apart for this view: for each rule that does not cover
        every port, whether its numeric ports cover ``p`` and which peers its named ports
        resolve into ``p`` for (rules covering all ports are the same for every ``p``)."""
        return tuple((r.static_ports >> p) & 1 or -r.named_ports.get(p, 0)
                     for r in (*self.admin, *self.netpol, *self.baseline) if not r.all_ports)


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of an explain trace: a policy rule consulted for the flow."""

    tier: Tier
    policy: Policy
    rule: Rule | None
    outcome: str  # "matched" | "peer-miss" | "port-miss" | "both-miss" | "dns" | "isolates"
    peer_index: int | None = None
    clause_index: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for one direction of one flow, and what decided it (ex-1)."""

    direction: Direction
    allowed: bool
    tier: Tier
    policy: Policy | None
    rule: Rule | None
    reason: str
    dns_conditional: bool = False


@dataclass(slots=True)
class Outcome:
    """Pipeline result for one (class, direction, port class) over a peer mask."""

    allow: int = 0
    deny: int = 0
    dns: int = 0


class Engine:
    """Compiles policies per class and runs the tier pipeline."""

    def __init__(self, universe: Universe) -> None:
        self.u = universe
        self._peer_cache: dict[Peer, int] = {}
        self._named_index: dict[tuple[str, object], dict[int, int]] = {}
        self._subject_cache: dict[Subject, int] = {}
        self._compiled: dict[tuple[int, Direction], Subjected] = {}
        # audit-mode policies (netfence.dev/mode: audit) never change a verdict: the agent
        # only logs what they would deny (SEMANTICS: 'audit' must never change isolation)
        self.policies = sorted((p for p in universe.state.policies if not p.audit),
                               key=Policy.order_key)
        u = universe
        self._class_index = LabelIndex([None if c.host_network else c.labels
                                        for c in u.classes])
        self._ns_names = sorted(u.ns_labels)
        self._ns_pos = {n: i for i, n in enumerate(self._ns_names)}
        self._ns_index = LabelIndex([u.ns_labels[n] for n in self._ns_names])
        self._ns_classes = [0] * len(self._ns_names)
        for cls in u.classes:
            if not cls.host_network:
                self._ns_classes[self._ns_pos[cls.namespace]] |= 1 << cls.index
        self._ns_mask_cache: dict[int, int] = {}
        # invert selection once: class -> policies selecting it, in evaluation order
        self._selecting: dict[Direction, list[list[Policy]]] = {
            d: [[] for _ in u.classes] for d in DIRECTIONS}
        for pol in self.policies:
            mask = self.subject_mask(pol.subject)
            for d in DIRECTIONS:
                if pol.rules(d) is None:
                    continue
                per_class = self._selecting[d]
                for c in bits(mask):
                    per_class[c].append(pol)

    # -- selection ---------------------------------------------------------------------------
    def subject_mask(self, subject: Subject) -> int:
        got = self._subject_cache.get(subject)
        if got is None:
            got = self._pod_mask(subject.namespaces, subject.pods)
            self._subject_cache[subject] = got
        return got

    def _pod_mask(self, scope: NamespaceScope, pods: LabelSelector | None) -> int:
        """Non-hostNetwork classes in the scope's namespaces whose labels match ``pods``."""
        if scope.name is not None:
            pos = self._ns_pos.get(scope.name)
            ns_classes = 0 if pos is None else self._ns_classes[pos]
        else:
            ns_bits = self._ns_index.select(scope.selector)
            got = self._ns_mask_cache.get(ns_bits)
            if got is None:
                got = 0
                for i in bits(ns_bits):
                    got |= self._ns_classes[i]
                self._ns_mask_cache[ns_bits] = got
            ns_classes = got
        if not ns_classes:
            return 0
        return ns_classes & self._class_index.select(pods)

    def peer_mask(self, peer: Peer) -> int:
        """Endpoints a peer matches (a PodPeer carries its own namespace scope)."""
        key = peer
        got = self._peer_cache.get(key)
        if got is not None:
            return got
        u = self.u
        mask = 0
        if isinstance(peer, PodPeer):
            mask = self._pod_mask(peer.namespaces, peer.pods)
        elif isinstance(peer, IPPeer):
            for a in u.atoms.atoms_in(peer.ips):
                mask |= (1 << u.atom_endpoint(a)) | u.classes_in_atom.get(a, 0)  # ip-1
        elif isinstance(peer, NodePeer):
            for node in u.state.nodes:
                if not matches(peer.selector, node.labels):
                    continue
                for addr in node.addresses:
                    from netfence.model.net import IPSet
                    for a in u.atoms.atoms_in(IPSet.address(addr)):
                        mask |= 1 << u.atom_endpoint(a)
                for cls in u.classes:
                    if cls.host_network and cls.node == node.name:
                        mask |= 1 << cls.index
        elif isinstance(peer, AnyPeer):
            mask = u.all_mask
        elif isinstance(peer, NoPeer | DomainPeer):
            mask = 0
        self._peer_cache[key] = mask
        return mask

    def named_index(self, name: str, protocol: object) -> dict[int, int]:
        """Port class -> destination classes whose named port means it (egress, port-6)."""
        key = (name, protocol)
        got = self._named_index.get(key)
        if got is None:
            got = {}
            for cls in self.u.classes:
                if cls.host_network:
                    continue
                for p in bits(self.u.named_mask(cls, name, protocol)):  # type: ignore[arg-type]
                    got[p] = got.get(p, 0) | (1 << cls.index)
            self._named_index[key] = got
        return got

    # -- compilation -------------------------------------------------------------------------
    def _clause_mask(self, clause: PortClause, cls: EndpointClass,
                     direction: Direction) -> int | dict[int, int]:
        u = self.u
        if clause.name is not None:
            if direction is Direction.INGRESS:
                return u.named_mask(cls, clause.name, clause.protocol)
            return self.named_index(clause.name, clause.protocol)
        protos = (clause.protocol,) if clause.protocol is not None else PROTOCOLS
        mask = 0
        for proto in protos:
            if clause.port is None:
                mask |= u.proto_mask[proto]
            else:
                hi = clause.end_port if clause.end_port is not None else clause.port
                mask |= u.range_mask(proto, clause.port, hi)
        return mask

    def _compile_rule(self, policy: Policy, rule: Rule, cls: EndpointClass,
                      direction: Direction) -> CRule:
        masks = tuple(self.peer_mask(peer) for peer in rule.peers)
        peers = 0
        for m in masks:
            peers |= m
        dns = any(isinstance(peer, DomainPeer) for peer in rule.peers)
        if rule.ports is None:
            return CRule(policy, rule, masks, peers, dns, True, 0, {}, ())
        cms = tuple(self._clause_mask(c, cls, direction) for c in rule.ports)
        static = 0
        named: dict[int, int] = {}
        for cm in cms:
            if isinstance(cm, int):
                static |= cm
            else:
                for p, m in cm.items():
                    named[p] = named.get(p, 0) | m
        return CRule(policy, rule, masks, peers, dns, False, static, named, cms)

    def subjected(self, cls_index: int, direction: Direction) -> Subjected:
        key = (cls_index, direction)
        got = self._compiled.get(key)
        if got is not None:
            return got
        cls = self.u.classes[cls_index]
        got = Subjected()
        if not cls.host_network:
            for pol in self._selecting[direction][cls_index]:
                rules = pol.rules(direction) or ()
                compiled = [self._compile_rule(pol, r, cls, direction) for r in rules]
                if pol.tier is Tier.ADMIN:
                    got.admin.extend(compiled)
                elif pol.tier is Tier.BASELINE:
                    got.baseline.extend(compiled)
                else:
                    got.isolated_by.append(pol)
                    got.netpol.extend(compiled)
        self._compiled[key] = got
        return got

    # -- the pipeline ------------------------------------------------------------------------
    def decide(self, view: Subjected, p: int, universe: int,
               trace: list[Step] | None = None) -> Outcome:
        """Run the tier pipeline for port class ``p`` over the peers in ``universe``."""
        out = Outcome()
        decided = 0
        passed = 0
        for cr in view.admin:
            decided, passed = self._first_match(cr, p, universe, decided, passed, out, trace,
                                                Tier.ADMIN)
        open_ = universe & ~(out.allow | out.deny)
        if view.isolated_by:
            np_allow = 0
            for cr in view.netpol:
                hit = cr.hit(p) & open_
                if trace is not None:
                    trace.append(self._step(Tier.NETWORK_POLICY, cr, p, universe, hit))
                np_allow |= hit
            out.allow |= np_allow
            out.deny |= open_ & ~np_allow
            return out
        decided = out.allow | out.deny
        passed = 0
        for cr in view.baseline:
            decided, passed = self._first_match(cr, p, universe, decided, passed, out, trace,
                                                Tier.BASELINE)
        out.allow |= universe & ~(out.allow | out.deny)
        return out

    def _first_match(self, cr: CRule, p: int, universe: int, decided: int, passed: int,
                     out: Outcome, trace: list[Step] | None, tier: Tier) -> tuple[int, int]:
        if cr.dns:
            cond = self.u.ext_mask & universe & ~decided & ~passed
            if cr.all_ports or (cr.static_ports >> p) & 1:
                out.dns |= cond
                if trace is not None and cond:
                    trace.append(Step(tier, cr.policy, cr.rule, "dns"))
        hit = cr.hit(p) & universe & ~decided & ~passed
        if trace is not None:
            trace.append(self._step(tier, cr, p, universe & ~decided & ~passed, hit))
        if not hit:
            return decided, passed
        action = cr.rule.action
        if action is Action.ALLOW:
            out.allow |= hit
        elif action is Action.DENY:
            out.deny |= hit
        else:
            passed |= hit
        return decided | hit, passed

    def _step(self, tier: Tier, cr: CRule, p: int, universe: int, hit: int) -> Step:
        if hit:
            peer_i = next((i for i, m in enumerate(cr.peer_masks) if m & hit), None)
            clause_i = None
            if cr.clause_masks:
                for i, cm in enumerate(cr.clause_masks):
                    m = cm if isinstance(cm, int) else 0
                    if isinstance(cm, int):
                        if (m >> p) & 1:
                            clause_i = i
                            break
                    elif cm.get(p, 0) & hit:
                        clause_i = i
                        break
            return Step(tier, cr.policy, cr.rule, "matched", peer_i, clause_i)
        peer_ok = bool(cr.peers & universe)
        port_ok = cr.all_ports or bool((cr.static_ports >> p) & 1) or bool(
            cr.named_ports.get(p, 0) & universe)
        if not universe:
            outcome = "skipped"
        elif peer_ok and not port_ok:
            outcome = "port-miss"
        elif port_ok and not peer_ok:
            outcome = "peer-miss"
        else:
            outcome = "both-miss" if not peer_ok else "port-miss"
        return Step(tier, cr.policy, cr.rule, outcome)


@dataclass(slots=True)
class Rows:
    """Allowed peers of one class in one direction, grouped by port-class masks."""

    rows: list[tuple[int, int]]  # (port mask, peer bitset)
    dns: list[tuple[int, int]]


class Evaluation:
    """Connectivity for a whole universe, computed class by class."""

    def __init__(self, universe: Universe) -> None:
        self.u = universe
        self.engine = Engine(universe)
        self.egress: list[Rows] = []
        self.ingress: list[Rows] = []
        for cls in universe.classes:
            self.egress.append(self._rows(cls.index, Direction.EGRESS))
            self.ingress.append(self._rows(cls.index, Direction.INGRESS))

    def _rows(self, c: int, direction: Direction) -> Rows:
        u = self.u
        view = self.engine.subjected(c, direction)
        if not (view.admin or view.netpol or view.baseline or view.isolated_by):
            return Rows([(u.all_ports, u.all_mask)], [])
        groups: dict[tuple[int, ...], int] = {}
        for p in range(u.n_ports):
            sig = view.port_signature(p)
            groups[sig] = groups.get(sig, 0) | (1 << p)
        by_allow: dict[int, int] = {}
        by_dns: dict[int, int] = {}
        for pmask in groups.values():
            p = (pmask & -pmask).bit_length() - 1
            out = self.engine.decide(view, p, u.all_mask)
            by_allow[out.allow] = by_allow.get(out.allow, 0) | pmask
            if out.dns:
                by_dns[out.dns] = by_dns.get(out.dns, 0) | pmask
        return Rows([(pm, peers) for peers, pm in by_allow.items() if peers],
                    [(pm, peers) for peers, pm in by_dns.items()])

    def connections(self) -> Iterator[tuple[int, int, int, bool]]:
        """Yield (src endpoint, dst endpoint, port-class mask, dns-conditional) for every
        allowed pair of distinct endpoints (pod classes and IP atoms); stable order."""
        u = self.u
        n = u.n_classes
        ext = u.ext_mask
        pods = u.pod_mask
        # join egress rows with ingress rows from the cheaper side (total popcount)
        cost_e = sum((m & pods).bit_count() for r in self.egress for _, m in r.rows)
        cost_i = sum((m & pods).bit_count() for r in self.ingress for _, m in r.rows)
        ingress_t: dict[int, dict[int, int]] = {}
        if cost_i < cost_e:
            # transposed ingress: for each src class, (port mask -> dst classes)
            for d in range(n):
                for pmask, srcs in self.ingress[d].rows:
                    for s in bits(srcs & pods):
                        row = ingress_t.setdefault(s, {})
                        row[pmask] = row.get(pmask, 0) | (1 << d)
        same_node = self._same_node_pairs()
        for s in range(n):
            acc: dict[int, int] = {}
            dns: dict[int, int] = {}
            into = ingress_t.get(s, {})
            for epm, dsts in self.egress[s].rows:
                if cost_i < cost_e:
                    for ipm, dmask in into.items():
                        pm = epm & ipm
                        if not pm:
                            continue
                        for d in bits(dsts & dmask):
                            acc[d] = acc.get(d, 0) | pm
                else:
                    for d in bits(dsts & pods):
                        pm = 0
                        for ipm, srcs in self.ingress[d].rows:
                            if (srcs >> s) & 1:
                                pm |= ipm
                        pm &= epm
                        if pm:
                            acc[d] = acc.get(d, 0) | pm
                for a in bits(dsts & ext):
                    acc[a] = acc.get(a, 0) | epm
            for epm, cond in self.egress[s].dns:
                for a in bits(cond & ext):
                    dns[a] = dns.get(a, 0) | epm
            for d in same_node.get(s, ()):
                acc[d] = u.all_ports
            for d in sorted(acc.keys() | dns.keys()):
                if d == s and len(u.classes[s].pods) == 1:
                    continue  # a pod talking to itself is always allowed; not a connection
                if acc.get(d, 0):
                    yield s, d, acc[d], d in dns
                elif d in dns:
                    yield s, d, 0, True
        for a in range(u.atoms.count):
            ep = u.atom_endpoint(a)
            own = same_node.get(ep, set())
            for d in range(n):
                pm = u.all_ports if d in own else 0
                for ipm, srcs in self.ingress[d].rows:
                    if (srcs >> ep) & 1:
                        pm |= ipm
                if pm:
                    yield ep, d, pm, False

    def _same_node_pairs(self) -> dict[int, set[int]]:
        """sp-3: a pod and its own node (its addresses and hostNetwork pods) always connect."""
        u = self.u
        out: dict[int, set[int]] = {}
        by_node: dict[str, list[int]] = {}
        for cls in u.classes:
            if cls.node:
                by_node.setdefault(cls.node, []).append(cls.index)
        for node, members in by_node.items():
            for addr in sorted(u.node_addrs.get(node, ())):
                for a in u.atoms.atoms_in(IPSet.address(addr)):
                    ep = u.atom_endpoint(a)
                    for c in members:
                        if not u.classes[c].host_network:
                            out.setdefault(c, set()).add(ep)
                            out.setdefault(ep, set()).add(c)
            hn = [c for c in members if u.classes[c].host_network]
            for h in hn:
                for c in members:
                    if c != h:
                        out.setdefault(h, set()).add(c)
                        out.setdefault(c, set()).add(h)
        return out
