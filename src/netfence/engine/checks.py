"""Evaluation-time diagnostics that need the class universe (pure)."""

from __future__ import annotations

from itertools import combinations

from netfence.engine.evaluate import Engine
from netfence.errors import Diagnostic, Severity
from netfence.model.policy import Direction, Policy, Tier


def ambiguous_priorities(engine: Engine) -> list[Diagnostic]:
    """tier-8 / D-5: two cluster policies of one tier share a priority and select common pods
    in a direction both have rules for: the API leaves their order undefined."""
    out: list[Diagnostic] = []
    by_key: dict[tuple[Tier, int], list[Policy]] = {}
    for pol in engine.policies:
        if pol.tier in (Tier.ADMIN, Tier.BASELINE):
            by_key.setdefault((pol.tier, pol.priority), []).append(pol)
    for (tier, prio), pols in sorted(by_key.items()):
        for a, b in combinations(pols, 2):
            if not engine.subject_mask(a.subject) & engine.subject_mask(b.subject):
                continue
            dirs = [str(d) for d in Direction if a.rules(d) and b.rules(d)]
            if not dirs:
                continue
            out.append(Diagnostic(
                Severity.WARNING, "ambiguous-priority",
                f"{a.ref} and {b.ref} share priority {prio} in the {tier.label()} tier and "
                f"select common pods for {' and '.join(dirs)}: the API leaves their order "
                "undefined; netfence evaluates them by kind and name (D-5)", a.source))
    return out
