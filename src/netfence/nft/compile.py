"""Compile a cluster snapshot into the nftables ruleset of one node (or one legacy host).

The verdict logic mirrors ``engine.evaluate.Engine.decide`` rule for rule:

* Admin tier: first match in (priority, kind, name, rule) order. Deny = drop, Accept = allow
  (``return`` on egress so the destination's ingress still applies; ``accept`` on ingress),
  Pass = ``goto <chain>-np``.
* NetworkPolicy tier, only when a NetworkPolicy isolates the pod in that direction: the union
  of allows, then drop. Baseline is not consulted (tier-4).
* Baseline tier: first match; Pass ends the tier (D-6); then default allow.

Audit-mode policies (``netfence.dev/mode: audit``) never change a verdict: they only add
rate-limited log rules (``W`` would deny, ``AD`` denied now but allowed once enforced).

Pods with the same compiled rules share chains (endpoint groups); chain names are content
hashes and set names are key hashes, so no rule list grows with pods, peers or policies.
"""

from __future__ import annotations

import bisect
import hashlib
import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from netfence.model.cluster import ClusterState, ContainerPort, Pod
from netfence.model.net import IPSet, ip_to_int
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
    Tier,
)
from netfence.model.ports import PROTOCOLS, Protocol
from netfence.nft.model import (
    AddrMatch,
    Chain,
    HostConfig,
    L4Match,
    Log,
    Match,
    NamedMatch,
    NRule,
    Provenance,
    Ruleset,
    SetDef,
)
from netfence.selectors import matches, namespace_matches
from netfence.selectors.index import LabelIndex

__all__ = ["HostEndpoint", "NodeCompiler", "compile_host", "compile_node"]

FAMILIES = (4, 6)


@dataclass(frozen=True, slots=True)
class HostEndpoint:
    """A standalone machine treated as a pod: selected by labels in a namespace."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    addresses: tuple[str, ...]
    ports: tuple[ContainerPort, ...] = ()


def _family(addr: str) -> int:
    return 6 if ":" in addr else 4  # addresses were validated when loaded


def _short(key: object) -> str:
    return hashlib.sha256(repr(key).encode()).hexdigest()[:10]


class _Selection:
    """Pod bitsets over a fixed pod list, by (namespace scope, pod selector)."""

    def __init__(self, pods: Sequence[Pod], ns_labels: Mapping[str, Mapping[str, str]]) -> None:
        self.pods = pods
        self.index = LabelIndex([None if p.host_network else p.labels for p in pods])
        self.ns_names = sorted(ns_labels)
        self.ns_index = LabelIndex([ns_labels[n] for n in self.ns_names])
        self.by_ns: dict[str, int] = {}
        for i, p in enumerate(pods):
            if not p.host_network:
                self.by_ns[p.namespace] = self.by_ns.get(p.namespace, 0) | (1 << i)
        self._cache: dict[tuple[NamespaceScope, LabelSelector | None], int] = {}

    def select(self, scope: NamespaceScope, pods: LabelSelector | None) -> int:
        key = (scope, pods)
        got = self._cache.get(key)
        if got is None:
            if scope.name is not None:
                ns_mask = self.by_ns.get(scope.name, 0)
            else:
                ns_mask = 0
                bits = self.ns_index.select(scope.selector)
                i = 0
                while bits:
                    if bits & 1:
                        ns_mask |= self.by_ns.get(self.ns_names[i], 0)
                    bits >>= 1
                    i += 1
            got = ns_mask & self.index.select(pods) if ns_mask else 0
            self._cache[key] = got
        return got

    def members(self, mask: int) -> Iterable[Pod]:
        i = 0
        while mask:
            low = mask & -mask
            i = low.bit_length() - 1
            yield self.pods[i]
            mask ^= low


@dataclass(slots=True)
class _Proto:
    """A rule before its group id is known (log prefixes embed the group id)."""

    matches: tuple[Match, ...]
    verdict: str
    comment: str
    log: str = ""  # log kind: D, W, AD ("" = none)
    rid: str = ""
    why: tuple[tuple[str, ...], str] = ((), "")


def _selection(state: ClusterState) -> _Selection:
    return _Selection([p for p in state.pods if p.ips],
                      {n: ns.labels for n, ns in state.namespaces.items()})


@dataclass(slots=True)
class _Compiler:
    state: ClusterState
    node: str
    ruleset: Ruleset
    _sel: _Selection | None = None  # over every pod with an address; built when needed
    keyed: dict[object, list[str]] = field(default_factory=dict)  # set key -> set names
    multi: list[Pod] | None = None  # pods with several addresses (NF-D4)
    scan: bool = False  # incremental: a new set's members by scanning, not by a label index

    @property
    def sel(self) -> _Selection:
        if self._sel is None:
            self._sel = _selection(self.state)
        return self._sel

    def moved_to(self, state: ClusterState, ruleset: Ruleset) -> None:
        """Carry the set keys over to a new snapshot (the caller updates the elements)."""
        self.state = state
        self.ruleset = ruleset
        self._sel = None
        self.multi = None
        self.scan = True

    def _scanned(self, key: tuple[object, ...], family: int) -> list[tuple[object, ...]]:
        ns_labels = {n: ns.labels for n, ns in self.state.namespaces.items()}
        return [e for p in self.state.pods if p.ips for e in _elements_of(key, p, ns_labels)
                if _family(str(e[0])) == family]

    # -- sets ------------------------------------------------------------------------------
    def _set(self, prefix: str, family: int, kind: str, key: object, comment: str,
             elements: Iterable[tuple[object, ...]]) -> str:
        name = f"{prefix}{family}-{_short(key)}"
        if name not in self.ruleset.sets:
            self.ruleset.sets[name] = SetDef(name, family, kind, comment[:120])
            self.ruleset.elements[name] = frozenset(elements)
        return name

    def _pod_ips(self, pods: Iterable[Pod], family: int) -> Iterator[tuple[object, ...]]:
        for p in pods:
            for ip in p.ips:
                if _family(ip) == family:
                    yield (ip,)

    def pod_sets(self, peer: PodPeer) -> list[str]:
        key = ("pods", peer.namespaces, peer.pods)
        got = self.keyed.get(key)
        if got is None:
            if self.scan:
                got = [self._set("p", fam, "addr", key, str(peer), self._scanned(key, fam))
                       for fam in FAMILIES]
            else:
                members = list(self.sel.members(self.sel.select(peer.namespaces, peer.pods)))
                got = [self._set("p", fam, "addr", key, str(peer), self._pod_ips(members, fam))
                       for fam in FAMILIES]
            self.keyed[key] = got
        return got

    def block_sets(self, ips: IPSet, text: str) -> list[str]:
        out = []
        for fam, iv in ((4, ips.v4), (6, ips.v6)):
            if not iv:
                continue
            part = IPSet(v4=iv) if fam == 4 else IPSet(v6=iv)
            out.append(self._set("b", fam, "interval", ("cidr", part), text,
                                 (_range(fam, lo, hi) for lo, hi in iv)))
        return out

    def with_dual_stack(self, blocks: IPSet) -> IPSet:
        """NF-D4: a pod with one address inside an ipBlock is matched on all its addresses."""
        if self.multi is None:
            self.multi = [p for p in self.state.pods if len(p.ips) > 1]
        extra = IPSet()
        for p in self.multi:
            if len(p.ips) > 1 and any(blocks.contains_int(*ip_to_int(ip)) for ip in p.ips):
                for ip in p.ips:
                    extra = extra | IPSet.address(ip)
        return blocks | extra if extra else blocks

    def node_sets(self, peer: NodePeer) -> list[str]:
        got = self.keyed.get(("nodes", peer.selector))
        if got is None:
            got = self.keyed[("nodes", peer.selector)] = self._node_sets(peer)
        return got

    def _node_sets(self, peer: NodePeer) -> list[str]:
        addrs: set[str] = set()
        for n in self.state.nodes:
            if matches(peer.selector, n.labels):
                addrs.update(n.addresses)
                for p in self.state.pods:
                    if p.host_network and p.node == n.name:
                        addrs.update(p.ips)
        key = ("nodes", peer.selector)
        return [self._set("h", fam, "addr", key, str(peer),
                          ((a,) for a in addrs if _family(a) == fam)) for fam in FAMILIES]

    def named_sets(self, peers: tuple[Peer, ...], clause: PortClause) -> list[str]:
        """Egress named port: (peer pod IP, protocol, that pod's number) for every peer pod."""
        key = ("named", peers, clause.name, clause.protocol)
        got = self.keyed.get(key)
        if got is None:
            if self.scan:
                text = f"{clause} of " + ", ".join(str(p) for p in peers)
                got = [self._set("n", fam, "named", key, text, self._scanned(key, fam))
                       for fam in FAMILIES]
                self.keyed[key] = got
            else:
                got = self.keyed[key] = self._named_sets(peers, clause)
        return got

    def _named_sets(self, peers: tuple[Peer, ...], clause: PortClause) -> list[str]:
        assert clause.name is not None
        mask = 0
        blocks = IPSet()
        for peer in peers:
            if isinstance(peer, PodPeer):
                mask |= self.sel.select(peer.namespaces, peer.pods)
            elif isinstance(peer, AnyPeer):
                mask |= self.sel.index.universe
            elif isinstance(peer, IPPeer):
                blocks = blocks | peer.ips
        elems: dict[int, set[tuple[object, ...]]] = {4: set(), 6: set()}
        for i, p in enumerate(self.sel.pods):
            in_mask = (mask >> i) & 1
            if p.host_network or not (in_mask or blocks):
                continue
            ports = [(cp.protocol, cp.port) for cp in p.ports if cp.name == clause.name
                     and (clause.protocol is None or cp.protocol is clause.protocol)]
            if not ports:
                continue
            if not in_mask and not any(blocks.contains_int(*ip_to_int(ip)) for ip in p.ips):
                continue  # ip-1 with NF-D4: any of its addresses inside a block
            for ip in p.ips:
                for proto, port in ports:
                    elems[ip_to_int(ip)[0]].add((ip, proto.value.lower(), port))
        key = ("named", peers, clause.name, clause.protocol)
        text = f"{clause} of " + ", ".join(str(p) for p in peers)
        return [self._set("n", fam, "named", key, text, elems[fam]) for fam in FAMILIES]

    # -- rules -----------------------------------------------------------------------------
    def addr_alternatives(self, rule: Rule, fld: str) -> list[Match | None]:
        alts: list[Match | None] = []
        blocks = IPSet()
        texts: list[str] = []
        for peer in rule.peers:
            if isinstance(peer, AnyPeer):
                return [None]
            if isinstance(peer, PodPeer):
                for name in self.pod_sets(peer):
                    alts.append(AddrMatch(fld, int(name[1]), name))
            elif isinstance(peer, IPPeer):
                blocks = blocks | peer.ips
                texts.append(peer.text)
            elif isinstance(peer, NodePeer):
                for name in self.node_sets(peer):
                    alts.append(AddrMatch(fld, int(name[1]), name))
            elif isinstance(peer, DomainPeer):
                self.ruleset.warnings.append(
                    f"{peer}: domainNames cannot be enforced by address; the peer matches "
                    "nothing here (D-7)")
            elif isinstance(peer, NoPeer):
                continue
        if blocks:
            blocks = self.with_dual_stack(blocks)
            for name in self.block_sets(blocks, ", ".join(texts)):
                alts.append(AddrMatch(fld, int(name[1]), name))
        return alts

    def rule_matches(self, rule: Rule, pod: Pod, direction: Direction) -> list[tuple[Match, ...]]:
        fld = "saddr" if direction is Direction.INGRESS else "daddr"
        if rule.ports is None:
            return [() if a is None else (a,) for a in self.addr_alternatives(rule, fld)]
        whole: set[Protocol] = set()
        ranges: dict[Protocol, set[tuple[int, int]]] = {}
        named: list[Match] = []
        for clause in rule.ports:
            if clause.name is not None:
                if direction is Direction.INGRESS:  # port-6: the selected pod's own number
                    for cp in pod.ports:
                        if cp.name == clause.name and (clause.protocol is None
                                                       or cp.protocol is clause.protocol):
                            ranges.setdefault(cp.protocol, set()).add((cp.port, cp.port))
                else:
                    for name in self.named_sets(rule.peers, clause):
                        named.append(NamedMatch(int(name[1]), name))
                continue
            protos = (clause.protocol,) if clause.protocol is not None else PROTOCOLS
            for proto in protos:
                if clause.port is None:
                    whole.add(proto)
                else:
                    hi = clause.end_port if clause.end_port is not None else clause.port
                    ranges.setdefault(proto, set()).add((clause.port, hi))
        l4: list[Match] = []
        for proto in PROTOCOLS:
            if proto in whole:
                l4.append(L4Match(proto.value.lower()))
            elif proto in ranges:
                l4.append(L4Match(proto.value.lower(), _merge(ranges[proto])))
        addrs = self.addr_alternatives(rule, fld) if l4 else []  # no unreferenced sets
        out = [(() if a is None else (a,)) + (m,) for a in addrs for m in l4]
        out += [(m,) for m in named]
        return out


def _range(family: int, lo: int, hi: int) -> tuple[object, ...]:
    cls = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    return (str(cls(lo)),) if lo == hi else (str(cls(lo)), str(cls(hi)))


def _merge(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _rule_text(policy: Policy, direction: Direction, rule: Rule) -> str:
    name = f" ({rule.name})" if rule.name else ""
    return f"{policy.ref} {direction}[{rule.index}]{name}"


def _first_match(c: _Compiler, policies: list[Policy], pod: Pod, direction: Direction,
                 allow: str, tag: str, on_pass: str) -> list[_Proto]:
    """A first-match tier (Admin or Baseline) in order; audit rules only log "would deny"."""
    out: list[_Proto] = []
    k = 0
    for pol in policies:
        for rule in pol.rules(direction) or ():
            k += 1
            if pol.audit and rule.action is not Action.DENY:
                continue  # an audit Accept/Pass changes nothing and logs nothing
            text = _rule_text(pol, direction, rule)
            why = ((str(pol.ref),), text)
            for m in c.rule_matches(rule, pod, direction):
                if pol.audit:
                    if rule.action is Action.DENY:
                        out.append(_Proto(m, "", text, "W", f"{tag}{k}", why))
                elif rule.action is Action.DENY:
                    out.append(_Proto(m, "drop", text, "D", f"{tag}{k}", why))
                else:
                    out.append(_Proto(m, allow if rule.action is Action.ALLOW else on_pass, text))
    return out


def _group_protos(c: _Compiler, pod: Pod, direction: Direction,
                  selecting: list[Policy]) -> tuple[list[_Proto], list[_Proto], bool]:
    """One pod's rules in one direction: (Admin head, NetworkPolicy/Baseline tail, Pass used).

    With a Pass rule the tail gets its own chain ``<chain>-np`` so Pass can skip the rest of
    the Admin tier; otherwise head and tail form one chain.
    """
    allow = "accept" if direction is Direction.INGRESS else "return"
    admin = [p for p in selecting if p.tier is Tier.ADMIN]
    netpol = [p for p in selecting if p.tier is Tier.NETWORK_POLICY and not p.audit]
    audit_np = [p for p in selecting if p.tier is Tier.NETWORK_POLICY and p.audit]
    baseline = [p for p in selecting if p.tier is Tier.BASELINE]
    head = _first_match(c, admin, pod, direction, allow, "a", "goto:-np")
    uses_pass = any(p.verdict == "goto:-np" for p in head)
    tail: list[_Proto] = []
    if netpol:
        isolating = tuple(sorted(str(p.ref) for p in netpol))
        for pol in sorted(netpol, key=lambda p: (p.ref.kind, p.ref.namespace, p.ref.name)):
            for rule in pol.rules(direction) or ():
                text = _rule_text(pol, direction, rule)
                for m in c.rule_matches(rule, pod, direction):
                    tail.append(_Proto(m, allow, text))
        for n, pol in enumerate(sorted(audit_np, key=lambda p: p.ref.name)):
            for rule in pol.rules(direction) or ():
                text = _rule_text(pol, direction, rule)
                for m in c.rule_matches(rule, pod, direction):
                    tail.append(_Proto(m, "drop", text, "AD", f"n{n}.{rule.index}",
                                       ((str(pol.ref),), text)))
        tail.append(_Proto((), "drop", f"isolated by {', '.join(isolating)}", "D", "np",
                           (isolating, "no NetworkPolicy rule allows it")))
    else:
        if audit_np:
            tail.append(_Proto((), "jump:-w", "audit-mode NetworkPolicies"))
        # Pass ends the Baseline tier (D-6): default allow
        tail += _first_match(c, baseline, pod, direction, allow, "b", allow)
        tail.append(_Proto((), allow, "default allow"))
    return head, tail, uses_pass


def _audit_protos(c: _Compiler, pod: Pod, direction: Direction,
                  audit_np: list[Policy]) -> list[_Proto]:
    """Chain ``-w``: audit NetworkPolicy allows return; otherwise log "would deny"."""
    out: list[_Proto] = []
    for pol in sorted(audit_np, key=lambda p: (p.ref.namespace, p.ref.name)):
        for rule in pol.rules(direction) or ():
            text = _rule_text(pol, direction, rule)
            for m in c.rule_matches(rule, pod, direction):
                out.append(_Proto(m, "return", text))
    refs = tuple(sorted(str(p.ref) for p in audit_np))
    out.append(_Proto((), "", f"would be isolated by {', '.join(refs)}", "W", "npw",
                      (refs, "no audit-mode NetworkPolicy rule allows it")))
    return out


def _finish(rs: Ruleset, protos: list[_Proto], chain: str, gid: str, letter: str,
            direction: Direction) -> list[NRule]:
    rules: list[NRule] = []
    for p in protos:
        verdict = p.verdict
        if verdict.startswith(("goto:-", "jump:-")):
            verdict = f"{verdict[:5]}{chain}{verdict[5:]}"
        if p.log:
            prefix = f"{p.log}|{letter}|{gid}|{p.rid}|"
            rs.provenance[f"{gid}|{p.rid}"] = Provenance(
                p.log, str(direction), p.why[0], p.why[1])
            rules.append(NRule(p.matches, verdict, p.comment[:120], Log(prefix)))
            if verdict:  # over the rate limit: same verdict, no log
                rules.append(NRule(p.matches, verdict, p.comment[:120]))
        else:
            rules.append(NRule(p.matches, verdict, p.comment[:120]))
    return rules


def _selecting(policies: Sequence[Policy], sel: _Selection, local: Sequence[Pod]
               ) -> dict[tuple[int, Direction], list[Policy]]:
    """(local pod index, direction) -> policies selecting it there, in evaluation order."""
    index_of = {p.key: i for i, p in enumerate(local)}
    out: dict[tuple[int, Direction], list[Policy]] = {}
    for pol in policies:
        mask = sel.select(pol.subject.namespaces, pol.subject.pods)
        if not mask:
            continue
        for pod in sel.members(mask):
            i = index_of[pod.key]
            for d in (Direction.INGRESS, Direction.EGRESS):
                if pol.rules(d) is not None:
                    out.setdefault((i, d), []).append(pol)
    return out


@dataclass(slots=True)
class _Group:
    """Pods with the same compiled rules in one direction share these chains."""

    direction: Direction
    head: list[_Proto]
    tail: list[_Proto]
    uses_pass: bool
    w: list[_Proto]
    stem: str
    members: set[str] = field(default_factory=set)


def _group_for(c: _Compiler, pod: Pod, d: Direction, pols: list[Policy]
               ) -> tuple[tuple[object, ...], _Group]:
    head, tail, uses_pass = _group_protos(c, pod, d, pols)
    audit_np = [p for p in pols if p.tier is Tier.NETWORK_POLICY and p.audit]
    netpol = [p for p in pols if p.tier is Tier.NETWORK_POLICY and not p.audit]
    w = _audit_protos(c, pod, d, audit_np) if audit_np and not netpol else []
    parts = [*head, _Proto((), "|", ""), *tail, *w]
    key: tuple[object, ...] = (d, uses_pass, *((p.matches, p.verdict, p.comment, p.log, p.rid)
                                                for p in parts))
    stem = ("in-" if d is Direction.INGRESS else "eg-") + _short(key)[:8]
    return key, _Group(d, head, tail, uses_pass, w, stem)


def _emit(rs: Ruleset, g: _Group) -> None:
    """Write a group's chains (their names and rules depend on content, not members)."""
    letter = "I" if g.direction is Direction.INGRESS else "E"
    stem, gid = g.stem, g.stem[3:]

    def chain(name: str, protos: list[_Proto]) -> None:
        rs.chains[name] = Chain(name, tuple(_finish(rs, protos, stem, gid, letter,
                                                    g.direction)))

    if g.uses_pass:
        chain(stem, [*g.head, _Proto((), "goto:-np", "rest of the tiers")])
        chain(stem + "-np", g.tail)
    else:
        chain(stem, g.head + g.tail)
    if g.w:
        chain(stem + "-w", g.w)


def _drop(rs: Ruleset, g: _Group) -> None:
    for name in (g.stem, g.stem + "-np", g.stem + "-w"):
        rs.chains.pop(name, None)
    rs.groups.pop(g.stem, None)
    gid = g.stem[3:]
    for k in [k for k in rs.provenance if k.startswith(gid + "|")]:
        del rs.provenance[k]


def _place(rs: Ruleset, g: _Group, pod: Pod, host: HostConfig | None) -> None:
    vmap = "in" if g.direction is Direction.INGRESS else "eg"
    if host is not None:
        rs.entry[vmap] = g.stem  # one endpoint: its chains hang off input/output
    for ip in pod.ips:
        rs.maps[f"{vmap}{_family(ip)}"][ip] = g.stem


def _self_pairs(rs: Ruleset, pods: Iterable[Pod], add: bool) -> None:
    for fam in FAMILIES:
        name = f"self{fam}"
        pairs = {(ip, ip) for p in pods for ip in p.ips if _family(ip) == fam}
        if pairs:
            now = rs.elements.get(name, frozenset())
            rs.elements[name] = now | pairs if add else now - pairs


@dataclass(slots=True)
class _Compiled:
    """What a full compile leaves behind for the next, incremental one."""

    c: _Compiler
    groups: dict[tuple[object, ...], _Group]
    pod_groups: dict[str, list[tuple[object, ...]]]


def _compile_full(state: ClusterState, node: str, local: list[Pod],
                  host: HostConfig | None) -> tuple[Ruleset, _Compiled]:
    ruleset = Ruleset(node=node, host=host)
    for name in ("in4", "in6", "eg4", "eg6"):
        ruleset.maps[name] = {}
    c = _Compiler(state, node, ruleset)
    local_sel = _Selection(local, {n: ns.labels for n, ns in state.namespaces.items()})
    policies = sorted(state.policies, key=Policy.order_key)
    selecting = _selecting(policies, local_sel, local)
    groups: dict[tuple[object, ...], _Group] = {}
    pod_groups: dict[str, list[tuple[object, ...]]] = {}
    for (i, d), pols in sorted(selecting.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        key, g = _group_for(c, local[i], d, pols)
        g = groups.setdefault(key, g)
        g.members.add(local[i].key)
        pod_groups.setdefault(local[i].key, []).append(key)
        _place(ruleset, g, local[i], host)
    for g in groups.values():
        _emit(ruleset, g)
        ruleset.groups[g.stem] = tuple(sorted(g.members))
    if host is None:
        for fam in FAMILIES:
            ruleset.sets[f"self{fam}"] = SetDef(f"self{fam}", fam, "pair",
                                                "a pod may always reach itself (sp-2)")
            ruleset.elements[f"self{fam}"] = frozenset()
        _self_pairs(ruleset, local, True)
    _tidy(ruleset)
    return ruleset, _Compiled(c, groups, pod_groups)


def _tidy(rs: Ruleset) -> None:
    rs.warnings = sorted(set(rs.warnings))
    rs.elements = dict(sorted(rs.elements.items()))
    rs.sets = dict(sorted(rs.sets.items()))
    rs.chains = dict(sorted(rs.chains.items()))
    rs.groups = dict(sorted(rs.groups.items()))


def _compile(state: ClusterState, node: str, local: list[Pod],
             host: HostConfig | None) -> Ruleset:
    return _compile_full(state, node, local, host)[0]


def compile_node(state: ClusterState, node: str) -> Ruleset:
    """The ruleset for node ``node``: its pods (by ``spec.nodeName``) with known IPs."""
    local = [p for p in state.pods if p.node == node and p.ips and not p.host_network]
    local.sort(key=lambda p: p.key)
    return _compile(state, node, local, None)


def compile_host(state: ClusterState, host: HostEndpoint,
                 config: HostConfig | None = None) -> Ruleset:
    """The ruleset protecting a standalone host, selected by labels like a pod."""
    from netfence.model.cluster import WorkloadRef

    pod = Pod(host.namespace, host.name, dict(host.labels), host.ports,
              WorkloadRef("Host", host.namespace, host.name), ips=host.addresses,
              node=host.name)
    namespaces = dict(state.namespaces)
    if host.namespace not in namespaces:
        from netfence.model.cluster import Namespace

        namespaces[host.namespace] = Namespace(
            host.namespace, {"kubernetes.io/metadata.name": host.namespace}, implicit=True)
    state = ClusterState(namespaces, (*state.pods, pod), state.workloads, state.services,
                         state.nodes, state.policies)
    return _compile(state, host.name, [pod], config or HostConfig())


# -- incremental: successive snapshots of one node ---------------------------------------------

DIRECTIONS = (Direction.INGRESS, Direction.EGRESS)


def _pod_sig(p: Pod) -> tuple[object, ...]:
    return (p.namespace, tuple(sorted(p.labels.items())), p.ports, p.host_network, p.ips,
            p.node)


def _node_sig(state: ClusterState) -> tuple[object, ...]:
    return (tuple(sorted((n, tuple(sorted(ns.labels.items())))
                         for n, ns in state.namespaces.items())),
            tuple((n.name, tuple(sorted(n.labels.items())), n.addresses) for n in state.nodes))


def _one_policy_sig(p: Policy) -> tuple[object, ...]:
    """A policy as the compiler sees it (not where it was read from)."""
    def rules(rs: tuple[Rule, ...] | None) -> object:
        return None if rs is None else tuple((r.index, r.action, r.peers, r.ports, r.name)
                                             for r in rs)
    return (p.tier, p.priority, p.subject, rules(p.ingress), rules(p.egress), p.audit)


def _selects(scope: NamespaceScope, pods: LabelSelector | None, pod: Pod,
             ns_labels: Mapping[str, Mapping[str, str]]) -> bool:
    """The reference form of ``_Selection.select`` for one pod (sp-1: never hostNetwork)."""
    return (not pod.host_network
            and namespace_matches(scope, pod.namespace, ns_labels.get(pod.namespace, {}))
            and (pods is None or matches(pods, pod.labels)))


class NodeCompiler:
    """Compiles successive snapshots for one node, reusing the previous compile.

    Pod churn (pods added, removed, relabelled, re-addressed) updates only the elements of
    the sets those pods fall in, and, for the node's own pods, their map entries and groups.
    A change of namespaces, nodes or policies, or of a hostNetwork or dual-stack pod, falls
    back to a full compile. ``compile(state)`` always equals ``compile_node(state, node)``
    (property-tested).
    """

    def __init__(self, node: str) -> None:
        self.node = node
        self.state: ClusterState | None = None
        self.ruleset: Ruleset | None = None
        self.done: _Compiled | None = None
        self.pods: dict[str, Pod] = {}
        self.sigs: dict[str, tuple[object, ...]] = {}
        self.local: dict[str, Pod] = {}
        self.holders: dict[str, int] = {}  # address -> how many pods hold it
        self.full_compiles = 0
        self._cands: dict[str, list[Policy]] = {}
        self._policies: list[Policy] = []

    def _local(self, p: Pod | None) -> bool:
        return p is not None and p.node == self.node and bool(p.ips) and not p.host_network

    def _full(self, state: ClusterState) -> Ruleset:
        local = sorted((p for p in state.pods if self._local(p)), key=lambda p: p.key)
        self.ruleset, self.done = _compile_full(state, self.node, local, None)
        self.state = state
        self.pods = {p.key: p for p in state.pods}
        self.sigs = {k: _pod_sig(p) for k, p in self.pods.items()}
        self.local = {p.key: p for p in local}
        self.holders = {}
        for p in state.pods:
            for ip in p.ips:
                self.holders[ip] = self.holders.get(ip, 0) + 1
        self._policies = sorted(state.policies, key=Policy.order_key)
        self._cands = {}
        self.full_compiles += 1
        return self.ruleset

    def compile(self, state: ClusterState) -> Ruleset:
        old = self.state
        if old is None or self.done is None or self.ruleset is None or (
                (old.namespaces is not state.namespaces or old.nodes is not state.nodes)
                and _node_sig(old) != _node_sig(state)):
            return self._full(state)
        try:
            return self._compile(old, state)
        except Exception:
            self.state = None  # whatever happened, the next compile starts afresh
            raise

    def _compile(self, old: ClusterState, state: ClusterState) -> Ruleset:
        assert self.done is not None and self.ruleset is not None
        edited = self._edited_policies(old, state)
        changed = self._changed_pods(old, state)
        if any(p is not None and (p.host_network or len(p.ips) > 1)
               for pair in changed for p in pair):
            return self._full(state)
        if changed and self._shares_an_address(changed):
            return self._full(state)  # e.g. a terminating pod and its replacement, one IP
        for was, _now in changed:
            if was is not None:
                self.pods.pop(was.key, None)
                self.sigs.pop(was.key, None)
                self.local.pop(was.key, None)
        for _was, now in changed:
            if now is not None:
                self.pods[now.key] = now
                self.sigs[now.key] = _pod_sig(now)
                if self._local(now):
                    self.local[now.key] = now
        self.state = state
        if not changed and not edited:
            return self.ruleset
        prev = self.ruleset
        rs = Ruleset(node=prev.node, host=None, sets=dict(prev.sets),
                     elements=dict(prev.elements), chains=dict(prev.chains),
                     maps={k: dict(v) for k, v in prev.maps.items()},
                     provenance=dict(prev.provenance), groups=dict(prev.groups),
                     warnings=list(prev.warnings))
        c = self.done.c
        c.moved_to(state, rs)
        ns_labels = {n: ns.labels for n, ns in state.namespaces.items()}
        self._update_sets(c, rs, changed, ns_labels)
        if edited:  # the node's pods an edited policy selected, or now selects, regroup
            moved = {p.key for pair in changed for p in pair if p is not None}
            for pod in list(self.local.values()):
                if pod.key not in moved and any(
                        _selects(p.subject.namespaces, p.subject.pods, pod, ns_labels)
                        for p in edited):
                    changed.append((pod, pod))
        self._update_local(c, rs, changed, ns_labels)
        _tidy(rs)
        self.ruleset = rs
        return rs

    def _shares_an_address(self, changed: list[tuple[Pod | None, Pod | None]]) -> bool:
        """Count the changed pods' addresses in; True when one is (still) held by another
        pod as well: the element updates assume one pod per address, so such churn (e.g. a
        terminating pod and its replacement) takes a full compile."""
        for was, now in changed:
            for ip in was.ips if was is not None else ():
                self.holders[ip] -= 1
            for ip in now.ips if now is not None else ():
                self.holders[ip] = self.holders.get(ip, 0) + 1
        for was, now in changed:
            mine = set(now.ips) if now is not None else set()
            for ip in mine | (set(was.ips) if was is not None else set()):
                if self.holders.get(ip, 0) > (1 if ip in mine else 0):
                    return True
        return False

    def _changed_pods(self, old: ClusterState, state: ClusterState
                      ) -> list[tuple[Pod | None, Pod | None]]:
        """(before, after) of every pod that differs, by position then key: the objects of
        unchanged pods are usually the very same, so only the odd positions are looked at
        (keys are unique within a snapshot, so a key at an odd position is nowhere else)."""
        if old.pods is state.pods:
            return []
        n = min(len(old.pods), len(state.pods))
        before: dict[str, Pod] = {}
        after: dict[str, Pod] = {}
        for a, b in zip(old.pods[:n], state.pods[:n], strict=True):
            if a is not b:
                before[a.key] = a
                after[b.key] = b
        for a in old.pods[n:]:
            before[a.key] = a
        for b in state.pods[n:]:
            after[b.key] = b
        changed: list[tuple[Pod | None, Pod | None]] = []
        for k in sorted(before.keys() | after.keys()):
            was, now = before.get(k), after.get(k)
            if was is now or (now is not None and was is not None
                              and self.sigs.get(k) == _pod_sig(now)):
                continue
            changed.append((was, now))
        return changed

    def _edited_policies(self, old: ClusterState, state: ClusterState) -> list[Policy]:
        """Old and new versions of every policy that differs; keeps the ordered list current."""
        if old.policies is state.policies:
            return []
        pairs: list[tuple[Policy | None, Policy | None]] = []
        if len(old.policies) == len(state.policies) and all(
                a.ref == b.ref for a, b in zip(old.policies, state.policies, strict=True)
                if a is not b):
            pairs = [(a, b) for a, b in zip(old.policies, state.policies, strict=True)
                     if a is not b]
        else:
            before = {p.ref: p for p in old.policies}
            after = {p.ref: p for p in state.policies}
            pairs = [(before.get(r), after.get(r)) for r in before.keys() | after.keys()
                     if before.get(r) is not after.get(r)]
        edited: list[Policy] = []
        for was, now in pairs:
            if was is not None and now is not None \
                    and _one_policy_sig(was) == _one_policy_sig(now):
                continue
            ref = (now or was).ref  # type: ignore[union-attr]
            if was is not None:
                edited.append(was)
                at = bisect.bisect_left(self._policies, was.order_key(), key=Policy.order_key)
                if at < len(self._policies) and self._policies[at].ref == ref:
                    del self._policies[at]
            if now is not None:
                edited.append(now)
                bisect.insort(self._policies, now, key=Policy.order_key)
            self._cands.pop(ref.namespace, None)
            if not ref.namespace:
                self._cands.clear()
        return edited

    def _update_sets(self, c: _Compiler, rs: Ruleset, changed: list[tuple[Pod | None,
                     Pod | None]], ns_labels: Mapping[str, Mapping[str, str]]) -> None:
        for key, names in list(c.keyed.items()):
            kind = key[0] if isinstance(key, tuple) else ""
            if kind not in ("pods", "named"):
                continue  # ipBlocks and nodes do not depend on (non-hostNetwork) pods
            assert isinstance(key, tuple)
            gone: set[tuple[object, ...]] = set()
            new: set[tuple[object, ...]] = set()
            for before, after in changed:
                for pod, out in ((before, gone), (after, new)):
                    if pod is not None and pod.ips:
                        out.update(_elements_of(key, pod, ns_labels))
            if not gone and not new:
                continue
            for name in names:
                fam = int(name[1])
                mine = {e for e in new if _family(str(e[0])) == fam}
                drop = {e for e in gone if _family(str(e[0])) == fam}
                if mine or drop:
                    rs.elements[name] = (rs.elements[name] - drop) | mine

    def _candidates(self, namespace: str) -> list[Policy]:
        got = self._cands.get(namespace)
        if got is None:
            got = [p for p in self._policies if p.subject.namespaces.name in (None, namespace)]
            self._cands[namespace] = got
        return got

    def _update_local(self, c: _Compiler, rs: Ruleset, changed: list[tuple[Pod | None,
                      Pod | None]], ns_labels: Mapping[str, Mapping[str, str]]) -> None:
        assert self.done is not None
        groups, pod_groups = self.done.groups, self.done.pod_groups
        touched: set[tuple[object, ...]] = set()
        for before, _after in changed:  # all removals first: an address may be reused
            if before is None or not self._local(before):
                continue
            for key in pod_groups.pop(before.key, []):
                groups[key].members.discard(before.key)
                touched.add(key)
            for ip in before.ips:
                for m in ("in4", "in6", "eg4", "eg6"):
                    rs.maps[m].pop(ip, None)
            _self_pairs(rs, [before], False)
        for _before, after in changed:
            if after is None or not self._local(after):
                continue
            for d in DIRECTIONS:
                pols = [p for p in self._candidates(after.namespace) if p.rules(d) is not None
                        and _selects(p.subject.namespaces, p.subject.pods, after, ns_labels)]
                if not pols:
                    continue
                key, g = _group_for(c, after, d, pols)
                if key not in groups:
                    groups[key] = g
                    _emit(rs, g)
                g = groups[key]
                g.members.add(after.key)
                pod_groups.setdefault(after.key, []).append(key)
                touched.add(key)
                _place(rs, g, after, None)
            _self_pairs(rs, [after], True)
        dropped = False
        for key in touched:
            g = groups[key]
            if g.members:
                rs.groups[g.stem] = tuple(sorted(g.members))
            else:
                _drop(rs, g)
                del groups[key]
                dropped = True
        if dropped:  # sets only the dropped chains used go too, as a full compile would
            used = {m.set for ch in rs.chains.values() for r in ch.rules for m in r.matches
                    if isinstance(m, AddrMatch | NamedMatch)} | {"self4", "self6"}
            for n in [n for n in rs.sets if n not in used]:
                del rs.sets[n]
                rs.elements.pop(n, None)
            for k in [k for k, names in c.keyed.items() if not any(n in used for n in names)]:
                del c.keyed[k]


def _elements_of(key: tuple[object, ...], pod: Pod,
                 ns_labels: Mapping[str, Mapping[str, str]]) -> list[tuple[object, ...]]:
    """The elements ``pod`` contributes to the set(s) with this key (both families)."""
    if pod.host_network:
        return []
    if key[0] == "pods":
        scope, sel = key[1], key[2]
        assert isinstance(scope, NamespaceScope)
        assert sel is None or isinstance(sel, LabelSelector)
        return [(ip,) for ip in pod.ips] if _selects(scope, sel, pod, ns_labels) else []
    peers, name, proto = key[1], key[2], key[3]
    assert isinstance(peers, tuple)
    hit = False
    for peer in peers:
        if isinstance(peer, AnyPeer) or (
                isinstance(peer, PodPeer)
                and _selects(peer.namespaces, peer.pods, pod, ns_labels)) or (
                isinstance(peer, IPPeer)
                and any(peer.ips.contains_int(*ip_to_int(ip)) for ip in pod.ips)):
            hit = True
            break
    if not hit:
        return []
    ports = [(cp.protocol, cp.port) for cp in pod.ports
             if cp.name == name and (proto is None or cp.protocol is proto)]
    return [(ip, pr.value.lower(), port) for ip in pod.ips for pr, port in ports]
