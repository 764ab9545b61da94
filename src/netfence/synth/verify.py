"""Self-verification: do the generated policies realise exactly the zone model?

Per destination class in a model namespace and per port class, the intended sources are built
from the model as class bitsets (same namespace, same area, the area's ingress controller,
upstream areas, monitoring on its named port) and compared with the sources the engine allows
(ingress rows, with the source's egress checked too). For model sources, egress to addresses is
compared atom by atom with the area's networks (and public internet). DNS must be reachable from
every model pod on UDP and TCP 53. The result is exact, and counts are reported as a proof line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from netfence.engine.classes import EndpointClass, bits
from netfence.engine.evaluate import Evaluation
from netfence.engine.query import Query
from netfence.model.net import IPSet
from netfence.model.ports import PortSet, Protocol
from netfence.model.zones import Area, NetPort, PodRef, SegmentationModel
from netfence.synth.zones import PRIVATE_V4, PRIVATE_V6


@dataclass
class Proof:
    """Counts and the first gaps found; ``ok`` when the policies realise the model exactly."""

    namespaces: int = 0
    classes: int = 0
    intended: int = 0
    checked: int = 0
    dns_sources: int = 0
    gaps: list[str] = field(default_factory=list)
    gap_count: int = 0

    @property
    def ok(self) -> bool:
        return self.gap_count == 0

    def line(self) -> str:
        verdict = "exact" if self.ok else f"{self.gap_count} GAP(S)"
        return (f"proof: {verdict}: {self.classes} destination pod classes in "
                f"{self.namespaces} namespaces x {self.checked // max(self.classes, 1)} port "
                f"classes checked; {self.intended} intended (source class, destination class, "
                f"port class) connections allowed and nothing else; egress to addresses as "
                f"modelled; DNS reachable from all {self.dns_sources} source classes")

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
           extra_egress: Mapping[int, list[tuple[IPSet, PortSet]]] | None = None) -> Proof:
    """``extra_ingress`` (destination class -> {port-class mask: sources}) and ``extra_egress``
    (source class -> (addresses, ports)) are intended on top of the model: service intents,
    for ``generate all``. Protected workloads get no same-namespace, same-area, other-area or
    ingress-controller sources (monitoring still applies)."""
    u = ev.u
    protected = set(model.protected)
    proof = Proof()
    model_ns = set(model.namespaces())
    area_of = {ns: model.area_of(ns) for ns in model_ns}
    ns_bits: dict[str, int] = {}
    area_bits: dict[str, int] = {}
    ic_bits: dict[str, int] = {}
    mon_bits = 0
    dns_bits = 0
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
    namespaces_seen: set[str] = set()
    for d in u.classes:
        area = area_of.get(d.namespace)
        if area is None or d.host_network:
            continue
        namespaces_seen.add(d.namespace)
        proof.classes += 1
        is_endpoint = all(d.pods[0].labels.get(k) == v for k, v in endpoint.items())

        def gated(kind: str, sources: int, _e: bool = is_endpoint) -> int:
            return sources if (kind not in model.endpoint_only or _e) else 0

        w = d.pods[0].workload
        shielded = f"{w.namespace}/{w.name}" in protected
        all_ports = ns_bits.get(d.namespace, 0)
        all_ports |= gated("sameArea", area_bits.get(area.name, 0))
        controllers = [area.name] if area.ingress_controller is not None else []
        for ex in model.exceptions:
            if ex.namespace == d.namespace:
                controllers += list(ex.ingress_controllers_of)
        for name in controllers:
            all_ports |= gated("ingressController", ic_bits.get(name, 0))
        for other in model.areas:
            if area.name in other.may_enter and other.name != area.name:
                all_ports |= gated("otherAreas", area_bits.get(other.name, 0))
        if shielded:
            all_ports = 0
        extra = (extra_ingress or {}).get(d.index, {})
        metrics = (u.named_mask(d, model.monitoring.port, Protocol.TCP)
                   if model.monitoring is not None else 0)
        single_self = (1 << d.index) if len(d.pods) == 1 else 0
        rows = ev.ingress[d.index].rows
        for p in range(u.n_ports):
            intended = all_ports | (mon_bits if (metrics >> p) & 1 else 0)
            for pm, srcs in extra.items():
                if (pm >> p) & 1:
                    intended |= srcs
            intended &= ~single_self
            allowed = 0
            for pm, peers in rows:
                if (pm >> p) & 1:
                    allowed |= peers
            allowed &= u.pod_mask & ~single_self
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
            inbound_ext = 0
            for pm, peers in rows:
                if (pm >> p) & 1:
                    inbound_ext |= peers & u.ext_mask
            for ext in bits(inbound_ext):
                proof.gap(f"external {u.atoms.ipset(ext - u.n_classes)} may enter "
                          f"{_name(d)} on {ports}")
    proof.namespaces = len(namespaces_seen)
    _verify_egress(model, ev, proof, area_of, dns_bits, q, extra_egress or {})
    return proof


def address_mismatches(ev: Evaluation, s: int, targets: list[tuple[IPSet, PortSet]],
                       ) -> Iterator[tuple[IPSet, int, int]]:
    """(IP atom, allowed port mask, intended port mask) for every atom where the egress of
    class ``s`` differs from the union of the ``targets`` (address set, ports) covering it."""
    u = ev.u
    rows = ev.egress[s].rows
    for a in range(u.atoms.count):
        atom = u.atoms.ipset(a)
        ep = u.atom_endpoint(a)
        intended = PortSet()
        for ips, ports in targets:
            if atom.issubset(ips):
                intended = intended | ports
        want = u.ports_mask(intended & PortSet.all())
        actual = 0
        for pm, peers in rows:
            if (peers >> ep) & 1:
                actual |= pm
        if actual != want:
            yield atom, actual, want


def _network_ports(ports: tuple[NetPort, ...]) -> PortSet:
    if not ports:
        return PortSet.all()
    out = PortSet()
    for np in ports:
        out = out | PortSet.of(np.protocol, np.port, np.end_port or np.port)
    return out


def _verify_egress(model: SegmentationModel, ev: Evaluation, proof: Proof,
                   area_of: Mapping[str, Area | None], dns_bits: int, q: Query,
                   extra: Mapping[int, list[tuple[IPSet, PortSet]]]) -> None:
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
        if area is None or s.host_network:
            continue
        targets: list[tuple[IPSet, PortSet]] = []
        for name in [*area.networks, *model.all_areas]:
            net = model.network(name)
            if net is not None:
                targets.append((net.ips, _network_ports(net.ports)))
        if model.public_internet:
            targets.append((public, public_ports))
        targets += extra.get(s.index, [])
        for atom, actual, intended_mask in address_mismatches(ev, s.index, targets):
            proof.gap(f"egress {_name(s)} -> {atom}: allowed {u.portset(actual)}, "
                      f"model says {u.portset(intended_mask)}")
        for d in bits(dns_bits):
            dst = u.classes[d].pods[0]
            src = s.pods[0]
            if not (q.allowed(src, dst, Protocol.UDP, 53) and q.allowed(src, dst, Protocol.TCP,
                                                                         53)):
                proof.gap(f"DNS: {_name(s)} cannot reach {dst.key} on UDP and TCP 53")
        proof.dns_sources += 1
