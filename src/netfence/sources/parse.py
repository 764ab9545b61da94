"""Parse YAML and JSON into plain values that remember their line numbers.

YAML: the fast path (``fastyaml``: a Rust parser, checked against the text) when it can vouch
for the exact result, else the reference (``yamlref``): the C parser (``CSafeLoader``) composes
nodes, then a small constructor builds ``Marked`` dicts and lists, rejecting duplicate keys,
over-deep nesting and alias bombs before they cost memory. A cheap text scan runs first, because
libyaml itself crashes on nesting tens of thousands deep. PyYAML is imported only when the
reference runs. JSON: parsed as JSON (a YAML parser would accept trailing commas).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from netfence.errors import Diagnostic, Severity, SourceRef
from netfence.sources.files import TextFile

MAX_DEPTH = 200
MAX_NODES_FACTOR = 20
MAX_NODES_MIN = 2_000_000


class MarkedDict(dict[str, Any]):
    """A mapping that knows the line of itself and of each key (1-based; 0 = unknown)."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}


class MarkedList(list[Any]):
    __slots__ = ("item_lines", "line")

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


def line_of(value: object, key: str | int | None = None) -> int:
    """Best known line of ``value`` (or of its ``key``/item)."""
    if isinstance(value, MarkedDict):
        got = value.key_lines.get(key) if isinstance(key, str) else None
        return value.line if got is None else got
    if isinstance(value, MarkedList):
        if isinstance(key, int) and 0 <= key < len(value.item_lines):
            return value.item_lines[key]
        return value.line
    return 0


@dataclass(frozen=True, slots=True)
class Document:
    file: str
    index: int
    line: int
    data: Any


class _Budget(Exception):
    def __init__(self, message: str, line: int, duplicate: bool = False) -> None:
        super().__init__(message)
        self.line = line
        self.duplicate = duplicate


_FLOW = re.compile(r"[\[\]{}]")


def _too_deep(text: str) -> int:
    """Line of suspicious nesting found by a cheap scan, or 0 (bounds libyaml's recursion)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH and (
            not text or len(max(text.splitlines(), key=len)) <= 4 * MAX_DEPTH):
        return 0  # neither flow nor block nesting can exceed the bound
    depth = 0
    for i, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        dashes = len(stripped) - len(stripped.lstrip("- "))
        for m in _FLOW.finditer(line):
            depth += 1 if m.group() in "[{" else -1
            if depth > MAX_DEPTH:
                return i
        if indent + dashes > 4 * MAX_DEPTH:
            return i
    return 0


def parse_file(tf: TextFile) -> tuple[list[Document], list[Diagnostic]]:
    if tf.is_json:
        return _parse_json(tf)
    return _parse_yaml(tf)


def _err(tf: TextFile, line: int, code: str, msg: str, doc: int = 0) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, msg, SourceRef(tf.name, line, doc))


def _parse_yaml(tf: TextFile) -> tuple[list[Document], list[Diagnostic]]:
    """The fast path when it can vouch for an exact result, else the reference path."""
    from netfence.sources import fastyaml  # imports this module

    try:
        docs = fastyaml.load_documents(tf.text, tf.name)
    except Exception:  # anything unexpected: the reference decides, and reports
        docs = None
    if docs is not None:
        return docs, []
    return _parse_yaml_reference(tf)


def _parse_yaml_reference(tf: TextFile) -> tuple[list[Document], list[Diagnostic]]:
    """libyaml compose + the marked builder (``yamlref``, which imports PyYAML): the reference
    for data, lines and diagnostics."""
    from netfence.sources import yamlref  # imports this module

    return yamlref.parse_yaml(tf)


def _json_depth_line(text: str) -> int:
    """Line where JSON nesting first exceeds MAX_DEPTH (brackets outside strings), or 0."""
    depth = 0
    for m in _JSON_TOKENS.finditer(text):
        tok = m.group()
        if tok[0] == '"':
            continue
        depth += 1 if tok in "[{" else -1
        if depth > MAX_DEPTH:
            return text.count("\n", 0, m.start()) + 1
    return 0


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]')


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _DuplicateKey("duplicate key")
    return out


def _json_item_lines(text: str) -> list[int]:
    """Lines of the objects at depth 2 (items of a top-level List), in order."""
    lines: list[int] = []
    depth = 0
    line, seen = 1, 0  # lines counted up to offset `seen` (linear, not per item)
    for m in _JSON_TOKENS.finditer(text):
        tok = m.group()
        if tok[0] == '"':
            continue
        if tok in "[{":
            depth += 1
            if depth == 3 and tok == "{":
                line += text.count("\n", seen, m.start())
                seen = m.start()
                lines.append(line)
        else:
            depth -= 1
    return lines


def _parse_json(tf: TextFile) -> tuple[list[Document], list[Diagnostic]]:
    """Strict JSON (C parser) for the data; object lines of List items from a token scan.
    Only a duplicate key takes the slower marked path, to report its exact line and object."""
    deep = _json_depth_line(tf.text)
    if deep:
        return [], [_err(tf, deep, "json-depth", f"nesting deeper than {MAX_DEPTH} levels")]
    try:
        plain = json.loads(tf.text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        return [], [_err(tf, exc.lineno, "json-syntax", f"invalid JSON: {exc.msg}")]
    except _DuplicateKey:
        return _parse_json_marked(tf)
    except RecursionError:
        return [], [_err(tf, 0, "json-depth", "nesting too deep")]
    if plain is None:
        return [], []
    if isinstance(plain, dict) and isinstance(plain.get("items"), list):
        lines = _json_item_lines(tf.text)
        items = MarkedList(1)
        items.extend(plain["items"])
        items.item_lines = lines if len(lines) == len(items) else []
        marked = MarkedDict(1)
        marked.update(plain)
        marked["items"] = items
        plain = marked
    return [Document(tf.name, 1, 1, plain)], []


def _parse_json_marked(tf: TextFile) -> tuple[list[Document], list[Diagnostic]]:
    """JSON through the YAML node builder: exact lines for every key (and duplicates)."""
    plain = json.loads(tf.text)
    try:
        docs, diags = _parse_yaml_reference(tf)
    except Exception:  # a YAML quirk in valid JSON: use it unmarked
        return [Document(tf.name, 1, 1, plain)], []
    if docs and not any(d.code == "yaml-syntax" for d in diags):
        return docs, diags
    if any(d.code == "duplicate-key" for d in diags):
        return docs, [d for d in diags if d.code == "duplicate-key"]
    return [Document(tf.name, 1, 1, plain)], []
