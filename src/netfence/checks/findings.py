"""Lint findings as values: a check (stable id, severity, doc) and what it found where.

A finding keys on the object at fault, ``(kind, namespace, name)``, never on a name alone
(SEMANTICS sp-5), and carries a ``detail`` that tells two findings of one check on one object
apart without line numbers: the fingerprint hashes (check id, kind, namespace, name, detail), so
it survives edits that only move lines.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field

from netfence.errors import ObjectRef, SourceRef

__all__ = ["Check", "Finding", "Level"]


class Level(enum.IntEnum):
    """Finding severity, ordered: ``--fail-on LEVEL`` fails on findings at or above it."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()

    @staticmethod
    def parse(text: str) -> Level:
        try:
            return Level[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (info, low, medium, high, "
                             "critical)") from None


LEVEL_NAMES: tuple[str, ...] = tuple(str(level) for level in Level)


@dataclass(frozen=True, slots=True)
class Check:
    """One entry of the catalogue."""

    id: str
    name: str
    level: Level
    summary: str
    doc: str
    tags: tuple[str, ...] = ()
    standards: tuple[str, ...] = ()
    default_enabled: bool = True

    @property
    def severity(self) -> str:
        return str(self.level)

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "severity": self.severity,
                "summary": self.summary, "doc": self.doc, "tags": list(self.tags),
                "standards": list(self.standards)}


@dataclass(frozen=True, slots=True)
class Finding:
    """What a check found, on which object, where (file:line), and whether it is suppressed."""

    check: Check
    obj: ObjectRef
    source: SourceRef
    message: str
    detail: str = ""
    related: tuple[ObjectRef, ...] = ()
    suppressed: str | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        return self.check.id

    @property
    def level(self) -> Level:
        return self.check.level

    @property
    def severity(self) -> str:
        return str(self.check.level)

    @property
    def fingerprint(self) -> str:
        """Stable across line moves: no line numbers, no message wording."""
        text = "\x1f".join((self.check.id, self.obj.kind, self.obj.namespace, self.obj.name,
                            self.detail))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def sort_key(self) -> tuple[int, str, str, str, str, str]:
        return (-int(self.level), self.check.id, self.obj.namespace, self.obj.kind,
                self.obj.name, self.detail)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.check.id, "check": self.check.name, "severity": self.severity,
            "message": self.message,
            "object": {"kind": self.obj.kind, "namespace": self.obj.namespace,
                       "name": self.obj.name},
            "file": self.source.file, "line": self.source.line,
            "detail": self.detail, "fingerprint": self.fingerprint,
            "related": [{"kind": r.kind, "namespace": r.namespace, "name": r.name}
                        for r in self.related],
            "suppressed": self.suppressed is not None,
            "suppressionReason": self.suppressed,
        }
