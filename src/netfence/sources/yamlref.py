"""The reference YAML path: libyaml composes nodes, a small builder makes ``Marked`` values.

Split from ``parse`` so that PyYAML is imported only when a file needs it: the fast path
(``fastyaml``) does not, and falls back here document by document or file by file. The builder
rejects duplicate keys, over-deep nesting and alias bombs before they cost memory; a cheap text
scan (``parse._too_deep``) runs first, because libyaml itself crashes on nesting tens of
thousands deep.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from netfence.errors import Diagnostic, ObjectRef, Severity, SourceRef
from netfence.sources.files import TextFile
from netfence.sources.parse import (
    MAX_DEPTH,
    MAX_NODES_FACTOR,
    MAX_NODES_MIN,
    Document,
    MarkedDict,
    MarkedList,
    _Budget,
    _err,
    _too_deep,
)

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure-python fallback
    _Loader = yaml.SafeLoader

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


def parse_yaml(tf: TextFile) -> tuple[list[Document], list[Diagnostic]]:
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
