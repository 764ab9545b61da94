"""Shared CLI plumbing: options, loading with diagnostics, exit codes, streams."""

from __future__ import annotations

import enum
import functools
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, TypeVar

import click

from netfence import api
from netfence.errors import ClusterError, Diagnostic, InputError, Severity
from netfence.model.cluster import ClusterState
from netfence.render.escape import term

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(enum.IntEnum):
    """Public exit codes (ECOSYSTEM.md)."""

    OK = 0
    FOUND = 1
    USAGE = 2
    INPUT = 3
    INTERNAL = 4


def err(line: str) -> None:
    """One line on stderr, never wrapped."""
    sys.stderr.write(term(line) + "\n")


def out(chunks: Iterable[str]) -> None:
    w = sys.stdout.write
    for c in chunks:
        w(c)
    sys.stdout.flush()


def fail_internal(exc: BaseException) -> NoReturn:
    err(f"netfence: internal error: {type(exc).__name__}: {exc} (run with -v for details)")
    if os.environ.get("NETFENCE_DEBUG") or "-v" in sys.argv or "--verbose" in sys.argv:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    sys.exit(ExitCode.INTERNAL)


def _remember_pod_cidrs(ctx: click.Context, _param: click.Parameter,
                        value: tuple[str, ...]) -> None:
    from netfence.model.net import IPSet

    for cidr in value:
        try:
            IPSet.parse(cidr)
        except ValueError as exc:
            raise click.BadParameter(f"not a CIDR: {cidr!r}") from exc
    ctx.meta["netfence.pod_cidrs"] = list(value)


def input_options(func: F) -> F:
    """kubectl vocabulary for reading state: -f/--filename, -R, --cluster, --context..."""
    opts = [
        click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-",
                     help="Manifest file, directory or - for stdin (repeatable)."),
        click.option("-R", "--recursive", is_flag=True, help="Read directories recursively."),
        click.option("--cluster", is_flag=True,
                     help="Read the live cluster through 'kubectl get -o json'."),
        click.option("--context", default=None, help="kubeconfig context (with --cluster)."),
        click.option("--kubeconfig", default=None, help="kubeconfig file (with --cluster)."),
        click.option("--pod-cidr", "pod_cidrs", multiple=True, metavar="CIDR",
                     expose_value=False, callback=_remember_pod_cidrs,
                     help="The pod network (repeatable; Node spec.podCIDRs count too): with "
                          "manifest input, warn about ipBlocks overlapping it (D-4)."),
        click.option("--strict", is_flag=True, help="Treat every warning as an error (exit 3)."),
        click.option("-q", "--quiet", is_flag=True, help="No warnings on stderr."),
        click.option("-v", "--verbose", is_flag=True, help="Tracebacks on internal errors."),
    ]
    for o in reversed(opts):
        func = o(func)
    return func


@functools.lru_cache(maxsize=1)
def _stdin_text() -> str:
    return sys.stdin.read()


def load_state(filenames: tuple[str, ...], recursive: bool, cluster: bool,
               context: str | None, kubeconfig: str | None) -> ClusterState:
    if not filenames and not cluster:
        raise click.UsageError("give manifests with -f FILE|DIR|- or use --cluster")
    try:
        ctx = click.get_current_context(silent=True)
        pod_cidrs = ctx.meta.get("netfence.pod_cidrs", []) if ctx is not None else []
        return api.load(list(filenames), recursive, cluster=cluster, context=context,
                        kubeconfig=kubeconfig,
                        stdin_text=_stdin_text() if "-" in filenames else None,
                        pod_cidrs=pod_cidrs)
    except ClusterError as exc:
        err(f"netfence: cluster error: {exc}")
        sys.exit(ExitCode.INPUT)


def report(state: ClusterState, strict: bool, quiet: bool,
           extra: Iterable[Diagnostic] = ()) -> bool:
    """Print diagnostics; True when the run must exit 3 (errors, or warnings with --strict)."""
    diags = list(state.diagnostics) + list(extra)
    bad = False
    for d in diags:
        if d.severity >= Severity.ERROR:
            bad = True
            err(d.line())
        elif d.severity is Severity.WARNING:
            bad = bad or strict
            if not quiet or strict:
                err(d.line())
    if state.unmodelled and not quiet:
        err(f"WARNING: {len(state.unmodelled)} policy object(s) of kinds netfence does not model"
            " were found: the result may be wrong (see warnings above).")
    if state.not_analysed and not quiet:
        total = sum(state.not_analysed.values())
        kinds = ", ".join(f"{k} x{v}" for k, v in sorted(
            state.not_analysed.items(), key=lambda kv: (-kv[1], kv[0])))
        err(f"info: {total} objects of {len(state.not_analysed)} kinds not analysed: {kinds}")
    return bad


def diagnostics_json(state: ClusterState, extra: Iterable[Diagnostic] = ()) -> list[object]:
    return [d.to_json() for d in (*state.diagnostics, *extra)
            if d.severity >= Severity.WARNING]


def is_complete(state: ClusterState) -> bool:
    return not any(d.severity >= Severity.ERROR for d in state.diagnostics)


def input_error(exc: InputError) -> NoReturn:
    for d in exc.diagnostics:
        err(d.line())
    if not exc.diagnostics:
        err(f"netfence: {exc}")
    sys.exit(ExitCode.INPUT)
