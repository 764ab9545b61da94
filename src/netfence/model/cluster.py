"""The cluster snapshot: namespaces, workloads, pods, services, nodes and policies.

Everything is frozen; ``ClusterState`` is the engine's only input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from netfence.errors import Diagnostic, ObjectRef, SourceRef
from netfence.model.policy import Policy
from netfence.model.ports import Protocol

METADATA_NAME = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str | None
    port: int
    protocol: Protocol = Protocol.TCP


@dataclass(frozen=True, slots=True, eq=False)
class Namespace:
    name: str
    labels: Mapping[str, str]
    source: SourceRef = field(default_factory=SourceRef)
    implicit: bool = False
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkloadRef:
    """(kind, namespace, name) of the workload that owns pods; bare pods own themselves."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.kind.lower()}/{self.name}"


@dataclass(frozen=True, slots=True, eq=False)
class Pod:
    """A pod, real (from the input) or representative (from a workload template, D-4)."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    ports: tuple[ContainerPort, ...]
    workload: WorkloadRef
    host_network: bool = False
    ips: tuple[str, ...] = ()
    node: str = ""
    source: SourceRef = field(default_factory=SourceRef)
    synthetic: bool = False
    host_ip: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.namespace}/{self.name}")


@dataclass(frozen=True, slots=True, eq=False)
class Workload:
    ref: WorkloadRef
    labels: Mapping[str, str]
    ports: tuple[ContainerPort, ...]
    replicas: int
    host_network: bool = False
    source: SourceRef = field(default_factory=SourceRef)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    name: str
    labels: Mapping[str, str]
    addresses: tuple[str, ...]
    source: SourceRef = field(default_factory=SourceRef)
    pod_cidrs: tuple[str, ...] = ()  # spec.podCIDR(s): the pod network on this node (D-4)


@dataclass(frozen=True, slots=True)
class ServicePort:
    port: int
    target: int | str
    protocol: Protocol = Protocol.TCP
    name: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Service:
    namespace: str
    name: str
    selector: Mapping[str, str] | None
    ports: tuple[ServicePort, ...]
    type: str = "ClusterIP"
    source: SourceRef = field(default_factory=SourceRef)


@dataclass(frozen=True, slots=True)
class Unmodelled:
    """A policy-like object netfence does not analyse (D-8): listed in every output."""

    api_version: str
    ref: ObjectRef
    source: SourceRef


@dataclass(frozen=True, slots=True, eq=False)
class ClusterState:
    """An immutable snapshot of everything the engine needs."""

    namespaces: Mapping[str, Namespace]
    pods: tuple[Pod, ...]
    workloads: tuple[Workload, ...] = ()
    services: tuple[Service, ...] = ()
    nodes: tuple[Node, ...] = ()
    policies: tuple[Policy, ...] = ()
    unmodelled: tuple[Unmodelled, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    not_analysed: Mapping[str, int] = field(default_factory=dict)
