"""The node agent's loop: watch the inputs, compile, sync; log denials; serve metrics.

One writer thread (the caller of ``Agent.run``) owns the kernel table. Input changes are
debounced (``debounce`` after the last change, at most ``max_interval`` between a change and
its sync, at least ``min_interval`` between syncs); a full resync runs at start-up, every
``resync_interval`` and after any error. A policy object that fails to load makes the pods it
could govern fail closed (its namespace; every local pod for a cluster-scoped kind) unless
``fail_open`` is set.
"""

from __future__ import annotations

import collections
import gc
import importlib.util
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from netfence import api
from netfence.agent.sync import Syncer
from netfence.errors import ClusterError, Severity
from netfence.model.cluster import ClusterState, Pod
from netfence.nft import HostConfig, HostEndpoint, Ruleset, compile_host, compile_node
from netfence.nft.compile import NodeCompiler
from netfence.nft.model import Chain, Log, NRule

if TYPE_CHECKING:
    from netfence.agent.watch import ClusterWatch

__all__ = ["Agent", "AgentConfig", "Attributor", "Metrics", "bridge_netfilter",
           "desired_ruleset", "fingerprint"]

POLICY_STORES = {  # the cluster watch's store names -> policy kinds patched in place
    "networkpolicies.networking.k8s.io": "NetworkPolicy",
    "clusternetworkpolicies.policy.networking.k8s.io": "ClusterNetworkPolicy",
    "adminnetworkpolicies.policy.networking.k8s.io": "AdminNetworkPolicy",
    "baselineadminnetworkpolicies.policy.networking.k8s.io": "BaselineAdminNetworkPolicy",
}
POLICY_KINDS = {"NetworkPolicy": False, "ClusterNetworkPolicy": True,
                "AdminNetworkPolicy": True, "BaselineAdminNetworkPolicy": True}
VERDICTS = {"D": "deny", "W": "would-deny", "AD": "deny (allowed once audit policies enforce)",
            "F": "deny (fail-closed)"}


@dataclass(slots=True)
class AgentConfig:
    paths: list[str] = field(default_factory=list)
    cluster: bool = False
    node: str = ""
    host: HostEndpoint | None = None
    host_config: HostConfig | None = None
    fail_open: bool = False
    debounce: float = 0.1
    min_interval: float = 0.2
    max_interval: float = 2.0
    poll: float = 0.25
    resync_interval: float = 300.0
    log_group: int = 100
    log_buffer: int = 10_000
    context: str | None = None  # --cluster: kubeconfig context and file
    kubeconfig: str | None = None
    cluster_source: str = "auto"  # "watch" (API, lightkube), "kubectl" (polling), "auto"
    ignore: list[str] = field(default_factory=list)  # resolved paths the watch skips


def fingerprint(paths: list[str], ignore: frozenset[str] = frozenset()
                ) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of every input file: cheap change detection by polling."""
    out: list[tuple[str, int, int]] = []
    for p in paths:
        root = Path(p)
        files: Iterator[Path] = root.rglob("*") if root.is_dir() else iter([root])
        for f in files:
            if ignore and str(f.resolve()) in ignore:
                continue  # e.g. our own flow log written inside a watched directory
            try:
                st = f.stat()
            except OSError:
                continue
            if f.is_file():
                out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(sorted(out))


def _broken_policy_namespaces(state: ClusterState) -> set[str] | None:
    """Namespaces whose policies failed to load ({"*"}: a cluster-scoped kind failed)."""
    out: set[str] = set()
    for d in state.diagnostics:
        obj = d.source.obj
        if d.severity < Severity.ERROR or obj is None or obj.kind not in POLICY_KINDS:
            continue
        out.add("*" if POLICY_KINDS[obj.kind] else obj.namespace)
    return out or None


def _fail_closed_pods(rs: Ruleset, state: ClusterState, namespaces: set[str],
                     host_namespace: str | None = None) -> None:
    """Send the pods a broken policy might govern to log-and-drop chains, both directions
    (in host mode the host itself, behind its failsafe rules)."""
    for letter, prefix in (("I", "in"), ("E", "eg")):
        name = f"{prefix}-failclosed"
        rs.chains[name] = Chain(name, (
            NRule((), "drop", "fail-closed: a policy that may select this pod failed to load",
                  Log(f"F|{letter}|failclosed|fc|")),
            NRule((), "drop", "fail-closed")))
        if host_namespace is not None and ("*" in namespaces or host_namespace in namespaces):
            rs.entry[prefix] = name
    for pod in state.pods:
        if pod.node != rs.node or pod.host_network or not pod.ips:
            continue
        if "*" in namespaces or pod.namespace in namespaces:
            for ip in pod.ips:
                fam = 6 if ":" in ip else 4
                rs.maps.setdefault(f"in{fam}", {})[ip] = "in-failclosed"
                rs.maps.setdefault(f"eg{fam}", {})[ip] = "eg-failclosed"


def bridge_netfilter(say: Callable[[str], None]) -> None:
    """Bridge CNIs need br_netfilter's call-iptables: set it, or warn when it is missing."""
    for name in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
        path = Path("/proc/sys/net/bridge") / name
        try:
            if path.read_text().strip() != "1":
                path.write_text("1\n")
                say(f"netfence agent: set net.bridge.{name}=1 (bridged pod traffic must "
                    "reach the forward hook)")
        except FileNotFoundError:
            say("netfence agent: warning: br_netfilter is not loaded; with a bridge CNI, "
                "pod-to-pod traffic on this node bypasses nftables (routed CNIs are fine)")
            return
        except OSError as exc:
            say(f"netfence agent: warning: cannot set net.bridge.{name}=1: {exc}")


def desired_ruleset(state: ClusterState, config: AgentConfig,
                    compiler: NodeCompiler | None = None) -> Ruleset:
    """The node's (or host's) ruleset; ``compiler`` reuses the previous compile (churn)."""
    if config.host is not None:
        rs = compile_host(state, config.host, config.host_config)
    elif compiler is not None:
        rs = compiler.compile(state)
    else:
        rs = compile_node(state, config.node)
    broken = _broken_policy_namespaces(state)
    if broken and not config.fail_open:
        rs = replace(rs, chains=dict(rs.chains), maps={k: dict(v) for k, v in rs.maps.items()},
                     entry=dict(rs.entry))
        _fail_closed_pods(rs, state, broken,
                          config.host.namespace if config.host is not None else None)
        rs.chains = dict(sorted(rs.chains.items()))
    return rs


class Attributor:
    """Turns NFLOG prefixes and addresses into pods, policies and rules."""

    def __init__(self) -> None:
        self.ruleset: Ruleset | None = None
        self.pods: dict[str, str] = {}

    def update(self, state: ClusterState, rs: Ruleset) -> None:
        self.ruleset = rs
        self.pods = {ip: p.key for p in state.pods for ip in p.ips if not p.host_network}

    def record(self, node: str, prefix: str, src: str | None, dst: str | None,
               proto: str | None, sport: int | None, dport: int | None,
               ts: float | None) -> dict[str, Any]:
        parts = prefix.split("|")
        code, letter, gid, rid = [*parts, "", "", "", ""][:4]
        prov = self.ruleset.provenance.get(f"{gid}|{rid}") if self.ruleset else None
        rec: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts or time.time())),
            "node": node,
            "verdict": VERDICTS.get(code, code),
            "code": code,
            "direction": {"I": "ingress", "E": "egress"}.get(letter, letter),
            "src": src, "dst": dst, "proto": proto, "sport": sport, "dport": dport,
            "src_pod": self.pods.get(src or ""), "dst_pod": self.pods.get(dst or ""),
            "group": gid, "rule": rid,
            "policies": list(prov.policies) if prov else [],
            "reason": prov.rule if prov else ("a policy failed to load" if code == "F" else ""),
        }
        return rec


@dataclass(slots=True)
class Metrics:
    syncs: int = 0
    full_syncs: int = 0
    sync_errors: int = 0
    failed_closed: int = 0
    last_sync_seconds: float = 0.0
    last_sync_time: float = 0.0
    load_errors: int = 0
    rules: int = 0
    elements: int = 0
    log_records: int = 0
    log_dropped: int = 0
    healthy: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prometheus(self) -> str:
        with self.lock:
            items = [
                ("netfence_agent_syncs_total", "counter", self.syncs),
                ("netfence_agent_full_syncs_total", "counter", self.full_syncs),
                ("netfence_agent_sync_errors_total", "counter", self.sync_errors),
                ("netfence_agent_failed_closed_total", "counter", self.failed_closed),
                ("netfence_agent_input_errors_total", "counter", self.load_errors),
                ("netfence_agent_last_sync_seconds", "gauge", self.last_sync_seconds),
                ("netfence_agent_last_sync_timestamp_seconds", "gauge", self.last_sync_time),
                ("netfence_agent_rules", "gauge", self.rules),
                ("netfence_agent_set_elements", "gauge", self.elements),
                ("netfence_agent_flow_log_records_total", "counter", self.log_records),
                ("netfence_agent_flow_log_dropped_total", "counter", self.log_dropped),
            ]
        lines: list[str] = []
        for name, kind, value in items:
            lines += [f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(lines) + "\n"


def serve_metrics(metrics: Metrics, address: str, port: int) -> ThreadingHTTPServer:
    """``/metrics`` (Prometheus text) and ``/healthz`` (200 once a sync succeeded)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, status = metrics.prometheus().encode(), 200
            elif self.path == "/healthz":
                ok = metrics.healthy
                body, status = (b"ok\n", 200) if ok else (b"not synced\n", 503)
            else:
                body, status = b"not found\n", 404
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET

    server = Server((address.strip("[]"), port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


class FlowLog:
    """Bounded queue of flow records, written as JSON lines by one thread."""

    def __init__(self, out: IO[str], metrics: Metrics, size: int) -> None:
        self.out = out
        self.metrics = metrics
        self.queue: collections.deque[dict[str, Any]] = collections.deque()
        self.size = size
        self.cond = threading.Condition()

    def put(self, rec: dict[str, Any]) -> None:
        with self.cond:
            if len(self.queue) >= self.size:
                with self.metrics.lock:
                    self.metrics.log_dropped += 1
                return
            self.queue.append(rec)
            self.cond.notify()

    def drain(self, stop: threading.Event) -> None:
        while not stop.is_set() or self.queue:
            with self.cond:
                if not self.queue:
                    self.cond.wait(0.2)
                batch = list(self.queue)
                self.queue.clear()
            for rec in batch:
                self.out.write(json.dumps(rec, sort_keys=True) + "\n")
            if batch:
                self.out.flush()
                with self.metrics.lock:
                    self.metrics.log_records += len(batch)


class Agent:
    def __init__(self, config: AgentConfig, syncer: Syncer,
                 say: Callable[[str], None], flow_out: IO[str] | None = None) -> None:
        self.config = config
        self.syncer = syncer
        self.say = say
        self.metrics = Metrics()
        self.attributor = Attributor()
        self.stop = threading.Event()
        self.compiler = NodeCompiler(config.node) if config.host is None else None
        self.flow = FlowLog(flow_out, self.metrics, config.log_buffer) if flow_out else None
        self.watch: ClusterWatch | None = None  # --cluster through the API: start_watch
        self._state: ClusterState | None = None  # the last snapshot compiled
        self._files_changed = False

    def load(self) -> ClusterState:
        if self.watch is not None:
            return api.load_texts(self.watch.snapshot(), self.config.paths, True)
        return api.load(self.config.paths, True, cluster=self.config.cluster,
                        context=self.config.context, kubeconfig=self.config.kubeconfig)

    def current_state(self, whole: bool) -> ClusterState:
        """The snapshot to compile. With a cluster watch and only pod events since the last
        sync, the last snapshot is patched with just those pods (unchanged pods stay the very
        same objects, which the incremental compiler skips at once); anything else (files,
        namespaces, policies, a re-list, a full resync) rebuilds it."""
        if self.watch is not None:
            events = self.watch.drain()  # before a snapshot: later events patch it again
            if not whole and events is not None and self._state is not None \
                    and set(events) <= {"pods"} | POLICY_STORES.keys() and not (
                        POLICY_STORES.keys() & set(events)
                        and _broken_policy_namespaces(self._state)):  # may be the fix
                patched: ClusterState | None = self._state
                if "pods" in events:
                    patched = self._patch(self._state, events["pods"])
                for store, kind in POLICY_STORES.items():
                    if patched is not None and store in events:
                        patched = self._patch_policies(patched, kind, events[store])
                if patched is not None:
                    self._state = patched
                    return patched
        self._state = self.load()
        return self._state

    def _patch_policies(self, state: ClusterState, kind: str, events: list[tuple[
            str, tuple[str, str], dict[str, Any] | None]]) -> ClusterState | None:
        """Policy events: the edited, added and deleted policies, in place by (kind, ns, name)
        so every other policy keeps its object (the incremental compiler's fast path)."""
        last: dict[tuple[str, str], dict[str, Any] | None] = {}
        for _typ, key, obj in events:
            last[key] = obj
        built = api.objects_state([o for o in last.values() if o is not None])
        if built is None or len(built.policies) != sum(o is not None for o in last.values()):
            return None  # an invalid or unmodelled object: a full load reports it
        new = {(p.ref.namespace, p.ref.name): p for p in built.policies}
        out = []
        for p in state.policies:
            key = (p.ref.namespace, p.ref.name)
            if p.ref.kind != kind or key not in last:
                out.append(p)
            elif key in new:
                out.append(new.pop(key))
        out += new.values()  # added
        return replace(state, policies=tuple(out))

    def _patch(self, state: ClusterState, events: list[tuple[str, tuple[str, str],
               dict[str, Any] | None]]) -> ClusterState | None:
        last: dict[str, dict[str, Any] | None] = {}
        for _typ, (ns, name), obj in events:
            last[f"{ns}/{name}"] = obj  # the last event per pod wins
        new = api.pods_from_objects([o for o in last.values() if o is not None])
        if new is None:
            return None  # something in them is invalid: a full load reports it
        by_key = {p.key: p for p in new}
        pods: list[Pod | None] = list(state.pods)
        at = {p.key: i for i, p in enumerate(state.pods)} if len(last) > 3 else None
        gone = False
        for key, obj in last.items():
            i = at.get(key) if at is not None else next(
                (j for j, p in enumerate(state.pods) if p.key == key), None)
            if obj is None or key not in by_key:
                if i is not None:
                    pods[i] = None
                    gone = True
            elif i is not None:
                pods[i] = by_key[key]
            else:
                pods.append(by_key[key])
        return replace(state, pods=tuple(p for p in pods if p is not None) if gone
                       else tuple(pods))  # type: ignore[arg-type]

    def start_watch(self, ready_timeout: float = 30.0) -> None:
        """``--cluster``: list+watch the API (agent/watch.py) when lightkube is installed or
        asked for, else poll with kubectl; waits (bounded) for the first complete listing."""
        cfg = self.config
        if not cfg.cluster or cfg.cluster_source == "kubectl" or self.watch is not None:
            return
        if cfg.cluster_source == "auto" and importlib.util.find_spec("lightkube") is None:
            self.say("netfence agent: lightkube is not installed: polling the cluster with "
                     "kubectl (pip install 'netfence[agent]' to watch it)")
            return
        try:
            from netfence.agent.watch import ClusterWatch
        except ImportError as exc:
            raise ClusterError(f"watching the cluster needs lightkube ({exc}): "
                               "pip install 'netfence[agent]'") from None
        self.watch = ClusterWatch(cfg.context, cfg.kubeconfig, say=self.say)
        self.watch.start()
        deadline = time.monotonic() + ready_timeout
        while not self.watch.wait_ready(0.1) and not self.stop.is_set():
            if time.monotonic() >= deadline:
                self.say("netfence agent: the cluster watch is not ready yet: "
                         + "; ".join(self.watch.errors() or ["still listing"]))
                break
        self.watch.changed.clear()  # the first sync follows

    def sync_once(self, full: bool = False) -> bool:
        """Load, compile and sync once, with the cyclic GC paused (its full passes over a
        10,000-pod snapshot cost ~0.4 s); what survives is frozen out of later passes."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._sync_once(full)
        finally:
            if full:  # off the event path: let the collector see everything once
                gc.unfreeze()
                gc.collect()
            gc.freeze()
            if enabled:
                gc.enable()

    def _sync_once(self, full: bool) -> bool:
        if full and self.compiler is not None:
            self.compiler = NodeCompiler(self.config.node)  # a full resync recompiles too
        try:
            state = self.current_state(whole=full or self._files_changed)
            self._files_changed = False
            desired = desired_ruleset(state, self.config, self.compiler)
        except Exception as exc:
            with self.metrics.lock:
                self.metrics.load_errors += 1
            self.say(f"netfence agent: cannot load inputs, keeping the applied ruleset: {exc}")
            return False
        for d in state.diagnostics:
            if d.severity >= Severity.ERROR:
                self.say(d.line())
        if full:
            self.syncer.applied = None
        try:
            result = self.syncer.sync(desired)
        except Exception as exc:
            self.syncer.applied = None
            with self.metrics.lock:
                self.metrics.sync_errors += 1
                self.metrics.healthy = False
            self.say(f"netfence agent: sync failed, will retry with a full resync: {exc}")
            return False
        self.attributor.update(state, self.syncer.applied or desired)
        with self.metrics.lock:
            self.metrics.syncs += 1
            self.metrics.full_syncs += int(result.full)
            self.metrics.sync_errors += int(bool(result.error))
            self.metrics.failed_closed += int(result.failed_closed)
            self.metrics.last_sync_seconds = result.seconds
            self.metrics.last_sync_time = time.time()
            self.metrics.rules = desired.rule_count()
            self.metrics.elements = desired.element_count()
            self.metrics.healthy = not result.error
        if result.error:
            self.say(f"netfence agent: the kernel rejected the ruleset: {result.error}")
        if result.commands or result.full:
            self.say(f"netfence agent: {'full ' if result.full else ''}sync: {result.commands} "
                     f"command(s) in {result.seconds * 1000:.1f} ms")
        return not result.error

    def nflog_loop(self) -> None:
        from netfence.agent.nflog import NflogReader

        assert self.flow is not None
        try:
            reader = NflogReader()
            reader.open(self.config.log_group)
        except OSError as exc:
            self.say(f"netfence agent: NFLOG unavailable, no flow log: {exc}")
            return
        node = self.config.host.name if self.config.host else self.config.node
        with reader:
            while not self.stop.is_set():
                for pkt in reader.read(0.2):
                    self.flow.put(self.attributor.record(
                        node, pkt.prefix, pkt.src, pkt.dst, pkt.proto, pkt.sport, pkt.dport,
                        pkt.ts))

    def run(self, once: bool = False, max_seconds: float | None = None) -> None:
        """Reconcile until ``stop`` is set (or ``max_seconds`` pass): the writer thread."""
        self.start_watch()  # first: a bad cluster configuration raises before any thread
        threads: list[threading.Thread] = []
        if self.flow is not None:
            threads.append(threading.Thread(target=self.nflog_loop, name="nflog", daemon=True))
            threads.append(threading.Thread(target=self.flow.drain, args=(self.stop,),
                                            name="flowlog", daemon=True))
        for t in threads:
            t.start()
        cfg = self.config
        started = time.monotonic()
        ignore = frozenset(cfg.ignore)
        seen = fingerprint(cfg.paths, ignore)
        self.sync_once(full=True)
        last_sync = last_full = time.monotonic()
        changed_at: float | None = None
        pending_since: float | None = None
        try:
            while not once and not self.stop.is_set():
                now = time.monotonic()
                if max_seconds is not None and now - started >= max_seconds:
                    break
                fp = fingerprint(cfg.paths, ignore) if cfg.paths else seen
                if fp != seen:
                    seen = fp
                    self._files_changed = True
                    changed_at = now
                    pending_since = pending_since or now
                if self.watch is not None and self.watch.changed.is_set():
                    self.watch.changed.clear()  # before the snapshot: later changes set it
                    changed_at = now
                    pending_since = pending_since or now
                due = pending_since is not None and changed_at is not None and (
                    now - changed_at >= cfg.debounce or now - pending_since >= cfg.max_interval)
                if cfg.cluster and self.watch is None and now - last_sync >= cfg.max_interval:
                    due = True  # a live cluster has no cheap fingerprint: poll it
                if due and now - last_sync >= cfg.min_interval:
                    ok = self.sync_once()
                    last_sync = time.monotonic()
                    pending_since = changed_at = None
                    if not ok:
                        last_full = 0.0  # retry with a full resync
                if now - last_full >= cfg.resync_interval or (
                        not self.metrics.healthy and now - last_sync >= cfg.max_interval):
                    self.sync_once(full=True)
                    last_sync = last_full = time.monotonic()
                self.stop.wait(cfg.poll)
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=2.0)
            if self.watch is not None:
                self.watch.stop()
