"""``netfence map`` (alias ``connectivity``): every allowed connection."""

from __future__ import annotations

import sys
from typing import Any

import click

from netfence import api
from netfence.cli.common import (
    ExitCode,
    diagnostics_json,
    input_options,
    is_complete,
    load_state,
    out,
    report,
)
from netfence.render.connmap import FORMATS, Row, render
from netfence.selectors import matches
from netfence.sources.selector_text import parse_selector


@click.command(short_help="Every allowed connection.")
@input_options
@click.option("--by", type=click.Choice(["workload", "pod", "namespace", "zone"]),
              default="workload", show_default=True,
              help="Endpoints to aggregate connections by (zone: namespaces grouped by "
                   "--zone-label).")
@click.option("--zone-label", default="networkArea", show_default=True,
              help="Namespace label that names a zone (--by zone).")
@click.option("--from", "from_", multiple=True, metavar="PATTERN",
              help="Only connections from endpoints matching this glob (ns/kind/name).")
@click.option("--to", multiple=True, metavar="PATTERN",
              help="Only connections to endpoints matching this glob.")
@click.option("-n", "--namespace", "namespaces", multiple=True,
              help="Only connections touching this namespace (repeatable).")
@click.option("-l", "--selector", default=None,
              help="Only connections touching pods with these labels (k=v,k!=v,k,!k).")
@click.option("-o", "--output", type=click.Choice(FORMATS), default="table", show_default=True)
def map_cmd(filenames: tuple[str, ...], recursive: bool, cluster: bool, context: str | None,
            kubeconfig: str | None, strict: bool, quiet: bool, verbose: bool, by: str,
            zone_label: str, from_: tuple[str, ...], to: tuple[str, ...],
            namespaces: tuple[str, ...], selector: str | None, output: str) -> None:
    """Print every allowed connection (ports merged per protocol), in a stable order."""
    state = load_state(filenames, recursive, cluster, context, kubeconfig)
    sel = None
    if selector is not None:
        try:
            sel = parse_selector(selector)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="-l/--selector") from None
    analysis = api.analyze(state)
    labelled: set[str] | None = None
    if sel is not None:
        labelled = set()
        for pod in state.pods:
            if matches(sel, pod.labels):
                labelled |= {pod.key, str(pod.workload), pod.namespace}
    rows: list[Row] = []
    u = analysis.universe
    for r in analysis.rows(by, zone_label):
        if from_ and not any(api.matches_pattern(r.src, p) for p in from_):
            continue
        if to and not any(api.matches_pattern(r.dst, p) for p in to):
            continue
        if namespaces and not ({r.src.split("/")[0], r.dst.split("/")[0]} & set(namespaces)):
            continue
        if labelled is not None and not ({r.src, r.dst} & labelled):
            continue
        rows.append((r.src, r.dst, u.portset(r.ports), r.dns))
    bad = report(state, strict, quiet, analysis.diagnostics)
    meta: dict[str, Any] = {
        "view": by,
        "complete": is_complete(state),
        "diagnostics": diagnostics_json(state, analysis.diagnostics),
        "unmodelled": [{"apiVersion": x.api_version, "kind": x.ref.kind,
                        "namespace": x.ref.namespace, "name": x.ref.name,
                        "file": x.source.file, "line": x.source.line}
                       for x in state.unmodelled],
        "summary": {"connections": len(rows),
                    "dnsConditional": sum(1 for r in rows if r[3]),
                    "pods": len(state.pods), "classes": u.n_classes,
                    "policies": len(state.policies)},
    }
    out(render(rows, output, meta))
    if bad:
        sys.exit(ExitCode.INPUT)
