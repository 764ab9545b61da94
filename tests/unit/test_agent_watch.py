"""The agent's watch-based cluster source (agent/watch.py) against a local fake API server.

No live Kubernetes API server is reachable from this machine, so these are RECORDED responses:
tests/fixtures/kubeapi holds list responses (with their resourceVersion), watch streams
(newline-delimited ADDED/MODIFIED/DELETED events, and the ERROR event with a 410 Status that an
API server sends when a resourceVersion has expired) and Status bodies (403, 404), in the API
server's wire format. A ``http.server`` on 127.0.0.1 serves them; lightkube reaches it through a
kubeconfig file (token auth over plain HTTP), exactly as it would reach a real cluster.
Everything is bounded by timeouts and talks only to 127.0.0.1.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from netfence import api
from netfence.agent.run import Agent, AgentConfig
from netfence.agent.sync import Syncer
from netfence.agent.watch import ClusterWatch, trim
from netfence.errors import ClusterError
from tests.unit.test_agent_loop import Recorder

REC = Path(__file__).resolve().parents[1] / "fixtures" / "kubeapi"
PODS = "/api/v1/pods"
NETPOL = "/apis/networking.k8s.io/v1/networkpolicies"
LISTS = {
    "/api/v1/namespaces": ["namespaces.json"],
    "/api/v1/nodes": ["nodes.json"],
    PODS: ["pods.json", "pods-relist.json"],  # the second answers the re-list after a 410
    "/api/v1/services": ["services.json"],
    NETPOL: ["networkpolicies.json"],
}
TOKEN = "recorded-token"


def recorded(name: str) -> bytes:
    return (REC / name).read_bytes()


class FakeApi:
    """Serves the recordings: lists in order (the last repeats), watch streams line by line
    as the test releases them, and Status errors for chosen paths."""

    def __init__(self, errors: dict[str, tuple[int, str]] | None = None) -> None:
        self.errors = errors or {}
        self.list_calls: dict[str, int] = {}
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.auth: set[str] = set()
        self.streams: dict[str, queue.Queue[bytes]] = {p: queue.Queue() for p in LISTS}
        self.watching: dict[str, int] = {}
        self.lock = threading.Lock()
        self.closing = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                params = parse_qs(url.query)
                with fake.lock:
                    fake.requests.append((url.path, params))
                    fake.auth.add(self.headers.get("Authorization", ""))
                if url.path in fake.errors:
                    code, body = fake.errors[url.path]
                    return self.reply(code, recorded(body))
                if url.path not in LISTS:  # e.g. policy.networking.k8s.io: not installed
                    return self.reply(404, recorded("status-404.json"))
                if params.get("watch") == ["true"]:
                    return self.stream(url.path)
                with fake.lock:
                    n = fake.list_calls.get(url.path, 0)
                    fake.list_calls[url.path] = n + 1
                files = LISTS[url.path]
                return self.reply(200, recorded(files[min(n, len(files) - 1)]))

            def reply(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def stream(self, path: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                with fake.lock:
                    fake.watching[path] = fake.watching.get(path, 0) + 1
                q = fake.streams[path]
                try:
                    while not fake.closing.is_set():
                        try:
                            line = q.get(timeout=0.05)
                        except queue.Empty:
                            continue
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                        self.wfile.flush()
                        if b'"type":"ERROR"' in line:
                            break  # the API server ends the watch after an ERROR event
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client went away (stop)
                finally:
                    with fake.lock:
                        fake.watching[path] -= 1

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64  # eight kinds connect at once: no SYN retry (1 s) delays

        Handler.protocol_version = "HTTP/1.1"
        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def push(self, path: str, name: str) -> None:
        for line in recorded(name).splitlines():
            self.streams[path].put(line + b"\n")

    def watch_params(self, path: str) -> list[dict[str, list[str]]]:
        with self.lock:
            return [p for q, p in self.requests if q == path and p.get("watch") == ["true"]]

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def kubeconfig(tmp_path: Path, servers: dict[str, int]) -> str:
    """One context per fake server; the current context points nowhere useful."""
    conf = {
        "apiVersion": "v1", "kind": "Config", "current-context": "unused",
        "clusters": [{"name": n, "cluster": {"server": f"http://127.0.0.1:{p}"}}
                     for n, p in servers.items()]
        + [{"name": "unused", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "agent", "user": {"token": TOKEN}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "agent"}}
                     for n in [*servers, "unused"]],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(conf), encoding="utf-8")  # JSON is YAML
    return str(path)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture
def fake() -> Iterator[FakeApi]:
    server = FakeApi()
    yield server
    server.close()


def wait(cond: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def objects(watch: ClusterWatch, name: str) -> dict[str, dict[str, Any]]:
    files = {tf.name: tf for tf in watch.snapshot()}
    doc = json.loads(files[f"cluster:{name}"].text)
    assert doc["kind"] == "List"
    return {o["metadata"]["name"]: o for o in doc["items"]}


@pytest.fixture
def watching(fake: FakeApi, tmp_path: Path) -> Iterator[tuple[ClusterWatch, list[str]]]:
    said: list[str] = []
    w = ClusterWatch("rec", kubeconfig(tmp_path, {"rec": fake.port}), say=said.append,
                     backoff=(0.05, 0.2), timeout=5.0)
    w.start()
    try:
        assert w.wait_ready(10), w.errors()
        wait(lambda: fake.watching.get(PODS) and fake.watching.get(NETPOL))
        yield w, said
    finally:
        w.stop()
        assert w._thread is not None and not w._thread.is_alive()


def test_lists_then_watches_from_the_lists_resource_version(
        fake: FakeApi, watching: tuple[ClusterWatch, list[str]]) -> None:
    w, said = watching
    names = [tf.name for tf in w.snapshot()]
    assert names == ["cluster:namespaces", "cluster:nodes", "cluster:pods", "cluster:services",
                     "cluster:networkpolicies.networking.k8s.io"]
    assert fake.watch_params(PODS)[0]["resourceVersion"] == ["1000"]
    assert fake.auth == {f"Bearer {TOKEN}"}  # the context's user, over the context's server
    pods = objects(w, "pods")
    assert sorted(pods) == ["api-1", "web-1"]
    web1 = pods["web-1"]
    assert web1["kind"] == "Pod" and web1["apiVersion"] == "v1"  # list items carry neither
    assert "managedFields" not in web1["metadata"] and "conditions" not in web1["status"]
    # absent policy.networking.k8s.io kinds (404): skipped, one line each, and not retried
    skipped = [s for s in said if "not served" in s]
    assert len(skipped) == 3 and all("skipped" in s for s in skipped), said
    state = api.load_texts(w.snapshot())
    assert not [d for d in state.diagnostics if d.severity >= 2], state.diagnostics
    assert {p.key for p in state.pods} == {"shop/api-1", "shop/web-1"}
    assert {n.name for n in state.nodes} == {"node1"}


def test_events_change_the_snapshot_and_fire_the_change_event(
        fake: FakeApi, watching: tuple[ClusterWatch, list[str]]) -> None:
    w, _said = watching
    w.changed.clear()
    fake.push(PODS, "pods-watch-status-only.jsonl")  # a kubelet status heartbeat
    wait(lambda: fake.streams[PODS].empty())
    time.sleep(0.3)
    assert not w.changed.is_set()  # conditions and resourceVersion are not read: no sync
    fake.push(PODS, "pods-watch.jsonl")  # ADDED web-2, MODIFIED web-1, DELETED api-1
    fake.push(NETPOL, "networkpolicies-watch.jsonl")  # ADDED shop/web-in
    wait(lambda: "web-in" in objects(w, "networkpolicies.networking.k8s.io")
         and "api-1" not in objects(w, "pods"))
    assert w.changed.is_set()
    pods = objects(w, "pods")
    assert sorted(pods) == ["web-1", "web-2"]
    assert pods["web-1"]["metadata"]["labels"] == {"app": "web", "tier": "front"}
    state = api.load_texts(w.snapshot())
    assert [str(p.ref) for p in state.policies] == ["NetworkPolicy shop/web-in"]
    assert {p.key for p in state.pods} == {"shop/web-1", "shop/web-2"}


def test_410_gone_leads_to_a_relist_and_a_watch_from_the_new_version(
        fake: FakeApi, watching: tuple[ClusterWatch, list[str]]) -> None:
    w, said = watching
    fake.push(PODS, "pods-watch.jsonl")
    fake.push(PODS, "pods-watch-expired.jsonl")
    wait(lambda: w.lists("pods") == 2)
    wait(lambda: any(p.get("resourceVersion") == ["1200"] for p in fake.watch_params(PODS)))
    assert sorted(objects(w, "pods")) == ["web-1", "web-2", "web-3"]  # web-3: while away
    assert fake.list_calls[PODS] == 2 and fake.list_calls["/api/v1/nodes"] == 1
    assert any("410 Gone" in s and "re-listing" in s for s in said), said


def test_forbidden_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    fake = FakeApi({PODS: (403, "status-403-pods.json")})
    said: list[str] = []
    w = ClusterWatch("denied", kubeconfig(tmp_path, {"denied": fake.port}), say=said.append,
                     backoff=(0.05, 0.2), timeout=5.0)
    try:
        w.start()
        wait(lambda: sum(1 for p, _ in fake.requests if p == PODS) >= 3)  # bounded backoff
        assert not w.ready.is_set()
        with pytest.raises(ClusterError) as exc:
            w.snapshot()
        text = str(exc.value)
        assert "list pods: forbidden (HTTP 403): pods is forbidden: User " in text
        assert "cannot list resource" in text
        forbidden = [s for s in said if "forbidden" in s]
        assert len(forbidden) == 1, said  # said once, not on every retry
        assert not any("Traceback" in s for s in said)
    finally:
        w.stop()
        fake.close()


def test_agent_cannot_load_while_forbidden_and_says_why(tmp_path: Path) -> None:
    fake = FakeApi({PODS: (403, "status-403-pods.json")})
    said: list[str] = []
    cfg = AgentConfig(cluster=True, cluster_source="watch", node="node1", context="denied",
                      kubeconfig=kubeconfig(tmp_path, {"denied": fake.port}))
    agent = Agent(cfg, Syncer(Recorder()), said.append)
    try:
        agent.start_watch(ready_timeout=0.5)
        assert agent.sync_once(full=True) is False
        assert agent.metrics.load_errors == 1
        line = next(s for s in said if "cannot load inputs" in s)
        assert "forbidden (HTTP 403)" in line and "Traceback" not in "".join(said)
    finally:
        if agent.watch is not None:
            agent.watch.stop()
        fake.close()


def test_unknown_context_fails_at_start(tmp_path: Path) -> None:
    w = ClusterWatch("nope", kubeconfig(tmp_path, {}))
    with pytest.raises(ClusterError, match="Context 'nope' not found"):
        w.start()


def test_agent_syncs_on_watch_events(fake: FakeApi, tmp_path: Path) -> None:
    rec = Recorder()
    said: list[str] = []
    cfg = AgentConfig(cluster=True, cluster_source="watch", node="node1", context="rec",
                      kubeconfig=kubeconfig(tmp_path, {"rec": fake.port}), poll=0.02,
                      debounce=0.15, min_interval=0.0, max_interval=5.0)
    agent = Agent(cfg, Syncer(rec), said.append)
    t = threading.Thread(target=agent.run, kwargs={"max_seconds": 30}, daemon=True)
    t.start()
    try:
        wait(lambda: len(rec.batches) == 1)
        assert rec.full() == 1 and agent.metrics.healthy, said
        wait(lambda: fake.watching.get(NETPOL))
        time.sleep(0.3)
        assert len(rec.batches) == 1  # no polling: nothing changed, nothing synced
        fake.push(NETPOL, "networkpolicies-watch.jsonl")
        wait(lambda: len(rec.batches) == 2)
        assert rec.full() == 1  # a diff, driven by the ADDED event
        assert "web-in" in json.dumps(rec.batches[-1])
    finally:
        agent.stop.set()
        t.join(timeout=10)
    assert not t.is_alive()
    assert fake.list_calls["/api/v1/pods"] == 1


def test_auto_falls_back_to_kubectl_without_lightkube(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "lightkube" else real(name, *a))
    said: list[str] = []
    agent = Agent(AgentConfig(cluster=True, node="node1"), Syncer(Recorder()), said.append)
    agent.start_watch()
    assert agent.watch is None  # Agent.load polls through `kubectl get`, as before
    assert any("pip install 'netfence[agent]'" in s for s in said), said


def test_trim_keeps_what_the_model_reads() -> None:
    pod = json.loads(recorded("pods.json"))["items"][0]
    got = trim(pod, "Pod")
    assert set(got["status"]) == {"phase", "hostIP", "hostIPs", "podIP", "podIPs"}
    assert got["spec"] == pod["spec"] and got["metadata"]["labels"] == pod["metadata"]["labels"]
    assert "resourceVersion" not in got["metadata"] and "managedFields" not in got["metadata"]
    node = json.loads(recorded("nodes.json"))["items"][0]
    assert trim(node, "Node")["status"] == {"addresses": node["status"]["addresses"]}
    svc = json.loads(recorded("services.json"))["items"][0]
    assert trim(svc, "Service")["status"] == svc["status"]
