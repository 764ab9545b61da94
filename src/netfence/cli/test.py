"""``netfence test``: connectivity tests as code, for CI (exit 0 pass, 1 fail, 3 bad input)."""

from __future__ import annotations

import json
import sys

import click

from netfence import api
from netfence.cli.common import (
    ExitCode,
    diagnostics_json,
    input_error,
    input_options,
    is_complete,
    load_state,
    out,
    report,
)
from netfence.errors import InputError
from netfence.render.junit import JUnitCase, junit
from netfence.render.table import table


@click.command(short_help="Run connectivity tests (ConnectivityTest files).")
@input_options
@click.option("--expect", "expect", required=True, metavar="TESTS.yaml",
              help="ConnectivityTest file or directory of them.")
@click.option("-o", "--output", type=click.Choice(["table", "json", "junit"]), default="table",
              show_default=True)
def test_cmd(filenames: tuple[str, ...], recursive: bool, cluster: bool, context: str | None,
             kubeconfig: str | None, strict: bool, quiet: bool, verbose: bool, expect: str,
             output: str) -> None:
    """Check every case of TESTS.yaml against the manifests: for a workload endpoint every
    pod pair must meet the expectation."""
    state = load_state(filenames, recursive, cluster, context, kubeconfig)
    analysis = api.analyze(state)
    bad = report(state, strict, quiet, analysis.diagnostics)
    try:
        results, diags = api.run_tests(analysis, expect)
    except InputError as exc:
        input_error(exc)
    passed = sum(1 for r in results if r.passed)
    failed = len(results) - passed
    if output == "json":
        doc = {"apiVersion": "netfence.dev/v1alpha1", "kind": "ConnectivityTestReport",
               "complete": is_complete(state),
               "diagnostics": diagnostics_json(state, [*analysis.diagnostics, *diags]),
               "results": [r.to_json() for r in results],
               "summary": {"passed": passed, "failed": failed}}
        out([json.dumps(doc, indent=2, sort_keys=True), "\n"])
    elif output == "junit":
        out(_junit(results, passed, failed))
    else:
        rows = [[("PASS" if r.passed else "FAIL"), r.case.name or "-", r.case.from_, r.case.to,
                 f"{r.protocol}/{r.port}", r.case.expect, r.verdict] for r in results]
        out([table(["RESULT", "NAME", "FROM", "TO", "PORT", "EXPECT", "VERDICT"], rows)])
        for r in results:
            if not r.passed:
                out(["\nFAIL: " + (r.case.name or f"{r.case.from_} -> {r.case.to}") + "\n"])
                out("  " + line + "\n" for line in r.explanation())
        out([f"\n{passed} passed, {failed} failed\n"])
    if bad:
        sys.exit(ExitCode.INPUT)
    sys.exit(ExitCode.FOUND if failed else ExitCode.OK)


def _junit(results: list[api.CaseResult], passed: int, failed: int) -> list[str]:
    del passed, failed  # counted by the writer
    return junit("netfence", [
        JUnitCase(r.file, r.case.name or f"{r.case.from_} -> {r.case.to} {r.protocol}/{r.port}",
                  None if r.passed else (f"expected {r.case.expect}, got {r.verdict}",
                                         "\n".join(r.explanation())))
        for r in results])
