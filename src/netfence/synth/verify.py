"""Self-verification: do the generated policies realise exactly the zone model?

Per destination class in a fenced namespace (the model's and its platform namespaces) and per
port class, the intended sources are built from the model as class bitsets (same namespace,
same area, the area's ingress controller, upstream areas, monitoring on its named port; in a
platform namespace: monitoring, every pod into the DNS pods on UDP/TCP 53, and the ingress
controllers' client addresses on their ports) and compared with the sources the engine allows
(ingress rows, with the source's egress checked too). Protected pods are no source or
destination of the zone rules. For model and platform sources, egress to addresses is
compared atom by atom with the area's networks (and public internet; protected and platform
pods: only their intents); protected and platform pods reach exactly DNS, scraping and their
intents among the pods outside the fenced namespaces. DNS must be reachable from every fenced
pod on UDP and TCP 53. The result is exact, and counts are reported as a proof line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from netfence.engine.classes import EndpointClass, Universe, bits
from netfence.engine.evaluate import Evaluation
from netfence.engine.query import Query
from netfence.model.net import IPSet
from netfence.model.ports import PortSet, Protocol
from netfence.model.zones import Area, NetPort, PodPort, PodRef, SegmentationModel
from netfence.synth.zones import PRIVATE_V4, PRIVATE_V6, merged_exclusions


@dataclass
class Proof:
    """Counts and the first gaps found; ``ok`` when the policies realise the model exactly."""

    namespaces: int = 0
    classes: int = 0
    intended: int = 0
    checked: int = 0
    dns_sources: int = 0
    closed_sources: int = 0
    gaps: list[str] = field(default_factory=list)
    gap_count: int = 0

    @property
    def ok(self) -> bool:
        return self.gap_count == 0

    def line(self) -> str:
        verdict = "exact" if self.ok else f"{self.gap_count} GAP(S)"
        closed = (f", and to pods of the unfenced namespaces for the {self.closed_sources} "
                  "protected and platform source classes" if self.closed_sources else "")
        return (f"proof: {verdict}: {self.classes} destination pod classes in "
                f"{self.namespaces} namespaces x {self.checked // max(self.classes, 1)} port "
                f"classes checked; {self.intended} intended (source class, destination class, "
                f"port class) connections allowed and nothing else; egress to addresses as "
                f"modelled{closed}; DNS reachable from all {self.dns_sources} source classes")

    def gap(self, text: str) -> None:
        self.gap_count += 1
        if len(self.gaps) < 20:
            self.gaps.append(text)


def _matches(ref: PodRef, cls: EndpointClass) -> bool:
    labels: Mapping[str, str] = cls.pods[0].labels
    return (cls.namespace == ref.namespace and not cls.host_network
            and all(labels.get(k) == v for k, v in ref.labels))


def _name(cls: EndpointClass) -> str:
    pod = cls.pods[0]
    more = f" (+{len(cls.pods) - 1} like it)" if len(cls.pods) > 1 else ""
    return f"{pod.key}{more}"


def verify(model: SegmentationModel, ev: Evaluation,
           extra_ingress: Mapping[int, Mapping[int, int]] | None = None,
           extra_egress: Mapping[int, list[tuple[IPSet, PortSet]]] | None = None,
           exclusions: Mapping[str, list[tuple[str, str]]] | None = None) -> Proof:
    """``extra_ingress`` (destination class -> {port-class mask: sources}) and ``extra_egress``
    (source class -> (addresses, ports)) are intended on top of the model: service intents,
    for ``generate all``. ``exclusions`` (namespace -> labels) are the protected workloads
    resolved on the cluster, on top of those the model gives by label. Protected pods get no
    same-namespace, same-area, other-area or ingress-controller connections in either
    direction (monitoring in and DNS out still apply); platform pods get only their roles."""
    u = ev.u
    excl = merged_exclusions(model, exclusions)
    protected = set(model.protected)
    proof = Proof()
    model_ns = set(model.namespaces())
    platform_ns = set(model.platform_namespaces)
    fenced = model_ns | platform_ns
    area_of = {ns: model.area_of(ns) for ns in model_ns}
    ns_bits: dict[str, int] = {}
    area_bits: dict[str, int] = {}
    ic_bits: dict[str, int] = {}
    mon_bits = 0
    dns_bits = 0
    protected_bits = 0
    closed_bits = 0  # protected and platform pods: their egress is what the model says
    for cls in u.classes:
        bit = 1 << cls.index
        ns_bits[cls.namespace] = ns_bits.get(cls.namespace, 0) | bit
        area = area_of.get(cls.namespace)
        if area is not None:
            area_bits[area.name] = area_bits.get(area.name, 0) | bit
        for a in model.areas:
            if a.ingress_controller is not None and _matches(a.ingress_controller, cls):
                ic_bits[a.name] = ic_bits.get(a.name, 0) | bit
        if model.monitoring is not None and _matches(model.monitoring.pods, cls):
            mon_bits |= bit
        if _matches(model.dns, cls):
            dns_bits |= bit
        if cls.host_network:
            continue
        if area is not None:
            w = cls.pods[0].workload
            labels = cls.pods[0].labels
            if f"{w.namespace}/{w.name}" in protected or any(
                    labels.get(k) == v for k, v in excl.get(cls.namespace, ())):
                protected_bits |= bit
        elif cls.namespace in platform_ns:
            closed_bits |= bit
    closed_bits |= protected_bits
    sources = u.pod_mask & ~u.hostnet_mask
    # sources whose egress allows every pod on every port (the generated egress-cluster rule,
    # or no egress policy at all); others are checked pair by pair
    # (rows of one class have disjoint port masks: open when the rows reaching every pod
    # cover every port class together)
    open_egress = 0
    for cls in u.classes:
        covered = 0
        for pm, peers in ev.egress[cls.index].rows:
            if (peers & u.pod_mask) == u.pod_mask:
                covered |= pm
        if covered == u.all_ports:
            open_egress |= 1 << cls.index
    egress_at: dict[int, list[int]] = {}  # closed source -> per port class, its egress peers
    q = Query(ev)
    endpoint = dict(model.endpoint_label)
    dns_pm = u.range_mask(Protocol.UDP, 53, 53) | u.range_mask(Protocol.TCP, 53, 53)
    clients = _client_atoms(model, ev, proof, ic_bits)
    namespaces_seen: set[str] = set()
    for d in u.classes:
        if d.host_network or d.namespace not in fenced:
            continue
        area = area_of.get(d.namespace)
        namespaces_seen.add(d.namespace)
        proof.classes += 1
        all_ports = 0
        dns_in = 0
        ext_in: list[tuple[int, int]] = []  # (port-class mask, external endpoints)
        if area is not None:
            all_ports = _zone_sources(model, d, area, ns_bits, area_bits, ic_bits, endpoint)
            all_ports &= ~protected_bits
            if (protected_bits >> d.index) & 1:
                all_ports = 0
        else:
            if d.namespace in model.platform_same_namespace:
                all_ports = ns_bits.get(d.namespace, 0)
            if (dns_bits >> d.index) & 1:
                dns_in = sources
            for a in model.areas:
                if a.name in clients and (ic_bits.get(a.name, 0) >> d.index) & 1:
                    pm = _pod_port_mask(u, d, a.client_ports)
                    ext_in.append((pm, clients[a.name]))
        extra = (extra_ingress or {}).get(d.index, {})
        metrics = (u.named_mask(d, model.monitoring.port, Protocol.TCP)
                   if model.monitoring is not None else 0)
        single_self = (1 << d.index) if len(d.pods) == 1 else 0
        rows = ev.ingress[d.index].rows
        for p in range(u.n_ports):
            intended = all_ports | (mon_bits if (metrics >> p) & 1 else 0)
            if (dns_pm >> p) & 1:
                intended |= dns_in
            for pm, srcs in extra.items():
                if (pm >> p) & 1:
                    intended |= srcs
            intended &= sources & ~single_self
            allowed = 0
            for pm, peers in rows:
                if (pm >> p) & 1:
                    allowed |= peers
            inbound_ext = allowed & u.ext_mask
            allowed &= sources & ~single_self
            closed = allowed & ~open_egress
            for s in bits(closed):
                per_port = egress_at.get(s)
                if per_port is None:
                    per_port = [0] * u.n_ports
                    for pm, peers in ev.egress[s].rows:
                        for i in bits(pm):
                            per_port[i] |= peers
                    egress_at[s] = per_port
                if not (per_port[p] >> d.index) & 1:
                    allowed &= ~(1 << s)
            proof.checked += 1
            proof.intended += (intended & allowed).bit_count()
            ports = u.port_classes[p].portset()
            for s in bits(allowed & ~intended):
                proof.gap(f"allowed but not in the model: {_name(u.classes[s])} -> "
                          f"{_name(d)} on {ports}")
            for s in bits(intended & ~allowed):
                proof.gap(f"in the model but denied: {_name(u.classes[s])} -> "
                          f"{_name(d)} on {ports}")
            want_ext = 0
            for pm, ext in ext_in:
                if (pm >> p) & 1:
                    want_ext |= ext
            for ext in bits(inbound_ext & ~want_ext):
                proof.gap(f"external {u.atoms.ipset(ext - u.n_classes)} may enter "
                          f"{_name(d)} on {ports}")
            for ext in bits(want_ext & ~inbound_ext):
                proof.gap(f"in the model but denied: client {u.atoms.ipset(ext - u.n_classes)} "
                          f"-> {_name(d)} on {ports}")
    proof.namespaces = len(namespaces_seen)
    _verify_egress(model, ev, proof, area_of, dns_bits, q, extra_egress or {}, closed_bits,
                   platform_ns)
    _verify_closed_egress(model, ev, proof, fenced, closed_bits, dns_bits, mon_bits,
                          extra_ingress or {})
    return proof


def _zone_sources(model: SegmentationModel, d: EndpointClass, area: Area,
                  ns_bits: Mapping[str, int], area_bits: Mapping[str, int],
                  ic_bits: Mapping[str, int], endpoint: Mapping[str, str]) -> int:
    """Sources the zone rules admit into model class ``d`` on every port."""
    is_endpoint = all(d.pods[0].labels.get(k) == v for k, v in endpoint.items())

    def gated(kind: str, sources: int) -> int:
        return sources if (kind not in model.endpoint_only or is_endpoint) else 0

    out = ns_bits.get(d.namespace, 0)
    out |= gated("sameArea", area_bits.get(area.name, 0))
    controllers = [area.name] if area.ingress_controller is not None else []
    for ex in model.exceptions:
        if ex.namespace == d.namespace:
            controllers += list(ex.ingress_controllers_of)
    for name in controllers:
        out |= gated("ingressController", ic_bits.get(name, 0))
    for other in model.areas:
        if area.name in other.may_enter and other.name != area.name:
            out |= gated("otherAreas", area_bits.get(other.name, 0))
    return out


def _client_atoms(model: SegmentationModel, ev: Evaluation, proof: Proof,
                  ic_bits: Mapping[str, int]) -> dict[str, int]:
    """Area -> the external endpoints (IP atoms) of its ingress controller's clients. An atom
    the clients only partly cover is a gap: no policy tells those addresses apart."""
    u = ev.u
    out: dict[str, int] = {}
    atoms: list[IPSet] | None = None
    for a in model.areas:
        if not a.clients or a.ingress_controller is None:
            continue
        ips = IPSet()
        for name in a.clients:
            net = model.network(name)
            if net is not None:
                ips = ips | net.ips
        if atoms is None:
            atoms = [u.atoms.ipset(i) for i in range(u.atoms.count)]
        mask = 0
        for i, atom in enumerate(atoms):
            if atom.issubset(ips):
                mask |= 1 << u.atom_endpoint(i)
            elif atom & ips and ic_bits.get(a.name, 0):
                proof.gap(f"in the model but denied: clients {atom & ips} of the {a.name} "
                          f"ingress controller (no policy tells them apart from the rest of "
                          f"{atom})")
        out[a.name] = mask
    return out


def _pod_port_mask(u: Universe, cls: EndpointClass, ports: tuple[PodPort, ...]) -> int:
    """The port classes ``ports`` mean on destination ``cls``; () is every port."""
    if not ports:
        return u.all_ports
    mask = 0
    for p in ports:
        if isinstance(p.port, str):
            mask |= u.named_mask(cls, p.port, p.protocol)
        else:
            mask |= u.range_mask(p.protocol, p.port, p.end_port or p.port)
    return mask


def _verify_closed_egress(model: SegmentationModel, ev: Evaluation, proof: Proof,
                          fenced: set[str], closed_bits: int, dns_bits: int, mon_bits: int,
                          extra_ingress: Mapping[int, Mapping[int, int]]) -> None:
    """Protected and platform pods, toward pods outside the fenced namespaces (those inside
    are checked at the destination): exactly DNS, scraping (monitoring pods) and the
    intents."""
    u = ev.u
    unfenced = 0
    for cls in u.classes:
        if cls.namespace not in fenced and not cls.host_network:
            unfenced |= 1 << cls.index
    if not closed_bits:
        return
    dns_pm = u.range_mask(Protocol.UDP, 53, 53) | u.range_mask(Protocol.TCP, 53, 53)
    declared: dict[int, dict[int, int]] = {}  # source -> destination -> port classes
    for d, row in extra_ingress.items():
        if not (unfenced >> d) & 1:
            continue
        for pm, srcs in row.items():
            for s in bits(srcs & closed_bits):
                row_of = declared.setdefault(s, {})
                row_of[d] = row_of.get(d, 0) | pm
    mon_port = model.monitoring.port if model.monitoring is not None else None
    for s in bits(closed_bits):
        proof.closed_sources += 1
        want = dict(declared.get(s, {}))
        for d in bits(dns_bits & unfenced):
            want[d] = want.get(d, 0) | dns_pm
        if mon_port is not None and (mon_bits >> s) & 1:
            for d in bits(unfenced):
                pm = u.named_mask(u.classes[d], mon_port, Protocol.TCP)
                if pm:
                    want[d] = want.get(d, 0) | pm
        got: dict[int, int] = {}
        for pm, peers in ev.egress[s].rows:
            for d in bits(peers & unfenced):
                got[d] = got.get(d, 0) | pm
        single_self = len(u.classes[s].pods) == 1
        for d in sorted(got.keys() | want.keys()):
            if (d == s and single_self) or got.get(d, 0) == want.get(d, 0):
                continue
            proof.gap(f"egress {_name(u.classes[s])} -> {_name(u.classes[d])}: allowed "
                      f"{u.portset(got.get(d, 0))}, model says {u.portset(want.get(d, 0))}")


def address_mismatches(ev: Evaluation, s: int, targets: list[tuple[IPSet, PortSet]],
                       ) -> Iterator[tuple[IPSet, PortSet, str]]:
    """(IP atom, allowed ports, intended ports as text) for every atom where the egress of
    class ``s`` differs from the union of the ``targets`` (address set, ports) covering it.

    The policies give every address of an atom the same ports. So an atom that a target only
    partly covers, or intended ports that no port class boundary separates (the policies never
    mention them), is a mismatch too: some address or port of it cannot be as intended."""
    u = ev.u
    rows = ev.egress[s].rows
    whole = PortSet.all()
    for a in range(u.atoms.count):
        atom = u.atoms.ipset(a)
        ep = u.atom_endpoint(a)
        intended = PortSet()
        partly = PortSet()
        for ips, ports in targets:
            if atom.issubset(ips):
                intended = intended | ports
            elif atom & ips:
                partly = partly | ports
        intended = intended & whole
        want = u.ports_mask(intended)
        actual = 0
        for pm, peers in rows:
            if (peers >> ep) & 1:
                actual |= pm
        split = partly - intended
        if split:
            yield atom, u.portset(actual), (f"{intended or 'none'} (and {split} for part of "
                                            "it, which no policy tells apart)")
        elif u.portset(want) != intended:
            yield atom, u.portset(actual), (f"{intended} (which no policy's port boundaries "
                                            "tell apart)")
        elif actual != want:
            yield atom, u.portset(actual), str(intended or "none")


def _network_ports(ports: tuple[NetPort, ...]) -> PortSet:
    if not ports:
        return PortSet.all()
    out = PortSet()
    for np in ports:
        out = out | PortSet.of(np.protocol, np.port, np.end_port or np.port)
    return out


def _verify_egress(model: SegmentationModel, ev: Evaluation, proof: Proof,
                   area_of: Mapping[str, Area | None], dns_bits: int, q: Query,
                   extra: Mapping[int, list[tuple[IPSet, PortSet]]], closed_bits: int,
                   platform_ns: set[str]) -> None:
    u = ev.u
    public = IPSet()
    if model.public_internet:
        public = IPSet.parse("0.0.0.0/0") | IPSet.parse("::/0")
        for c in (*PRIVATE_V4, *PRIVATE_V6, *model.cluster_cidrs):
            public = public - IPSet.parse(c)
    public_ports = _network_ports(model.public_ports)
    if not dns_bits:
        proof.gap(f"the DNS selector {dict(model.dns.labels)} in namespace "
                  f"{model.dns.namespace} matches no pod: name resolution would fail")
    for s in u.classes:
        area = area_of.get(s.namespace)
        if s.host_network or (area is None and s.namespace not in platform_ns):
            continue
        targets: list[tuple[IPSet, PortSet]] = []
        if area is not None and not (closed_bits >> s.index) & 1:
            for name in [*area.networks, *model.all_areas]:
                net = model.network(name)
                if net is not None:
                    targets.append((net.ips, _network_ports(net.ports)))
            if model.public_internet:
                targets.append((public, public_ports))
        targets += extra.get(s.index, [])
        for atom, actual, intended in address_mismatches(ev, s.index, targets):
            proof.gap(f"egress {_name(s)} -> {atom}: allowed {actual}, model says {intended}")
        for d in bits(dns_bits):
            dst = u.classes[d].pods[0]
            src = s.pods[0]
            if not (q.allowed(src, dst, Protocol.UDP, 53) and q.allowed(src, dst, Protocol.TCP,
                                                                         53)):
                proof.gap(f"DNS: {_name(s)} cannot reach {dst.key} on UDP and TCP 53")
        proof.dns_sources += 1
