"""The fast YAML path (sources/fastyaml.py) against the reference (libyaml + marked builder).

Whatever the input, ``parse._parse_yaml`` (fast path first) must return exactly what
``parse._parse_yaml_reference`` returns: the same documents (file, index, line), the same data
(types, values, key order) with the same line for every mapping, key, sequence and item, and the
same diagnostics. Checked on every YAML file of the repository, on the benchmark generator's
output, on generated documents built from scalars on which YAML 1.1 and 1.2 disagree, and on
hand-picked edge cases. The facts the fast path relies on are pinned too.
"""

from __future__ import annotations

import math
import re
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.gen import generate
from netfence.sources import fastyaml, parse
from netfence.sources.files import TextFile
from netfence.sources.parse import MAX_DEPTH, Document, MarkedDict, MarkedList

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted(p for d in ("examples", "tests/truth", "tests/fixtures")
                for p in (ROOT / d).rglob("*") if p.suffix in (".yaml", ".yml"))


# --------------------------------------------------------------------------- comparison


def differences(a: Any, b: Any, path: str = "$") -> str | None:
    """First difference between two parsed values, lines included, or None."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, MarkedDict):
        if a.line != b.line:
            return f"{path}: line {a.line} != {b.line}"
        if list(a) != list(b):
            return f"{path}: keys {list(a)} != {list(b)}"
        if a.key_lines != b.key_lines:
            return f"{path}: key lines {a.key_lines} != {b.key_lines}"
        return next((d for k in a if (d := differences(a[k], b[k], f"{path}.{k}"))), None)
    if isinstance(a, MarkedList):
        if (a.line, a.item_lines) != (b.line, b.item_lines):
            return f"{path}: lines {a.line} {a.item_lines} != {b.line} {b.item_lines}"
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        return next((d for i, (x, y) in enumerate(zip(a, b, strict=True))
                     if (d := differences(x, y, f"{path}[{i}]"))), None)
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return None
    if a != b or repr(a) != repr(b):
        return f"{path}: {a!r} != {b!r}"
    return None


def assert_same(text: str, name: str = "in.yaml") -> tuple[list[Document], bool]:
    """Hybrid == reference on ``text``; returns the documents and whether the fast path took
    the whole file."""
    tf = TextFile(name, text, False)
    got_docs, got_diags = parse._parse_yaml(tf)
    ref_docs, ref_diags = parse._parse_yaml_reference(tf)
    assert got_diags == ref_diags, f"diagnostics differ for {text!r:.300}"
    assert [(d.file, d.index, d.line) for d in got_docs] == \
        [(d.file, d.index, d.line) for d in ref_docs], f"documents differ for {text!r:.300}"
    for g, r in zip(got_docs, ref_docs, strict=True):
        diff = differences(g.data, r.data)
        assert diff is None, f"document {g.index}: {diff}\n{text[:2000]}"
    return got_docs, fastyaml.load_documents(text, name) is not None


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_of_the_repository(path: Path) -> None:
    """Valid and bad files alike: same documents, lines and diagnostics."""
    assert_same(path.read_bytes().decode("utf-8-sig"), str(path))


def test_corpus_is_there() -> None:
    assert len(CORPUS) > 100
    assert any("bad" in p.parts for p in CORPUS)


def benchmark_text(namespaces: int) -> str:
    return yaml.safe_dump_all(generate(namespaces), sort_keys=False)


def test_benchmark_output_goes_fast_and_exact() -> None:
    text = benchmark_text(20)
    docs, fast = assert_same(text)
    assert fast and len(docs) > 300
    # every document took the fast path (none fell back to the builder)
    checks = fastyaml.Checks()
    parts = fastyaml.split_documents(text)
    assert parts is not None
    import yaml_rs
    for part, first in parts:
        data = yaml_rs.loads(part)
        assert fastyaml.convert(data, part.split("\n"), first, checks) is not None, part


def test_without_yaml_rs_the_reference_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastyaml, "yaml_rs", None)
    text = benchmark_text(2)
    assert fastyaml.load_documents(text, "x") is None
    assert_same(text)


# --------------------------------------------------------------------------- edge cases

EDGE_CASES = {
    "empty": "",
    "comment only": "# nothing\n",
    "numbering": "a: 1\n---\n# only a comment\n---\nb: 2\n---\n---\nc: 3\n",
    "leading comment then ---": "# c\n---\na: 1\n",
    "leading ---": "---\na: 1\n",
    "trailing ---": "a: 1\n---\n",
    "trailing --- no newline": "a: 1\n---",
    "null documents": "a: 1\n---\nnull\n---\n~\n---\nb: 1",
    "no newline at end": "a: 1\nb: [x]",
    "blank lines and comments": "\n\n# c\na: 1\n\n  # indented comment\nb:\n\n  c: 2 # trailing\n",
    "root list": "- a\n- b: 1\n  c: 2\n- - x\n  - y\n- {}\n- []\n",
    "indentless sequence": "a:\n- x\n- y\nb:\n  - 1\n  - 2\n",
    "quoted": "a: 'it''s'\nb: \"true\"\nc: '0755'\nd: \"\"\ne: ''\n",
    "bools and nulls": "a: true\nb: True\nc: FALSE\nd: yes\ne: off\nf: null\ng: ~\nh:\n",
    "numbers": "a: 1\nb: -1\nc: 0755\nd: 1e3\ne: 1.5\nf: 1_000\ng: 0x1F\nh: 1:30\ni: -0\n",
    "risky keys": "yes: 1\nno: 2\non: 3\nnull: 4\n1: 5\n",
    "merge key": "a: &x {b: 1}\nc:\n  <<: *x\n",
    "anchors": "a: &x foo\nb: *x\nc: [*x]\n",
    "tags": "a: !!str 1\nb: !foo bar\n",
    "block scalars": "a: |\n  line\n  b: 2\nc: >-\n  folded\n",
    "continuation": "a: foo\n  - bar\nb: 1\n",
    "multi-line quoted": "a: 'one\n  two'\nb: 2\n",
    "escapes": "a: \"\\u0041\\t\"\nb: \"x\\\\y\"\n",
    "flow": "a: [1, {b: c}]\nb: {x: y}\n",
    "explicit key": "? a\n: 1\n",
    "tabs": "a:\tb\nc: 1\n",
    "trailing spaces": "a: b   \nc:   d\n",
    "dates": "a: 2001-12-14\nb: 2001-12-14T21:59:43Z\n",
    "duplicate key": "a: 1\nb: 2\na: 3\n",
    "duplicate nested key": "x:\n  a: 1\n  a: 2\n",
    "duplicate key then merge key": "a:\n  yes: 1\n  on: 2\n<<: 3\n",
    "syntax error": "a: b: c\n",
    "bad indentation": "a:\n  b: 1\n c: 2\n",
    "unclosed quote": "a: \"x\nb: 2\n",
    "dash alone": "-\n  a: 1\n- \n",
    "wide dash": "-   a: 1\n    b: 2\n-  x\n",
    "directive": "%YAML 1.1\n---\na: 1\n",
    "document end": "a: 1\n...\n---\nb: 2\n",
    "--- with content": "--- a: 1\n",
    "--- with comment": "a: 1\n--- # c\nb: 2\n",
    "crlf": "a: 1\r\nb: 2\r\n",
    "nel": "a: 1\x85b: 2\n",
    "bom inside": "a: 1\n---\n\ufeffb: 2\n",
    "control char": "a: \x07\n",
    "non-ascii": "a: café\nb: 日本\n",
    "unicode space": "a: x\u00a0y\n",
    "special floats": "a: .inf\nb: -.Inf\nc: .NaN\n",
    "odd plain values": "a: -x\nb: --flag\nc: a#b\nd: x:y\ne: $(VAR)\nf: 10.0.0.0/8\ng: ::/0\n",
    "json style": '{"a": 1, "b": [true, null]}\n',
    "scalar root": "just text\n",
    "key with space": "a b: 1\n",
    "deep mapping over the limit": "".join(f"{'  ' * i}a:\n" for i in range(MAX_DEPTH + 2)),
    "deep mapping at the limit": "".join(f"{'  ' * i}a:\n" for i in range(MAX_DEPTH)) +
    f"{'  ' * MAX_DEPTH}a: 1\n",
    "deep sequence": "".join(f"{'  ' * i}-\n" for i in range(MAX_DEPTH + 2)),
    "long indentation": " " * 900 + "a: 1\n",
    "many brackets": "a: " + "[" * 150 + "]" * 150 + "\nb: " + "{a: " * 60 + "}" * 60 + "\n",
    "unbalanced brackets in strings": "a: '" + "[" * 250 + "'\n",
}


@pytest.mark.parametrize("text", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_edge_cases(text: str) -> None:
    assert_same(text)


@pytest.mark.parametrize(("text", "fast"), [
    ("a: 1\nb:\n  c: [x]\n", True),  # a flow document alone goes to the builder
    ("a: 1\n---\nb: yes\n", True),
    ("a: b: c\n", False),  # errors always come from the reference
    ("a: 1\na: 2\n", False),
    ("a: 1\r\n", False),
])
def test_which_files_stay_on_the_fast_path(text: str, fast: bool) -> None:
    assert assert_same(text)[1] is fast


def test_duplicate_key_in_a_document_the_builder_cannot_rebuild() -> None:
    """`yes` and `on` are one key ('true') for PyYAML; the lenient rebuild that names the
    object then meets the merge key. The duplicate is reported, naming no object (it used to
    escape as an exception: an internal error)."""
    _, diags = parse._parse_yaml(TextFile("x", "a:\n  yes: 1\n  on: 2\n<<: 3\n", False))
    assert [(d.code, d.source.line, d.source.obj) for d in diags] == [("duplicate-key", 3, None)]


def test_alias_bomb_goes_to_the_reference() -> None:
    lines = ['  l0: &l0 "lol"']
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "apiVersion: v1\nkind: ConfigMap\ndata:\n" + "\n".join(lines) + "\n  bomb: *l8\n"
    assert fastyaml.load_documents(text, "x") is None
    _, diags = parse._parse_yaml(TextFile("x", text, False))
    assert [d.code for d in diags] == ["yaml-limit"]


# --------------------------------------------------------------------------- generated input

# Scalars on which YAML 1.1 (PyYAML) and 1.2 (yaml_rs) disagree, or that need care, and ordinary
# Kubernetes values.
RISKY = [
    "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n",
    "N", "true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL", "~", "",
    "0", "-0", "+1", "-1", "00", "0755", "08", "09", "0o17", "0b11", "0x1F", "0X1F", "1_000",
    "1e3", "1E3", "1.0e3", "1.0e+3", "1.5", "-1.5", "1.", ".5", "+.5", "3.", "1:30", "-1:30",
    "190:20:30", ".inf", "-.inf", ".Inf", ".nan", ".NaN", "inf", "nan", "Infinity", "NaN",
    "2001-12-14", "2001-12-14T21:59:43Z", "2001-12-14 21:59:43.10 -5", "2001-1-1", "<<", "=",
    "12345678901234567890", "1.7976931348623157e309", "10.0.0.1", "10.0.0.0/8", "::/0",
    "1.2.3", "a:b", "a: b", "a #b", "a#b", "foo bar", " lead", "trail ", "it's", 'say "hi"',
    "back\\slash", "tab\there", "café", "*star", "&amp", "!bang", "%pct", "@at", "`tick",
    "|", ">", "-", "- x", "-x", "--flag", "? q", ":colon", "{}", "[]", "[a]", "{a: 1}", "#hash",
    "$(VAR)", "nginx:1.27", "TCP", "UDP", "Ingress", "web", "kube-system", "8080", "443",
    "app.kubernetes.io/name", "networking.k8s.io/v1", "0.5", "100Mi", "500m", "v1",
]
KEYS = ["a", "name", "app", "app.kubernetes.io/name", "_x", "x-y", "yes", "on", "null", "true",
        "1", "0755", "1e3", "<<", "~", "y", "a b", "-x", "x:y", "'q'", "ports", "spec"]

scalar = st.sampled_from(RISKY)


def render_scalar(draw: st.DrawFn, text: str) -> str:
    style = draw(st.sampled_from(["plain", "plain", "plain", "single", "double"]))
    if style == "single":
        return "'" + text.replace("'", "''") + "'"
    if style == "double":
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'
    return text


@st.composite
def node(draw: st.DrawFn, depth: int = 0) -> Any:
    kind = draw(st.sampled_from(["scalar", "scalar", "map", "seq"] if depth < 4 else ["scalar"]))
    if kind == "map":
        return {k: draw(node(depth + 1)) for k in draw(st.lists(st.sampled_from(KEYS),
                                                                 min_size=1, max_size=4))}
    if kind == "seq":
        return draw(st.lists(node(depth + 1), min_size=1, max_size=3))
    return ("scalar", draw(scalar))


def decoration(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["", "", "", "", " # c", "  ", "\t", " #"]))


def gap(draw: st.DrawFn) -> list[str]:
    return draw(st.sampled_from([[], [], [], [""], ["# comment"], ["   # indented"], ["  "]]))


def render(draw: st.DrawFn, value: Any, indent: int, step: int,
           lead: bool = True) -> list[str]:
    """Block-style lines for a mapping or sequence at ``indent`` (``lead``: blank and comment
    lines may come before the first entry)."""
    out: list[str] = []
    pad = " " * indent
    if isinstance(value, dict):
        for i, (k, v) in enumerate(value.items()):
            out += gap(draw) if i or lead else []
            if isinstance(v, tuple):
                out.append(f"{pad}{k}: {render_scalar(draw, v[1])}{decoration(draw)}")
            elif isinstance(v, list) and draw(st.booleans()):  # indentless sequence
                out.append(f"{pad}{k}:{decoration(draw)}")
                out += render(draw, v, indent, step)
            else:
                out.append(f"{pad}{k}:{decoration(draw)}")
                out += render(draw, v, indent + step, step)
        return out
    for i, v in enumerate(value):
        out += gap(draw) if i or lead else []
        if isinstance(v, tuple):
            out.append(f"{pad}- {render_scalar(draw, v[1])}{decoration(draw)}")
        else:
            inner = render(draw, v, indent + 2, step, lead=False)
            first = inner[0] if inner else ""
            out.append(f"{pad}- {first[indent + 2:]}")
            out += inner[1:]
    return out


@st.composite
def yaml_text(draw: st.DrawFn) -> str:
    docs = []
    for _ in range(draw(st.integers(1, 3))):
        root = draw(node())
        if isinstance(root, tuple):
            root = {"a": root}
        lines = render(draw, root, draw(st.sampled_from([0, 0, 1])), draw(st.sampled_from([2, 4])))
        docs.append("\n".join(lines))
    sep = draw(st.sampled_from(["\n---\n", "\n---\n---\n", "\n---\n# c\n---\n"]))
    return draw(st.sampled_from(["", "---\n", "# top\n---\n"])) + sep.join(docs) + \
        draw(st.sampled_from(["\n", "", "\n---\n"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_text())
def test_generated_documents(text: str) -> None:
    assert_same(text)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS[:8]), st.sampled_from(RISKY), min_size=1))
def test_safe_dump_of_risky_values(data: dict[str, str]) -> None:
    """How a tool writes these values (quoting what needs it) goes fast and exact."""
    assert_same(yaml.safe_dump(data))


# --------------------------------------------------------------------------- pinned facts


def test_letter_initial_scalars_resolve_only_to_the_listed_words() -> None:
    """PyYAML resolves a letter-initial plain scalar to bool or null, and only the words in
    ``_WORDS``; fastyaml.plain_tag relies on it."""
    table = fastyaml.IMPLICIT_RESOLVERS
    words: set[str] = set()
    for first, resolvers in table.items():
        if first is None or not first.isalpha():
            continue
        for tag, regexp in resolvers:
            assert tag in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"), (first, tag)
            words.update(w for w in re.findall(r"[A-Za-z]+", regexp.pattern) if regexp.match(w))
    assert words == set(fastyaml._WORDS)


@given(st.text(alphabet=string.ascii_letters + string.digits + "-+._:~<=!&* ", max_size=12)
       | st.sampled_from(RISKY))
def test_plain_tag_is_the_resolvers(text: str) -> None:
    want = yaml.resolver.Resolver().resolve(yaml.ScalarNode, text, (True, False))
    assert fastyaml.plain_tag(text) == want


def test_resolver_table_is_pyyamls() -> None:
    """fastyaml's copy of PyYAML's implicit resolvers (so that the fast path needs no PyYAML)
    is PyYAML's table: the same first characters, tags, patterns and flags, in the same order;
    no wildcard resolvers; the same bool words."""
    def table(t: dict[Any, list[tuple[str, re.Pattern[str]]]]) -> dict[Any, list[Any]]:
        return {k: [(tag, rx.pattern, rx.flags) for tag, rx in v] for k, v in t.items()}

    theirs = yaml.resolver.Resolver.yaml_implicit_resolvers
    assert table(fastyaml.IMPLICIT_RESOLVERS) == table(theirs)
    assert list(fastyaml.IMPLICIT_RESOLVERS) == list(theirs)
    assert None not in theirs
    assert yaml.constructor.SafeConstructor.bool_values == fastyaml._BOOL_VALUES
    assert not yaml.resolver.Resolver.yaml_path_resolvers


def test_fast_path_imports_no_pyyaml() -> None:
    """Loading manifests the fast path handles imports neither PyYAML nor the reference path
    (start-up time of `netfence map`)."""
    code = ("import sys; from netfence.sources.parse import parse_file; "
            "from netfence.sources.files import TextFile; "
            "docs, diags = parse_file(TextFile('x', 'a: 1\\nb:\\n- x\\n', False)); "
            "assert docs and not diags; "
            "bad = [m for m in sys.modules if m == 'yaml' or m.startswith(('yaml.', "
            "'netfence.sources.yamlref'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@st.composite
def runs(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(st.sampled_from([" ", "-", "[", "]", "{", "}", "\n", "a",
                                                      "#", "- "]),
                                    st.sampled_from([1, 2, 50, 199, 200, 201, 399, 400, 401,
                                                     801, 900])), max_size=8))
    return "".join(c * n for c, n in parts)


@settings(max_examples=300, deadline=None)
@given(runs())
def test_depth_checks_equal_the_reference_prescan(text: str) -> None:
    longest = max(map(len, text.split("\n")))
    assert (fastyaml.deep_brackets(text) or fastyaml.long_lead(text, longest)) == \
        bool(parse._too_deep(text))


def split_reference(text: str) -> list[tuple[str, int]] | None:
    lines = text.split("\n")
    if any(line.startswith(("...", "%")) or (line.startswith("---") and line != "---")
           for line in lines):
        return None
    parts: list[tuple[str, int]] = []
    current: list[str] = []
    first = 1
    for number, line in enumerate(lines, 1):
        if line == "---":
            parts.append(("\n".join(current), first))
            current, first = [], number + 1
        else:
            current.append(line)
    parts.append(("\n".join(current), first))
    return parts


@given(st.lists(st.sampled_from(["---", "\n", "a: 1", "-", " ", "...", "%", "x", "#"]),
                max_size=12).map("".join))
def test_split_documents(text: str) -> None:
    assert fastyaml.split_documents(text) == split_reference(text)


@given(st.text(max_size=20))
def test_unsafe_chars(text: str) -> None:
    printable = re.compile("[\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe"
                           "\uff00-\ufffd\U00010000-\U0010ffff]*")
    assert fastyaml.unsafe_chars(text) == (printable.fullmatch(text) is None)
