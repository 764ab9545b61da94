"""The ``netfence`` / ``kubectl netfence`` command line: the only printer.

stdout carries only the requested data; diagnostics and narration go to stderr. Exit codes:
0 ok, 1 differences or failures found, 2 usage, 3 input or cluster error, 4 internal error.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys

import click

from netfence.cli.common import ExitCode, fail_internal

__all__ = ["ExitCode", "cli", "main"]


def prog_name() -> str:
    """``kubectl netfence`` when installed as a kubectl plugin, else ``netfence``."""
    base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "netfence"
    if base.startswith("kubectl-"):
        return "kubectl " + base[len("kubectl-"):].replace("_", "-")
    return "netfence"


COMMANDS = {  # verb -> (module, function); modules load only for the verb that runs
    "map": ("netfence.cli.map", "map_cmd"),
    "connectivity": ("netfence.cli.map", "map_cmd"),
    "explain": ("netfence.cli.explain", "explain_cmd"),
    "test": ("netfence.cli.test", "test_cmd"),
    "diff": ("netfence.cli.diff", "diff_cmd"),
    "lint": ("netfence.cli.lint", "lint_cmd"),
    "generate": ("netfence.cli.generate", "generate_cmd"),
    "agent": ("netfence.cli.agent", "agent_cmd"),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported when they are used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module = importlib.import_module(target[0])
        cmd: click.Command = getattr(module, target[1])
        return cmd


@click.group(cls=LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="netfence", prog_name="netfence")
def cli() -> None:
    """Model, verify and explain Kubernetes network segmentation.

    Load manifests (-f FILE|DIR|-) or a live cluster (--cluster) and compute exactly which
    connections NetworkPolicy and ClusterNetworkPolicy (Admin/Baseline tiers, and the older
    AdminNetworkPolicy/BaselineAdminNetworkPolicy) allow.
    """



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
