"""Legacy host mode in the real kernel: the bed's node namespace plays a standalone host.

The host (10.244.1.1 on the bridge) runs echo services on TCP 22 and 8080; the pods are its
clients. ``netfence agent apply --host`` selects the host by labels like a pod, so an
ordinary NetworkPolicy in its namespace governs its input hook; the failsafe lets the
management CIDR reach SSH whatever the policies say; the dead-man switch reverts an apply that
nobody confirms.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.bed import Bed, PodSpec, _Helper, session_suffix
from tests.kernel.test_agent_truth import PODS, UDP, cluster_yaml, np

HOST_POLICY = np("legacy-in", "legacy-hosts", """
    podSelector: {matchLabels: {role: legacy}}
    ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}], ports: [{port: 8080}]}]""")  # noqa: E501
IP = {n: i for n, _ns, i, _l, _p in PODS}


@pytest.fixture(scope="module")
def host_bed(kernel_env: dict[str, Any]) -> Iterator[Bed]:
    if not kernel_env.get("br_netfilter"):
        pytest.skip("br_netfilter is not available")
    specs = [PodSpec(name, ip, (80,), UDP) for name, _ns, ip, _l, _p in PODS]
    with Bed(f"ho{session_suffix()}", specs, "bridge") as b:
        helper = _Helper(b.node_ns, (22, 8080), (), sys.executable)  # the host's services
        helper.wait_ready(time.monotonic() + 15)
        try:
            yield b
        finally:
            helper.stop()


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    (tmp_path / "cluster.yaml").write_text(cluster_yaml(), encoding="utf-8")
    (tmp_path / "host.yaml").write_text(HOST_POLICY, encoding="utf-8")
    return tmp_path


def agent(bed: Bed, manifests: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "netfence", "agent", "apply", "--host", "--name", "legacy1",
            "--labels", "role=legacy,tier=db", "--address", bed.node_ip,
            "--management", f"{IP['client']}/32", "-f", str(manifests), "-q", *extra]


def reachable(bed: Bed) -> dict[tuple[str, int], bool]:
    return {(pod, port): bed.probe(pod, bed.node_ip, "tcp", port)
            for pod in ("web1", "client", "other") for port in (22, 8080)}


def test_host_policy_with_failsafe(host_bed: Bed, manifests: Path) -> None:
    host_bed.node_exec(["nft", "delete", "table", "inet", "netfence"], check=False)
    assert all(reachable(host_bed).values())
    proc = host_bed.node_exec(agent(host_bed, manifests, "--confirm-timeout", "0"))
    assert proc.returncode == 0, proc.stderr
    try:
        assert reachable(host_bed) == {
            ("web1", 8080): True,     # the policy allows web pods on 8080
            ("web1", 22): False,      # ...and nothing else
            ("client", 8080): False,
            ("client", 22): True,     # failsafe: management CIDR to SSH, before any policy
            ("other", 8080): False,
            ("other", 22): False,
        }
        # pod-to-pod traffic does not pass the host's input hook
        assert host_bed.probe("other", IP["web1"], "tcp", 80)
    finally:
        host_bed.node_exec(["nft", "delete", "table", "inet", "netfence"], check=False)


def test_deadman_switch_reverts_unless_confirmed(host_bed: Bed, manifests: Path,
                                                 tmp_path: Path) -> None:
    host_bed.node_exec(["nft", "delete", "table", "inet", "netfence"], check=False)
    confirm = tmp_path / "confirm"
    proc = host_bed.node_exec(agent(host_bed, manifests, "--confirm-timeout", "2",
                                    "--confirm-file", str(confirm)), timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert "restored" in proc.stderr
    assert host_bed.probe("other", host_bed.node_ip, "tcp", 8080)  # reverted: open again
    assert host_bed.node_exec(["nft", "list", "table", "inet", "netfence"]).returncode != 0

    # confirmed from "another session" while the switch waits: the ruleset stays
    def confirm_soon() -> None:
        time.sleep(1.0)
        host_bed.node_exec([sys.executable, "-m", "netfence", "agent", "confirm",
                            "--confirm-file", str(confirm)])

    t = threading.Thread(target=confirm_soon)
    t.start()
    try:
        proc = host_bed.node_exec(agent(host_bed, manifests, "--confirm-timeout", "10",
                                        "--confirm-file", str(confirm)), timeout=30)
        t.join(timeout=15)
        assert proc.returncode == 0, proc.stderr
        assert not host_bed.probe("other", host_bed.node_ip, "tcp", 8080)
        assert host_bed.probe("web1", host_bed.node_ip, "tcp", 8080)
    finally:
        host_bed.node_exec(["nft", "delete", "table", "inet", "netfence"], check=False)


def test_remove_deletes_only_our_table(host_bed: Bed, manifests: Path) -> None:
    """`netfence agent remove` uninstalls: our table goes at once, other tables stay."""
    host_bed.nft("table inet other {\n\tchain c {\n"
                 "\t\ttype filter hook input priority 10;\n\t}\n}\n")
    try:
        proc = host_bed.node_exec(agent(host_bed, manifests, "--confirm-timeout", "0"))
        assert proc.returncode == 0, proc.stderr
        assert not host_bed.probe("other", host_bed.node_ip, "tcp", 8080)
        remove = [sys.executable, "-m", "netfence", "agent", "remove"]
        proc = host_bed.node_exec(remove)
        assert proc.returncode == 0 and "removed" in proc.stderr, proc.stderr
        assert host_bed.node_exec(["nft", "list", "table", "inet", "netfence"]).returncode != 0
        assert host_bed.node_exec(["nft", "list", "table", "inet", "other"]).returncode == 0
        assert host_bed.probe("other", host_bed.node_ip, "tcp", 8080)
        proc = host_bed.node_exec(remove)  # nothing left: says so, still exit 0
        assert proc.returncode == 0 and "nothing to remove" in proc.stderr, proc.stderr
    finally:
        host_bed.node_exec(["nft", "delete", "table", "inet", "other"], check=False)
        host_bed.node_exec(["nft", "delete", "table", "inet", "netfence"], check=False)
