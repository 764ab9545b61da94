"""Parse YAML and JSON into plain values that remember their line numbers.

YAML: the C parser (``CSafeLoader``) composes nodes, then a small constructor builds
``Marked`` dicts and lists, rejecting duplicate keys, over-deep nesting and alias bombs before
they cost memory. A cheap text scan runs first, because libyaml itself crashes on nesting tens of
thousands deep. JSON: parsed as JSON (a YAML parser would accept trailing commas).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from netfence.errors import Diagnostic, ObjectRef, Severity, SourceRef
from netfence.sources.files import TextFile

MAX_DEPTH = 200
MAX_NODES_FACTOR = 20
MAX_NODES_MIN = 2_000_000

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure-python fallback
    _Loader = yaml.SafeLoader


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


_scalar = SafeConstructor()
_STR = "tag:yaml.org,2002:str"


class _Builder:
    def __init__(self, budget: int, lenient: bool = False, base: int = 0) -> None:
        self.budget = budget
        self.count = 0
        self.lenient = lenient
        self.base = base  # lines before the text the nodes were composed from

    def build(self, node: Node, depth: int = 0) -> Any:
        self.count += 1
        line = node.start_mark.line + 1 + self.base
        if self.count > self.budget:
            raise _Budget("alias expansion exceeds the size budget (possible 'billion laughs' "
                          "document)", line)
        if depth > MAX_DEPTH:
            raise _Budget(f"nesting deeper than {MAX_DEPTH} levels", line)
        if isinstance(node, ScalarNode):
            if node.tag == _STR:
                return node.value
            try:
                return _scalar.construct_object(node, deep=True)
            except ConstructorError as exc:
                raise _Budget(f"unsupported value: {exc.problem}", line) from None
        if isinstance(node, SequenceNode):
            seq = MarkedList(line)
            for item in node.value:
                seq.append(self.build(item, depth + 1))
                seq.item_lines.append(item.start_mark.line + 1 + self.base)
            return seq
        if isinstance(node, MappingNode):
            out = MarkedDict(line)
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    raise _Budget("merge keys ('<<') are not supported in manifests", line)
                if not isinstance(knode, ScalarNode):
                    # no Kubernetes object has list or mapping keys; nested ones would also
                    # make their text form grow exponentially (hostile input)
                    raise _Budget("mapping keys must be plain scalars, not lists or mappings",
                                  knode.start_mark.line + 1 + self.base)
                key = self.build(knode, depth + 1)
                kline = knode.start_mark.line + 1 + self.base
                if not isinstance(key, str):
                    key = str(key).lower() if isinstance(key, bool) else str(key)
                if key in out and not self.lenient:
                    raise _Budget(f"duplicate key '{key}' (first at line "
                                  f"{out.key_lines.get(key, '?')})", kline, duplicate=True)
                out[key] = self.build(vnode, depth + 1)
                out.key_lines[key] = kline
            return out
        raise _Budget("unsupported YAML node", line)


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


def _precise_depth(text: str) -> int:
    """Exact nesting check with the pure-Python scanner (no recursion, no crash)."""
    depth = 0
    starts = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken,
              yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)
    ends = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
    for tok in yaml.scan(text, Loader=yaml.SafeLoader):
        if isinstance(tok, starts):
            depth += 1
            if depth > MAX_DEPTH:
                return int(tok.start_mark.line) + 1
        elif isinstance(tok, ends):
            depth -= 1
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
    """libyaml compose + the marked builder: the reference for data, lines and diagnostics."""
    text = tf.text
    suspicious = _too_deep(text)
    if suspicious:
        try:
            deep = _precise_depth(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 0
            return [], [_err(tf, line, "yaml-syntax", f"invalid YAML: {_problem(exc)}")]
        if deep:
            return [], [_err(tf, deep, "yaml-depth", f"nesting deeper than {MAX_DEPTH} levels")]
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    budget = max(MAX_NODES_MIN, MAX_NODES_FACTOR * (text.count("\n") + 1))
    builder = _Builder(budget)
    index = 0
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            index += 1
            line = node.start_mark.line + 1
            try:
                data = builder.build(node)
            except _Budget as exc:
                if not exc.duplicate:
                    return docs, [_err(tf, exc.line, "yaml-limit", str(exc), index)]
                # name the object: rebuild this document leniently just to read its identity
                try:
                    who = _identity(_Builder(budget, True).build(node))
                except _Budget:  # e.g. a merge key too: report the duplicate, name nothing
                    who = None
                diags.append(Diagnostic(Severity.ERROR, "duplicate-key", str(exc), SourceRef(
                    tf.name, exc.line, index, who)))
                continue
            if data is None:
                continue
            docs.append(Document(tf.name, index, line, data))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        return docs, [*diags, _err(tf, line, "yaml-syntax", f"invalid YAML: {_problem(exc)}",
                                   index)]
    except RecursionError:
        return docs, [*diags, _err(tf, 0, "yaml-depth", "nesting too deep")]
    return docs, diags


def _identity(data: Any) -> ObjectRef | None:
    """KIND NAMESPACE/NAME of a raw object, when it has them."""
    if not isinstance(data, dict):
        return None
    meta = data.get("metadata")
    kind = data.get("kind")
    if not isinstance(meta, dict) or not isinstance(kind, str):
        return None
    ns = meta.get("namespace")
    return ObjectRef(kind, ns if isinstance(ns, str) else "", str(meta.get("name", "")))


def _problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem and context:
        return f"{problem} ({context})"
    return str(problem or exc).splitlines()[0]


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
    for m in _JSON_TOKENS.finditer(text):
        tok = m.group()
        if tok[0] == '"':
            continue
        if tok in "[{":
            depth += 1
            if depth == 3 and tok == "{":
                lines.append(text.count("\n", 0, m.start()) + 1)
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
