"""``netfence diff``: what a change opens or closes, semantically (exit 0 same, 1 different)."""

from __future__ import annotations

import sys

import click

from netfence import api
from netfence.cli.common import ExitCode, input_error, out, report
from netfence.errors import InputError
from netfence.render.diff import FORMATS, render


@click.command(short_help="Semantic connectivity diff of two states.")
@click.option("-f", "--filename", "filenames", multiple=True, metavar="PATH",
              help="Base manifests (directory mode) or the paths to read at the git refs.")
@click.option("--head", "heads", multiple=True, metavar="PATH|REF",
              help="Head manifests (directory mode), or a git ref with --base "
                   "(default: the working tree).")
@click.option("--base", "base_ref", default=None, metavar="REF",
              help="Git ref of the base (GitOps mode): files are read with git, no checkout.")
@click.option("-R", "--recursive", is_flag=True, help="Read directories recursively.")
@click.option("--by", type=click.Choice(["workload", "pod", "namespace", "zone"]),
              default="workload", show_default=True)
@click.option("--zone-label", default="networkArea", show_default=True,
              help="Namespace label that names a zone (--by zone).")
@click.option("--no-mermaid", is_flag=True, help="No diagram in -o md.")
@click.option("-o", "--output", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--strict", is_flag=True, help="Treat every warning as an error (exit 3).")
@click.option("-q", "--quiet", is_flag=True, help="No warnings on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on internal errors.")
def diff_cmd(filenames: tuple[str, ...], heads: tuple[str, ...], base_ref: str | None,
             recursive: bool, by: str, zone_label: str, no_mermaid: bool, output: str,
             strict: bool, quiet: bool, verbose: bool) -> None:
    """Connections added, removed and changed (ports gained/lost) between BASE and HEAD, with
    the policies that decide them on each side.

    \b
    netfence diff -f base/ --head head/
    netfence diff --base origin/main -f deploy/ -R            # head: working tree
    netfence diff --base v1.2.0 --head v1.3.0 -f deploy/ -R
    """
    if not filenames:
        raise click.UsageError("give the manifests with -f PATH")
    try:
        if base_ref is not None:
            if len(heads) > 1:
                raise click.UsageError("with --base, --head takes one git ref")
            base = api.load_ref(base_ref, list(filenames), recursive)
            head_label = heads[0] if heads else "working tree"
            head = (api.load_ref(heads[0], list(filenames), recursive) if heads
                    else api.load(list(filenames), recursive))
            base_label = base_ref
        else:
            if not heads:
                raise click.UsageError("give the head manifests with --head PATH "
                                       "(or use --base REF for git refs)")
            base = api.load(list(filenames), recursive)
            head = api.load(list(heads), recursive)
            base_label, head_label = ", ".join(filenames), ", ".join(heads)
    except InputError as exc:
        input_error(exc)
    changes, diags = api.diff(base, head, by=by, zone_label=zone_label)
    bad = report(base, strict, quiet) | report(head, strict, quiet, diags)
    meta = {"view": by,
            "complete": not any(d.severity >= 2 for d in (*base.diagnostics,
                                                          *head.diagnostics))}
    out(render(changes, output, base_label, head_label, meta, not no_mermaid))
    if bad:
        sys.exit(ExitCode.INPUT)
    sys.exit(ExitCode.FOUND if changes else ExitCode.OK)
