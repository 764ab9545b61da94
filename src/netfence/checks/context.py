"""Lint options and the shared, read-only context the checks work from (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from netfence.engine.classes import EndpointClass, Universe, bits
from netfence.engine.evaluate import Engine, Evaluation, Subjected
from netfence.engine.query import Query
from netfence.errors import ObjectRef, SourceRef
from netfence.model.cluster import ClusterState, Workload, WorkloadRef
from netfence.model.net import IPSet
from netfence.model.policy import (
    Direction,
    LabelSelector,
    Operator,
    Policy,
    Requirement,
    Rule,
)
from netfence.selectors import matches
from netfence.selectors.index import LabelIndex

INGRESS_CONTROLLER_NAMES = (
    "ingress-nginx", "nginx-ingress", "traefik", "haproxy-ingress", "kubernetes-ingress",
    "contour", "envoy", "kong", "emissary-ingress", "istio-ingressgateway",
)
DEFAULT_INGRESS_CONTROLLERS: tuple[LabelSelector, ...] = (
    LabelSelector(match_expressions=(Requirement(
        "app.kubernetes.io/name", Operator.IN, INGRESS_CONTROLLER_NAMES),)),
    LabelSelector(match_labels=(("app.kubernetes.io/component", "controller"),)),
    LabelSelector(match_labels=(("istio", "ingressgateway"),)),
)
DNS_NAMESPACE = "kube-system"
DNS_SELECTOR = LabelSelector(match_labels=(("k8s-app", "kube-dns"),))

# Address space that is not private, shared, loopback, link-local, multicast or reserved:
# an ingress peer covering all of it admits "the internet" (NF009).
_NOT_PUBLIC_V4 = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                  "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4")
_NOT_PUBLIC_V6 = ("::/8", "fc00::/7", "fe80::/10", "ff00::/8")


def _public(whole: str, holes: tuple[str, ...]) -> IPSet:
    out = IPSet.parse(whole)
    for h in holes:
        out = out - IPSet.parse(h)
    return out


PUBLIC_V4 = _public("0.0.0.0/0", _NOT_PUBLIC_V4)
PUBLIC_V6 = _public("::/0", _NOT_PUBLIC_V6)


@dataclass(frozen=True, slots=True)
class LintOptions:
    """What to check: disabled ids, default-deny directions, ingress controller selectors."""

    disabled: frozenset[str] = frozenset()
    default_deny: frozenset[Direction] = frozenset({Direction.INGRESS})
    ingress_controllers: tuple[LabelSelector, ...] = DEFAULT_INGRESS_CONTROLLERS


def policy_obj(pol: Policy) -> ObjectRef:
    return ObjectRef(pol.ref.kind, pol.ref.namespace, pol.ref.name)


def rule_source(pol: Policy, rule: Rule) -> SourceRef:
    return pol.source.at(rule.line)


def rule_label(direction: Direction, rule: Rule) -> str:
    """'ingress rule 2' (1-based, as people count) or with the CNP rule name."""
    base = f"{direction} rule {rule.index + 1}"
    return f"{base} ({rule.name})" if rule.name else base


def workload_obj(ref: WorkloadRef) -> ObjectRef:
    return ObjectRef(ref.kind, ref.namespace, ref.name)


@dataclass
class Context:
    """Everything a check may read; built once per lint run."""

    state: ClusterState
    evaluation: Evaluation
    query: Query
    options: LintOptions
    enabled: frozenset[str]
    universe: Universe = field(init=False)
    engine: Engine = field(init=False)
    workloads: dict[WorkloadRef, Workload] = field(init=False)
    ns_index: LabelIndex = field(init=False)
    ns_names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.universe = self.evaluation.u
        self.engine = self.evaluation.engine
        self.workloads = {w.ref: w for w in self.state.workloads}
        self.ns_names = sorted(self.universe.ns_labels)
        self.ns_index = LabelIndex([self.universe.ns_labels[n] for n in self.ns_names])

    def on(self, *ids: str) -> bool:
        return any(i in self.enabled for i in ids)

    def pod_classes(self) -> list[EndpointClass]:
        """Classes of selectable pods (hostNetwork pods are node traffic, sp-1)."""
        return [c for c in self.universe.classes if not c.host_network]

    def workloads_of(self, mask: int) -> list[WorkloadRef]:
        """Workloads with a pod in one of the classes of ``mask``, sorted."""
        refs: set[WorkloadRef] = set()
        classes = self.universe.classes
        for i in bits(mask & self.universe.pod_mask):
            for pod in classes[i].pods:
                refs.add(pod.workload)
        return sorted(refs, key=lambda r: (r.namespace, r.kind, r.name))

    def workload_source(self, ref: WorkloadRef) -> SourceRef:
        w = self.workloads.get(ref)
        if w is not None:
            return w.source
        for pod in self.state.pods:
            if pod.workload == ref:
                return pod.source
        return SourceRef()

    def is_controller(self, labels: Mapping[str, str]) -> bool:
        return any(matches(s, labels) for s in self.options.ingress_controllers)


def names(refs: list[WorkloadRef] | list[str], limit: int = 4) -> str:
    """'a, b, c and 2 more' for messages."""
    items = [r if isinstance(r, str) else f"{r.namespace}/{r.name}" for r in refs]
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"


def port_groups(view: Subjected, all_ports: int) -> list[int]:
    """Masks of port classes that no rule of ``view`` tells apart (one decide per group).

    Partition refinement over the compiled rules' port masks: within a group every rule's
    ``hit`` is the same for every port class, so ``port_signature`` would agree."""
    groups = [all_ports]
    for cr in (*view.admin, *view.netpol, *view.baseline):
        if cr.all_ports:
            continue
        groups = _split(groups, cr.static_ports)
        if cr.named_ports:
            by_dest: dict[int, int] = {}
            for p, dests in cr.named_ports.items():
                if not (cr.static_ports >> p) & 1:
                    by_dest[dests] = by_dest.get(dests, 0) | (1 << p)
            for m in by_dest.values():
                groups = _split(groups, m)
    return groups


def _split(groups: list[int], mask: int) -> list[int]:
    out: list[int] = []
    for g in groups:
        inside = g & mask
        if inside and inside != g:
            out.append(inside)
            out.append(g & ~mask)
        else:
            out.append(g)
    return out


def lowest(mask: int) -> int:
    return (mask & -mask).bit_length() - 1
