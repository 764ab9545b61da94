"""Fast YAML loading that returns exactly what the reference path in ``parse`` returns, or nothing.

The reference (libyaml compose, then the marked builder) spends most of its time creating node and
mark objects. Here a Rust parser (``yaml_rs``) builds the data and the text gives the lines. But
``yaml_rs`` implements YAML 1.2 and PyYAML YAML 1.1, so nothing it says is taken on trust:

1. File: a character or line that PyYAML could read differently (a non-printable character,
   ``\\r`` or another YAML 1.1 line break, a BOM, a directive, ``...``, a ``---`` line with
   anything after it), or nesting that the reference's depth pre-scan would look at, sends the
   whole file to the reference. Otherwise the file is cut at its ``---`` lines into documents,
   numbered as the reference numbers them.
2. Document: ``yaml_rs`` loads it, and the data is walked in document order against the lines.
   Every key and item must sit on the next non-blank, non-comment line, in a small block-style
   grammar, at the column of its siblings and deeper than its parent; the line must say exactly
   that key and that scalar (``f"{indent}{key}: {value}"`` is the quick test; a strict one-line
   grammar reads the other spellings: quotes, comments, ``null``, ``true``, trailing spaces);
   every line must be used. Flow collections other than ``{}``/``[]``, block and multi-line
   scalars, anchors, aliases, tags, explicit keys, tabs and escapes are outside the grammar.
   Scalar types are PyYAML's own resolver's: a value must be what PyYAML makes of its text.
   Any disagreement sends that document alone through the reference builder.
3. Errors of any kind (syntax, duplicate keys, depth and size limits) are never reported here:
   the whole file then goes through the reference, so diagnostics stay exactly as they were.

Lines are 1-based, as the reference's: a mapping's line is its first key's, a sequence's its
first ``-``'s, an item's its ``-``'s (the item starts on that line in this grammar).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from itertools import accumulate
from typing import Any, Final

from netfence.sources.parse import (
    MAX_DEPTH,
    MAX_NODES_FACTOR,
    MAX_NODES_MIN,
    Document,
    MarkedDict,
    MarkedList,
    _Budget,
)

try:
    import yaml_rs
except ImportError:  # pragma: no cover - the reference path works without it
    yaml_rs = None  # type: ignore[assignment]

# -- file level ------------------------------------------------------------------------------

# Characters both parsers read alike: PyYAML's printable set without its extra line breaks
# (\r, \x85, \u2028, \u2029) and without the BOM.
_UNSAFE_CHAR: Final = re.compile(
    "[^\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_ASCII_PRINTABLE: Final = bytes([9, 10, *range(0x20, 0x7F)])
_NOT_BRACKET: Final = bytes(c for c in range(256) if c not in b"[]{}")
_BRACKET_STEP: Final = tuple(1 if c in b"[{" else -1 if c in b"]}" else 0 for c in range(256))
_LONG_LEAD: Final = re.compile(rf"^[ -]{{{4 * MAX_DEPTH + 1}}}", re.M)


def unsafe_chars(text: str) -> bool:
    """Whether ``text`` holds a character outside the set both parsers read alike."""
    if text.isascii():
        return bool(text.encode("ascii").translate(None, _ASCII_PRINTABLE))
    return _UNSAFE_CHAR.search(text) is not None


def deep_brackets(text: str) -> bool:
    """Whether ``[``/``{`` minus ``]``/``}`` (anywhere, in text order) ever exceeds MAX_DEPTH:
    the flow half of ``parse._too_deep``."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    data = text.encode("utf-8")  # brackets are ASCII; order is kept
    steps = map(_BRACKET_STEP.__getitem__, data.translate(None, _NOT_BRACKET))
    return max(accumulate(steps)) > MAX_DEPTH


def long_lead(text: str, longest_line: int) -> bool:
    """Whether a line starts with more than 4 * MAX_DEPTH spaces and dashes: the block half of
    ``parse._too_deep`` (``longest_line`` bounds it cheaply)."""
    return longest_line > 4 * MAX_DEPTH and _LONG_LEAD.search(text) is not None


def split_documents(text: str) -> list[tuple[str, int]] | None:
    """``(text, first line)`` of each part between ``---`` lines, or None when a line starts
    with ``---`` followed by anything, or with ``...`` or ``%``."""
    t = "\n" + text
    if "\n%" in t or "\n..." in t:
        return None
    pieces = t.split("\n---")
    out: list[tuple[str, int]] = []
    line = 0  # the line of the `---` before this piece (0: none)
    for i, piece in enumerate(pieces):
        if piece and piece[0] != "\n":
            return None  # `---x`, `--- x`, `----`
        out.append((piece[1:], line + 1 if i else 1))
        line += piece.count("\n") + 1
    return out


# -- scalars ---------------------------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
# PyYAML's implicit resolvers for plain scalars (``yaml.resolver.Resolver``, which its
# CSafeLoader uses), copied in registration order so that this path never imports PyYAML (~20%
# of a small run's start-up); tests/unit/test_fastyaml.py pins this table, and the bool values
# below, to PyYAML's own.
_IMPLICIT: Final = (
    (_BOOL, r'''^(?:yes|Yes|YES|no|No|NO
                    |true|True|TRUE|false|False|FALSE
                    |on|On|ON|off|Off|OFF)$''', re.X, "yYnNtTfFoO"),
    (_FLOAT, r'''^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
                    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
                    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$''', re.X, "-+0123456789."),
    (_INT, r'''^(?:[-+]?0b[0-1_]+
                    |[-+]?0[0-7_]+
                    |[-+]?(?:0|[1-9][0-9_]*)
                    |[-+]?0x[0-9a-fA-F_]+
                    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$''', re.X, "-+0123456789"),
    ("tag:yaml.org,2002:merge", r'^(?:<<)$', 0, "<"),
    (_NULL, r'''^(?: ~
                    |null|Null|NULL
                    | )$''', re.X, ("~", "n", "N", "")),
    ("tag:yaml.org,2002:timestamp", r'''^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
                    |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
                     (?:[Tt]|[ \t]+)[0-9][0-9]?
                     :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
                     (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$''', re.X, "0123456789"),
    ("tag:yaml.org,2002:value", r'^(?:=)$', 0, "="),
    ("tag:yaml.org,2002:yaml", r'^(?:!|&|\*)$', 0, "!&*"),
)
IMPLICIT_RESOLVERS: Final[dict[str, list[tuple[str, re.Pattern[str]]]]] = {}
for _tag, _pattern, _flags, _firsts in _IMPLICIT:
    for _first in _firsts:
        IMPLICIT_RESOLVERS.setdefault(_first, []).append((_tag, re.compile(_pattern, _flags)))
del _tag, _pattern, _flags, _firsts, _first


def _resolve(text: str) -> str:
    """PyYAML's ``Resolver().resolve(ScalarNode, text, (True, False))``."""
    for tag, regexp in IMPLICIT_RESOLVERS.get(text[:1], ()):
        if regexp.match(text):
            return tag
    return _STR


# PyYAML resolves a plain scalar only with the resolvers registered for its first character.
# For letters those are bool and null, which match exactly these words (tests pin both facts).
_WORDS: Final = frozenset(
    w for base in ("yes", "no", "true", "false", "on", "off", "null")
    for w in (base, base.capitalize(), base.upper()))
_RESOLVED_FIRST: Final = frozenset(c for c in IMPLICIT_RESOLVERS if not c.isalpha())
_SIMPLE_FLOAT: Final = re.compile(r"-?[0-9]+\.[0-9]+")
_BOOL_VALUES: Final = {"yes": True, "no": False, "true": True, "false": False, "on": True,
                       "off": False}  # yaml.constructor.SafeConstructor.bool_values


def plain_tag(text: str) -> str:
    """The tag PyYAML gives the plain scalar ``text`` (exact; fast for common text)."""
    if text and text[0] not in _RESOLVED_FIRST and text not in _WORDS:
        return _STR
    return _resolve(text)


_KEY = r"[A-Za-z_][A-Za-z0-9_./-]*+"
# One-line plain scalar: a first character that is no indicator, then no ': ', ' #', trailing
# ':' or space, and no whitespace but single-line spaces.
_PLAIN = r"(?:[A-Za-z0-9_/$.~+=<(^\\]|-(?=\S))(?:[^\s:]++|:(?=\S)|[ ]++(?=[^\s#]))*+"
_VALUE = rf"""(?:{_PLAIN}|'(?:[^'\n\t]++|'')*+'|"[^"\\\n\t]*+"|\{{\}}|\[\])"""
_COMMENT = r"[ ]*+(?:(?<=[ ])\#.*)?"  # trailing spaces, then maybe a comment after a space
_KEY_OK: Final = re.compile(_KEY)
_PLAIN_OK: Final = re.compile(_PLAIN)
_AFTER_KEY: Final = re.compile(rf"(?:[ ]++({_VALUE}))?{_COMMENT}", re.X)  # after `key:`
_AFTER_DASH: Final = re.compile(rf"[ ]*+({_VALUE}){_COMMENT}", re.X)  # after `- `


def _scalar_ok(value: object, text: str) -> bool:
    """Whether ``value`` (from yaml_rs) is what PyYAML builds from the scalar ``text``."""
    first = text[0]
    if first == "'":
        return type(value) is str and text[1:-1].replace("''", "'") == value
    if first == '"':
        return type(value) is str and text[1:-1] == value  # no escapes in the grammar
    if text in ("{}", "[]"):
        return False  # containers are matched by the walk
    tag = plain_tag(text)
    if type(value) is str:
        return tag == _STR and value == text
    if value is None:
        return tag == _NULL
    if type(value) is bool:
        return tag == _BOOL and _BOOL_VALUES.get(text.lower()) is value
    if type(value) is int:
        return tag == _INT and str(value) == text  # canonical decimal only
    if type(value) is float:
        return (tag == _FLOAT and _SIMPLE_FLOAT.fullmatch(text) is not None
                and repr(float(text)) == repr(value))
    return False


class Checks:
    """Memoised text checks (keys and plain values repeat a lot in manifests)."""

    __slots__ = ("keys", "plain")

    def __init__(self) -> None:
        self.keys: set[object] = set()  # keys known good
        self.plain: set[str] = set()  # plain values known good

    def key(self, k: object) -> bool:
        """``k`` is a plain key that PyYAML reads as this very string."""
        if type(k) is str and _KEY_OK.fullmatch(k) is not None and k not in _WORDS:
            self.keys.add(k)
            return True
        return False

    def plain_str(self, v: str) -> bool:
        """``v`` written plain on one line is read by PyYAML as this very string."""
        if _PLAIN_OK.fullmatch(v) is not None and plain_tag(v) == _STR:
            self.plain.add(v)
            return True
        return False


# -- the walk --------------------------------------------------------------------------------


class _Mismatch(Exception):
    pass


_new_dict = dict.__new__
_new_list = list.__new__


def _blank(line: str) -> bool:
    rest = line.lstrip(" ")
    return not rest or rest[0] == "#"


def _empty_map(line: int) -> MarkedDict:
    out = _new_dict(MarkedDict)
    out.line = line
    out.key_lines = {}
    return out


def _empty_seq(line: int) -> MarkedList:
    out = _new_list(MarkedList)
    out.line = line
    out.item_lines = []
    return out


def _never(*args: Any) -> Any:  # pragma: no cover - never called
    raise AssertionError


_unbound: Callable[..., Any] = _never  # rebinds convert's nested functions, freeing them


def convert(data: Any, lines: list[str], base: int,
            checks: Checks) -> tuple[MarkedDict | MarkedList, int] | None:
    """``data`` rebuilt as the marked builder builds it from ``lines`` (the document's text,
    whose first line is file line ``base + 1``), with the number of nodes the builder counts;
    None when data and text do not agree exactly."""
    tally = 1  # nodes: the root, then 2 per key (key and value) and 1 per item
    good_keys = checks.keys
    good_plain = checks.plain

    def slow(v: Any, r: int, prefix: str, after: re.Pattern[str], skip: bool,
             in_line: bool) -> tuple[int, bool]:
        """Find the line of the entry whose text starts with ``prefix`` (``key:`` or ``- ``):
        line ``r``, or a later one past blank and comment lines when ``skip``. Returns it and
        whether ``v`` is an inline empty ``{}``/``[]``. ``in_line``: a non-empty container
        value starts on this line (a sequence item) rather than on the next ones (a key)."""
        tv = type(v)
        nested = (tv is dict or tv is list) and bool(v)
        while True:
            line = lines[r]
            if line.startswith(prefix):
                if nested and in_line:
                    return r, False  # its first key or item is checked on this line
                m = after.fullmatch(line, len(prefix))
                if m is None:
                    raise _Mismatch
                text = m.group(1)
                if text is None:  # `key:` alone
                    if nested or v is None:
                        return r, False
                elif text == "{}" or text == "[]":
                    if not v and tv is (dict if text == "{}" else list):
                        return r, True
                elif not nested and _scalar_ok(v, text):
                    return r, False
                raise _Mismatch
            if skip and _blank(line):
                r += 1
                continue
            raise _Mismatch

    def start(r: int, head: str | None, parent: int) -> tuple[int, int, str, str]:
        """Where a block begins: (row, column, head, indent) from the given head, or from
        the next content line, which must be deeper than the parent."""
        if head is not None:
            return r, len(head), head, " " * len(head)
        line = lines[r]
        rest = line.lstrip(" ")
        while not rest or rest[0] == "#":
            r += 1
            line = lines[r]
            rest = line.lstrip(" ")
        col = len(line) - len(rest)
        if col <= parent:
            raise _Mismatch
        return r, col, " " * col, " " * col

    def mapping(d: dict[Any, Any], r: int, head: str | None, parent: int,
                depth: int) -> tuple[MarkedDict, int]:
        nonlocal tally
        if depth >= MAX_DEPTH:
            raise _Mismatch  # the builder reports this limit
        r, col, head, pad = start(r, head, parent)
        out = _new_dict(MarkedDict)
        out.line = base + r
        kl: dict[str, int] = {}
        out.key_lines = kl
        out.update(d)
        tally += 2 * len(d)
        for k, v in d.items():
            if k not in good_keys and not checks.key(k):
                raise _Mismatch
            line = lines[r]
            tv = type(v)
            if tv is str:
                if line == f"{head}{k}: {v}" and (v in good_plain or checks.plain_str(v)):
                    kl[k] = base + r
                    r += 1
                    head = pad
                    continue
            elif tv is int:
                if line == f"{head}{k}: {v}":
                    kl[k] = base + r
                    r += 1
                    head = pad
                    continue
            elif tv is dict and v:
                if line == f"{head}{k}:":
                    kl[k] = base + r
                    out[k], r = mapping(v, r + 1, None, col, depth + 1)
                    head = pad
                    continue
            elif tv is list and v and line == f"{head}{k}:":
                kl[k] = base + r
                out[k], r = sequence(v, r + 1, None, col - 1, depth + 1)  # `- ` may align
                head = pad
                continue
            r, empty = slow(v, r, f"{head}{k}:", _AFTER_KEY, head is pad, False)
            kl[k] = base + r
            if empty:
                out[k] = _empty_map(base + r) if tv is dict else _empty_seq(base + r)
            elif tv is dict and v:
                out[k], r = mapping(v, r + 1, None, col, depth + 1)
                head = pad
                continue
            elif tv is list and v:
                out[k], r = sequence(v, r + 1, None, col - 1, depth + 1)
                head = pad
                continue
            r += 1
            head = pad
        return out, r

    def sequence(items: list[Any], r: int, head: str | None, parent: int,
                 depth: int) -> tuple[MarkedList, int]:
        nonlocal tally
        if depth >= MAX_DEPTH:
            raise _Mismatch
        r, col, head, pad = start(r, head, parent)
        out = _new_list(MarkedList)
        out.line = base + r
        il: list[int] = []
        out.item_lines = il
        add = out.append
        tally += len(items)
        dash = head + "- "
        fresh = False  # whether blank and comment lines may come before the next item
        for v in items:
            line = lines[r]
            tv = type(v)
            if tv is dict and v and line.startswith(dash):
                il.append(base + r)
                v, r = mapping(v, r, dash, col, depth + 1)
            elif ((tv is str and line == dash + v and (v in good_plain or checks.plain_str(v)))
                  or (tv is int and line == f"{dash}{v}")):
                il.append(base + r)
                r += 1
            else:
                r, empty = slow(v, r, dash, _AFTER_DASH, fresh, True)
                il.append(base + r)
                if empty:
                    v = _empty_map(base + r) if tv is dict else _empty_seq(base + r)
                    r += 1
                elif tv is dict and v:
                    v, r = mapping(v, r, dash, col, depth + 1)
                elif tv is list and v:
                    v, r = sequence(v, r, dash, col, depth + 1)
                else:
                    r += 1
            add(v)
            if not fresh:
                fresh = True
                dash = pad + "- "
        return out, r

    build: Callable[..., tuple[MarkedDict | MarkedList, int]]
    if type(data) is dict and data:
        build = mapping
    elif type(data) is list and data:
        build = sequence
    else:
        return None
    try:
        out, r = build(data, 0, None, -1, 0)
    except (_Mismatch, IndexError):
        return None
    finally:  # the nested functions refer to each other: free them now, not at the next GC
        mapping = sequence = slow = _unbound
    if any(not _blank(line) for line in lines[r:]):
        return None
    return out, tally


# -- documents -------------------------------------------------------------------------------


def load_documents(text: str, name: str) -> list[Document] | None:
    """The documents of a YAML file exactly as ``parse._parse_yaml_reference`` returns them when
    it reports nothing; None when the file must go through the reference (it reports something,
    or holds something this path does not handle).

    Main thread only: yaml-rs 0.1.6 crashed the process (SIGSEGV inside ``loads``) when a
    second thread used it after another thread had run the agent's compile step; the agent's
    writer thread is the main thread, and anything else takes the reference path.
    """
    if yaml_rs is None or threading.current_thread() is not threading.main_thread():
        return None
    parts = split_documents(text)
    if parts is None or unsafe_chars(text) or deep_brackets(text):
        return None
    budget = max(MAX_NODES_MIN, MAX_NODES_FACTOR * (text.count("\n") + 1))
    checks = Checks()
    builder: _Builder | None = None
    docs: list[Document] = []
    index = 0  # documents as the reference numbers them
    count = 0  # nodes as the reference's builder counts them (size budget)
    for k, (part, first) in enumerate(parts):
        lines = part.split("\n")
        longest = max(map(len, lines))
        if long_lead(part, longest):
            return None  # the reference's depth pre-scan looks at this file
        try:
            data = yaml_rs.loads(part)
        except Exception:
            return None  # the reference reports it
        if data is None and all(_blank(line) for line in lines):
            if k:  # an explicit empty document: one null node (text before any `---`: none)
                index += 1
                count += 1
            continue
        got = convert(data, lines, first, checks)
        if got is not None:
            index += 1
            count += got[1]
            docs.append(Document(name, index, got[0].line, got[0]))
            continue
        # this document through the reference builder, with its lines counted in the file
        import yaml

        from netfence.sources.yamlref import _Builder, _Loader

        try:
            nodes = list(yaml.compose_all(part, Loader=_Loader))
        except (yaml.YAMLError, RecursionError):
            return None
        if len(nodes) > 1:
            return None
        if not nodes:
            if k:
                index += 1
                count += 1
            continue
        index += 1
        if builder is None:
            builder = _Builder(budget)
        builder.count = count
        builder.base = first - 1
        try:
            built = builder.build(nodes[0])
        except _Budget:
            return None
        count = builder.count
        if built is not None:
            docs.append(Document(name, index, nodes[0].start_mark.line + first, built))
    if count > budget:
        return None
    return docs
