"""GitLab code quality report (``artifacts:reports:codequality``) for lint findings.

A JSON array of issues with ``description``, ``check_name``, ``fingerprint`` (the finding's
line-free fingerprint), ``severity`` (info, minor, major, critical, blocker) and ``location``
(path relative to the repository root, first line). Suppressed findings are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from netfence.render.findings import FindingView

SEVERITY = {"info": "info", "low": "minor", "medium": "major", "high": "critical",
            "critical": "blocker"}


def codequality(findings: Sequence[FindingView]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    seen: set[str] = set()
    for f in findings:
        if f.suppressed is not None or f.fingerprint in seen:
            continue
        seen.add(f.fingerprint)
        path = f.source.file.replace("\\", "/")
        while path.startswith("./"):
            path = path[2:]
        out.append({
            "type": "issue",
            "check_name": f"{f.check.id} {f.check.name}",
            "description": f"{f.check.id}: {f.obj}: {f.message}",
            "categories": ["Security"] if "security" in f.check.tags else ["Bug Risk"],
            "fingerprint": f.fingerprint,
            "severity": SEVERITY[f.severity],
            "location": {"path": path or "<input>",
                         "lines": {"begin": max(f.source.line, 1)}},
        })
    return out
