"""``netfence generate``: least-privilege policies from models, pure YAML on stdout."""

from __future__ import annotations

import json
import sys

import click

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
    _emit(result, check, quiet)


def _emit(result: api.Generated, check: bool, quiet: bool) -> None:
    """YAML on stdout; warnings, one proof line per check and the gaps on stderr."""
    for d in result.diagnostics:
        if not quiet:
            err(d.line())
    out([result.text])
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


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in text.split(","):
        key, eq, value = part.strip().partition("=")
        if not eq or not key:
            raise click.UsageError(f"--dns-selector: '{part}' is not KEY=VALUE")
        labels[key.strip()] = value.strip()
    return labels


@generate_cmd.command("intents")
@click.option("-f", "--filename", "filenames", multiple=True, metavar="INTENTS",
              help="ServiceIntents, ServiceTypeGroup or Otterize ClientIntents file(s) or "
                   "directories.")
@click.option("--cluster-manifests", "cluster", multiple=True, metavar="DIR",
              help="Cluster manifests: workloads are resolved there and the result is verified "
                   "on them (their own policies are set aside).")
@click.option("--dns-namespace", default="kube-system", show_default=True,
              help="Namespace of the DNS pods every caller may reach on UDP/TCP 53.")
@click.option("--dns-selector", default="k8s-app=kube-dns", show_default=True,
              help="Labels of the DNS pods (KEY=VALUE,...).")
@click.option("--check", is_flag=True, help="Exit 1 when the self-check finds a gap.")
@click.option("--schema", "print_schema", is_flag=True,
              help="Print the ServiceIntents / ServiceTypeGroup JSON Schema and exit.")
@click.option("-q", "--quiet", is_flag=True, help="No warnings and no proof line on stderr.")
def intents_cmd(filenames: tuple[str, ...], cluster: tuple[str, ...], dns_namespace: str,
                dns_selector: str, check: bool, print_schema: bool, quiet: bool) -> None:
    """Policies from caller-owned intents (Monzo-style; docs/generate.md): per callee one
    ingress policy admitting exactly its declared callers, per caller one egress policy, a
    default deny for the callees' namespaces; verified by the engine."""
    if print_schema:
        from netfence.sources.intents import schema as intents_schema

        out([json.dumps(intents_schema(), indent=2, sort_keys=True), "\n"])
        return
    if not filenames:
        raise click.UsageError("give the intents with -f INTENTS")
    if not cluster:
        raise click.UsageError("give the cluster manifests with --cluster-manifests DIR "
                               "(workloads are resolved there)")
    labels = _labels(dns_selector)
    try:
        result = api.generate_intents(list(filenames), list(cluster), dns_namespace, labels)
    except InputError as exc:
        input_error(exc)
    _emit(result, check, quiet)


@generate_cmd.command("all")
@click.option("-f", "--filename", "filenames", multiple=True, metavar="MODEL_AND_INTENTS",
              help="One SegmentationModel and the intents, as files or directories.")
@click.option("--cluster-manifests", "cluster", multiple=True, metavar="DIR",
              help="Cluster manifests: workloads are resolved there and the result is verified "
                   "on them (their own policies are set aside).")
@click.option("--flavor", type=click.Choice(["networkpolicy", "clusternetworkpolicy"]),
              default="networkpolicy", show_default=True,
              help="clusternetworkpolicy adds Admin-tier guardrails for cross-area denies.")
@click.option("--check", is_flag=True, help="Exit 1 when a self-check finds a gap.")
@click.option("-q", "--quiet", is_flag=True, help="No warnings and no proof lines on stderr.")
def all_cmd(filenames: tuple[str, ...], cluster: tuple[str, ...], flavor: str, check: bool,
            quiet: bool) -> None:
    """Zone policies (protected workloads left to their intents) plus intents policies, both
    verified by the engine on the cluster manifests."""
    if not filenames:
        raise click.UsageError("give the model and the intents with -f FILE|DIR")
    if not cluster:
        raise click.UsageError("give the cluster manifests with --cluster-manifests DIR "
                               "(workloads are resolved there)")
    try:
        result = api.generate_all(list(filenames), list(cluster), flavor)
    except InputError as exc:
        input_error(exc)
    _emit(result, check, quiet)
