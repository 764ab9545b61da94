"""Per-object suppressions by annotation: NF017 (invalid) and NF018 (unused).

``netfence.dev/ignore: ID[,ID]`` on the object a finding keys on (a policy, a Namespace, a
workload or bare Pod) suppresses those checks there, but only with a non-empty
``netfence.dev/ignore-reason``. Suppressed findings stay in the report, marked with the reason
(SARIF ``suppressions``), and never count for ``--fail-on``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from netfence.checks.catalogue import BY_ID, check
from netfence.checks.findings import Finding
from netfence.errors import ObjectRef, SourceRef, clean
from netfence.model.cluster import ClusterState

IGNORE = "netfence.dev/ignore"
REASON = "netfence.dev/ignore-reason"
UNSUPPRESSIBLE = frozenset({"NF017", "NF018"})


@dataclass(frozen=True, slots=True)
class Suppression:
    obj: ObjectRef
    source: SourceRef
    ids: tuple[str, ...]
    reason: str


def _annotated(state: ClusterState) -> Iterable[tuple[ObjectRef, SourceRef,
                                                      Mapping[str, str]]]:
    for pol in state.policies:
        yield ObjectRef(pol.ref.kind, pol.ref.namespace, pol.ref.name), pol.source, \
            pol.annotations
    for name in sorted(state.namespaces):
        ns = state.namespaces[name]
        yield ObjectRef("Namespace", "", name), ns.source, ns.annotations
    for w in state.workloads:
        yield ObjectRef(w.ref.kind, w.ref.namespace, w.ref.name), w.source, w.annotations


def read_suppressions(state: ClusterState, enabled: frozenset[str],
                      ) -> tuple[list[Suppression], list[Finding]]:
    """Valid suppressions, and NF017 findings for the invalid ones."""
    valid: list[Suppression] = []
    problems: list[Finding] = []
    for obj, source, ann in _annotated(state):
        raw = ann.get(IGNORE)
        if raw is None:
            continue
        ids = tuple(dict.fromkeys(t for t in re.split(r"[\s,]+", raw.strip()) if t))
        reason = ann.get(REASON, "").strip()
        unknown = [i for i in ids if i not in BY_ID]
        fixed = [i for i in ids if i in UNSUPPRESSIBLE]
        known = tuple(i for i in ids if i in BY_ID and i not in UNSUPPRESSIBLE)
        if "NF017" in enabled:
            if unknown or not ids:
                problems.append(Finding(
                    check("NF017"), obj, source,
                    f"{IGNORE} names unknown check id(s) {clean(', '.join(unknown), 100)}"
                    if unknown else f"{IGNORE} names no check id", "unknown-id"))
            if fixed:
                problems.append(Finding(
                    check("NF017"), obj, source,
                    f"{IGNORE}: {', '.join(fixed)} cannot be suppressed", "unsuppressible"))
            if known and not reason:
                problems.append(Finding(
                    check("NF017"), obj, source,
                    f"{IGNORE}: {', '.join(known)} without a {REASON} annotation: the "
                    "suppression is not applied", "no-reason"))
        if known and reason:
            valid.append(Suppression(obj, source, known, reason))
    return valid, problems


def apply_suppressions(findings: list[Finding], state: ClusterState,
                       enabled: frozenset[str]) -> list[Finding]:
    """Mark suppressed findings; add NF017 and NF018 findings."""
    valid, problems = read_suppressions(state, enabled)
    by_obj: dict[tuple[ObjectRef, str], Suppression] = {}
    for s in valid:
        for i in s.ids:
            by_obj[(s.obj, i)] = s
    used: set[tuple[ObjectRef, str]] = set()
    out: list[Finding] = []
    for f in findings:
        hit = by_obj.get((f.obj, f.id))
        if hit is not None and f.id not in UNSUPPRESSIBLE:
            used.add((f.obj, f.id))
            out.append(replace(f, suppressed=hit.reason))
        else:
            out.append(f)
    out.extend(problems)
    if "NF018" in enabled:
        for s in valid:
            stale = [i for i in s.ids if i in enabled and (s.obj, i) not in used]
            if stale:
                out.append(Finding(
                    check("NF018"), s.obj, s.source,
                    f"{IGNORE}: {', '.join(stale)} finds nothing on this object: remove "
                    f"{'it' if len(stale) == 1 else 'them'} so that a regression is not "
                    "hidden", "unused/" + ",".join(stale)))
    return out
