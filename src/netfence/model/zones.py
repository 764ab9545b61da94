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
    # NS/NAME workloads the zone default ingress rules leave out (only intents reach them;
    # monitoring still does), with where each was written (for errors)
    protected: tuple[str, ...] = ()
    protected_sources: tuple[SourceRef, ...] = field(default=(), compare=False)

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
