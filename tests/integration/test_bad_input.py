"""Bad, odd and hostile input, through the real CLI (INPUT.md; SEMANTICS.md sel-8, port-3, ip-2,
D-8, D-9).

Contract under test:

* every input problem exits 3 (never 1, never 4, never a signal, never a traceback);
* one diagnostic is one stderr line ``FILE:LINE: severity: KIND NAMESPACE/NAME: message``
  (``KIND NAME`` for cluster-scoped objects; no object when it cannot be identified), with the
  line number of the offending node in the file (not in the document) and the offending value
  quoted in the message;
* valid-but-suspicious input is a ``warning``: exit 0, exit 3 with ``--strict``;
* ``-o json`` on bad input still prints JSON with ``"complete": false`` and ``diagnostics``.

Fixtures live in ``tests/fixtures/bad/`` (one concern per file, the first line says which);
value families and anything touching the file system are built in ``tmp_path``. Lines are
located by searching the offending text in the input, so editing a fixture cannot silently
break a line-number assertion.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import textwrap
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bad"
BASELINE = FIXTURES / "baseline" / "shop.yaml"
CONNECTIVITY = FIXTURES / "connectivity"

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 3

# Control characters that must never reach a terminal raw: ESC (CSI/OSC), BEL, C1 CSI, CR.
TERMINAL_CONTROLS = ("\x1b", "\x07", "\x9b", "\r")
STDIN_NAMES = frozenset({"-", "<stdin>", "stdin", "(stdin)", "/dev/stdin"})

DIAG_RE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+): (?P<severity>error|warning|info): (?P<rest>.*)$"
)
DIAG_JSON_KEYS = frozenset({"severity", "code", "message", "file", "line", "object"})


# --------------------------------------------------------------------------- harness types


class Outcome(Protocol):
    """What `run_netfence` returns (tests/conftest.py `Run`)."""

    @property
    def code(self) -> int: ...

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...

    def json(self) -> Any: ...


class Netfence(Protocol):
    """The `netfence` fixture: `run_netfence` from tests/conftest.py."""

    def __call__(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None, timeout: float = 120) -> Outcome: ...


@dataclass(frozen=True)
class CappedRun:
    """Result of a run under a memory cap (same shape as conftest's `Run`)."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_capped(*args: str, timeout: float = 30, memory: int = 2 * 1024**3) -> CappedRun:
    """Run the CLI like `run_netfence`, but with an address-space cap and a short timeout.

    Only for hostile inputs (alias bombs, /dev/zero, FIFOs) where a wrong implementation
    would otherwise hang or exhaust the test machine's memory instead of failing a test.
    """
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    env["COLUMNS"] = "200"

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    try:
        proc = subprocess.run(  # the child is single-threaded when preexec_fn runs
            [sys.executable, "-m", "netfence", *args], capture_output=True, text=True,
            env=env, timeout=timeout, check=False, preexec_fn=cap_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"netfence {' '.join(args)} did not finish within {timeout}s "
                    "(hung on input it should have refused or skipped)")
    return CappedRun(proc.returncode, proc.stdout, proc.stderr)


# --------------------------------------------------------------------------- diagnostics


@dataclass(frozen=True)
class Diag:
    """One parsed stderr diagnostic line."""

    file: str
    line: int
    severity: str
    rest: str  # "KIND NAMESPACE/NAME: message" (or just "message")
    raw: str


def diagnostics(stderr: str) -> list[Diag]:
    found = []
    for raw in stderr.splitlines():
        m = DIAG_RE.match(raw)
        if m:
            found.append(Diag(m["file"], int(m["line"]), m["severity"], m["rest"], raw))
    return found


def _same_file(printed: str, expected: Path | str) -> bool:
    if expected == "-":
        return printed in STDIN_NAMES
    return Path(printed).name == Path(expected).name


def assert_sane(run: Outcome) -> None:
    """Never a traceback, never killed by a signal, never an internal error."""
    assert run.code >= 0, f"netfence was killed by signal {-run.code} (crash)\n{run.stderr}"
    assert run.code != 4, f"internal error (exit 4) on bad input:\n{run.stderr}"
    assert "Traceback" not in run.stderr, f"traceback on stderr:\n{run.stderr}"
    assert "Traceback" not in run.stdout, f"traceback on stdout:\n{run.stdout}"


def assert_input_error(run: Outcome) -> None:
    assert_sane(run)
    assert run.code == EXIT_INPUT, f"expected exit 3, got {run.code}\nstderr:\n{run.stderr}"


def expect_diag(run: Outcome, *, file: Path | str, lines: Collection[int] | None,
                severity: str | None, obj: str | None = None,
                mentions: Sequence[str] = ()) -> Diag:
    """Assert that one single stderr line carries the whole diagnostic and return it.

    `obj` is checked as the exact `KIND NAMESPACE/NAME: ` prefix of the message part;
    `mentions` (the offending values) must appear on that same line.
    """
    severities = {severity} if severity else {"error", "warning"}
    for d in diagnostics(run.stderr):
        if not _same_file(d.file, file) or d.severity not in severities:
            continue
        if lines is not None and d.line not in lines:
            continue
        if obj is not None and not d.rest.startswith(f"{obj}: "):
            continue
        if all(m in d.rest for m in mentions):
            return d
    want = f"{file}:{sorted(lines) if lines is not None else '*'}: {'|'.join(sorted(severities))}"
    if obj:
        want += f": {obj}: "
    if mentions:
        want += f" ... {' ... '.join(repr(m) for m in mentions)}"
    pytest.fail(f"no diagnostic line like {want!r}\nexit {run.code}\nstderr:\n{run.stderr}")


def errors(run: Outcome) -> list[Diag]:
    return [d for d in diagnostics(run.stderr) if d.severity == "error"]


def warnings_(run: Outcome) -> list[Diag]:
    return [d for d in diagnostics(run.stderr) if d.severity == "warning"]


def json_diagnostics(doc: Any) -> list[dict[str, Any]]:
    assert isinstance(doc, dict), f"JSON output is not an object: {doc!r:.200}"
    diags = doc.get("diagnostics")
    assert isinstance(diags, list), f"'diagnostics' missing or not a list: {diags!r:.200}"
    for d in diags:
        assert isinstance(d, dict), f"bad diagnostic {d!r}"
        missing = DIAG_JSON_KEYS - d.keys()
        assert not missing, f"diagnostic lacks {sorted(missing)}: {d!r}"
    return diags


# --------------------------------------------------------------------------- locating lines


# A needle (first line containing it), (needle, nth occurrence), or a literal line number.
Mark = str | tuple[str, int] | int


def line_of(source: Path | str, needle: str, nth: int = 1) -> int:
    """1-based number of the nth line of `source` (a file or text) containing `needle`.

    Whole-line YAML comments are skipped: fixtures describe their concern in a comment.
    """
    text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line and not line.lstrip().startswith("#"):
            seen += 1
            if seen == nth:
                return number
    raise LookupError(f"fixture bug: occurrence {nth} of {needle!r} not found")


def lines_of(source: Path | str, marks: Sequence[Mark]) -> set[int]:
    found = set()
    for mark in marks:
        if isinstance(mark, int):
            found.add(mark)
        elif isinstance(mark, str):
            found.add(line_of(source, mark))
        else:
            found.add(line_of(source, *mark))
    return found


@dataclass(frozen=True)
class Case:
    """One decision: an input and where/what the diagnostic must say.

    `at` lists the acceptable lines: the offending node first, then (where it sits on another
    line) the entry that encloses it, e.g. the list item of a port or the `policyTypes:` key.
    Lines are always counted in the file, never in the YAML document.
    """

    id: str
    source: str  # a fixture name under FIXTURES, or the input text itself (contains "\n")
    at: tuple[Mark, ...]  # acceptable lines; the first is the precise one
    obj: str | None = None  # "Kind ns/name", "Kind name" (cluster-scoped) or None
    mentions: tuple[str, ...] = ()  # offending value(s) the message must quote
    suffix: str = ".yaml"

    def materialize(self, tmp_path: Path) -> Path:
        if "\n" not in self.source:
            return FIXTURES / self.source
        path = tmp_path / f"{re.sub(r'[^a-z0-9]+', '-', self.id.lower())}{self.suffix}"
        path.write_text(self.source, encoding="utf-8")
        return path

    def lines(self, path: Path) -> set[int]:
        return lines_of(path, self.at)

    def param(self) -> Any:
        return pytest.param(self, id=self.id)


# --------------------------------------------------------------------------- input builders


NS_SHOP = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n"


def netpol(name: str, spec: str) -> str:
    """Namespace `shop` plus one NetworkPolicy `shop/<name>` with the given spec body."""
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    return NS_SHOP + (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
        f"  name: {name}\n  namespace: shop\nspec:\n{body}\n"
    )


def np_port(name: str, *fields: str) -> str:
    """A policy with one ingress rule whose only port entry has `fields` (one per line)."""
    entry = "\n".join(("  - " if i == 0 else "    ") + f for i, f in enumerate(fields))
    return netpol(name, "podSelector: {}\ningress:\n- ports:\n" + entry)


def np_ipblock(name: str, cidr: str, excepts: Sequence[str] = ()) -> str:
    spec = ("podSelector: {}\npolicyTypes:\n- Egress\negress:\n- to:\n  - ipBlock:\n"
            f"      cidr: {cidr}")
    if excepts:
        spec += "\n      except:\n" + "\n".join(f"      - {e}" for e in excepts)
    return netpol(name, spec)


def np_expression(name: str, operator: str, values: Sequence[str] | None) -> str:
    spec = f"podSelector:\n  matchExpressions:\n  - key: app\n    operator: {operator}"
    if values is not None:
        spec += "\n    values:" + "".join(f"\n    - {v}" for v in values)
    return netpol(name, spec)


def pod(*, labels: Sequence[str] = ("app: web",),
        port: Sequence[str] = ("name: http", "containerPort: 8080"),
        namespace: str = "shop", name: str = "web") -> str:
    """Namespace `shop` plus Pod `<namespace>/<name>` with one container port entry."""
    out = ["apiVersion: v1", "kind: Pod", "metadata:", f"  name: {name}",
           f"  namespace: {namespace}", "  labels:"]
    out += [f"    {label}" for label in labels]
    out += ["spec:", "  containers:", "  - name: app", "    image: nginx:1.27", "    ports:"]
    out += [("    - " if i == 0 else "      ") + f for i, f in enumerate(port)]
    return NS_SHOP + "\n".join(out) + "\n"


NP = "NetworkPolicy shop/"
POD = "Pod shop/web"


# =========================================================================== baseline


def test_baseline_valid_input_loads_cleanly(netfence: Netfence) -> None:
    """The control for every error test: namespace + pods + a valid policy exit 0, no warning."""
    run = netfence("map", "-f", str(BASELINE))
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr
    assert not errors(run) and not warnings_(run), run.stderr
    strict = netfence("map", "-f", str(BASELINE), "--strict")
    assert strict.code == EXIT_OK, f"baseline must pass --strict:\n{strict.stderr}"


def test_baseline_json_output_is_complete(netfence: Netfence) -> None:
    run = netfence("map", "-f", str(BASELINE), "-o", "json")
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr
    doc = run.json()
    assert doc.get("complete", True) is True
    assert not [d for d in doc.get("diagnostics", []) if d.get("severity") == "error"]


# =========================================================================== errors (exit 3)

FIXTURE_ERRORS: list[Case] = [
    # --- parsing (the object cannot be identified: no KIND NAMESPACE/NAME required)
    Case("yaml-syntax-bad-indentation", "malformed_indentation.yaml", ("   tier: front",)),
    Case("yaml-syntax-colon-in-plain-scalar", "malformed_mapping_value.yaml",
         ("name: web: frontend",)),
    # where the scalar starts, or the end of the stream where the parser gives up (line 18)
    Case("yaml-syntax-unclosed-quote", "malformed_unclosed_quote.yaml", ('app: "web', 18)),
    Case("json-file-with-yaml-content", "yaml_in_json.json", ("apiVersion: v1",),
         suffix=".json"),
    Case("duplicate-key-yaml", "duplicate_key.yaml", (("podSelector:", 2),),
         obj=NP + "dup-selector", mentions=("podSelector",)),
    Case("duplicate-key-json", "duplicate_key.json", (('"podSelector"', 2),),
         obj=NP + "dup-json", mentions=("podSelector",)),
    # --- wrong field types
    Case("type-podselector-string", "wrong_type_podselector.yaml", ('podSelector: "x"',),
         obj=NP + "wrong-type-selector", mentions=("x",)),
    Case("type-ports-integer", "wrong_type_ports.yaml", ("ports: 80",),
         obj=NP + "wrong-type-ports", mentions=("80",)),
    # --- unknown fields in modelled objects
    Case("unknown-field-ingres", "unknown_field_ingres.yaml", ("ingres:",),
         obj=NP + "unknown-field", mentions=("ingres",)),
    Case("unknown-field-in-peer", "unknown_field_peer.yaml", ("podselector:",),
         obj=NP + "unknown-peer-field", mentions=("podselector",)),
    Case("unknown-field-in-port", "unknown_field_port.yaml", ("prot: TCP",),
         obj=NP + "unknown-port-field", mentions=("prot",)),
    Case("unknown-field-in-container-port", "unknown_field_container_port.yaml",
         ("protcol: TCP", "- name: http"), obj=POD, mentions=("protcol",)),
    Case("unknown-field-cnp", "cnp_unknown_field.yaml", ("egres:",),
         obj="ClusterNetworkPolicy cnp-typo", mentions=("egres",)),
    Case("unknown-field-anp", "anp_unknown_field.yaml", ("priorty:",),
         obj="AdminNetworkPolicy anp-typo", mentions=("priorty",)),
    Case("unknown-field-banp", "banp_unknown_field.yaml", ("ingres:",),
         obj="BaselineAdminNetworkPolicy default", mentions=("ingres",)),
    # --- selectors
    Case("operator-has", "selector_operator_has.yaml", ("operator: Has",),
         obj=NP + "operator-has", mentions=("Has",)),
    Case("operator-in-empty-values", "selector_in_empty_values.yaml",
         ("values: []", "operator: In", "- key: app"), obj=NP + "in-empty"),
    Case("operator-notin-no-values", "selector_notin_missing_values.yaml",
         ("operator: NotIn", "- key: app"), obj=NP + "notin-no-values", mentions=("NotIn",)),
    Case("operator-exists-with-values", "selector_exists_with_values.yaml",
         ("values:", "operator: Exists", "- db", "- key: app"), obj=NP + "exists-values"),
    # --- peers (sel-8)
    Case("peer-empty", "peer_empty.yaml", ("- {}",), obj=NP + "empty-peer"),
    Case("peer-ipblock-and-podselector", "peer_ipblock_and_podselector.yaml",
         ("- ipBlock:", ("podSelector:", 2)), obj=NP + "ipblock-and-pods"),
    Case("peer-ipblock-and-namespaceselector", "peer_ipblock_and_namespaceselector.yaml",
         ("- namespaceSelector: {}", "ipBlock:"), obj=NP + "ipblock-and-ns"),
    Case("cnp-peer-empty", "cnp_empty_peer.yaml", ("- {}",),
         obj="ClusterNetworkPolicy cnp-empty-peer"),
    # --- ports (port-3 and value rules)
    Case("endport-below-port", "endport_below_port.yaml", ("endPort: 80", "port: 8080"),
         obj=NP + "endport-below", mentions=("80",)),
    Case("endport-with-named-port", "endport_named_port.yaml",
         ("endPort: 8090", "port: http"), obj=NP + "endport-named"),
    Case("endport-without-port", "endport_without_port.yaml",
         ("endPort: 8090", "- protocol: TCP"), obj=NP + "endport-alone"),
    Case("quoted-number-is-invalid-port-name", "port_quoted_number.yaml", ('port: "8443"',),
         obj=NP + "quoted-port", mentions=("8443",)),
    Case("policytypes-lowercase", "policy_types_lowercase.yaml", ("- ingress", "policyTypes:"),
         obj=NP + "lowercase-types", mentions=("ingress",)),
    Case("container-port-name-repeated", "container_port_name_repeated.yaml",
         (("- name: http", 2),), obj=POD, mentions=("http",)),
    # --- CIDRs (ip-2)
    Case("cidr-invalid", "cidr_invalid.yaml", ("cidr: 10.0.0.0/33",),
         obj=NP + "bad-cidr", mentions=("10.0.0.0/33",)),
    Case("except-outside-cidr", "cidr_except_outside.yaml", ("- 192.168.0.0/16",),
         obj=NP + "except-outside", mentions=("192.168.0.0/16",)),
    Case("except-equal-to-cidr", "cidr_except_equal.yaml", ("- 10.0.0.0/8",),
         obj=NP + "except-equal", mentions=("10.0.0.0/8",)),
    Case("except-other-family", "cidr_except_other_family.yaml", ("- fd00::/64",),
         obj=NP + "except-family", mentions=("fd00::/64",)),
    Case("cnp-networks-host-bits", "cnp_networks_host_bits.yaml", ("169.254.169.254/16",),
         obj="ClusterNetworkPolicy cnp-host-bits", mentions=("169.254.169.254/16",)),
    # --- controllers
    Case("deployment-selector-mismatch", "deployment_selector_mismatch.yaml",
         ("selector:", ("matchLabels:", 1), ("app: api", 1), ("labels:", 1), "app: api-v2"),
         obj="Deployment shop/api"),
    Case("daemonset-selector-mismatch", "daemonset_selector_mismatch.yaml",
         ("selector:", "matchExpressions:", ("- agent", 1), ("labels:", 1), "app: node-agent",
          "operator: In", "- key: app"),
         obj="DaemonSet shop/agent"),
    # --- lists: an invalid item is reported at its own line
    Case("invalid-item-in-v1-list", "list_with_bad_item.yaml", ("cidr: 10.0.0.0/33",),
         obj=NP + "listed-bad-cidr", mentions=("10.0.0.0/33",)),
]


def _value_family_errors() -> Iterator[Case]:
    """Values validated as the Kubernetes API validates them, built from small templates."""
    # wrong types
    yield Case("type-from-mapping", netpol("from-mapping", """
        podSelector: {}
        ingress:
        - from:
            podSelector: {}
        """), ("- from:", ("podSelector: {}", 2)), obj=NP + "from-mapping")
    yield Case("type-policytypes-string", netpol("types-string", """
        podSelector: {}
        policyTypes: Ingress
        """), ("policyTypes: Ingress",), obj=NP + "types-string")
    yield Case("type-matchlabels-list", netpol("labels-list", """
        podSelector:
          matchLabels: [app, db]
        """), ("matchLabels: [app, db]",), obj=NP + "labels-list")
    yield Case("type-containerport-string", pod(port=('containerPort: "8080"',)),
               ('containerPort: "8080"',), obj=POD, mentions=("8080",))
    # port numbers out of range
    for value in ("0", "70000", "-1"):
        yield Case(f"np-port-{value}", np_port("port-range", "protocol: TCP", f"port: {value}"),
                   (f"port: {value}", "- protocol: TCP"), obj=NP + "port-range",
                   mentions=(value,))
    yield Case("np-endport-70000", np_port("port-range", "port: 80", "endPort: 70000"),
               ("endPort: 70000",), obj=NP + "port-range", mentions=("70000",))
    for value in ("0", "70000"):
        yield Case(f"container-port-{value}", pod(port=(f"containerPort: {value}",)),
                   (f"containerPort: {value}",), obj=POD, mentions=(value,))
    # port names (IANA_SVC_NAME): <= 15 chars, [a-z0-9-], a letter, no leading/trailing/double '-'
    for bad in ("HTTP_Port", "abcdefghijklmnop", "--x", "123", "web-", "a--b", "Http"):
        yield Case(f"np-port-name-{bad}", np_port("port-name", "protocol: TCP", f'port: "{bad}"'),
                   (f'port: "{bad}"', "- protocol: TCP"), obj=NP + "port-name", mentions=(bad,))
        yield Case(f"container-port-name-{bad}",
                   pod(port=(f'name: "{bad}"', "containerPort: 8080")),
                   (f'name: "{bad}"',), obj=POD, mentions=(bad,))
    # protocols: exactly TCP, UDP, SCTP
    for bad in ("tcp", "ICMP", "Tcp"):
        yield Case(f"np-protocol-{bad}", np_port("proto", f"protocol: {bad}", "port: 5432"),
                   (f"protocol: {bad}",), obj=NP + "proto", mentions=(bad,))
    yield Case("container-protocol-udp", pod(port=("containerPort: 53", "protocol: udp")),
               ("protocol: udp", "- containerPort: 53"), obj=POD, mentions=("udp",))
    # policyTypes: exactly Ingress, Egress
    for bad in ("egress", "Both"):
        text = netpol("types", f"podSelector: {{}}\npolicyTypes:\n- {bad}")
        yield Case(f"policytypes-{bad}", text, (f"- {bad}", "policyTypes:"), obj=NP + "types",
                   mentions=(bad,))
    # selector operators, case-sensitive
    yield Case("operator-in-lowercase", np_expression("op-case", "in", ["db"]),
               ("operator: in",), obj=NP + "op-case", mentions=("in",))
    yield Case("operator-exists-lowercase", np_expression("op-case", "exists", None),
               ("operator: exists",), obj=NP + "op-case", mentions=("exists",))
    # label values must be strings
    for label in ("canary: true", "version: 2", "ratio: 1.5"):
        yield Case(f"label-not-string-{label.split(':')[0]}", pod(labels=("app: web", label)),
                   (label,), obj=POD, mentions=(label.split(":")[0],))
    yield Case("matchlabels-value-not-string", netpol("ml-int", """
        podSelector:
          matchLabels:
            version: 2
        """), ("version: 2",), obj=NP + "ml-int", mentions=("version",))
    # label keys: optional DNS-subdomain prefix + '/' + name (<= 63, alnum at both ends)
    long_key = "k" * 64
    for key in ("-app", "Example.com/app", "a/b/c", long_key, "my app", "/app"):
        label = f'"{key}": x'
        yield Case(f"label-key-{key[:12]}", pod(labels=("app: web", label)), (label,), obj=POD,
                   mentions=(key[:40],))
    # label values: <= 63, [A-Za-z0-9_.-], alnum at both ends, or empty
    for value in ("-web", "web app", "v" * 64, "web_"):
        label = f'tier: "{value}"'
        yield Case(f"label-value-{value[:12]}", pod(labels=("app: web", label)), (label,),
                   obj=POD, mentions=(value[:40],))
    # CIDRs
    for bad in ("300.0.0.0/8", "banana", "10.0.0.0", "fd00::/129", '""'):
        yield Case(f"cidr-invalid-{bad}", np_ipblock("bad-cidr", bad), (f"cidr: {bad}",),
                   obj=NP + "bad-cidr", mentions=(bad.strip('"'),) if bad != '""' else ())
    yield Case("except-superset-of-cidr", np_ipblock("except-super", "10.0.0.0/8", ["10.0.0.0/7"]),
               ("- 10.0.0.0/7",), obj=NP + "except-super", mentions=("10.0.0.0/7",))
    yield Case("except-invalid", np_ipblock("except-bad", "10.0.0.0/8", ["10.1.0.0/40"]),
               ("- 10.1.0.0/40",), obj=NP + "except-bad", mentions=("10.1.0.0/40",))


ERROR_CASES = [c.param() for c in FIXTURE_ERRORS] + [c.param() for c in _value_family_errors()]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_invalid_input_is_an_error_exit_3(netfence: Netfence, tmp_path: Path, case: Case) -> None:
    """D-9: invalid objects are error diagnostics with file:line (and object), exit 3."""
    path = case.materialize(tmp_path)
    run = netfence("map", "-f", str(path))
    assert_input_error(run)
    expect_diag(run, file=path, lines=case.lines(path), severity="error", obj=case.obj,
                mentions=case.mentions)


def test_json_trailing_comma_is_an_error(netfence: Netfence) -> None:
    """`.json` is parsed as JSON: the trailing comma a YAML parser would accept is an error."""
    path = FIXTURES / "trailing_comma.json"
    comma = line_of(path, '"app": "web",')
    run = netfence("map", "-f", str(path))
    assert_input_error(run)
    # the comma's line, or the next line where the JSON parser sees the closing brace
    expect_diag(run, file=path, lines={comma, comma + 1}, severity="error")


def test_python_tags_are_never_constructed(netfence: Netfence, tmp_path: Path) -> None:
    """Safe loader only: the code behind a python/object tag never runs, and the tagged value
    (in a modelled field, so it cannot be ignored) is an error at its line."""
    marker = tmp_path / "pwned"
    text = netpol("tagged", f"""
        podSelector: !!python/object/apply:os.system ["touch {marker}"]
        policyTypes:
        - Ingress
        """)
    path = tmp_path / "tagged.yaml"
    path.write_text(text)
    run = netfence("map", "-f", str(path))
    assert not marker.exists(), "a YAML tag executed code: the loader is not the safe loader"
    assert_input_error(run)
    expect_diag(run, file=path, lines={line_of(text, "!!python")}, severity="error")
    assert "os.system" not in run.stdout


# =========================================================================== warnings (0 / 3)

FIXTURE_WARNINGS: list[Case] = [
    Case("cidr-leading-zero-octet", "cidr_leading_zero.yaml", ("cidr: 010.0.0.0/8",),
         obj=NP + "leading-zero", mentions=("010.0.0.0/8",)),
    Case("cidr-host-bits-set", "cidr_host_bits.yaml", ("cidr: 10.0.0.1/8",),
         obj=NP + "host-bits", mentions=("10.0.0.1/8",)),
    Case("same-port-name-in-two-containers", "container_port_name_two_containers.yaml",
         (("- name: metrics", 2), ("- name: metrics", 1)), obj=POD, mentions=("metrics",)),
    Case("cnp-peer-only-unknown-field", "cnp_peer_only_unknown_field.yaml",
         ("- serviceAccounts:",), obj="ClusterNetworkPolicy cnp-future-peer",
         mentions=("serviceAccounts",)),
    Case("anp-peer-only-unknown-field", "anp_peer_only_unknown_field.yaml",
         ("- fqdnGroups:",), obj="AdminNetworkPolicy anp-future-peer",
         mentions=("fqdnGroups",)),
    # the object is re-homed to `default`: accept either rendering of its name
    Case("object-without-namespace", "missing_namespace.yaml",
         (("apiVersion: v1", 2), "kind: Pod", ("metadata:", 2), ("name: web", 1)),
         mentions=("web", "default")),
    Case("namespace-referenced-not-declared", "undeclared_namespace.yaml",
         ("apiVersion: v1", "kind: Pod", "metadata:", "name: web", "namespace: ghost"),
         mentions=("ghost",)),
    Case("ipv6-host-bits-set", np_ipblock("v6-host-bits", "fd00::1/64"), ("cidr: fd00::1/64",),
         obj=NP + "v6-host-bits", mentions=("fd00::1/64",)),
    Case("except-leading-zero-octet",
         np_ipblock("except-zero", "10.0.0.0/8", ["010.1.0.0/16"]), ("- 010.1.0.0/16",),
         obj=NP + "except-zero", mentions=("010.1.0.0/16",)),
]


@pytest.mark.parametrize("case", [c.param() for c in FIXTURE_WARNINGS])
def test_suspicious_input_is_a_warning_and_fails_only_with_strict(
        netfence: Netfence, tmp_path: Path, case: Case) -> None:
    path = case.materialize(tmp_path)
    run = netfence("map", "-f", str(path))
    assert_sane(run)
    assert run.code == EXIT_OK, f"a warning must not fail without --strict:\n{run.stderr}"
    assert not errors(run), run.stderr
    lines = case.lines(path)
    expect_diag(run, file=path, lines=lines, severity="warning", obj=case.obj,
                mentions=case.mentions)
    strict = netfence("map", "-f", str(path), "--strict")
    assert_input_error(strict)
    expect_diag(strict, file=path, lines=lines, severity=None, obj=case.obj,
                mentions=case.mentions)


def _accepted_values() -> Iterator[Case]:
    """Boundary values the API accepts: validation must not be stricter than Kubernetes."""
    yield Case("port-name-15-chars", pod(port=("name: metrics-scraper", "containerPort: 9090"))
               + "---\n" + np_port("named", "protocol: TCP", "port: metrics-scraper")
               .removeprefix(NS_SHOP), ())
    yield Case("label-key-prefixed-and-empty-value",
               pod(labels=("app.kubernetes.io/name: web", 'tier: ""', f"long: {'v' * 63}")), ())
    yield Case("sctp-and-endport-equal-port",
               np_port("sctp", "protocol: SCTP", "port: 3868", "endPort: 3868"), ())
    yield Case("ipv6-cidr-with-except",
               np_ipblock("v6", "2001:db8::/32", ["2001:db8:1::/48"]), ())


@pytest.mark.parametrize("case", [c.param() for c in _accepted_values()])
def test_valid_boundary_values_are_accepted(netfence: Netfence, tmp_path: Path,
                                            case: Case) -> None:
    path = case.materialize(tmp_path)
    run = netfence("map", "-f", str(path), "--strict")
    assert_sane(run)
    assert run.code == EXIT_OK, f"valid input rejected:\n{run.stderr}"


# =========================================================================== unmodelled kinds

UNMODELLED = [
    pytest.param("unmodelled_calico_networkpolicy.yaml", "NetworkPolicy", "calico-allow-web",
                 id="calico-networkpolicy"),
    pytest.param("unmodelled_cilium_networkpolicy.yaml", "CiliumNetworkPolicy",
                 "cilium-allow-web", id="cilium-networkpolicy"),
    pytest.param("unmodelled_antrea_clusternetworkpolicy.yaml", "ClusterNetworkPolicy",
                 "antrea-isolate", id="antrea-clusternetworkpolicy"),
    pytest.param("unmodelled_istio_authorizationpolicy.yaml", "AuthorizationPolicy",
                 "istio-deny-all", id="istio-authorizationpolicy"),
    pytest.param("unmodelled_unknown_crd.yaml", "FirewallPolicy", "mystery-rule",
                 id="unknown-policy-crd"),
    pytest.param("unmodelled_extensions_v1beta1.yaml", "NetworkPolicy", "legacy-deny",
                 id="extensions-v1beta1-networkpolicy"),
]


def _header_lines(path: Path, name: str) -> set[int]:
    """Lines from the start of the document defining metadata.name `name` up to that name."""
    lines = path.read_text(encoding="utf-8").splitlines()
    end = line_of(path, f"name: {name}")
    start = end
    while start > 1:
        previous = lines[start - 2].strip()
        if previous in {"---", ""} or previous.startswith("#"):
            break
        start -= 1
    return set(range(start, end + 1))


def _unmodelled_listing(doc: Any) -> Iterator[Any]:
    """Values under any key mentioning 'unmodel(l)ed', outside the diagnostics list."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "diagnostics":
                continue
            if re.search(r"unmodel+ed", str(key), re.IGNORECASE):
                yield value
            yield from _unmodelled_listing(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from _unmodelled_listing(item)


@pytest.mark.parametrize(("fixture", "kind", "name"), UNMODELLED)
def test_unmodelled_policy_kinds_warn_and_are_listed(netfence: Netfence, fixture: str,
                                                     kind: str, name: str) -> None:
    """D-8: dispatch on group/version/kind; unmodelled kinds warn (file:line:kind), exit 0
    (3 with --strict), never parsed as the Kubernetes kind they share a name with, and are
    listed as unmodelled in every output, JSON included."""
    path = FIXTURES / fixture
    run = netfence("map", "-f", str(path))
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr
    assert not errors(run), f"unmodelled kind parsed as a modelled one?\n{run.stderr}"
    expect_diag(run, file=path, lines=_header_lines(path, name), severity="warning",
                mentions=(kind, name))

    as_json = netfence("map", "-f", str(path), "-o", "json")
    assert as_json.code == EXIT_OK, as_json.stderr
    listing = json.dumps(list(_unmodelled_listing(as_json.json())))
    assert name in listing, f"JSON must list {name} as unmodelled, got {listing:.300}"

    strict = netfence("map", "-f", str(path), "--strict")
    assert_input_error(strict)


def test_same_name_in_different_api_groups_is_not_a_duplicate(netfence: Netfence) -> None:
    path = FIXTURES / "calico_and_k8s_same_name.yaml"
    run = netfence("map", "-f", str(path))
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr
    assert not errors(run), run.stderr
    calico = range(line_of(path, "projectcalico.org"), line_of(path, "name: allow-web", 2) + 1)
    expect_diag(run, file=path, lines=set(calico), severity="warning", mentions=("allow-web",))


def test_cluster_scoped_policy_needs_no_namespace(netfence: Netfence) -> None:
    """The 'no metadata.namespace' warning is for namespaced kinds only."""
    run = netfence("map", "-f", str(FIXTURES / "cnp_valid.yaml"), "--strict")
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr
    assert not warnings_(run), run.stderr


def test_builtin_kinds_without_network_effect_are_only_counted(netfence: Netfence) -> None:
    """ConfigMap, Secret, ServiceAccount, Role: one info summary, no warning, --strict passes."""
    path = FIXTURES / "not_analysed_kinds.yaml"
    run = netfence("map", "-f", str(path), "--strict")
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr
    assert not warnings_(run) and not errors(run), run.stderr
    summary = [line for line in run.stderr.splitlines()
               if re.search(r"\b12 objects of 4 kinds not analy[sz]ed\b", line)]
    assert len(summary) == 1, f"expected one 'not analysed' summary line:\n{run.stderr}"
    assert "info" in summary[0].lower()
    for count in ("ConfigMap x7", "Secret x2", "ServiceAccount x2", "Role x1"):
        assert count in summary[0], f"{count!r} missing from {summary[0]!r}"


# =========================================================================== duplicates


def test_duplicate_object_in_one_file(netfence: Netfence) -> None:
    path = FIXTURES / "duplicate_objects_same_file.yaml"
    run = netfence("map", "-f", str(path))
    assert_input_error(run)
    second = set(range(line_of(path, "apiVersion: v1", 3), line_of(path, "name: web", 2) + 1))
    d = expect_diag(run, file=path, lines=second, severity="error", obj=POD)
    first = set(range(line_of(path, "apiVersion: v1", 2), line_of(path, "name: web", 1) + 1))
    cited = {int(n) for n in re.findall(rf"{re.escape(path.name)}:(\d+)", d.rest)}
    assert cited & first, f"message must cite the first occurrence as FILE:LINE: {d.raw!r}"


def test_duplicate_object_across_files_blames_the_lexically_later_file(
        netfence: Netfence, tmp_path: Path) -> None:
    """Files are read in lexical path order ("10-..." before "9-..."), not in creation or
    natural order; the error is at the second occurrence and names the first file."""
    (tmp_path / "0-namespace.yaml").write_text(NS_SHOP.removesuffix("---\n"))
    web = pod().removeprefix(NS_SHOP)
    (tmp_path / "9-web.yaml").write_text(web)
    (tmp_path / "10-web.yaml").write_text(web)
    run = netfence("map", "-f", str(tmp_path))
    assert_input_error(run)
    later = tmp_path / "9-web.yaml"
    d = expect_diag(run, file=later, lines=set(range(1, line_of(later, "name: web") + 1)),
                    severity="error", obj=POD)
    assert "10-web.yaml" in d.rest, f"must name the first file: {d.raw!r}"
    assert not [e for e in errors(run) if _same_file(e.file, tmp_path / "10-web.yaml")]


# =========================================================================== JSON output


def _analysis(doc: Any) -> Any:
    assert isinstance(doc, dict)
    return {k: v for k, v in doc.items() if k not in {"complete", "diagnostics"}}


BROKEN_POLICY = textwrap.dedent("""\
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata:
      name: broken
      namespace: shop
    spec:
      podSelector: {}
      policyTypes:
      - Egress
      egress:
      - to:
        - ipBlock:
            cidr: 10.0.0.0/33
    """)


def test_json_on_bad_input_is_incomplete_and_good_objects_still_count(
        netfence: Netfence, tmp_path: Path) -> None:
    """-o json on bad input: valid JSON, complete=false, diagnostics with all keys; the bad
    object is excluded and everything else is analysed exactly as without it."""
    good = BASELINE.read_text(encoding="utf-8")
    target = tmp_path / "shop.yaml"

    target.write_text(good.rsplit("\n---\n", 1)[0] + "\n")  # no policy at all
    without_policy = netfence("map", "-f", str(target), "-o", "json")
    target.write_text(good)
    good_only = netfence("map", "-f", str(target), "-o", "json")
    target.write_text(good + BROKEN_POLICY)
    mixed = netfence("map", "-f", str(target), "-o", "json")

    for run in (without_policy, good_only):
        assert run.code == EXIT_OK, run.stderr
    assert_input_error(mixed)
    doc = mixed.json()
    assert doc.get("complete") is False
    errs = [d for d in json_diagnostics(doc) if d["severity"] == "error"]
    assert any(Path(str(d["file"])).name == target.name
               and d["line"] == line_of(target, "cidr: 10.0.0.0/33")
               and "broken" in json.dumps(d["object"])
               and "10.0.0.0/33" in d["message"] and d["code"] for d in errs), errs
    # the invalid policy is excluded, the valid one still has its effect
    assert _analysis(doc) == _analysis(good_only.json())
    assert _analysis(good_only.json()) != _analysis(without_policy.json()), \
        "fixture check: db-allow-web must change the map"
    # the stderr line is still printed alongside the JSON
    expect_diag(mixed, file=target, lines={line_of(target, "cidr: 10.0.0.0/33")},
                severity="error", obj=NP + "broken")


def test_json_on_unparseable_file_is_still_json(netfence: Netfence) -> None:
    path = FIXTURES / "malformed_indentation.yaml"
    run = netfence("map", "-f", str(path), "-o", "json")
    assert_input_error(run)
    doc = run.json()
    assert doc.get("complete") is False
    assert any(d["severity"] == "error" and d["line"] == line_of(path, "   tier: front")
               for d in json_diagnostics(doc)), doc


# =========================================================================== documents & lists


def test_empty_and_comment_only_documents_are_skipped_silently(netfence: Netfence) -> None:
    run = netfence("map", "-f", str(FIXTURES / "empty_documents_between.yaml"), "--strict")
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr
    assert not warnings_(run) and not errors(run), run.stderr


@pytest.mark.parametrize("fixture", ["list_v1.yaml", "list_v1.json", "list_typed.yaml"])
def test_kubectl_lists_are_accepted(netfence: Netfence, fixture: str) -> None:
    run = netfence("map", "-f", str(FIXTURES / fixture), "--strict")
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr


def test_stdin_is_read_with_dash(netfence: Netfence) -> None:
    run = netfence("map", "-f", "-", "--strict", stdin=BASELINE.read_text(encoding="utf-8"))
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr


def test_stdin_errors_carry_a_line(netfence: Netfence) -> None:
    text = (FIXTURES / "cidr_invalid.yaml").read_text(encoding="utf-8")
    run = netfence("map", "-f", "-", stdin=text)
    assert_input_error(run)
    expect_diag(run, file="-", lines={line_of(text, "cidr: 10.0.0.0/33")}, severity="error",
                obj=NP + "bad-cidr", mentions=("10.0.0.0/33",))


# =========================================================================== no objects at all


def test_nonexistent_path(netfence: Netfence, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    run = netfence("map", "-f", str(missing))
    assert_input_error(run)
    assert "missing.yaml" in run.stderr
    assert len(run.stderr.strip().splitlines()) <= 3, run.stderr


def test_empty_directory(netfence: Netfence, tmp_path: Path) -> None:
    empty = tmp_path / "manifests"
    empty.mkdir()
    run = netfence("map", "-f", str(empty))
    assert_input_error(run)
    assert "manifests" in run.stderr


def test_directory_without_yaml_or_json(netfence: Netfence, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# not a manifest\n")
    (tmp_path / "notes.txt").write_text("apiVersion: v1\n")
    run = netfence("map", "-f", str(tmp_path))
    assert_input_error(run)


def test_file_with_only_comments_and_empty_documents(netfence: Netfence) -> None:
    path = FIXTURES / "only_comments.yaml"
    run = netfence("map", "-f", str(path))
    assert_input_error(run)
    assert path.name in run.stderr


def test_zero_byte_file(netfence: Netfence, tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    run = netfence("map", "-f", str(path))
    assert_input_error(run)
    assert "empty.yaml" in run.stderr


# =========================================================================== file system


def _ns_file(directory: Path) -> None:
    (directory / "namespace.yaml").write_text(NS_SHOP.removesuffix("---\n"))


def _fs_warning(run: Outcome, name: str) -> None:
    hits = [line for line in run.stderr.splitlines() if name in line and "warning" in line]
    assert hits, f"expected a one-line warning naming {name}:\n{run.stderr}"


def test_fifo_is_skipped_with_a_warning_never_opened(tmp_path: Path) -> None:
    _ns_file(tmp_path)
    os.mkfifo(tmp_path / "pipe.yaml")
    run = run_capped("map", "-f", str(tmp_path), timeout=30)
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr
    _fs_warning(run, "pipe.yaml")
    assert run_capped("map", "-f", str(tmp_path), "--strict", timeout=30).code == EXIT_INPUT


def test_device_is_skipped_with_a_warning_never_opened(tmp_path: Path) -> None:
    _ns_file(tmp_path)
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    run = run_capped("map", "-f", str(tmp_path), timeout=30)
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr
    _fs_warning(run, "zero.yaml")


def test_directory_symlink_cycle_warns_and_reads_each_dir_once(netfence: Netfence,
                                                                tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    sub = root / "apps"
    sub.mkdir(parents=True)
    _ns_file(root)
    (sub / "web.yaml").write_text(pod().removeprefix(NS_SHOP))
    (sub / "loop").symlink_to("..", target_is_directory=True)
    run = netfence("map", "-R", "-f", str(root), timeout=30)
    assert_sane(run)
    # read twice, web.yaml would be a duplicate object (an error)
    assert run.code == EXIT_OK, run.stderr
    assert not errors(run), run.stderr
    _fs_warning(run, "loop")
    assert netfence("map", "-R", "-f", str(root), "--strict", timeout=30).code == EXIT_INPUT


def test_directory_reached_twice_through_a_symlink_is_read_once(netfence: Netfence,
                                                                tmp_path: Path) -> None:
    _ns_file(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "web.yaml").write_text(pod().removeprefix(NS_SHOP))
    (tmp_path / "b").symlink_to("a", target_is_directory=True)
    run = netfence("map", "-R", "-f", str(tmp_path), timeout=30)
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr
    assert not errors(run), run.stderr


def test_file_symlink_loop_is_an_error(netfence: Netfence, tmp_path: Path) -> None:
    _ns_file(tmp_path)
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    run = netfence("map", "-f", str(tmp_path), timeout=30)
    assert_input_error(run)
    hits = [line for line in run.stderr.splitlines() if "loop.yaml" in line and "error" in line]
    assert hits, run.stderr


@pytest.mark.skipif(os.geteuid() == 0,
                    reason="running as root: chmod 000 does not make a file unreadable")
def test_unreadable_file_is_an_error(netfence: Netfence, tmp_path: Path) -> None:
    _ns_file(tmp_path)
    secret = tmp_path / "secret.yaml"
    secret.write_text(pod().removeprefix(NS_SHOP))
    secret.chmod(0)
    try:
        run = netfence("map", "-f", str(tmp_path))
    finally:
        secret.chmod(0o600)
    assert_input_error(run)
    hits = [line for line in run.stderr.splitlines() if "secret.yaml" in line and "error" in line]
    assert hits, run.stderr


# =========================================================================== resource limits

DEPTH = 100_000
DEEP_HEADER = NS_SHOP + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n" \
    "  namespace: shop\ndata:\n"


@pytest.mark.parametrize(("suffix", "text", "needle"), [
    pytest.param(".yaml", DEEP_HEADER + "  x: " + "[" * DEPTH + "]" * DEPTH + "\n", "  x: [",
                 id="yaml-flow-sequence"),
    pytest.param(".yaml", DEEP_HEADER + "  x: " + "{a: " * DEPTH + "}" * DEPTH + "\n",
                 "  x: {", id="yaml-flow-mapping"),
    pytest.param(".json", '{\n  "apiVersion": "v1",\n  "kind": "ConfigMap",\n'
                 '  "metadata": {"name": "deep", "namespace": "shop"},\n'
                 '  "data": {"x": ' + "[" * DEPTH + "]" * DEPTH + "}\n}\n", '"data"',
                 id="json-array"),
])
def test_absurd_nesting_is_refused_without_crashing(netfence: Netfence, tmp_path: Path,
                                                    suffix: str, text: str, needle: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text(text)
    run = netfence("map", "-f", str(path), timeout=60)
    assert run.code == EXIT_INPUT, (
        f"exit {run.code}" + (" (killed by a signal: the parser crashed)" if run.code < 0 else "")
        + f"\n{run.stderr[-2000:]}")
    assert_sane(run)
    expect_diag(run, file=path, lines={line_of(text, needle)}, severity="error")
    assert all(len(line) < 1000 for line in run.stderr.splitlines()), "input echoed unbounded"


def billion_laughs() -> str:
    lines = ['  l0: &l0 "lol"']
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    return NS_SHOP + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\n" \
        "  namespace: shop\ndata:\n" + "\n".join(lines) + "\n  bomb: *l9\n"


def test_alias_bomb_is_refused_quickly_with_bounded_memory(tmp_path: Path) -> None:
    """Billion laughs (10**9 leaves): an error within 30 s under a 2 GiB address-space cap."""
    path = tmp_path / "lol.yaml"
    path.write_text(billion_laughs())
    run = run_capped("map", "-f", str(path), "-o", "json", timeout=30)
    assert_input_error(run)
    expect_diag(run, file=path, lines=None, severity="error")
    assert all(len(line) < 1000 for line in run.stderr.splitlines())


# =========================================================================== tests file & verbs


def test_valid_connectivity_tests_file_passes(netfence: Netfence) -> None:
    """Control for the bad tests files below (also pins the tests-file format they assume)."""
    run = netfence("test", "-f", str(BASELINE.parent), "--expect",
                   str(CONNECTIVITY / "valid.yaml"))
    assert_sane(run)
    assert run.code == EXIT_OK, f"{run.stdout}\n{run.stderr}"


@pytest.mark.parametrize(("fixture", "needle", "value"), [
    pytest.param("expect_maybe.yaml", "expect: maybe", "maybe", id="expect-maybe"),
    pytest.param("unknown_endpoint.yaml", "to: nope/nothing", "nope/nothing",
                 id="unknown-endpoint"),
    pytest.param("port_out_of_range.yaml", "port: 70000", "70000", id="port-70000"),
])
def test_bad_tests_file_exits_3_never_1(netfence: Netfence, fixture: str, needle: str,
                                        value: str) -> None:
    path = CONNECTIVITY / fixture
    run = netfence("test", "-f", str(BASELINE.parent), "--expect", str(path))
    assert run.code != EXIT_FINDINGS, "bad tests file reported as a failed expectation (exit 1)"
    assert_input_error(run)
    expect_diag(run, file=path, lines={line_of(path, needle)}, severity="error",
                mentions=(value,))


def test_test_verb_reports_bad_manifests_as_3_never_1(netfence: Netfence, tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(BASELINE.read_text(encoding="utf-8") + BROKEN_POLICY)
    run = netfence("test", "-f", str(tmp_path), "--expect", str(CONNECTIVITY / "valid.yaml"))
    assert run.code != EXIT_FINDINGS
    assert_input_error(run)


# `lint` arrives with its own issue; its bad-input and --strict cases are added then.
@pytest.mark.parametrize("verb", ["test", "map"])
def test_strict_is_a_per_verb_option(netfence: Netfence, tmp_path: Path, verb: str) -> None:
    """A warning (undeclared namespace) fails `test` and `map` only with --strict."""
    (tmp_path / "shop.yaml").write_text(BASELINE.read_text(encoding="utf-8"))
    (tmp_path / "ghost.yaml").write_text(
        (FIXTURES / "undeclared_namespace.yaml").read_text(encoding="utf-8"))
    args = ["--expect", str(CONNECTIVITY / "valid.yaml")] if verb == "test" else []
    lenient = netfence(verb, "-f", str(tmp_path), *args)
    assert_sane(lenient)
    if verb == "test":
        assert lenient.code == EXIT_OK, lenient.stderr
    else:
        assert lenient.code == EXIT_OK, lenient.stderr
    strict = netfence(verb, "-f", str(tmp_path), *args, "--strict")
    assert_input_error(strict)


# =========================================================================== output safety


def _assert_no_terminal_controls(run: Outcome) -> None:
    for stream, text in (("stdout", run.stdout), ("stderr", run.stderr)):
        for ch in TERMINAL_CONTROLS:
            assert ch not in text, f"raw {ch!r} from input reached {stream}: {text[:500]!r}"


@pytest.mark.parametrize(("fixture", "needle"), [
    pytest.param("ansi_in_name.yaml", 'name: "web', id="invalid-name"),
    pytest.param("ansi_in_label_value.yaml", 'app: "web', id="invalid-label-value"),
])
def test_ansi_escapes_in_reported_values_are_stripped(netfence: Netfence, fixture: str,
                                                      needle: str) -> None:
    path = FIXTURES / fixture
    run = netfence("map", "-f", str(path), env={"NO_COLOR": "1"})
    assert_input_error(run)
    _assert_no_terminal_controls(run)
    expect_diag(run, file=path, lines={line_of(path, needle)}, severity="error")


@pytest.mark.parametrize("output", ["table", "wide"])
def test_ansi_escapes_in_annotations_never_reach_the_terminal(netfence: Netfence,
                                                              output: str) -> None:
    run = netfence("map", "-f", str(FIXTURES / "ansi_in_annotation.yaml"), "-o", output,
                   env={"NO_COLOR": "1"})
    assert_sane(run)
    assert run.code == EXIT_OK, run.stderr
    _assert_no_terminal_controls(run)


def test_newline_in_a_value_cannot_forge_a_diagnostic_line(netfence: Netfence) -> None:
    path = FIXTURES / "newline_in_label_value.yaml"
    run = netfence("map", "-f", str(path))
    assert_input_error(run)
    expect_diag(run, file=path, lines={line_of(path, 'app: "web')}, severity="error",
                obj=POD)
    forged = [line for line in run.stderr.splitlines() if line.startswith("forged.yaml")]
    assert not forged, f"input newline echoed raw, forging a diagnostic: {forged}"


@pytest.mark.parametrize("columns", ["200", "40"])
def test_huge_values_are_cut_and_diagnostics_never_wrap(netfence: Netfence, tmp_path: Path,
                                                        columns: str) -> None:
    huge = "v" * 5000
    text = pod(labels=("app: web", f"tier: {huge}"))
    path = tmp_path / "huge.yaml"
    path.write_text(text)
    run = netfence("map", "-f", str(path), env={"COLUMNS": columns})
    assert_input_error(run)
    # file, line, severity, object and the start of the value on one single line
    d = expect_diag(run, file=path, lines={line_of(text, "tier: ")}, severity="error", obj=POD,
                    mentions=("v" * 20,))
    assert "v" * 260 not in run.stderr, "value not cut at ~200 characters"
    assert len(d.raw) < 600, f"diagnostic line too long ({len(d.raw)} chars)"


def test_nested_flow_mapping_keys_are_refused_quickly(netfence: Netfence, tmp_path: Path) -> None:
    """60 levels of mappings used as keys: their text form would double per level."""
    path = tmp_path / "keys.yaml"
    text = "{x: 1}"
    for _ in range(60):
        text = "{" + text + ": 1}"  # a mapping whose key is the previous mapping
    path.write_text(f"a: {text}\n")
    run = netfence("map", "-f", str(path), timeout=30)
    assert_input_error(run)
    assert "plain scalars" in run.stderr
