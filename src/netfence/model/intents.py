"""Service intents (Monzo-style caller-owned allow lists) as frozen dataclasses.

A ``ServiceIntents`` says which services one service calls; a ``ServiceTypeGroup`` says that
its members call every workload (``calls: all``) or a list, on the group's ports. Otterize
``ClientIntents`` are imported into the same shapes. Every reference keeps the file, line and
JSON path it was written at, so resolution errors can name them. See docs/generate.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from netfence.errors import SourceRef
from netfence.model.ports import Protocol


@dataclass(frozen=True, slots=True)
class Ref:
    """A written reference (``NS/NAME``, a CIDR...) and where it was written."""

    text: str
    path: str
    source: SourceRef


@dataclass(frozen=True, slots=True)
class PortRef:
    """A declared port: a name (resolved on the callee pods) or a number, maybe a range.

    ``protocol`` None means: TCP for numbers, the callee's own protocol for names."""

    name: str | None = None
    port: int | None = None
    end_port: int | None = None
    protocol: Protocol | None = None

    def __str__(self) -> str:
        text = self.name if self.name is not None else str(self.port)
        if self.end_port is not None and self.end_port != self.port:
            text += f"-{self.end_port}"
        return f"{text}/{self.protocol}" if self.protocol is not None else text


# what a call targets
WORKLOAD = "workload"   # NS/NAME of a workload (Deployment, StatefulSet... or bare pod)
SERVICE = "service"     # NS/NAME of a Kubernetes Service: its selected pods, on its targetPorts
ADDRESSES = "addresses"  # CIDRs outside the cluster (egress ipBlocks)


@dataclass(frozen=True, slots=True)
class Call:
    """One declared call; ``ports`` empty means every port."""

    target: Ref
    kind: str = WORKLOAD
    ports: tuple[PortRef, ...] = ()
    cidrs: tuple[str, ...] = ()
    except_: tuple[str, ...] = ()
    port_refs: tuple[Ref, ...] = ()  # where each of ``ports`` was written (same order)


@dataclass(frozen=True, slots=True)
class ServiceIntents:
    """What one caller service calls. ``kind`` is the document kind it came from
    (``ServiceIntents`` or an imported ``ClientIntents``); annotations name it."""

    name: str
    service: Ref
    calls: tuple[Call, ...]
    source: SourceRef
    kind: str = "ServiceIntents"


@dataclass(frozen=True, slots=True)
class ServiceTypeGroup:
    """Services that call almost everything (monitoring): ``calls_all`` or an explicit list."""

    name: str
    members: tuple[Ref, ...]
    calls_all: bool
    calls: tuple[Ref, ...]
    ports: tuple[PortRef, ...]
    source: SourceRef
    port_refs: tuple[Ref, ...] = ()  # where each of ``ports`` was written (same order)


@dataclass(frozen=True, slots=True)
class IntentSet:
    """Everything the intents files declared, in file order."""

    intents: tuple[ServiceIntents, ...] = ()
    groups: tuple[ServiceTypeGroup, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.intents or self.groups)
