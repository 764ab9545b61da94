"""Evaluation-time diagnostics that need the class universe (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

from netfence.engine.evaluate import Engine
from netfence.errors import Diagnostic, Severity
from netfence.model.policy import Direction, Policy, Tier


def ambiguous_pairs(engine: Engine) -> Iterator[tuple[Policy, Policy, list[Direction]]]:
    """Pairs of cluster policies of one tier and priority that select common pods, with the
    directions both have rules for (tier-8 / D-5); ``a`` comes first in evaluation order."""
    by_key: dict[tuple[Tier, int], list[Policy]] = {}
    for pol in engine.policies:
        if pol.tier in (Tier.ADMIN, Tier.BASELINE):
            by_key.setdefault((pol.tier, pol.priority), []).append(pol)
    for _key, pols in sorted(by_key.items()):
        for a, b in combinations(pols, 2):
            if not engine.subject_mask(a.subject) & engine.subject_mask(b.subject):
                continue
            dirs = [d for d in Direction if a.rules(d) and b.rules(d)]
            if dirs:
                yield a, b, dirs


def ambiguous_priorities(engine: Engine) -> list[Diagnostic]:
    """tier-8 / D-5: two cluster policies of one tier share a priority and select common pods
    in a direction both have rules for: the API leaves their order undefined."""
    out: list[Diagnostic] = []
    for a, b, dirs in ambiguous_pairs(engine):
        out.append(Diagnostic(
            Severity.WARNING, "ambiguous-priority",
            f"{a.ref} and {b.ref} share priority {a.priority} in the {a.tier.label()} tier and "
            f"select common pods for {' and '.join(str(d) for d in dirs)}: the API leaves their "
            "order undefined; netfence evaluates them by kind and name (D-5)", a.source))
    return out
