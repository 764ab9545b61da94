"""netfence's own files (ConnectivityTest), decoded strictly with msgspec.

Errors name the file and the JSON path of the bad field (``$.spec.cases[3].expect``) and, where
the YAML parser knows it, the line.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from netfence.errors import Diagnostic, Severity, SourceRef, SpecError
from netfence.sources.files import read_inputs
from netfence.sources.parse import MarkedDict, MarkedList, parse_file


class Metadata(msgspec.Struct, forbid_unknown_fields=True):
    name: str = ""
    annotations: dict[str, str] = {}
    labels: dict[str, str] = {}


class Case(msgspec.Struct, forbid_unknown_fields=True, rename={"from_": "from"}):
    from_: str
    to: str
    expect: Literal["allow", "deny"]
    port: int | str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    name: str = ""


class TestSpec(msgspec.Struct, forbid_unknown_fields=True):
    cases: list[Case]


class ConnectivityTest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    api_version: Literal["netfence.dev/v1alpha1"]
    kind: Literal["ConnectivityTest"]
    spec: TestSpec
    metadata: Metadata = msgspec.field(default_factory=Metadata)


_PATH = re.compile(r"\$((?:\.[A-Za-z_]\w*|\[\d+\])*)")


def _line_for(data: object, path: str) -> int:
    """Walk a JSON path like ``$.spec.cases[3].expect`` over Marked values for a line."""
    cur: object = data
    line = getattr(data, "line", 0)
    for part in re.findall(r"\.([A-Za-z_]\w*)|\[(\d+)\]", path):
        key, idx = part
        if key and isinstance(cur, MarkedDict) and key in cur:
            line = cur.key_lines.get(key, line)
            cur = cur[key]
        elif idx and isinstance(cur, MarkedList) and int(idx) < len(cur):
            i = int(idx)
            line = cur.item_lines[i] if i < len(cur.item_lines) else line
            cur = cur[i]
        else:
            break
    return line


CaseLines = list[dict[str, int]]


def _case_lines(data: object) -> CaseLines:
    """Per case: its line ('' key) and the line of each of its fields."""
    out: CaseLines = []
    spec = data.get("spec") if isinstance(data, MarkedDict) else None
    cases = spec.get("cases") if isinstance(spec, MarkedDict) else None
    if not isinstance(cases, MarkedList):
        return out
    for i, case in enumerate(cases):
        lines = dict(case.key_lines) if isinstance(case, MarkedDict) else {}
        lines[""] = cases.item_lines[i] if i < len(cases.item_lines) else cases.line
        out.append(lines)
    return out


def load_tests(path: str) -> tuple[list[tuple[str, ConnectivityTest, CaseLines]],
                                   list[Diagnostic]]:
    """Every ConnectivityTest document in ``path`` (file or directory), with case lines."""
    files, diags = read_inputs([path], recursive=True)
    out: list[tuple[str, ConnectivityTest, CaseLines]] = []
    for tf in files:
        docs, d2 = parse_file(tf)
        diags.extend(d2)
        for doc in docs:
            try:
                out.append((tf.name, msgspec.convert(doc.data, ConnectivityTest),
                            _case_lines(doc.data)))
            except msgspec.ValidationError as exc:
                msg = str(exc)
                m = _PATH.search(msg)
                line = _line_for(doc.data, m.group(0)) if m else doc.line
                diags.append(Diagnostic(Severity.ERROR, "test-spec", f"invalid ConnectivityTest:"
                                        f" {msg}", SourceRef(tf.name, line or doc.line,
                                                             doc.index)))
    if not out and not any(d.severity >= Severity.ERROR for d in diags):
        diags.append(Diagnostic(Severity.ERROR, "test-spec", "no ConnectivityTest found",
                                SourceRef(path)))
    return out, diags


def raise_if_errors(diags: list[Diagnostic]) -> None:
    errors = tuple(d for d in diags if d.severity >= Severity.ERROR)
    if errors:
        raise SpecError("invalid tests file", errors)
