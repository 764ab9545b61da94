"""``netfence explain SRC DST``: the verdict per direction and the rule that decided it."""

from __future__ import annotations

import json
import sys

import click

from netfence import api
from netfence.cli.common import ExitCode, err, input_options, load_state, out, report
from netfence.engine.query import FlowVerdict
from netfence.errors import InputError
from netfence.model.ports import Protocol
from netfence.sources.specs import Case


def _port_arg(text: str | None, protocol: str) -> tuple[int | str | None, str]:
    if text is None:
        return None, protocol
    port, _, proto = text.partition("/")
    if proto:
        protocol = proto.upper()
    return (int(port) if port.isdigit() else port), protocol


@click.command(short_help="Explain the verdict for one flow.")
@input_options
@click.argument("src")
@click.argument("dst")
@click.option("--port", default=None, metavar="PORT[/PROTO]",
              help="Destination port number or name (resolved on the destination pod).")
@click.option("--protocol", type=click.Choice(["TCP", "UDP", "SCTP"]), default="TCP",
              show_default=True)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def explain_cmd(filenames: tuple[str, ...], recursive: bool, cluster: bool, context: str | None,
                kubeconfig: str | None, strict: bool, quiet: bool, verbose: bool, src: str,
                dst: str, port: str | None, protocol: str, output: str) -> None:
    """Explain SRC -> DST (NS/NAME, NS/KIND/NAME or ip:ADDR): for each direction the tier,
    policy and rule that decided, with file:line; for a denial, why no rule matched."""
    state = load_state(filenames, recursive, cluster, context, kubeconfig)
    port_value, proto = _port_arg(port, protocol)
    if proto not in ("TCP", "UDP", "SCTP"):
        raise click.BadParameter(f"unknown protocol '{proto}'", param_hint="--port")
    if port_value is None:
        raise click.UsageError("--port is required (a number or a port name)")
    analysis = api.analyze(state)
    bad = report(state, strict, quiet, analysis.diagnostics)
    srcs = api.resolve(state, src)
    dsts = api.resolve(state, dst)
    for label, got, text in (("source", srcs, src), ("destination", dsts, dst)):
        if not got:
            err(f"netfence: unknown {label} endpoint '{text}' (use NS/NAME, NS/KIND/NAME or "
                "ip:ADDR)")
            sys.exit(ExitCode.INPUT)
    case = Case(from_=src, to=dst, expect="allow", port=port_value, protocol=proto)  # type: ignore[arg-type]
    flows: list[FlowVerdict] = []
    try:
        for s in srcs:
            for d in dsts:
                if s is d and (len(srcs) > 1 or len(dsts) > 1):
                    continue
                resolved = api.resolve_port(d, case.port, Protocol(proto))
                if isinstance(resolved, str):
                    err(f"netfence: {resolved}")
                    sys.exit(ExitCode.INPUT)
                flows.append(analysis.query.flow(s, d, resolved[0], resolved[1]))
    except InputError as exc:  # pragma: no cover - defensive
        err(str(exc))
        sys.exit(ExitCode.INPUT)
    if output == "json":
        doc = {"apiVersion": "netfence.dev/v1alpha1", "kind": "Explanation",
               "from": src, "to": dst,
               "verdict": "allow" if all(f.allowed for f in flows) else (
                   "deny" if not any(f.allowed for f in flows) else "mixed"),
               "flows": [f.to_json() for f in flows]}
        out([json.dumps(doc, indent=2, sort_keys=True), "\n"])
    else:
        out(_grouped(analysis, flows))
    if bad:
        sys.exit(ExitCode.INPUT)


def _grouped(analysis: api.Analysis, flows: list[FlowVerdict]) -> list[str]:
    """One explanation per pair of equivalence classes: pods in a class behave identically."""
    groups: dict[tuple[int, int], list[FlowVerdict]] = {}
    for f in flows:
        key = (analysis.query.endpoint(f.src), analysis.query.endpoint(f.dst))
        groups.setdefault(key, []).append(f)
    lines: list[str] = []
    if len(flows) > 1:
        allowed = sum(1 for f in flows if f.allowed)
        lines.append(f"{len(flows)} pod pairs: {allowed} allowed, {len(flows) - allowed} denied; "
                     f"{len(groups)} distinct case(s) explained below.\n\n")
    for members in groups.values():
        first = members[0]
        if len(members) > 1:
            lines.append(f"# {len(members)} pod pairs like this one\n")
        lines.extend(line + "\n" for line in first.sentences())
        lines.append("\n")
    return lines
