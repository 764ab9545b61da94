# ruff: noqa: E501  (policy YAML in flow style reads best on one line)
"""The running agent in the real kernel: flow logs, audit mode, atomic resyncs, fail-closed.

``netfence agent run`` runs inside the bed's node network namespace, watching a directory of
manifests; the tests change files there and probe the pods with real connections.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.bed import Bed, PodSpec, Probe, session_suffix
from tests.kernel.test_agent_truth import PODS, UDP, cluster_yaml, np

TCP = (80, 81, 5432)


class RunningAgent:
    """``netfence agent run`` in the node netns; its stderr lines are collected."""

    def __init__(self, bed: Bed, directory: Path, flow_log: Path, *extra: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", bed.node_ns, sys.executable, "-m", "netfence", "agent",
             "run", "--node", "node1", "-f", str(directory), "--flow-log", str(flow_log),
             "--metrics-address", "", "--debounce", "0.05", "--max-seconds", "240", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def syncs(self) -> int:
        return sum(1 for line in self.lines if "sync:" in line)

    def wait_syncs(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.syncs() < n:
            assert self.proc.poll() is None, "agent exited:\n" + "\n".join(self.lines)
            assert time.monotonic() < deadline, "no sync:\n" + "\n".join(self.lines[-20:])
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.reader.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture(scope="module")
def bed(kernel_env: dict[str, Any]) -> Iterator[Bed]:
    if not kernel_env.get("br_netfilter"):
        pytest.skip("br_netfilter is not available")
    specs = [PodSpec(name, ip, TCP, UDP) for name, _ns, ip, _l, _p in PODS]
    with Bed(f"ar{session_suffix()}", specs, "bridge") as b:
        yield b


@pytest.fixture
def agent_dir(tmp_path: Path) -> Path:
    d = tmp_path / "manifests"
    d.mkdir()
    (d / "cluster.yaml").write_text(cluster_yaml(), encoding="utf-8")
    return d


def records(path: Path, code: str, deadline: float) -> list[dict[str, Any]]:
    while True:
        got = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
               if line.strip()] if path.exists() else []
        hits = [r for r in got if r["code"] == code]
        if hits or time.monotonic() > deadline:
            return hits
        time.sleep(0.1)


DB_IN = np("db-in", "shop", """
    podSelector: {matchLabels: {app: db}}
    ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 5432}]}]""")
DNS_AUDIT = np("dns-audit", "ops", """
    podSelector: {matchLabels: {app: dns}}
    ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{protocol: UDP, port: 53}]}]""",
               "{netfence.dev/mode: audit}")


def test_denied_flow_is_logged_with_its_policy_and_audit_never_denies(
        bed: Bed, agent_dir: Path, tmp_path: Path, require: Any) -> None:
    require("nflog")
    (agent_dir / "policies.yaml").write_text(DB_IN + "---\n" + DNS_AUDIT, encoding="utf-8")
    flows = tmp_path / "flows.jsonl"
    agent = RunningAgent(bed, agent_dir, flows)
    try:
        agent.wait_syncs(1)
        ip = {n: i for n, _ns, i, _l, _p in PODS}
        assert bed.probe("web1", ip["db"], "tcp", 5432)
        assert not bed.probe("client", ip["db"], "tcp", 5432)
        denied = records(flows, "D", time.monotonic() + 5)
        assert denied, "no deny record:\n" + "\n".join(agent.lines)
        rec = denied[0]
        assert rec["verdict"] == "deny" and rec["direction"] == "ingress"
        assert rec["policies"] == ["NetworkPolicy shop/db-in"]
        assert (rec["src_pod"], rec["dst_pod"]) == ("ops/client", "shop/db")
        assert (rec["src"], rec["dst"], rec["proto"], rec["dport"]) == (
            ip["client"], ip["db"], "tcp", 5432)
        # audit mode: the flow the audit policy would drop still works, and is reported
        assert bed.probe("web1", ip["dns"], "udp", 5353)
        would = records(flows, "W", time.monotonic() + 5)
        assert would, "no would-deny record:\n" + "\n".join(agent.lines)
        assert would[0]["verdict"] == "would-deny"
        assert would[0]["policies"] == ["NetworkPolicy ops/dns-audit"]
        assert (would[0]["src_pod"], would[0]["dst_pod"]) == ("shop/web1", "ops/dns")
        # the audit policy's own allow raises no would-deny record
        before = len(records(flows, "W", 0))
        assert bed.probe("client", ip["dns"], "udp", 53)
        time.sleep(0.5)
        assert len(records(flows, "W", 0)) == before
    finally:
        agent.stop()


WEB_A = np("web-in", "shop", """
    podSelector: {matchLabels: {app: web}}
    ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}], ports: [{port: 80}]}]""")
WEB_B = np("web-in", "shop", """
    podSelector: {matchLabels: {app: web}}
    ingress:
    - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}]
      ports: [{port: 80}]
    - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: other}}}]
      ports: [{port: 81}]""")


def test_fifty_resyncs_never_drop_allowed_traffic(bed: Bed, agent_dir: Path,
                                                  tmp_path: Path) -> None:
    policy = agent_dir / "policies.yaml"
    policy.write_text(WEB_A, encoding="utf-8")
    agent = RunningAgent(bed, agent_dir, tmp_path / "flows.jsonl", "--no-flow-log",
                         "--resync-interval", "0.5")  # full resyncs (flush + refill) too
    ip = {n: i for n, _ns, i, _l, _p in PODS}
    stop = threading.Event()
    results: list[bool] = []

    def prober() -> None:
        batch = [Probe("client", ip["web1"], "tcp", 80, 1.0),
                 Probe("client", ip["web2"], "tcp", 80, 1.0)]
        while not stop.is_set():
            results.extend(bed.probe_many(batch))
    try:
        agent.wait_syncs(1)
        t = threading.Thread(target=prober, daemon=True)
        t.start()
        flips = 0
        for i in range(50):
            n = agent.syncs()
            policy.write_text(WEB_B if i % 2 == 0 else WEB_A, encoding="utf-8")
            agent.wait_syncs(n + 1)
            flips += 1
            if i in (0, 1):  # the flip really changes the kernel's verdict
                deadline = time.monotonic() + 10
                while bed.probe("other", ip["web1"], "tcp", 81) is not (i == 0):
                    assert time.monotonic() < deadline, f"flip {i} never took effect"
                    time.sleep(0.1)
        stop.set()
        t.join(timeout=30)
        assert flips == 50
        assert len(results) > 50, "the prober did not run during the resyncs"
        failures = results.count(False)
        assert failures == 0, f"{failures} of {len(results)} allowed probes failed during resyncs"
    finally:
        stop.set()
        agent.stop()


def test_broken_policy_fails_its_namespace_closed(bed: Bed, agent_dir: Path,
                                                  tmp_path: Path) -> None:
    (agent_dir / "policies.yaml").write_text(np("broken", "shop", """
        podSelector: {matchLabels: {app: web}}
        ingress: [{from: [{podSelector: {matchLabels: {app: ["not", "a", "string"]}}}]}]"""),
        encoding="utf-8")
    ip = {n: i for n, _ns, i, _l, _p in PODS}
    proc = bed.node_exec([sys.executable, "-m", "netfence", "agent", "apply", "--node", "node1",
                          "-f", str(agent_dir)], check=False)
    assert proc.returncode == 3, proc.stderr
    assert "broken" in proc.stderr
    assert not bed.probe("client", ip["web1"], "tcp", 80)  # shop fails closed
    assert not bed.probe("web1", ip["client"], "tcp", 80)
    assert bed.probe("client", ip["other"], "tcp", 80)  # ops is unaffected
