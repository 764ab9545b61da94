"""Regressions found in review (kernel): batches nft 1.0.6 rejected, now fixed. Each test
owns one network namespace ``nfr-*``, deleted by name; each docstring says what was wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from netfence import api
from netfence.agent.host import apply_with_deadman
from netfence.agent.sync import NftCli, Syncer
from netfence.nft import HostConfig, HostEndpoint, compile_host

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft")
                                or not shutil.which("ip"), reason="needs root, ip and nft")

HOST = HostEndpoint("h1", "legacy", {"role": "legacy"}, ("10.9.0.1",))


def _policy(port: int) -> str:
    return ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            "metadata: {name: legacy-in, namespace: legacy}\nspec:\n"
            "  podSelector: {matchLabels: {role: legacy}}\n"
            f"  ingress: [{{ports: [{{port: {port}}}]}}]\n")


def _state(tmp: Path, port: int):  # type: ignore[no-untyped-def]
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "p.yaml").write_text(_policy(port), encoding="utf-8")
    return api.load([str(tmp)])


@pytest.fixture
def netns() -> Iterator[tuple[str, NftCli]]:
    name = f"nfr-{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", name], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="nfr-"))
    wrapper = tmp / "nft"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {name} nft "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    try:
        yield name, NftCli(str(wrapper))
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def _listing(ns: str) -> str:
    proc = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet",
                           "netfence"], capture_output=True, text=True, check=False)
    return proc.stdout


def test_deadman_restores_a_previous_host_table(netns: tuple[str, NftCli],
                                               tmp_path: Path) -> None:
    """host.py restore_batch: it re-adds a listing in listing order (sets/maps with their
    elements, then chains, then rules); a verdict-map element ``goto in-<group>`` then names
    a chain not yet added and the kernel rejects the whole batch (ENOENT). Host rulesets
    always fill in4/eg4 (_place), so reverting to any previous netfence table fails: the
    unconfirmed ruleset stays (the lockout the switch exists to prevent)."""
    ns, cli = netns
    first = compile_host(_state(tmp_path / "a", 8080), HOST)
    assert Syncer(cli).sync(first).error == ""
    before = _listing(ns)
    assert "goto in-" in before
    second = compile_host(_state(tmp_path / "b", 9090), HOST)
    said: list[str] = []
    kept = apply_with_deadman(cli, second, 0.0, lambda: False, said.append, poll=0.01)
    assert kept is False
    assert _listing(ns) == before


def test_host_priority_change_is_applied(netns: tuple[str, NftCli], tmp_path: Path) -> None:
    """nftjson.py _base / full_json: base chains are re-declared with ``add chain`` and the
    new priority; the kernel refuses to change an existing base chain's priority
    (EOPNOTSUPP), in the diff and in the full resync alike, and the fail-closed ruleset
    carries the same base chains: a new HostConfig.priority can never be applied without
    deleting the table by hand."""
    ns, cli = netns
    state = _state(tmp_path / "a", 8080)
    syncer = Syncer(cli)
    assert syncer.sync(compile_host(state, HOST, HostConfig(priority=-10))).error == ""
    result = syncer.sync(compile_host(state, HOST, HostConfig(priority=-20)))
    assert result.error == "", result.error
    listed = _listing(ns)
    assert "priority filter - 20" in listed or "priority -20" in listed, listed


def test_restore_batch_of_a_listing_loads(netns: tuple[str, NftCli], tmp_path: Path) -> None:
    """The same defect as above, at the level of restore_batch alone."""
    from netfence.agent.host import restore_batch

    ns, cli = netns
    assert Syncer(cli).sync(compile_host(_state(tmp_path, 8080), HOST)).error == ""
    listing = cli.listing()
    proc = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "-f", "-"],
                          input=json.dumps(restore_batch(listing)), capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
