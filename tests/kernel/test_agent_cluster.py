"""The agent's production path end to end: ``agent run --cluster`` watching an API server,
enforcing in the real kernel, and following pod and policy events.

No live API server is available here, so ``tests/kernel/fakeapi.py`` serves recorded-style
list and watch responses (written by this test) on 127.0.0.1 inside the bed's node namespace,
where the agent runs too (as on a node, with hostNetwork).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.bed import Bed, PodSpec, session_suffix
from tests.kernel.test_agent_run import RunningAgent
from tests.kernel.test_agent_truth import PODS, UDP, cluster_yaml

FAKE = Path(__file__).with_name("fakeapi.py")
TCP = (80, 5432)
IP = {n: i for n, _ns, i, _l, _p in PODS}
DB_IN = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "db-in", "namespace": "shop", "resourceVersion": "10"},
         "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                               "ports": [{"port": 5432}]}]}}


@pytest.fixture(scope="module")
def bed(kernel_env: dict[str, Any]) -> Iterator[Bed]:
    if not kernel_env.get("br_netfilter"):
        pytest.skip("br_netfilter is not available")
    pytest.importorskip("lightkube", reason="the watch source needs the 'agent' extra")
    specs = [PodSpec(name, ip, TCP, UDP) for name, _ns, ip, _l, _p in PODS]
    with Bed(f"ac{session_suffix()}", specs, "bridge") as b:
        yield b


def api_lists(root: Path) -> None:
    docs = [json.loads(d) for d in cluster_yaml().split("\n---\n") if d.strip()]
    by = {"Namespace": "namespaces", "Pod": "pods"}
    lists: dict[str, list[dict[str, Any]]] = {
        "namespaces": [], "nodes": [], "pods": [], "services": [], "networkpolicies": [DB_IN]}
    for d in docs:
        d["metadata"]["resourceVersion"] = "5"
        lists[by[d["kind"]]].append(d)
    kinds = {"namespaces": "NamespaceList", "nodes": "NodeList", "pods": "PodList",
             "services": "ServiceList", "networkpolicies": "NetworkPolicyList"}
    for name, items in lists.items():
        api_version = "networking.k8s.io/v1" if name == "networkpolicies" else "v1"
        (root / f"{name}.json").write_text(json.dumps({
            "kind": kinds[name], "apiVersion": api_version,
            "metadata": {"resourceVersion": "100"}, "items": items}), encoding="utf-8")
        (root / f"{name}.watch").write_text("", encoding="utf-8")


def event(root: Path, name: str, typ: str, obj: dict[str, Any]) -> None:
    with (root / f"{name}.watch").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"type": typ, "object": obj}) + "\n")


def until(cond: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_agent_follows_the_cluster_watch_in_the_kernel(bed: Bed, tmp_path: Path) -> None:
    api_dir = tmp_path / "api"
    api_dir.mkdir()
    api_lists(api_dir)
    port_file = tmp_path / "port"
    server = subprocess.Popen(["ip", "netns", "exec", bed.node_ns, sys.executable, str(FAKE),
                               "--dir", str(api_dir), "--port-file", str(port_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until(port_file.exists, "the fake API server did not start")
        until(lambda: port_file.read_text(encoding="utf-8").strip() != "", "no port")
        port = int(port_file.read_text(encoding="utf-8"))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "bed",
            "clusters": [{"name": "bed", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "agent", "user": {"token": "t"}}],
            "contexts": [{"name": "bed", "context": {"cluster": "bed", "user": "agent"}}]}),
            encoding="utf-8")
        empty = tmp_path / "local"  # RunningAgent passes -f: a file with nothing to model
        empty.mkdir()
        (empty / "note.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: note, namespace: shop}\n",
            encoding="utf-8")
        agent = RunningAgent(bed, empty, tmp_path / "flows.jsonl", "--no-flow-log",
                             "--cluster", "--cluster-source", "watch",
                             "--kubeconfig", str(kubeconfig))
        try:
            agent.wait_syncs(1, timeout=40)
            assert bed.probe("web2", IP["db"], "tcp", 5432)
            assert not bed.probe("client", IP["db"], "tcp", 5432)
            # a pod event: web2 is relabelled out of app=web -> db no longer admits it
            web2 = json.loads(next(d for d in cluster_yaml().split("\n---\n")
                                   if '"name": "web2"' in d))
            web2["metadata"]["labels"] = {"app": "legacy"}
            web2["metadata"]["resourceVersion"] = "101"
            event(api_dir, "pods", "MODIFIED", web2)
            until(lambda: not bed.probe("web2", IP["db"], "tcp", 5432),
                  "the pod event never reached the kernel:\n" + "\n".join(agent.lines[-10:]))
            assert bed.probe("web1", IP["db"], "tcp", 5432)
            # a policy event: db-in deleted -> db is no longer isolated
            event(api_dir, "networkpolicies", "DELETED",
                  {**DB_IN, "metadata": {**DB_IN["metadata"], "resourceVersion": "102"}})
            until(lambda: bed.probe("other", IP["db"], "tcp", 5432),
                  "the policy event never reached the kernel:\n" + "\n".join(agent.lines[-10:]))
            assert not any("Traceback" in line for line in agent.lines)
        finally:
            agent.stop()
    finally:
        server.terminate()
        server.wait(timeout=10)
