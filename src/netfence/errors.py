"""Errors and diagnostics, as values.

Pure functions return ``(result, diagnostics)``; only ``cli/`` decides how to show them.
Exceptions are for conditions that stop a whole use case::

    NetfenceError
    |-- InputError
    |   |-- ManifestError      (file, line, doc_index, object)
    |   `-- SpecError          (tests/zones/intents file, JSON path)
    |-- ClusterError           (live cluster unreachable, forbidden, not found)
    |-- UnsupportedError       (known feature not modelled; warning unless --strict)
    `-- InternalError          (a bug: exit 4)

``InputError`` and ``ClusterError`` map to exit code 3, anything unexpected to 4.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    """How bad a diagnostic is; ``error`` excludes the object, ``fatal`` the output."""

    INFO = 0
    WARNING = 1
    ERROR = 2
    FATAL = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Identifies a Kubernetes object: kind, namespace ('' if cluster-scoped) and name."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where something came from: file, 1-based line, document index and object."""

    file: str = ""
    line: int = 0
    doc_index: int = 0
    obj: ObjectRef | None = None

    def at(self, line: int) -> SourceRef:
        """The same source, pointing at another line (0 keeps the current one)."""
        if not line:
            return self
        return SourceRef(self.file, line, self.doc_index, self.obj)

    def location(self) -> str:
        if not self.file:
            return "<input>"
        return f"{self.file}:{self.line}" if self.line else self.file


_CONTROL = {c: None for c in range(32) if c not in (9,)}
_CONTROL[127] = None
MAX_VALUE = 200


def clean(text: str, limit: int = MAX_VALUE) -> str:
    """Make input-derived text safe for one terminal line: no control chars, bounded length."""
    out = text.translate(_CONTROL)
    if len(out) > limit:
        out = out[:limit] + f"...({len(text)} chars)"
    return out


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in the input, with where it is and how bad it is."""

    severity: Severity
    code: str
    message: str
    source: SourceRef = field(default_factory=SourceRef)

    def line(self) -> str:
        """The one-line form: ``FILE:LINE: severity: KIND NS/NAME: message``."""
        obj = f"{clean(str(self.source.obj), 300)}: " if self.source.obj else ""
        where = clean(self.source.location(), 400)
        return f"{where}: {self.severity}: {obj}{clean(self.message, 600)}"

    def to_json(self) -> dict[str, object]:
        obj = self.source.obj
        return {
            "severity": str(self.severity),
            "code": self.code,
            "message": self.message,
            "file": self.source.file,
            "line": self.source.line,
            "object": None if obj is None else
            {"kind": obj.kind, "namespace": obj.namespace, "name": obj.name},
        }


class NetfenceError(Exception):
    """Base of every error netfence raises on purpose."""


class InputError(NetfenceError):
    """The input cannot be used; carries the diagnostics that say why."""

    def __init__(self, message: str, diagnostics: tuple[Diagnostic, ...] = ()) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


class ManifestError(InputError):
    """A manifest file or object is invalid."""


class SpecError(InputError):
    """A netfence file (tests, zones, intents, config) is invalid; message names the path."""


class ClusterError(NetfenceError):
    """The live cluster could not be read."""


class UnsupportedError(NetfenceError):
    """A known feature that netfence does not model."""


class InternalError(NetfenceError):
    """A bug in netfence."""
