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
from netfence.selectors import matches
from netfence.selectors.index import LabelIndex

__all__ = ["HostEndpoint", "compile_host", "compile_node"]

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


@dataclass(slots=True)
class _Compiler:
    state: ClusterState
    node: str
    ruleset: Ruleset
    sel: _Selection
    set_elements: dict[str, set[tuple[object, ...]]] = field(default_factory=dict)
    keyed: dict[object, list[str]] = field(default_factory=dict)  # set key -> set names
    multi: list[Pod] | None = None  # pods with several addresses (NF-D4)

    # -- sets ------------------------------------------------------------------------------
    def _set(self, prefix: str, family: int, kind: str, key: object, comment: str,
             elements: Iterable[tuple[object, ...]]) -> str:
        name = f"{prefix}{family}-{_short(key)}"
        if name not in self.ruleset.sets:
            self.ruleset.sets[name] = SetDef(name, family, kind, comment[:120])
            self.set_elements[name] = set(elements)
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
            self.multi = [p for p in self.sel.pods if len(p.ips) > 1]
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


def _finish(c: _Compiler, protos: list[_Proto], chain: str, gid: str, letter: str,
            direction: Direction, pods: tuple[str, ...]) -> list[NRule]:
    rules: list[NRule] = []
    for p in protos:
        verdict = p.verdict
        if verdict.startswith(("goto:-", "jump:-")):
            verdict = f"{verdict[:5]}{chain}{verdict[5:]}"
        if p.log:
            prefix = f"{p.log}|{letter}|{gid}|{p.rid}|"
            c.ruleset.provenance[f"{gid}|{p.rid}"] = Provenance(
                p.log, str(direction), p.why[0], p.why[1], pods)
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


def _compile(state: ClusterState, node: str, local: list[Pod],
             host: HostConfig | None) -> Ruleset:
    ruleset = Ruleset(node=node, host=host)
    everyone = [p for p in state.pods if p.ips]
    ns_labels = {n: ns.labels for n, ns in state.namespaces.items()}
    c = _Compiler(state, node, ruleset, _Selection(everyone, ns_labels))
    local_sel = _Selection(local, ns_labels)
    policies = sorted(state.policies, key=Policy.order_key)
    selecting = _selecting(policies, local_sel, local)

    Parts = tuple[list[_Proto], list[_Proto], bool, list[_Proto]]
    groups: dict[tuple[object, ...], list[int]] = {}
    content: dict[tuple[object, ...], tuple[Direction, Parts]] = {}
    for (i, d), pols in sorted(selecting.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        head, tail, uses_pass = _group_protos(c, local[i], d, pols)
        audit_np = [p for p in pols if p.tier is Tier.NETWORK_POLICY and p.audit]
        netpol = [p for p in pols if p.tier is Tier.NETWORK_POLICY and not p.audit]
        w = _audit_protos(c, local[i], d, audit_np) if audit_np and not netpol else []
        parts = [*head, _Proto((), "|", ""), *tail, *w]
        key: tuple[object, ...] = (d, uses_pass, *((p.matches, p.verdict, p.comment, p.log,
                                                    p.rid) for p in parts))
        groups.setdefault(key, []).append(i)
        content[key] = (d, (head, tail, uses_pass, w))

    for key, members in groups.items():
        d, (head, tail, uses_pass, w) = content[key]
        letter = "I" if d is Direction.INGRESS else "E"
        gid = _short(key)[:8]
        stem = ("in-" if d is Direction.INGRESS else "eg-") + gid
        pods = tuple(sorted(local[i].key for i in members))

        def chain(name: str, protos: list[_Proto], gid: str = gid, stem: str = stem,
                  letter: str = letter, d: Direction = d, pods: tuple[str, ...] = pods) -> None:
            ruleset.chains[name] = Chain(name, tuple(_finish(c, protos, stem, gid, letter, d,
                                                             pods)))

        if uses_pass:
            chain(stem, [*head, _Proto((), "goto:-np", "rest of the tiers")])
            chain(stem + "-np", tail)
        else:
            chain(stem, head + tail)
        if w:
            chain(stem + "-w", w)
        ruleset.groups[stem] = pods
        vmap = "in" if d is Direction.INGRESS else "eg"
        if host is not None:
            ruleset.entry[vmap] = stem  # one endpoint: its chains hang off input/output
        for i in members:
            for ip in local[i].ips:
                ruleset.maps.setdefault(f"{vmap}{_family(ip)}", {})[ip] = stem

    for name in ("in4", "in6", "eg4", "eg6"):
        ruleset.maps.setdefault(name, {})
    if host is None:
        for fam in FAMILIES:
            ruleset.sets[f"self{fam}"] = SetDef(f"self{fam}", fam, "pair",
                                                "a pod may always reach itself (sp-2)")
            c.set_elements[f"self{fam}"] = {(ip, ip) for p in local for ip in p.ips
                                            if _family(ip) == fam}
    ruleset.elements = {k: frozenset(v) for k, v in sorted(c.set_elements.items())}
    ruleset.sets = dict(sorted(ruleset.sets.items()))
    ruleset.chains = dict(sorted(ruleset.chains.items()))
    return ruleset


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
