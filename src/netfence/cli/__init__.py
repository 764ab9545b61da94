"""The ``netfence`` / ``kubectl netfence`` command line: the only printer.

stdout carries only the requested data; diagnostics and narration go to stderr. Exit codes:
0 ok, 1 differences or failures found, 2 usage, 3 input or cluster error, 4 internal error.
"""

from __future__ import annotations

import gc
import os
import sys

import click

from netfence.cli.common import ExitCode, fail_internal
from netfence.cli.diff import diff_cmd
from netfence.cli.explain import explain_cmd
from netfence.cli.generate import generate_cmd
from netfence.cli.lint import lint_cmd
from netfence.cli.map import map_cmd
from netfence.cli.test import test_cmd

__all__ = ["ExitCode", "cli", "main"]


def prog_name() -> str:
    """``kubectl netfence`` when installed as a kubectl plugin, else ``netfence``."""
    base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "netfence"
    if base.startswith("kubectl-"):
        return "kubectl " + base[len("kubectl-"):].replace("_", "-")
    return "netfence"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="netfence", prog_name="netfence")
def cli() -> None:
    """Model, verify and explain Kubernetes network segmentation.

    Load manifests (-f FILE|DIR|-) or a live cluster (--cluster) and compute exactly which
    connections NetworkPolicy and ClusterNetworkPolicy (Admin/Baseline tiers, and the older
    AdminNetworkPolicy/BaselineAdminNetworkPolicy) allow.
    """


cli.add_command(map_cmd, "map")
cli.add_command(map_cmd, "connectivity")
cli.add_command(explain_cmd, "explain")
cli.add_command(test_cmd, "test")
cli.add_command(diff_cmd, "diff")
cli.add_command(generate_cmd, "generate")
cli.add_command(lint_cmd, "lint")


def main(argv: list[str] | None = None) -> None:
    # A one-shot command builds large, long-lived, acyclic structures: the cyclic collector
    # only burns time on them (reference counting still frees everything promptly).
    gc.disable()
    try:
        cli.main(args=argv, prog_name=prog_name(), standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # pragma: no cover - last resort, exit 4 without a traceback
        fail_internal(exc)
