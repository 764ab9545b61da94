"""``netfence agent render|apply|run|confirm``: enforce policy with nftables on a node or host."""

from __future__ import annotations

import gc
import json
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any

import click

from netfence.cli.common import ExitCode, err, input_options, is_complete, load_state, report
from netfence.errors import ClusterError

__all__ = ["agent_cmd"]


def _labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"expected k=v[,k=v...], got {part!r}", param_hint="--labels")
        out[key] = value
    return out


def target_options(func: Any) -> Any:
    opts = [
        click.option("--node", default=None, help="Node name (pods with spec.nodeName = NODE)."),
        click.option("--host", "host_mode", is_flag=True,
                     help="Legacy host mode: protect this machine (input/output hooks)."),
        click.option("--labels", default="", help="Host mode: the host's labels, k=v,..."),
        click.option("--namespace", "host_ns", default="legacy-hosts", show_default=True,
                     help="Host mode: the namespace the host belongs to."),
        click.option("--name", "host_name", default=None,
                     help="Host mode: the host's name (default: hostname)."),
        click.option("--address", "addresses", multiple=True,
                     help="Host mode: the host's addresses (repeatable)."),
        click.option("--management", multiple=True, metavar="CIDR",
                     help="Host mode: CIDRs always allowed to SSH in (failsafe, repeatable)."),
        click.option("--ssh-port", default=22, show_default=True, type=int),
        click.option("--transport", type=click.Choice(["auto", "nft", "libnftables"]),
                     default="auto", show_default=True,
                     help="How batches reach the kernel: in-process libnftables (Debian "
                     "python3-nftables), the nft binary, or auto (libnftables if present)."),
    ]
    for o in reversed(opts):
        func = o(func)
    return func


def _config(kw: dict[str, Any]) -> Any:
    from netfence.agent.run import AgentConfig
    from netfence.nft import HostConfig, HostEndpoint

    cfg = AgentConfig(paths=list(kw["filenames"]), cluster=kw["cluster"], context=kw["context"],
                      kubeconfig=kw["kubeconfig"])
    if kw["host_mode"]:
        if kw["node"]:
            raise click.UsageError("--node and --host exclude each other")
        cfg.host = HostEndpoint(kw["host_name"] or socket.gethostname(), kw["host_ns"],
                                _labels(kw["labels"]), tuple(kw["addresses"]))
        cfg.host_config = HostConfig(tuple(kw["management"]), kw["ssh_port"])
        cfg.node = cfg.host.name
    elif not kw["node"]:
        raise click.UsageError("give --node NAME (or --host for a standalone machine)")
    else:
        cfg.node = kw["node"]
    return cfg


def _desired(kw: dict[str, Any]) -> tuple[Any, Any, bool]:
    """(config, ruleset, input was bad): a policy that failed to load fails its pods closed."""
    from netfence.agent.run import desired_ruleset

    cfg = _config(kw)
    state = load_state(kw["filenames"], kw["recursive"], kw["cluster"], kw["context"],
                       kw["kubeconfig"])
    bad = report(state, kw["strict"], kw["quiet"])
    if not is_complete(state):
        err("netfence agent: input errors (above): pods that a broken policy may select "
            "fail closed (exit 3)")
    rs = desired_ruleset(state, cfg)
    for w in rs.warnings:
        err(f"warning: {w}")
    return cfg, rs, bad


@click.group("agent")
def agent_cmd() -> None:
    """Compile policy to nftables for one node (or a legacy host) and enforce it."""


@agent_cmd.command("render")
@input_options
@target_options
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="nft text (for review) or the libnftables JSON batch.")
def render_cmd(**kw: Any) -> None:
    """Print the node's ruleset without touching the kernel."""
    from netfence.nft import full_json, render_text

    _cfg, rs, bad = _desired(kw)
    if kw["output"] == "json":
        sys.stdout.write(json.dumps(full_json(rs), indent=1) + "\n")
    else:
        sys.stdout.write(render_text(rs))
    err(f"netfence agent: {len(rs.chains)} group chain(s), {rs.rule_count()} rule(s), "
        f"{len(rs.sets)} set(s), {rs.element_count()} element(s)")
    if bad:
        sys.exit(ExitCode.INPUT)


@agent_cmd.command("apply")
@input_options
@target_options
@click.option("--confirm-timeout", type=float, default=None,
              help="Dead-man switch: revert unless confirmed within this many seconds "
                   "(default 60 in host mode, off otherwise; 0 = off).")
@click.option("--confirm-file", default=None, help="Confirmation: this file touched after "
              "the apply (default /run/netfence/confirm, see 'netfence agent confirm').")
@click.option("--probe", default=None,
              help="Confirmation: a command that must exit 0 (e.g. reach the control plane).")
def apply_cmd(**kw: Any) -> None:
    """Apply the node's ruleset once, in one atomic transaction."""
    from netfence.agent.host import (
        DEFAULT_CONFIRM_FILE,
        apply_with_deadman,
        file_confirmed,
        probe_command,
    )
    from netfence.agent.sync import ApplyError, Syncer, make_applier

    cfg, rs, bad = _desired(kw)
    timeout = kw["confirm_timeout"]
    if timeout is None:
        timeout = 60.0 if cfg.host is not None else 0.0
    try:
        applier = make_applier(kw["transport"])
        if timeout > 0:
            since = time.time()
            confirm = probe_command(kw["probe"].split()) if kw["probe"] else file_confirmed(
                kw["confirm_file"] or DEFAULT_CONFIRM_FILE, since)
            if not apply_with_deadman(applier, rs, timeout, confirm, err):
                sys.exit(ExitCode.FOUND)
            return
        result = Syncer(applier).sync(rs)
    except ApplyError as exc:
        err(f"netfence agent: nft rejected the batch: {exc}")
        sys.exit(ExitCode.INTERNAL)
    if result.error:
        err(f"netfence agent: the kernel rejected the ruleset ({result.error}); "
            + ("failed closed" if result.failed_closed else "nothing applied"))
        sys.exit(ExitCode.INTERNAL)
    err(f"netfence agent: applied {result.commands} command(s) in one transaction "
        f"({result.seconds * 1000:.0f} ms)")
    if bad:
        sys.exit(ExitCode.INPUT)


@agent_cmd.command("run")
@input_options
@target_options
@click.option("--flow-log", default="-", show_default=True,
              help="Where denied and would-be-denied flows go, as JSON lines ('-' = stdout).")
@click.option("--no-flow-log", is_flag=True, help="Do not read NFLOG.")
@click.option("--metrics-address", default="127.0.0.1:9617", show_default=True,
              help="HOST:PORT for /metrics and /healthz ('' = off).")
@click.option("--fail-open", is_flag=True,
              help="On a policy that cannot be loaded or compiled, keep traffic flowing "
                   "(default: its pods fail closed).")
@click.option("--resync-interval", type=float, default=300.0, show_default=True)
@click.option("--debounce", type=float, default=0.1, show_default=True)
@click.option("--max-seconds", type=float, default=None, help="Stop after this long.")
@click.option("--once", is_flag=True, help="One full sync, then exit.")
@click.option("--cluster-source", type=click.Choice(["auto", "watch", "kubectl"]),
              default="auto", show_default=True,
              help="With --cluster: watch the API (lightkube, netfence[agent]) or poll "
                   "'kubectl get'; auto = watch when lightkube is installed.")
def run_cmd(**kw: Any) -> None:
    """Reconcile continuously from watched manifests or a live cluster."""
    from netfence.agent.run import Agent, bridge_netfilter, serve_metrics
    from netfence.agent.sync import ApplyError, Syncer, make_applier

    gc.enable()  # long-running: the one-shot CLI's disabled collector would let memory grow
    cfg = _config(kw)
    if not cfg.paths and not cfg.cluster:
        raise click.UsageError("give manifests with -f DIR or use --cluster")
    if cfg.host is None:
        bridge_netfilter(err)
    cfg.fail_open = kw["fail_open"]
    cfg.resync_interval = kw["resync_interval"]
    cfg.debounce = kw["debounce"]
    cfg.cluster_source = kw["cluster_source"]
    flow: IO[str] | None = None
    if not kw["no_flow_log"]:
        flow = sys.stdout if kw["flow_log"] == "-" else open(  # noqa: SIM115
            kw["flow_log"], "a", encoding="utf-8", buffering=1)
        if kw["flow_log"] != "-":
            cfg.ignore.append(str(Path(kw["flow_log"]).resolve()))
    try:
        agent = Agent(cfg, Syncer(make_applier(kw["transport"]), fail_open=cfg.fail_open), err,
                      flow)
    except ApplyError as exc:
        err(f"netfence agent: {exc}")
        sys.exit(ExitCode.INTERNAL)
    server = None
    if kw["metrics_address"]:
        host, _, port = kw["metrics_address"].rpartition(":")
        try:
            server = serve_metrics(agent.metrics, host or "127.0.0.1", int(port))
        except (OSError, ValueError) as exc:
            err(f"netfence agent: cannot serve metrics on {kw['metrics_address']}: {exc}")
            sys.exit(ExitCode.USAGE)
    try:
        agent.run(once=kw["once"], max_seconds=kw["max_seconds"])
    except KeyboardInterrupt:
        pass
    except ClusterError as exc:
        err(f"netfence agent: cluster error: {exc}")
        sys.exit(ExitCode.INPUT)
    finally:
        if server is not None:
            server.shutdown()


@agent_cmd.command("remove")
@click.option("--transport", type=click.Choice(["auto", "nft", "libnftables"]),
              default="auto", show_default=True)
def remove_cmd(transport: str) -> None:
    """Delete table inet netfence (uninstall): everything it enforced stops at once."""
    from netfence.agent.host import restore_batch
    from netfence.agent.sync import ApplyError, make_applier

    try:
        applier = make_applier(transport)
        if applier.listing() is None:
            err("netfence agent: no netfence table here; nothing to remove")
            return
        applier.apply(restore_batch(None))
    except ApplyError as exc:
        err(f"netfence agent: {exc}")
        sys.exit(ExitCode.INTERNAL)
    err("netfence agent: removed table inet netfence")


@agent_cmd.command("confirm")
@click.option("--confirm-file", default=None)
def confirm_cmd(confirm_file: str | None) -> None:
    """Confirm a host-mode apply (stops the dead-man switch from reverting it)."""
    from netfence.agent.host import DEFAULT_CONFIRM_FILE

    path = Path(confirm_file or DEFAULT_CONFIRM_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    err(f"netfence agent: confirmed ({path})")
