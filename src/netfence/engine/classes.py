"""Equivalence classes: endpoint classes, IP atoms and port classes (ARCHITECTURE "Scale").

Pods with the same namespace, projected labels, named ports, hostNetwork flag, node of interest
and IP-atom signature behave identically under every policy, so the engine evaluates classes.
Endpoints are numbered: pod classes first, then external IP atoms; a set of endpoints is a
Python int used as a bitset. Ports are partitioned per protocol into port classes by every
boundary any policy draws; a set of port classes is also an int bitset.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from netfence.model.cluster import METADATA_NAME, ClusterState, Pod
from netfence.model.net import V4_MAX, V6_MAX, IPSet, ip_to_int
from netfence.model.policy import IPPeer, Peer, PodPeer, Policy, PortClause
from netfence.model.ports import MAX_PORT, MIN_PORT, PROTOCOLS, PortSet, Protocol
from netfence.selectors import selector_keys

NamedKey = tuple[str, Protocol]


@dataclass(slots=True)
class EndpointClass:
    """Pods that no policy can tell apart."""

    index: int
    namespace: str
    labels: Mapping[str, str]
    named: Mapping[NamedKey, tuple[int, ...]]
    host_network: bool
    node: str
    ip_atoms: tuple[int, ...]
    pods: list[Pod] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PortClass:
    """A set of ports (one protocol, or 'other protocols') no policy tells apart."""

    index: int
    protocol: Protocol | None
    ports: tuple[tuple[int, int], ...]

    def portset(self) -> PortSet:
        if self.protocol is None:
            return PortSet(other=True)
        return PortSet.intervals(self.protocol, self.ports)


def bits(mask: int) -> Iterator[int]:
    """Indexes of the set bits of ``mask``, ascending."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _all_peers(policies: Iterable[Policy]) -> Iterator[Peer]:
    for pol in policies:
        for rules in (pol.ingress, pol.egress):
            for rule in rules or ():
                yield from rule.peers


def _all_clauses(policies: Iterable[Policy]) -> Iterator[PortClause]:
    for pol in policies:
        for rules in (pol.ingress, pol.egress):
            for rule in rules or ():
                yield from rule.ports or ()


class IPAtoms:
    """Disjoint address intervals cut at every CIDR boundary the policies draw (ip atoms)."""

    def __init__(self, cuts: Iterable[tuple[int, int]]) -> None:
        starts: dict[int, set[int]] = {4: {0}, 6: {0}}
        for fam, start in cuts:
            starts[fam].add(start)
        self.starts = {fam: sorted(v) for fam, v in starts.items()}
        self.offset = {4: 0, 6: len(self.starts[4])}
        self.count = len(self.starts[4]) + len(self.starts[6])

    def atom_of(self, family: int, value: int) -> int:
        i = bisect.bisect_right(self.starts[family], value) - 1
        return self.offset[family] + i

    def ipset(self, atom: int) -> IPSet:
        fam = 4 if atom < self.offset[6] else 6
        i = atom - self.offset[fam]
        starts = self.starts[fam]
        top = V4_MAX if fam == 4 else V6_MAX
        hi = starts[i + 1] - 1 if i + 1 < len(starts) else top
        iv = ((starts[i], hi),)
        return IPSet(v4=iv) if fam == 4 else IPSet(v6=iv)

    def atoms_in(self, ips: IPSet) -> list[int]:
        """Atoms wholly inside ``ips`` (every atom is inside or outside, by construction)."""
        out: list[int] = []
        for fam, ivs in ((4, ips.v4), (6, ips.v6)):
            for lo, hi in ivs:
                a = self.atom_of(fam, lo)
                b = self.atom_of(fam, hi)
                out.extend(range(a, b + 1))
        return out


class Universe:
    """Endpoint classes, IP atoms and port classes for one cluster state."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        policies = state.policies
        self.nodes_by_name = {n.name: n for n in state.nodes}
        # node addresses: Node objects plus pods' status.hostIP (sp-3, D-3)
        self.node_addrs: dict[str, set[str]] = {n.name: set(n.addresses) for n in state.nodes}
        for pod in state.pods:
            if pod.node and pod.host_ip:
                self.node_addrs.setdefault(pod.node, set()).add(pod.host_ip)
        cuts: list[tuple[int, int]] = []
        for peer in _all_peers(policies):
            if isinstance(peer, IPPeer):
                cuts.extend(peer.ips.boundaries())
        for addrs in self.node_addrs.values():
            for addr in addrs:
                cuts.extend(IPSet.address(addr).boundaries())
        self.atoms = IPAtoms(cuts)
        self._build_classes(state, policies)
        self._build_ports(policies)

    # -- endpoint classes ------------------------------------------------------------------
    def _build_classes(self, state: ClusterState, policies: tuple[Policy, ...]) -> None:
        sels = []
        for pol in policies:
            sels.append(pol.subject.pods)
            for peer in _all_peers((pol,)):
                if isinstance(peer, PodPeer):
                    sels.append(peer.pods)
        keys = selector_keys(sels)
        # the node matters for sp-3 only where it has hostNetwork pods or known addresses
        hostnet_nodes = {p.node for p in state.pods if p.host_network and p.node}
        hostnet_nodes |= {n for n, addrs in self.node_addrs.items() if addrs}
        index: dict[tuple[object, ...], EndpointClass] = {}
        self.classes: list[EndpointClass] = []
        self.class_of_pod: dict[str, int] = {}
        for pod in state.pods:
            labels = {k: v for k, v in pod.labels.items() if k in keys}
            named: dict[NamedKey, list[int]] = {}
            for cp in pod.ports:
                if cp.name:
                    named.setdefault((cp.name, cp.protocol), []).append(cp.port)
            named_t = {k: tuple(sorted(set(v))) for k, v in named.items()}
            atoms = tuple(sorted({self.atoms.atom_of(*ip_to_int(ip)) for ip in pod.ips}))
            node = pod.node if (pod.host_network or pod.node in hostnet_nodes) else ""
            key = (pod.namespace, tuple(sorted(labels.items())), tuple(sorted(
                (n, str(p), v) for (n, p), v in named_t.items())), pod.host_network, node, atoms)
            cls = index.get(key)
            if cls is None:
                cls = EndpointClass(len(self.classes), pod.namespace, labels, named_t,
                                    pod.host_network, node, atoms)
                index[key] = cls
                self.classes.append(cls)
            cls.pods.append(pod)
            self.class_of_pod[pod.key] = cls.index
        self.n_classes = len(self.classes)
        self.n_endpoints = self.n_classes + self.atoms.count
        self.pod_mask = (1 << self.n_classes) - 1
        self.ext_mask = ((1 << self.n_endpoints) - 1) ^ self.pod_mask
        self.all_mask = (1 << self.n_endpoints) - 1
        self.hostnet_mask = 0
        self.classes_in_atom: dict[int, int] = {}  # IP atom -> classes with a pod IP in it
        for cls in self.classes:
            if cls.host_network:
                self.hostnet_mask |= 1 << cls.index
            for a in cls.ip_atoms:
                self.classes_in_atom[a] = self.classes_in_atom.get(a, 0) | (1 << cls.index)
        self.ns_labels: dict[str, Mapping[str, str]] = {
            name: ns.labels for name, ns in state.namespaces.items()}
        for cls in self.classes:
            self.ns_labels.setdefault(cls.namespace, {METADATA_NAME: cls.namespace})

    def atom_endpoint(self, atom: int) -> int:
        return self.n_classes + atom

    def endpoint_name(self, ep: int) -> str:
        if ep < self.n_classes:
            cls = self.classes[ep]
            return f"class#{ep} {cls.namespace} {dict(cls.labels)}"
        return str(self.atoms.ipset(ep - self.n_classes))

    # -- port classes ----------------------------------------------------------------------
    def _build_ports(self, policies: tuple[Policy, ...]) -> None:
        intervals: dict[Protocol, set[tuple[int, int]]] = {p: set() for p in PROTOCOLS}
        for clause in _all_clauses(policies):
            if clause.port is not None and clause.protocol is not None:
                hi = clause.end_port if clause.end_port is not None else clause.port
                intervals[clause.protocol].add((clause.port, hi))
        named_used = {c.name for c in _all_clauses(policies) if c.name is not None}
        for cls in self.classes:
            for (name, proto), values in cls.named.items():
                if name in named_used:
                    for v in values:
                        intervals[proto].add((v, v))
        self.port_classes: list[PortClass] = []
        self._port_lookup: dict[Protocol, tuple[list[int], list[int]]] = {}
        for proto in PROTOCOLS:
            ivs = sorted(intervals[proto])
            cuts = {MIN_PORT}
            for lo, hi in ivs:
                cuts.add(lo)
                if hi < MAX_PORT:
                    cuts.add(hi + 1)
            starts = sorted(cuts)
            # signature of each atom = the intervals covering it; equal signatures merge
            groups: dict[tuple[tuple[int, int], ...], list[tuple[int, int]]] = {}
            order: list[tuple[tuple[int, int], ...]] = []
            atom_sig: list[tuple[tuple[int, int], ...]] = []
            for i, lo in enumerate(starts):
                hi = starts[i + 1] - 1 if i + 1 < len(starts) else MAX_PORT
                sig = tuple(iv for iv in ivs if iv[0] <= lo and hi <= iv[1])
                if sig not in groups:
                    groups[sig] = []
                    order.append(sig)
                groups[sig].append((lo, hi))
                atom_sig.append(sig)
            sig_index: dict[tuple[tuple[int, int], ...], int] = {}
            for sig in order:
                sig_index[sig] = len(self.port_classes)
                self.port_classes.append(PortClass(len(self.port_classes), proto,
                                                   tuple(groups[sig])))
            self._port_lookup[proto] = (starts, [sig_index[s] for s in atom_sig])
        self.other_port_class = len(self.port_classes)
        self.port_classes.append(PortClass(self.other_port_class, None, ()))
        self.n_ports = len(self.port_classes)
        self.all_ports = (1 << self.n_ports) - 1
        self.proto_mask: dict[Protocol, int] = dict.fromkeys(PROTOCOLS, 0)
        for pc in self.port_classes:
            if pc.protocol is not None:
                self.proto_mask[pc.protocol] |= 1 << pc.index
        self._range_cache: dict[tuple[Protocol, int, int], int] = {}
        self._portset_cache: dict[int, PortSet] = {}

    def port_class_of(self, protocol: Protocol, port: int) -> int:
        starts, idx = self._port_lookup[protocol]
        return idx[bisect.bisect_right(starts, port) - 1]

    def range_mask(self, protocol: Protocol, lo: int, hi: int) -> int:
        """Port classes inside [lo, hi]; exact because lo and hi+1 are class boundaries."""
        key = (protocol, lo, hi)
        got = self._range_cache.get(key)
        if got is None:
            starts, idx = self._port_lookup[protocol]
            a = bisect.bisect_right(starts, lo) - 1
            b = bisect.bisect_right(starts, hi) - 1
            got = 0
            for i in range(a, b + 1):
                got |= 1 << idx[i]
            self._range_cache[key] = got
        return got

    def named_mask(self, cls: EndpointClass, name: str, protocol: Protocol | None) -> int:
        """Port classes a named port means on ``cls`` (port-5, port-6)."""
        mask = 0
        for (n, proto), values in cls.named.items():
            if n == name and (protocol is None or proto is protocol):
                for v in values:
                    mask |= 1 << self.port_class_of(proto, v)
        return mask

    def portset(self, mask: int) -> PortSet:
        got = self._portset_cache.get(mask)
        if got is None:
            tcp: list[tuple[int, int]] = []
            udp: list[tuple[int, int]] = []
            sctp: list[tuple[int, int]] = []
            lists = {Protocol.TCP: tcp, Protocol.UDP: udp, Protocol.SCTP: sctp}
            other = False
            for i in bits(mask):
                pc = self.port_classes[i]
                if pc.protocol is None:
                    other = True
                else:
                    lists[pc.protocol].extend(pc.ports)
            got = PortSet(tuple(tcp), tuple(udp), tuple(sctp), other) | PortSet()
            self._portset_cache[mask] = got
        return got

    def ports_mask(self, ports: PortSet) -> int:
        """Port classes wholly inside ``ports`` (``ports`` must align to class boundaries)."""
        mask = 0
        for proto, ivs in ports.items():
            for lo, hi in ivs:
                mask |= self.range_mask(proto, lo, hi)
        if ports.other:
            mask |= 1 << self.other_port_class
        return mask
