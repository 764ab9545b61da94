"""The agent's reconcile loop with a recording applier (no kernel): start-up full resync,
debounced change syncs, recovery after a rejected batch, metrics and health endpoints.

The kernel side of the same loop is exercised in tests/kernel/test_agent_run.py.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from netfence.agent.run import Agent, AgentConfig, serve_metrics
from netfence.agent.sync import ApplyError, Syncer
from tests.kernel.test_agent_truth import cluster_yaml, np


class Recorder:
    """A RulesetApplier that keeps every batch; ``fail`` batches are rejected."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []
        self.fail = 0
        self.lock = threading.Lock()

    def apply(self, batch: dict[str, Any]) -> None:
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise ApplyError("Error: Could not process rule: No such file or directory")
            self.batches.append(batch)

    def listing(self) -> dict[str, Any] | None:
        return None

    def full(self) -> int:
        return sum(1 for b in self.batches if b["nftables"][1] == {"add": {"table": {
            "family": "inet", "name": "netfence"}}})


POLICY = np("web-in", "shop", """
    podSelector: {matchLabels: {app: web}}
    ingress: [{ports: [{port: 80}]}]""")


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    (tmp_path / "cluster.yaml").write_text(cluster_yaml(), encoding="utf-8")
    (tmp_path / "policies.yaml").write_text(POLICY, encoding="utf-8")
    return tmp_path


def start(inputs: Path, rec: Recorder, **cfg: Any) -> tuple[Agent, threading.Thread, list[str]]:
    said: list[str] = []
    config = AgentConfig(paths=[str(inputs)], node="node1", poll=0.02, debounce=0.15,
                         min_interval=0.0, max_interval=5.0, **cfg)
    agent = Agent(config, Syncer(rec), said.append)
    t = threading.Thread(target=agent.run, kwargs={"max_seconds": 30}, daemon=True)
    t.start()
    return agent, t, said


def wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_start_is_one_full_resync_then_changes_are_debounced(inputs: Path) -> None:
    rec = Recorder()
    agent, t, said = start(inputs, rec)
    try:
        wait(lambda: len(rec.batches) == 1)
        assert rec.full() == 1
        # three quick edits inside the debounce window -> one sync, with the last content
        for port in (81, 82, 8080):
            (inputs / "policies.yaml").write_text(POLICY.replace("port: 80", f"port: {port}"),
                                                  encoding="utf-8")
            time.sleep(0.03)
        wait(lambda: len(rec.batches) == 2)
        time.sleep(0.4)
        assert len(rec.batches) == 2, said
        last = rec.batches[-1]["nftables"]
        assert rec.full() == 1  # a diff, not a full resync
        assert "8080" in repr(last) and "th" in repr(last)
        assert not any("table" in c.get("delete", {}) for c in last)
    finally:
        agent.stop.set()
        t.join(timeout=10)


def test_rejected_batch_leads_to_full_resync_and_metrics_say_so(inputs: Path) -> None:
    rec = Recorder()
    agent, t, _said = start(inputs, rec)
    server = serve_metrics(agent.metrics, "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        wait(lambda: len(rec.batches) == 1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert r.status == 200
        rec.fail = 1  # the next diff batch is rejected: the agent must resync fully
        (inputs / "policies.yaml").write_text(POLICY.replace("port: 80", "port: 81"),
                                              encoding="utf-8")
        wait(lambda: len(rec.batches) == 2)
        assert rec.full() == 2
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert "netfence_agent_syncs_total 2" in text
        assert "netfence_agent_full_syncs_total 2" in text
        assert "netfence_agent_rules " in text
    finally:
        server.shutdown()
        server.server_close()
        agent.stop.set()
        t.join(timeout=10)


def test_kernel_rejecting_everything_fails_closed(inputs: Path) -> None:
    rec = Recorder()
    rec.fail = 1  # the first full resync fails; the fail-closed ruleset is accepted
    agent, t, said = start(inputs, rec)
    try:
        wait(lambda: len(rec.batches) == 1)
        text = repr(rec.batches[0])
        assert "fail-closed" in text and "F|I|" in text
        assert agent.metrics.failed_closed == 1
        assert any("rejected" in s for s in said)
    finally:
        agent.stop.set()
        t.join(timeout=10)


def test_health_is_503_before_the_first_sync() -> None:
    from netfence.agent.run import Metrics

    metrics = Metrics()
    server = serve_metrics(metrics, "127.0.0.1", 0)
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/healthz",
                                   timeout=5)
        assert e.value.code == 503
        e.value.close()
    finally:
        server.shutdown()
        server.server_close()


class FakeWatch:
    """Stands in for agent/watch.py's ClusterWatch: a snapshot, and pod events to drain."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        self.events: list[tuple[str, tuple[str, str], dict[str, Any] | None]] = []
        self.relisted = False

    def snapshot(self) -> list[Any]:
        from netfence.sources.files import TextFile

        return [TextFile("cluster:all", json.dumps({"apiVersion": "v1", "kind": "List",
                                                    "items": self.objects}), True)]

    def drain(self) -> dict[str, list[Any]] | None:
        events, self.events = self.events, []
        if self.relisted:
            self.relisted = False
            return None
        out: dict[str, list[Any]] = {}
        for store, *event in events:
            out.setdefault(store, []).append(tuple(event))
        return out

    def put(self, typ: str, obj: dict[str, Any]) -> None:
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self.objects = [o for o in self.objects if o["kind"] != obj["kind"] or (
            o["metadata"].get("namespace", ""), o["metadata"]["name"]) != key]
        if typ != "DELETED":
            self.objects.append(obj)
        store = {"Pod": "pods", "NetworkPolicy": "networkpolicies.networking.k8s.io"}.get(
            obj["kind"], obj["kind"])
        self.events.append((store, typ, key, None if typ == "DELETED" else obj))


def test_pod_events_patch_the_last_snapshot_exactly(inputs: Path) -> None:
    """Pod events from the watch patch the snapshot instead of reloading it: the pods that did
    not change stay the same objects, and the result compiles exactly like a full reload."""
    from netfence import api
    from netfence.nft import compile_node

    docs = [json.loads(d) for d in cluster_yaml().split("\n---\n") if d.strip()]
    docs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "db-in", "namespace": "shop"},
                 "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
                     {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}})
    watch = FakeWatch(docs)
    agent = Agent(AgentConfig(node="node1", cluster=True), Syncer(Recorder()), lambda s: None)
    agent.watch = watch  # type: ignore[assignment]
    first = agent.current_state(whole=False)
    web1 = next(o for o in docs if o["kind"] == "Pod" and o["metadata"]["name"] == "web1")
    moved = json.loads(json.dumps(web1))
    moved["status"] = {"phase": "Running", "podIP": "10.244.1.77"}
    watch.put("MODIFIED", moved)
    other = next(o for o in docs if o["kind"] == "Pod" and o["metadata"]["name"] == "other")
    watch.put("DELETED", other)
    extra = json.loads(json.dumps(web1))
    extra["metadata"]["name"] = "web3"
    extra["status"] = {"phase": "Running", "podIP": "10.244.1.78"}
    watch.put("ADDED", extra)
    patched = agent.current_state(whole=False)
    assert patched is not first and patched.policies is first.policies  # not reloaded
    keys = [p.key for p in patched.pods]
    assert "ops/other" not in keys and "shop/web3" in keys
    assert next(p for p in patched.pods if p.key == "shop/web1").ips == ("10.244.1.77",)
    same = {p.key for p in first.pods} & {p.key for p in patched.pods} - {"shop/web1"}
    before = {p.key: p for p in first.pods}
    assert all(p is before[p.key] for p in patched.pods if p.key in same)
    full = api.load_texts(watch.snapshot())
    assert compile_node(patched, "node1") == compile_node(full, "node1")
    # a policy edit and a new policy: patched in place too, the rest keep their objects
    np_doc = next(o for o in watch.objects if o["kind"] == "NetworkPolicy")
    edited = json.loads(json.dumps(np_doc))
    edited["spec"]["ingress"][0]["ports"] = [{"port": 5432}]
    watch.put("MODIFIED", edited)
    added = json.loads(json.dumps(np_doc))
    added["metadata"]["name"] = "web-in"
    added["spec"]["podSelector"] = {"matchLabels": {"app": "web"}}
    watch.put("ADDED", added)
    with_policies = agent.current_state(whole=False)
    assert with_policies.pods is patched.pods
    assert sorted(p.ref.name for p in with_policies.policies) == ["db-in", "web-in"]
    full = api.load_texts(watch.snapshot())
    assert compile_node(with_policies, "node1") == compile_node(full, "node1")
    watch.put("DELETED", added)
    assert [p.ref.name for p in agent.current_state(whole=False).policies] == ["db-in"]
    # an invalid pod in an event: the full reload reports it
    bad = json.loads(json.dumps(web1))
    bad["status"] = {"podIP": "10.244.1.300"}
    watch.put("MODIFIED", bad)
    reloaded = agent.current_state(whole=False)
    assert any(d.code == "pod-ip" for d in reloaded.diagnostics)
    # a re-list (or any other kind changing) rebuilds the snapshot
    watch.relisted = True
    again = agent.current_state(whole=False)
    assert again.policies[0] is not reloaded.policies[0]
    assert first.policies[0] is patched.policies[0]
    assert again.policies[0].ref.name == "db-in"
