"""The zone model (Ebury-style network areas) as frozen dataclasses; see docs/generate.md."""

from __future__ import annotations

from dataclasses import dataclass, field

from netfence.errors import SourceRef
from netfence.model.net import IPSet
from netfence.model.ports import Protocol

ENDPOINT_KINDS = ("sameArea", "ingressController", "otherAreas")


@dataclass(frozen=True, slots=True)
class PodRef:
    """Pods in one namespace matching labels."""

    namespace: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class NetPort:
    protocol: Protocol
    port: int
    end_port: int | None = None


@dataclass(frozen=True, slots=True)
class PodPort:
    """A port on the destination pods: a number (or range) or a container port name."""

    protocol: Protocol
    port: int | str
    end_port: int | None = None


@dataclass(frozen=True, slots=True)
class Network:
    name: str
    cidrs: tuple[str, ...]
    ips: IPSet
    ports: tuple[NetPort, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Area:
    name: str
    namespaces: tuple[str, ...]
    ingress_controller: PodRef | None = None
    may_enter: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    # named networks whose addresses may open connections to the ingress controller, and
    # on which of its ports (() = all); only in a fenced platform namespace
    clients: tuple[str, ...] = ()
    client_ports: tuple[PodPort, ...] = ()


@dataclass(frozen=True, slots=True)
class Exception_:
    name: str
    namespace: str
    area: str
    ingress_controllers_of: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Monitoring:
    pods: PodRef
    port: str


@dataclass(frozen=True, slots=True)
class SegmentationModel:
    name: str
    area_label: str
    areas: tuple[Area, ...]
    dns: PodRef
    networks: tuple[Network, ...] = ()
    monitoring: Monitoring | None = None
    endpoint_only: frozenset[str] = frozenset()
    endpoint_label: tuple[tuple[str, str], ...] = (("endpoint", "true"),)
    cluster_cidrs: tuple[str, ...] = ()
    public_internet: bool = False
    public_ports: tuple[NetPort, ...] = ()
    all_areas: tuple[str, ...] = ()
    exceptions: tuple[Exception_, ...] = ()
    source_file: str = field(default="", compare=False)
    # NS/NAME workloads the zone rules leave out in both directions (their intents are all
    # they reach and all that reaches them; monitoring in and DNS out still apply), with where
    # each was written (for errors) and its JSON path
    protected: tuple[str, ...] = ()
    protected_sources: tuple[SourceRef, ...] = field(default=(), compare=False)
    protected_paths: tuple[str, ...] = field(default=(), compare=False)
    # the same, given by namespace and ONE label (no cluster lookup needed: a NotIn on it)
    protected_pods: tuple[PodRef, ...] = ()
    # namespaces outside the areas that the model fences too (ingress controllers,
    # monitoring, DNS...): default deny, and only the model's roles and the intents
    platform_namespaces: tuple[str, ...] = ()
    platform_same_namespace: frozenset[str] = frozenset()  # ... whose pods talk freely

    def area_of(self, namespace: str) -> Area | None:
        """The namespace's area, exceptions applied (an exception moves a namespace)."""
        for ex in self.exceptions:
            if ex.namespace == namespace:
                return self.area(ex.area)
        for a in self.areas:
            if namespace in a.namespaces:
                return a
        return None

    def area(self, name: str) -> Area | None:
        return next((a for a in self.areas if a.name == name), None)

    def network(self, name: str) -> Network | None:
        return next((n for n in self.networks if n.name == name), None)

    def namespaces(self) -> list[str]:
        names = {ns for a in self.areas for ns in a.namespaces}
        names |= {ex.namespace for ex in self.exceptions}
        return sorted(names)

    def fenced_namespaces(self) -> list[str]:
        """The model's namespaces and its platform namespaces."""
        return sorted({*self.namespaces(), *self.platform_namespaces})

    def explicit_exclusions(self) -> dict[str, list[tuple[str, str]]]:
        """Namespace -> the labels of the protected pods given by label (``protected_pods``)."""
        out: dict[str, list[tuple[str, str]]] = {}
        for ref in self.protected_pods:
            for label in ref.labels:
                if label not in out.setdefault(ref.namespace, []):
                    out[ref.namespace].append(label)
        return out
