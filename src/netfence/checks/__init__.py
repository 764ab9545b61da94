"""Lint: a catalogue of checks over a loaded and evaluated cluster -> findings (pure core).

Each check has a stable id, a severity and a documentation paragraph (``catalogue.py``); each
finding names the object at fault as (kind, namespace, name) with its file:line. Checks read
verdicts from the engine (``Evaluation``, ``Engine.decide``, ``Query``): they never implement
policy semantics a second time. May import engine, selectors, model and errors only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from netfence.checks.catalogue import BY_ID, CHECKS
from netfence.checks.context import DEFAULT_INGRESS_CONTROLLERS, Context, LintOptions
from netfence.checks.findings import LEVEL_NAMES, Check, Finding, Level
from netfence.checks.posture import (
    check_default_deny,
    check_dns,
    check_exposure,
    check_internet_ingress,
)
from netfence.checks.redundancy import check_redundancy
from netfence.checks.selection import check_selection
from netfence.checks.suppress import apply_suppressions
from netfence.checks.tiers import check_priorities
from netfence.engine.evaluate import Evaluation
from netfence.engine.query import Query
from netfence.model.cluster import ClusterState
from netfence.model.policy import Direction

__all__ = ["BY_ID", "CHECKS", "DEFAULT_INGRESS_CONTROLLERS", "LEVEL_NAMES", "Check", "Finding",
           "Level", "LintOptions", "LintReport", "enabled_checks", "run"]

_RUNNERS: tuple[tuple[tuple[str, ...], Callable[[Context], Iterator[Finding]]], ...] = (
    (("NF001", "NF002", "NF003", "NF004", "NF005"), check_selection),
    (("NF006", "NF007"), check_default_deny),
    (("NF008",), check_exposure),
    (("NF009",), check_internet_ingress),
    (("NF010",), check_dns),
    (("NF011", "NF012", "NF013", "NF014", "NF015"), check_redundancy),
    (("NF016",), check_priorities),
)


@dataclass(frozen=True, slots=True)
class LintReport:
    """Every finding (suppressed ones marked), sorted, and the checks that ran."""

    findings: tuple[Finding, ...]
    checks: tuple[Check, ...]

    @property
    def active(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.suppressed is None)

    @property
    def suppressed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.suppressed is not None)

    def failed(self, threshold: Level) -> bool:
        return any(f.level >= threshold for f in self.active)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(LEVEL_NAMES, 0)
        for f in self.active:
            out[f.severity] += 1
        return out


def enabled_checks(options: LintOptions) -> tuple[Check, ...]:
    """The checks a run with these options performs, in catalogue order."""
    out: list[Check] = []
    for c in CHECKS:
        if c.id in options.disabled:
            continue
        if c.id == "NF006" and Direction.INGRESS not in options.default_deny:
            continue
        if c.id == "NF007":
            if Direction.EGRESS in options.default_deny:
                out.append(c)
            continue
        if c.default_enabled:
            out.append(c)
    return tuple(out)


def run(state: ClusterState, evaluation: Evaluation, query: Query,
        options: LintOptions | None = None) -> LintReport:
    """Run every enabled check; apply the objects' suppression annotations."""
    options = options or LintOptions()
    checks = enabled_checks(options)
    enabled = frozenset(c.id for c in checks)
    ctx = Context(state, evaluation, query, options, enabled)
    findings: list[Finding] = []
    for ids, runner in _RUNNERS:
        if ctx.on(*ids):
            findings.extend(f for f in runner(ctx) if f.id in enabled)
    findings = apply_suppressions(findings, state, enabled)
    unique: dict[tuple[str, str], Finding] = {}
    for f in findings:
        unique.setdefault((f.id, f.fingerprint), f)
    ordered = sorted(unique.values(), key=Finding.sort_key)
    return LintReport(tuple(ordered), checks)
