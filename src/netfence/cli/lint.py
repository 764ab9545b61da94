"""``netfence lint``: the check catalogue over manifests or a cluster, for people and CI.

Exit 0 when no unsuppressed finding is at or above ``--fail-on`` (default high), 1 when one is,
2 on usage errors, 3 on bad input (never 1: INPUT.md). ``-o table|json|sarif|junit|gitlab``.
"""

from __future__ import annotations

import json
import sys

import click

import netfence
from netfence import api
from netfence.checks import (
    BY_ID,
    CHECKS,
    LEVEL_NAMES,
    Finding,
    Level,
    LintOptions,
    LintReport,
    enabled_checks,
)
from netfence.cli.common import (
    ExitCode,
    diagnostics_json,
    input_options,
    is_complete,
    load_state,
    out,
    report,
)
from netfence.model.policy import Direction, LabelSelector
from netfence.render.gitlab import codequality
from netfence.render.junit import JUnitCase, junit
from netfence.render.sarif import sarif_log
from netfence.render.table import table
from netfence.sources.selector_text import parse_selector

FORMATS = ("table", "json", "sarif", "junit", "gitlab")
DEFAULT_DENY = {"ingress": frozenset({Direction.INGRESS}),
                "egress": frozenset({Direction.EGRESS}),
                "both": frozenset({Direction.INGRESS, Direction.EGRESS}),
                "none": frozenset[Direction]()}


@click.command(short_help="Check policies for mistakes and zero-trust gaps.")
@input_options
@click.option("--fail-on", type=click.Choice(LEVEL_NAMES), default="high", show_default=True,
              help="Exit 1 when an unsuppressed finding is at or above this severity.")
@click.option("--disable", "disabled", multiple=True, metavar="ID",
              help="Do not run this check (repeatable, or comma-separated ids).")
@click.option("--default-deny", type=click.Choice(sorted(DEFAULT_DENY)), default="ingress",
              show_default=True,
              help="Directions every namespace must default-deny (NF006 ingress, NF007 egress).")
@click.option("--ingress-controller", "controllers", multiple=True, metavar="SELECTOR",
              help="Pods that may face the internet (NF009), e.g. 'app=edge-proxy'; "
                   "repeatable; replaces the built-in list.")
@click.option("--explain", "explain_id", default=None, metavar="ID",
              help="Print the documentation of one check and exit.")
@click.option("--list", "list_checks", is_flag=True, help="List the catalogue and exit.")
@click.option("-o", "--output", type=click.Choice(FORMATS), default="table", show_default=True)
def lint_cmd(filenames: tuple[str, ...], recursive: bool, cluster: bool, context: str | None,
             kubeconfig: str | None, strict: bool, quiet: bool, verbose: bool, fail_on: str,
             disabled: tuple[str, ...], default_deny: str, controllers: tuple[str, ...],
             explain_id: str | None, list_checks: bool, output: str) -> None:
    """Run the lint catalogue: selectors that match nothing, undefined ports, namespaces
    without default deny, over-exposed workloads, missing DNS egress, redundant, duplicate and
    shadowed rules, ambiguous priorities. Suppress per object with the annotations
    netfence.dev/ignore: ID[,ID] and netfence.dev/ignore-reason: WHY."""
    if explain_id is not None:
        _explain(explain_id)
        return
    if list_checks:
        rows = [[c.id, c.severity, c.name, c.summary + ("" if c.default_enabled else
                                                        " (opt-in)")] for c in CHECKS]
        out([table(["ID", "SEVERITY", "NAME", "SUMMARY"], rows)])
        return
    options = _options(disabled, default_deny, controllers)
    state = load_state(filenames, recursive, cluster, context, kubeconfig)
    analysis = api.analyze(state)
    checks = enabled_checks(options)
    # NF016 reports equal priorities as findings; keep the warning only when it is disabled
    extra = [d for d in analysis.diagnostics
             if not (d.code == "ambiguous-priority" and any(c.id == "NF016" for c in checks))]
    bad = report(state, strict, quiet, extra)
    result = api.lint(analysis, options)
    threshold = Level.parse(fail_on)
    if output == "json":
        doc = {"apiVersion": "netfence.dev/v1alpha1", "kind": "LintReport",
               "complete": is_complete(state),
               "diagnostics": diagnostics_json(state, extra),
               "failOn": fail_on, "failed": result.failed(threshold),
               "checks": [c.to_json() for c in result.checks],
               "findings": [f.to_json() for f in result.findings],
               "summary": {**result.counts(), "total": len(result.active),
                           "suppressed": len(result.suppressed)}}
        out([json.dumps(doc, indent=2, sort_keys=True), "\n"])
    elif output == "sarif":
        log = sarif_log(result.checks, result.findings, version=netfence.__version__)
        out([json.dumps(log, indent=2, sort_keys=True), "\n"])
    elif output == "gitlab":
        out([json.dumps(codequality(result.findings), indent=2, sort_keys=True), "\n"])
    elif output == "junit":
        out(junit("netfence lint", _junit_cases(result, threshold)))
    else:
        out(_table(result, threshold))
    if bad:
        sys.exit(ExitCode.INPUT)
    sys.exit(ExitCode.FOUND if result.failed(threshold) else ExitCode.OK)


def _explain(check_id: str) -> None:
    c = BY_ID.get(check_id.strip().upper())
    if c is None:
        raise click.BadParameter(f"unknown check id {check_id!r} (see netfence lint --list)",
                                 param_hint="--explain")
    lines = [f"{c.id} {c.name} (severity {c.severity}"
             f"{'' if c.default_enabled else ', opt-in'})", "", c.summary, "", c.doc]
    if c.standards:
        lines += ["", "Evidence for: " + "; ".join(c.standards)]
    lines += ["", f"Suppress on the object at fault: netfence.dev/ignore: {c.id} plus "
              "netfence.dev/ignore-reason: WHY"]
    out(line + "\n" for line in lines)


def _options(disabled: tuple[str, ...], default_deny: str,
             controllers: tuple[str, ...]) -> LintOptions:
    ids: set[str] = set()
    for item in disabled:
        for part in item.replace(" ", ",").split(","):
            if not part:
                continue
            cid = part.upper()
            if cid not in BY_ID:
                raise click.BadParameter(f"unknown check id {part!r} (see netfence lint "
                                         "--list)", param_hint="--disable")
            ids.add(cid)
    selectors: list[LabelSelector] = []
    for text in controllers:
        try:
            selectors.append(parse_selector(text))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--ingress-controller") from None
    base = LintOptions(frozenset(ids), DEFAULT_DENY[default_deny])
    if selectors:
        return LintOptions(base.disabled, base.default_deny, tuple(selectors))
    return base


def _table(result: LintReport, threshold: Level) -> list[str]:
    chunks: list[str] = []
    active = result.active
    if active:
        rows = [[f.severity, f.id, str(f.obj), f.source.location(), f.message]
                for f in active]
        chunks.append(table(["SEVERITY", "ID", "OBJECT", "LOCATION", "MESSAGE"], rows))
        chunks.append("\n")
    counts = result.counts()
    summary = ", ".join(f"{counts[name]} {name}" for name in reversed(LEVEL_NAMES)
                        if counts[name])
    verdict = "FAIL" if result.failed(threshold) else "OK"
    chunks.append(f"{len(active)} finding(s){': ' + summary if summary else ''}; "
                  f"{len(result.suppressed)} suppressed; {len(result.checks)} checks run; "
                  f"--fail-on {threshold}: {verdict}\n")
    return chunks


def _junit_cases(result: LintReport, threshold: Level) -> list[JUnitCase]:
    by_check: dict[str, list[Finding]] = {}
    for f in result.active:
        by_check.setdefault(f.id, []).append(f)
    cases: list[JUnitCase] = []
    for c in result.checks:
        found = by_check.get(c.id, [])
        if not found:
            cases.append(JUnitCase(f"netfence.lint.{c.id}", f"{c.id} {c.name}"))
            continue
        for f in found:
            text = f"{f.source.location()}: {f.obj}: {f.message}"
            name = f"{c.id} {c.name}: {f.obj}" + (f" [{f.detail}]" if f.detail else "")
            if f.level >= threshold:
                cases.append(JUnitCase(f"netfence.lint.{c.id}", name,
                                       (f"{f.severity}: {f.message}", text), f.severity,
                                       file=f.source.file, line=f.source.line))
            else:
                cases.append(JUnitCase(f"netfence.lint.{c.id}", name,
                                       output=f"{f.severity} (below --fail-on {threshold}): "
                                              f"{text}",
                                       file=f.source.file, line=f.source.line))
    return cases
