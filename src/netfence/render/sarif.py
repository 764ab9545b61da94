"""SARIF 2.1.0 for lint findings (owned here, plain JSON: ECOSYSTEM.md "Own it").

One run, tool ``netfence`` with the whole catalogue of enabled checks as rules (id, name, short
and full description, help, default level, GitHub ``security-severity``). Results point at
file:line through a relative URI against ``%SRCROOT%``, plus a logical location naming the
Kubernetes object; ``partialFingerprints`` hash (check, kind, namespace, name, detail), never a
line number, so code scanning keeps tracking a finding when lines move. Suppressed findings are
kept with an ``inSource`` suppression carrying the annotation's reason. Validated against the
OASIS schema in ``schemas/sarif-schema-2.1.0.json`` by the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from netfence.render.findings import CheckView, FindingView, is_path

SCHEMA_URI = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
              "sarif-schema-2.1.0.json")
FINGERPRINT_KEY = "netfenceFinding/v1"

# SARIF has three result levels; GitHub code scanning ranks security rules by a 0-10
# 'security-severity' (critical >= 9, high >= 7, medium >= 4, low > 0).
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note",
         "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0",
                     "info": "1.0"}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/")


def uri(path: str) -> tuple[str, str | None]:
    """(URI, uriBaseId) of a file path: relative paths resolve against %SRCROOT%."""
    path = path.replace("\\", "/")
    encoded = "".join(ch if ch in _UNRESERVED else "".join(f"%{b:02X}" for b in ch.encode())
                      for ch in path)
    if path.startswith("/"):
        return "file://" + encoded, None
    while encoded.startswith("./"):
        encoded = encoded[2:]
    return encoded, "%SRCROOT%"


def _rule(check: CheckView) -> dict[str, object]:
    return {
        "id": check.id,
        "name": check.name,
        "shortDescription": {"text": check.summary},
        "fullDescription": {"text": check.doc},
        "help": {"text": check.doc,
                 "markdown": f"**{check.id} {check.name}** ({check.severity})\n\n{check.doc}"},
        "defaultConfiguration": {"level": LEVEL[check.severity]},
        "properties": {
            "tags": sorted({*check.tags, "kubernetes", "network-policy"}),
            "precision": "very-high",
            "problem.severity": {"error": "error", "warning": "warning"}.get(
                LEVEL[check.severity], "recommendation"),
            "security-severity": SECURITY_SEVERITY[check.severity],
            "netfenceSeverity": check.severity,
            "standards": list(check.standards),
        },
    }


def _result(f: FindingView, rule_index: int) -> dict[str, object]:
    obj = f.obj
    logical = {"name": obj.name, "kind": "resource",
               "fullyQualifiedName": "/".join(x for x in (obj.namespace, obj.kind, obj.name)
                                              if x)}
    location: dict[str, object] = {"logicalLocations": [logical]}
    if is_path(f.source.file):
        address, base = uri(f.source.file)
        artifact: dict[str, object] = {"uri": address}
        if base is not None:
            artifact["uriBaseId"] = base
        physical: dict[str, object] = {"artifactLocation": artifact}
        if f.source.line > 0:
            physical["region"] = {"startLine": f.source.line}
        location["physicalLocation"] = physical
    out: dict[str, object] = {
        "ruleId": f.check.id,
        "ruleIndex": rule_index,
        "level": LEVEL[f.severity],
        "message": {"text": f"{obj}: {f.message}"},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": {"severity": f.severity, "kind": obj.kind,
                       "namespace": obj.namespace, "name": obj.name},
    }
    if f.suppressed is not None:
        out["suppressions"] = [{"kind": "inSource", "status": "accepted",
                                "justification": f.suppressed}]
    return out


def sarif_log(checks: Sequence[CheckView], findings: Sequence[FindingView], *,
              version: str) -> dict[str, object]:
    """The SARIF log as a JSON-ready dict (dump it with sorted keys for stable output)."""
    rules: list[dict[str, object]] = []
    index: dict[str, int] = {}
    for c in checks:
        index[c.id] = len(rules)
        rules.append(_rule(c))
    results: list[dict[str, object]] = []
    for f in findings:
        if f.check.id not in index:
            index[f.check.id] = len(rules)
            rules.append(_rule(f.check))
        results.append(_result(f, index[f.check.id]))
    driver: dict[str, object] = {
        "name": "netfence", "semanticVersion": version, "version": version, "rules": rules,
    }
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            "automationDetails": {"id": "netfence/lint/"},
            "originalUriBaseIds": {"%SRCROOT%": {"description": {
                "text": "The directory netfence was run from."}}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
