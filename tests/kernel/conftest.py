"""Kernel tests: network namespaces, nftables, NFLOG. Root only; everything else skips.

Every test in this directory is marked `kernel` and depends on the session fixture
`kernel_env`, which probes the environment once (root, `ip`, `nft`, netns creation,
br_netfilter, interval concatenations, NFLOG), prints the findings in the terminal summary,
and skips with the reason when the basics are missing. Select or deselect with `-m kernel` /
`-m "not kernel"`.

Fixtures:
- `kernel_env`: dict of probe results; `require("nflog")` (fixture) skips if one is absent.
  Features: br_netfilter, interval_concat, nflog (bridge beds require br_netfilter).
- `make_bed`: factory `make_bed(short_tag, pods, mode)`; the tag gets a per-session suffix
  so concurrent sessions never share namespaces; beds are torn down after the test.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.bed import Bed, BedError, Mode, PodSpec, run, session_suffix, sweep_orphans

KERNEL_DIR = Path(__file__).resolve().parent
_ENV_KEY = pytest.StashKey[dict[str, Any]]()

_SEND_UDP = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
             "s.sendto(b'envp', ('127.0.0.1', 9)); s.close()")
_CONCAT = """table inet envp_c {
    set s {
        type ipv4_addr . inet_proto . inet_service
        flags interval
        elements = { 10.244.0.0/16 . tcp . 80-90 }
    }
}
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kernel: needs root, netns and nftables (tests/kernel)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if KERNEL_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.kernel)


def probe_environment() -> dict[str, Any]:
    """What this machine offers kernel tests; `skip` holds a reason when it offers too little."""
    env: dict[str, Any] = {"kernel": platform.release(), "root": os.geteuid() == 0,
                           "python": sys.executable}
    for tool in ("ip", "nft", "conntrack", "sysctl"):
        env[tool] = shutil.which(tool)
    if env["nft"]:
        env["nft_version"] = run(["nft", "--version"], check=False).stdout.strip()
    if not env["root"]:
        env["skip"] = "kernel tests need root (netns, nftables)"
        return env
    missing = [t for t in ("ip", "nft", "sysctl") if not env[t]]
    if missing:
        env["skip"] = f"missing tools: {', '.join(missing)} (apt-get install iproute2 nftables)"
        return env
    try:
        env["orphans_removed"] = sweep_orphans()
        with Bed(f"e{session_suffix()}", [], "routed") as bed:
            env["netns"] = True
            env["br_netfilter"] = bed.node_exec(
                ["sysctl", "-n", "net.bridge.bridge-nf-call-iptables"]).returncode == 0
            env["interval_concat"] = bed.node_exec(
                ["nft", "-c", "-f", "-"], input=_CONCAT).returncode == 0
            bed.nft("table inet envp {\n chain o {\n  type filter hook output priority filter;"
                    "\n  ip daddr 127.0.0.1 udp dport 9 log prefix \"envp|\" group 99\n }\n}\n")
            try:
                with bed.nflog(99, count=1, timeout=3) as watch:
                    bed.node_exec([sys.executable, "-c", _SEND_UDP], check=True)
                env["nflog"] = bool(watch.records) and watch.records[0]["prefix"] == "envp|"
                if not env["nflog"]:
                    env["nflog_error"] = watch.stderr.strip() or "no record"
            except (BedError, ValueError) as exc:
                env["nflog"] = False
                env["nflog_error"] = str(exc)
    except (BedError, OSError) as exc:
        env["netns"] = False
        env["skip"] = f"cannot build a network-namespace bed: {exc}"
    return env


@pytest.fixture(scope="session")
def kernel_env(request: pytest.FixtureRequest) -> dict[str, Any]:
    env = probe_environment()
    request.config.stash[_ENV_KEY] = env
    if env.get("skip"):
        pytest.skip(env["skip"])
    return env


@pytest.fixture(autouse=True)
def _kernel_gate(kernel_env: dict[str, Any]) -> None:
    """Every test here needs the basics; the session fixture skips when they are missing."""


def need(env: dict[str, Any], feature: str) -> None:
    """Skip the calling test (with the reason) unless the probe found `feature`."""
    if not env.get(feature):
        detail = env.get(f"{feature}_error", "")
        pytest.skip(f"kernel feature missing: {feature} {detail}".strip())


@pytest.fixture
def require(kernel_env: dict[str, Any]) -> Callable[[str], None]:
    """`require("nflog")` skips the test unless the environment probe found that feature."""
    return lambda feature: need(kernel_env, feature)


@pytest.fixture
def make_bed(kernel_env: dict[str, Any]) -> Iterator[Callable[..., Bed]]:
    beds: list[Bed] = []

    def make(short: str, pods: list[PodSpec], mode: Mode = "bridge") -> Bed:
        if len(short) > 4:
            raise ValueError("short tag: at most 4 characters (a session suffix follows)")
        if mode == "bridge":
            need(kernel_env, "br_netfilter")
        bed = Bed(f"{short}{session_suffix()}", pods, mode)
        bed.__enter__()
        beds.append(bed)
        return bed

    yield make
    errors = []
    for bed in reversed(beds):
        try:
            bed.teardown(raise_errors=True)
        except BedError as exc:
            errors.append(str(exc))
    assert not errors, errors


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    env = config.stash.get(_ENV_KEY, None)
    if env is None:
        return
    terminalreporter.write_sep("-", "kernel test environment")
    for key in ("kernel", "nft_version", "root", "netns", "br_netfilter", "interval_concat",
                "nflog", "nflog_error", "conntrack", "orphans_removed", "skip"):
        if key in env:
            terminalreporter.write_line(f"{key}: {env[key]}")
