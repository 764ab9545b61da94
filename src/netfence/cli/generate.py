"""``netfence generate``: least-privilege policies from models, pure YAML on stdout."""

from __future__ import annotations

import json
import sys

import click
import yaml

from netfence import api
from netfence.cli.common import ExitCode, err, input_error, out
from netfence.errors import InputError
from netfence.sources.zones import schema


@click.group(short_help="Generate policies from a zone model (and intents).")
def generate_cmd() -> None:
    """Generate least-privilege policies; YAML on stdout, the proof summary on stderr."""


@generate_cmd.command("zones")
@click.option("-f", "--filename", "filenames", multiple=True, metavar="MODEL",
              help="SegmentationModel file(s) or directories.")
@click.option("--cluster-manifests", "cluster", multiple=True, metavar="DIR",
              help="Cluster manifests to verify against (their own policies are set aside).")
@click.option("--flavor", type=click.Choice(["networkpolicy", "clusternetworkpolicy"]),
              default="networkpolicy", show_default=True,
              help="clusternetworkpolicy adds Admin-tier guardrails for cross-area denies.")
@click.option("--check", is_flag=True, help="Exit 1 when the self-check finds a gap.")
@click.option("--schema", "print_schema", is_flag=True,
              help="Print the SegmentationModel JSON Schema and exit.")
@click.option("-q", "--quiet", is_flag=True, help="No proof line on stderr.")
def zones_cmd(filenames: tuple[str, ...], cluster: tuple[str, ...], flavor: str, check: bool,
              print_schema: bool, quiet: bool) -> None:
    """Policies from Ebury-style network areas (docs/generate.md), verified by the engine."""
    if print_schema:
        out([json.dumps(schema(), indent=2, sort_keys=True), "\n"])
        return
    if not filenames:
        raise click.UsageError("give the model with -f MODEL")
    try:
        result = api.generate(list(filenames), list(cluster) or None, flavor)
    except InputError as exc:
        input_error(exc)
    out([yaml.safe_dump_all(result.objects, sort_keys=False)])
    gaps = 0
    for name, proof in result.proofs:
        gaps += proof.gap_count
        if not quiet or not proof.ok:
            err(f"{name}: {proof.line()}")
            for g in proof.gaps:
                err(f"  gap: {g}")
    if result.replaced_policies and not quiet:
        err(f"note: {result.replaced_policies} policies in the cluster manifests were set aside "
            "for the check")
    if check and gaps:
        sys.exit(ExitCode.FOUND)
