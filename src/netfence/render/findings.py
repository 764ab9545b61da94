"""What the lint renderers read from checks and findings.

``render`` and ``checks`` are independent siblings in the layered architecture (neither imports
the other), so the renderers describe the shape they need as Protocols; ``netfence.checks``'
``Check`` and ``Finding`` satisfy them structurally.
"""

from __future__ import annotations

from typing import Protocol

from netfence.errors import ObjectRef, SourceRef


class CheckView(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def severity(self) -> str: ...

    @property
    def summary(self) -> str: ...

    @property
    def doc(self) -> str: ...

    @property
    def tags(self) -> tuple[str, ...]: ...

    @property
    def standards(self) -> tuple[str, ...]: ...


class FindingView(Protocol):
    @property
    def check(self) -> CheckView: ...

    @property
    def obj(self) -> ObjectRef: ...

    @property
    def source(self) -> SourceRef: ...

    @property
    def message(self) -> str: ...

    @property
    def severity(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def suppressed(self) -> str | None: ...


def object_text(obj: ObjectRef) -> str:
    """``Kind ns/name`` or ``Kind name`` (cluster-scoped)."""
    return str(obj)


def is_path(file: str) -> bool:
    """A file the finding can point at (not stdin, not a live-cluster resource)."""
    return bool(file) and not file.startswith(("<", "cluster:"))
