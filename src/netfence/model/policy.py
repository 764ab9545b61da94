"""One internal policy model for NetworkPolicy, ClusterNetworkPolicy, ANP and BANP.

Every source kind is converted into ``Policy`` by ``sources/``; the engine never sees raw dicts.
A ``Policy`` lives in a ``Tier`` (Admin, NetworkPolicy, Baseline), has a subject (which pods it
governs) and per direction an ordered tuple of ``Rule`` (``None`` when the policy does not affect
that direction). NetworkPolicy rules all carry ``Action.ALLOW``; their isolation effect comes from
the direction being present (SEMANTICS iso-1..iso-4).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from netfence.errors import SourceRef
from netfence.model.net import IPSet
from netfence.model.ports import Protocol


class Tier(enum.IntEnum):
    """Evaluation order per direction (SEMANTICS tier-1)."""

    ADMIN = 0
    NETWORK_POLICY = 1
    BASELINE = 2
    DEFAULT = 3

    def label(self) -> str:
        return {0: "Admin", 1: "NetworkPolicy", 2: "Baseline", 3: "default"}[int(self)]


class Action(enum.Enum):
    """Rule action; v1alpha1 ``Allow`` and CNP ``Accept`` are the same ALLOW."""

    ALLOW = "Allow"
    DENY = "Deny"
    PASS = "Pass"


class Direction(enum.Enum):
    INGRESS = "Ingress"
    EGRESS = "Egress"

    def __str__(self) -> str:
        return self.value.lower()


class Operator(enum.Enum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A Kubernetes label selector; the empty selector matches everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def keys(self) -> set[str]:
        return {k for k, _ in self.match_labels} | {r.key for r in self.match_expressions}

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels]
        for r in self.match_expressions:
            if r.operator is Operator.EXISTS:
                parts.append(r.key)
            elif r.operator is Operator.DOES_NOT_EXIST:
                parts.append(f"!{r.key}")
            else:
                op = "in" if r.operator is Operator.IN else "notin"
                parts.append(f"{r.key} {op} ({','.join(r.values)})")
        return ",".join(parts) if parts else "{}"


ALL = LabelSelector()


@dataclass(frozen=True, slots=True)
class NamespaceScope:
    """Which namespaces: the named one (``name``) or those matching ``selector``."""

    name: str | None = None
    selector: LabelSelector | None = None

    def __str__(self) -> str:
        if self.name is not None:
            return f"namespace {self.name}"
        assert self.selector is not None
        if self.selector.is_empty():
            return "all namespaces"
        return f"namespaces {self.selector}"


@dataclass(frozen=True, slots=True)
class PodPeer:
    """Pods in some namespaces matching a pod selector (``None`` means all of their pods)."""

    namespaces: NamespaceScope
    pods: LabelSelector | None = None

    def __str__(self) -> str:
        pods = "all pods" if self.pods is None or self.pods.is_empty() else f"pods {self.pods}"
        return f"{pods} in {self.namespaces}"


@dataclass(frozen=True, slots=True)
class IPPeer:
    """Addresses (ipBlock cidr minus except, or CNP networks); also matches pod IPs (ip-1)."""

    ips: IPSet
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class NodePeer:
    """Nodes selected by labels: their addresses and their hostNetwork pods (D-3)."""

    selector: LabelSelector

    def __str__(self) -> str:
        return f"nodes {self.selector}"


@dataclass(frozen=True, slots=True)
class DomainPeer:
    """CNP ``domainNames``: undecidable offline (D-7)."""

    names: tuple[str, ...]

    def __str__(self) -> str:
        return "domains " + ",".join(self.names)


@dataclass(frozen=True, slots=True)
class AnyPeer:
    """Every source or destination, external addresses included (sel-1; fail-closed Deny/Pass)."""

    why: str = "any peer"

    def __str__(self) -> str:
        return self.why


@dataclass(frozen=True, slots=True)
class NoPeer:
    """Matches nothing (fail-closed Accept with an unrecognised peer)."""

    why: str = "no peer"

    def __str__(self) -> str:
        return self.why


Peer = PodPeer | IPPeer | NodePeer | DomainPeer | AnyPeer | NoPeer


@dataclass(frozen=True, slots=True)
class PortClause:
    """One port match: ``protocol`` None means 'the protocol of the named port'."""

    protocol: Protocol | None
    port: int | None = None
    end_port: int | None = None
    name: str | None = None

    def __str__(self) -> str:
        proto = str(self.protocol) if self.protocol else ""
        if self.name is not None:
            return f"{proto} named port '{self.name}'".strip()
        if self.port is None:
            return f"{proto} all ports"
        if self.end_port is not None:
            return f"{proto} {self.port}-{self.end_port}"
        return f"{proto} {self.port}"


@dataclass(frozen=True, slots=True)
class Rule:
    """An ordered rule; ``ports`` None matches every port and protocol (port-2)."""

    index: int
    action: Action
    peers: tuple[Peer, ...]
    ports: tuple[PortClause, ...] | None
    name: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """(kind, namespace, name): same-named policies in two namespaces never collide (sp-5)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace \
            else f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Subject:
    """The pods a policy governs."""

    namespaces: NamespaceScope
    pods: LabelSelector | None = None

    def __str__(self) -> str:
        return str(PodPeer(self.namespaces, self.pods))


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy of any supported kind, in the internal model."""

    ref: PolicyRef
    tier: Tier
    priority: int
    subject: Subject
    ingress: tuple[Rule, ...] | None
    egress: tuple[Rule, ...] | None
    source: SourceRef = field(default_factory=SourceRef)
    audit: bool = False
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)

    def rules(self, direction: Direction) -> tuple[Rule, ...] | None:
        return self.ingress if direction is Direction.INGRESS else self.egress

    def order_key(self) -> tuple[int, int, str, str, str]:
        """Evaluation order within a tier: priority, then kind and name (D-5)."""
        return (int(self.tier), self.priority, self.ref.kind, self.ref.namespace, self.ref.name)
