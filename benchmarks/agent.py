"""Node agent benchmark: compile + apply at 10,000 pods, churn, policy edits, throughput.

Run on demand, as root (network namespaces, nftables, iperf3):

    .venv/bin/python benchmarks/agent.py [--pods 10000] [--per-node 110] [--events 5]
        [--cold-runs 3] [--iperf-runs 3] [--iperf-seconds 5] [--mode bridge|routed]
        [--transport nft|libnftables] [--sizes 100,1000,10000] [--pure] [--profile] [--write]

Cluster: ``benchmarks/gen.py`` grown by namespaces until it has ``--pods`` pods (its
policies grow with it), scheduled by ``benchmarks/nodecluster.py`` over ``ceil(pods /
per_node)`` nodes; node ``node-000`` (10.244.1.0/24) is the node under test and also holds
namespace ``bench-iperf`` (an iperf3 server and client, isolated both ways, allowed client ->
server on TCP 5201 only).

Measured, in the node network namespace of a ``tests/kernel/bed.py`` bed (namespaces
``nf-b<suffix>-*``, deleted by name on exit, also after errors), through the agent's own code
path (``compile_node``, then ``Syncer.sync`` with the ``NftCli`` applier = ``nft -j -f -``,
or with ``--transport libnftables`` the in-process ``LibNftables`` applier);
this process enters the node namespace with setns(2) around each step, so ``nft`` runs
directly, as in the agent, without an ``ip netns exec`` wrapper:

* cold load: empty table -> full batch (compile, batch build, nft apply, total);
* pod churn: a pod on another node replaced (new name, new IP; a pod the node's sets
  reference) and a local pod added, ``--events`` of each: compile, diff
  (``transaction(old, new)``), nft apply;
* policy edit: the port of an ``allow-<app>-from-callers`` NetworkPolicy selecting local pods
  changed, ``--events`` times: same breakdown;
* iperf3 between the two bench-iperf bed pods, ``--iperf-runs`` rounds of three interleaved
  runs: no nftables table, a conntrack-only control table (``ct state established,related
  accept``: what every established packet costs under any conntrack-first ruleset), the
  compiled ruleset; medians.

"diff / batch" is ``Syncer.sync`` minus the nft apply: ``transaction(old, new)`` (for the
cold load: the table listing and ``full_json``); "GC pauses" is the cyclic garbage collector's
time inside the row's total (the snapshot of a 10k-pod cluster is ~450k tracked objects, so a
full collection costs ~0.4 s whenever one falls inside a step).

Pure part (also alone with ``--pure``): group-chain rule counts and set element counts of the
node view as the cluster grows, (a) same policies with more replicas, (b) gen.py grown by
namespaces. Prints Markdown tables with ratios against the targets; ``--write`` appends them to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import ctypes
import gc
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from benchmarks import nodecluster as nc  # noqa: E402
from netfence.agent.sync import NftCli, RulesetApplier, Syncer, make_applier  # noqa: E402
from netfence.model.cluster import ClusterState  # noqa: E402
from netfence.nft import Ruleset, compile_node, full_json  # noqa: E402
from netfence.nft.compile import NodeCompiler  # noqa: E402

COMPILER: list[NodeCompiler] = [NodeCompiler("")]
from netfence.nft.model import TABLE  # noqa: E402

TARGET_COLD_S = 1.0
TARGET_CHURN_S = 0.020
TARGET_POLICY_S = 0.050
TARGET_IPERF = 0.90
CLONE_NEWNET = 0x40000000
TRANSPORTS = {"nft": "`nft -j -f -` (NftCli, a process per batch)",
              "libnftables": "in-process libnftables (LibNftables, python3-nftables)",
              "auto": "auto, the agent's default (in-process libnftables when Debian's "
                      "python3-nftables is installed, else `nft -j -f -`)"}
NETNS_DIR = Path("/var/run/netns")


# -- pure: rule and element counts as the cluster grows -------------------------------------------
@dataclass
class Shape:
    label: str
    pods: int
    policies: int
    local: int
    chains: int
    rules: int
    per_chain_mean: float
    per_chain_max: int
    sets: int
    elements: int
    map_elements: int
    compile_s: float


def shape(label: str, cluster: nc.Cluster) -> Shape:
    t0 = time.perf_counter()
    rs = compile_node(cluster.state, nc.LOCAL)
    dt = time.perf_counter() - t0
    sizes = [len(c.rules) for c in rs.chains.values()]
    maps = sum(len(m) for m in rs.maps.values())
    return Shape(label, cluster.pods, cluster.policies, len(cluster.local_pods()),
                 len(rs.chains), rs.rule_count(), statistics.mean(sizes) if sizes else 0.0,
                 max(sizes, default=0), len(rs.sets), rs.element_count() - maps, maps, dt)


def shape_table(rows: list[Shape]) -> str:
    out = ("| cluster | pods | policies | local pods | group chains | rules in group chains | "
           "rules/chain mean (max) | sets | set elements | vmap elements | compile |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        out += (f"| {r.label} | {r.pods} | {r.policies} | {r.local} | {r.chains} | {r.rules} | "
                f"{r.per_chain_mean:.1f} ({r.per_chain_max}) | {r.sets} | {r.elements} | "
                f"{r.map_elements} | {r.compile_s:.2f} s |\n")
    return out


def scaling(sizes: list[int], per_node: int) -> tuple[list[Shape], list[Shape]]:
    same = [shape("gen 10 ns, replicas scaled", nc.same_policies_cluster(n, per_node=per_node))
            for n in sizes]
    grown = []
    for n in sizes:
        c = nc.node_view_cluster(n, per_node=per_node, iperf=False)
        grown.append(shape(f"gen {c.namespaces} ns", c))
    return same, grown


# -- kernel plumbing ------------------------------------------------------------------------------
@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the body (and the processes it spawns) in network namespace ``name``.

    setns(2) changes the calling thread only: the bed's reader threads stay where they are.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("in_netns must be used from the main thread")
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / name, os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {name}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise SystemExit("could not return to the original network namespace")
    finally:
        os.close(home)


SYSTEM_NFTABLES = Path("/usr/lib/python3/dist-packages/nftables")


def expose_system_nftables() -> None:
    """Make Debian's ``python3-nftables`` importable from this virtualenv: only that one
    package (a symlink in a private directory), not the rest of the system site-packages."""
    try:
        import nftables  # type: ignore[import-not-found]  # noqa: F401
        return
    except ImportError:
        pass
    if not SYSTEM_NFTABLES.is_dir():
        raise SystemExit("--transport libnftables needs python3-nftables (apt)")
    import atexit
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="nfb-pynft-"))
    atexit.register(shutil.rmtree, d, ignore_errors=True)  # removes the link, not its target
    (d / "nftables").symlink_to(SYSTEM_NFTABLES)
    sys.path.append(str(d))


class TimedApplier:
    """The agent's applier (``make_applier(transport)``) with each apply and listing timed."""

    def __init__(self, transport: str) -> None:
        self.cli: RulesetApplier = make_applier(transport)
        self.applies: list[float] = []
        self.listings: list[float] = []

    def apply(self, batch: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        self.cli.apply(batch)
        self.applies.append(time.perf_counter() - t0)

    def listing(self) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        got = self.cli.listing()
        self.listings.append(time.perf_counter() - t0)
        return got


def nft(args: list[str], check: bool = True, input: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["nft", *args], input=input, capture_output=True, text=True,
                          timeout=60, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"nft {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def drop_table() -> None:
    nft(["delete", "table", "inet", TABLE], check=False)


def kernel_counts() -> dict[str, int]:
    """Chains, rules, sets, set elements and map elements of our table, read back."""
    data = json.loads(nft(["-j", "list", "table", "inet", TABLE]).stdout)
    out = {"chains": 0, "rules": 0, "sets": 0, "elements": 0, "map_elements": 0}
    for item in data["nftables"]:
        if "chain" in item:
            out["chains"] += 1
        elif "rule" in item:
            out["rules"] += 1
        elif "set" in item:
            out["sets"] += 1
            out["elements"] += len(item["set"].get("elem", []))
        elif "map" in item:
            out["map_elements"] += len(item["map"].get("elem", []))
    return out


def expected_counts(rs: Ruleset) -> dict[str, int]:
    maps = sum(len(m) for m in rs.maps.values())
    # + chain forward and its 8 rules: ct established/invalid, self4, self6, 4 vmaps
    return {"chains": len(rs.chains) + 1, "rules": rs.rule_count() + 8,
            "sets": len(rs.sets), "elements": rs.element_count() - maps, "map_elements": maps}


def has_element(name: str, key: str) -> bool:
    """Is ``key`` in set or map ``name`` of our table (in the current namespace)?"""
    return nft(["get", "element", "inet", TABLE, name, f"{{ {key} }}"],
               check=False).returncode == 0


class GcTimer:
    """Time spent in the cyclic garbage collector (any generation) since ``reset``."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


# -- kernel measurements --------------------------------------------------------------------------
@dataclass
class Step:
    compile_s: float
    diff_s: float
    apply_s: float
    commands: int
    gc_s: float = 0.0  # cyclic GC pauses inside compile + diff (part of those figures)

    @property
    def total(self) -> float:
        return self.compile_s + self.diff_s + self.apply_s


@dataclass
class KernelResults:
    cold: list[Step] = field(default_factory=list)
    listing_s: list[float] = field(default_factory=list)
    events: dict[str, list[Step]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def profile_compile(state: ClusterState, title: str) -> None:
    """cProfile one extra, untimed ``compile_node`` (stderr): where an event's time goes."""
    prof = cProfile.Profile()
    prof.runcall(compile_node, state, nc.LOCAL)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(16)
    print(f"\n--- profile: compile_node, {title} ---\n{buf.getvalue()}", file=sys.stderr)


def cold_loads(node_ns: str, state: ClusterState, runs: int, res: KernelResults,
               profile: bool, transport: str) -> tuple[Syncer, TimedApplier]:
    syncer = applier = None
    for i in range(runs):
        with in_netns(node_ns):
            drop_table()
            applier = TimedApplier(transport)
            syncer = Syncer(applier)
            with GcTimer() as gct:
                gc.disable()  # as the agent does around a sync (Agent.sync_once)
                t0 = time.perf_counter()
                COMPILER[0] = NodeCompiler(nc.LOCAL)  # the agent's compiler (incremental)
                rs = COMPILER[0].compile(state)
                t1 = time.perf_counter()
                r = syncer.sync(rs)
                gc.freeze()
                gc.enable()
            if not r.full or r.error or r.failed_closed:
                raise RuntimeError(f"cold load did not apply cleanly: {r}")
            apply_s = applier.applies[-1]
            listing = sum(applier.listings)
            res.listing_s.append(listing)
            res.cold.append(Step(t1 - t0, r.seconds - apply_s, apply_s, r.commands, gct.total))
            if i == 0:
                got, want = kernel_counts(), expected_counts(rs)
                if got != want:
                    raise RuntimeError(f"kernel table differs from the ruleset: {got} != {want}")
                res.counts = got
    assert syncer is not None and applier is not None
    if profile:
        profile_compile(state, "cold load")
    return syncer, applier


def event_step(node_ns: str, syncer: Syncer, applier: TimedApplier, state: ClusterState,
               check: Callable[[Ruleset], None], profile: bool, title: str) -> Step:
    if profile:
        profile_compile(state, title)
    with in_netns(node_ns):
        n = len(applier.applies)
        with GcTimer() as gct:
            gc.disable()  # as the agent does around a sync (Agent.sync_once)
            t0 = time.perf_counter()
            rs = COMPILER[0].compile(state)
            t1 = time.perf_counter()
            r = syncer.sync(rs)
            gc.freeze()
            gc.enable()
        if rs != compile_node(state, nc.LOCAL):
            raise RuntimeError(f"{title}: the incremental compile differs from a full one")
        if r.full or r.error or len(applier.applies) != n + 1:
            raise RuntimeError(f"event did not apply as one diff batch: {r}")
        apply_s = applier.applies[-1]
        check(rs)
    return Step(t1 - t0, r.seconds - apply_s, apply_s, r.commands, gct.total)


def _sets_with(rs: Ruleset, ip: str) -> list[str]:
    return [name for name, elems in rs.elements.items() if (ip,) in elems]


def events(node_ns: str, cluster: nc.Cluster, syncer: Syncer, applier: TimedApplier,
           count: int, res: KernelResults, profile: bool) -> ClusterState:
    state = cluster.state
    assert syncer.applied is not None
    referenced = {e[0] for elems in syncer.applied.elements.values() for e in elems
                  if len(e) == 1}
    remote = sorted((p for p in state.pods if p.node != nc.LOCAL and p.ips[0] in referenced),
                    key=lambda p: p.key)
    if len(remote) < count:
        raise RuntimeError("too few remote pods referenced by the node's sets")
    picks = [remote[i * len(remote) // count] for i in range(count)]
    steps: list[Step] = []
    for i, pod in enumerate(picks):
        k = int(pod.node.split("-")[1])
        new_ip = nc.node_ip(k, nc.FREE_FIRST + i)
        state = nc.replace_pod(state, pod.key, new_ip)

        def check(rs: Ruleset, new_ip: str = new_ip, old_ip: str = pod.ips[0]) -> None:
            sets = _sets_with(rs, new_ip)
            if not sets or not has_element(sets[0], new_ip) or _sets_with(rs, old_ip):
                raise RuntimeError(f"replaced pod {new_ip} not in the kernel set {sets[:1]}")
        steps.append(event_step(node_ns, syncer, applier, state, check, profile and i == 0,
                                "pod churn: remote pod replaced"))
    res.events["remote pod replaced (new IP)"] = steps

    local = sorted((p for p in state.pods if p.node == nc.LOCAL
                    and p.namespace != nc.IPERF_NS), key=lambda p: p.key)
    by_workload: dict[object, Any] = {}
    for p in local:
        by_workload.setdefault(p.workload, p)
    likes = list(by_workload.values())[:count]
    steps = []
    for i, like in enumerate(likes):
        ip = nc.node_ip(0, nc.FREE_FIRST + i)
        state = nc.add_pod(state, like, nc.LOCAL, ip, f"{like.name}-x{i}")

        def check_local(rs: Ruleset, ip: str = ip) -> None:
            if ip not in rs.maps.get("in4", {}) and ip not in rs.maps.get("eg4", {}):
                raise RuntimeError(f"added local pod {ip} is in no vmap")
            name = "in4" if ip in rs.maps.get("in4", {}) else "eg4"
            if not has_element(name, ip):
                raise RuntimeError(f"added local pod {ip} missing from kernel map {name}")
        steps.append(event_step(node_ns, syncer, applier, state, check_local, False,
                                "pod churn: local pod added"))
    res.events["local pod added"] = steps

    apps = sorted({(p.namespace, p.labels["app"]) for p in local if "app" in p.labels})
    names = {(p.ref.namespace, p.ref.name) for p in state.policies}
    targets = [(ns, f"allow-{app}-from-callers") for ns, app in apps
               if (ns, f"allow-{app}-from-callers") in names][:count]
    if len(targets) < count:
        raise RuntimeError("too few allow-from-callers policies selecting local pods")
    steps = []
    objs = cluster.objects
    for i, (ns, name) in enumerate(targets):
        port = 7000 + i

        def edit(spec: dict[str, Any], port: int = port) -> None:
            spec["ingress"][0]["ports"] = [{"port": port}]
        state, objs = nc.edit_policy(state, objs, ns, name, edit)

        def check_policy(rs: Ruleset, port: int = port, name: str = name) -> None:
            hit = [c for c, ch in rs.chains.items() for r in ch.rules
                   if name in r.comment and any(getattr(m, "ports", None) == ((port, port),)
                                                for m in r.matches)]
            if not hit:
                raise RuntimeError(f"edited policy {name} (port {port}) not in any chain")
            listed = nft(["-j", "list", "chain", "inet", TABLE, hit[0]]).stdout
            if f'"right": {port}' not in listed:
                raise RuntimeError(f"kernel chain {hit[0]} lacks port {port}")
        steps.append(event_step(node_ns, syncer, applier, state, check_policy,
                                profile and i == 0, "policy edit"))
    res.events["NetworkPolicy edited (port of a rule)"] = steps
    return state


# -- iperf3 ---------------------------------------------------------------------------------------
def iperf_once(bed: Any, seconds: int) -> float:
    proc = bed.pod_exec("client", ["timeout", str(seconds + 20), "iperf3", "-c",
                                   nc.IPERF_SERVER_IP, "-p", str(nc.IPERF_PORT),
                                   "-t", str(seconds), "-J"], timeout=seconds + 30)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError(f"iperf3 client failed: {proc.stderr.strip()}") from None
    if "error" in data:
        raise RuntimeError(f"iperf3: {data['error']}")
    return float(data["end"]["sum_received"]["bits_per_second"])


def wait_listening(bed: Any, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = bed.pod_exec("server", ["ss", "-Hltn", f"sport = :{port}"]).stdout
        if out.strip():
            return
        time.sleep(0.1)
    raise RuntimeError("iperf3 server did not listen in time")


CT_ONLY = """table inet nfbct {
    chain forward {
        type filter hook forward priority filter; policy accept;
        ct state established,related accept
    }
}
"""


@dataclass
class Throughput:
    none: list[float] = field(default_factory=list)  # no nftables table at all
    ct_only: list[float] = field(default_factory=list)  # control: conntrack + one rule
    ruleset: list[float] = field(default_factory=list)  # the node's compiled ruleset


def iperf(bed: Any, rs: Ruleset, runs: int, seconds: int, res: KernelResults) -> Throughput:
    """Interleaved rounds (none, conntrack-only control, ruleset): the load of a shared
    machine then hits all three alike."""
    server = subprocess.Popen(["ip", "netns", "exec", bed.ns("server"), "iperf3", "-s", "-B",
                               nc.IPERF_SERVER_IP, "-p", str(nc.IPERF_PORT)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = Throughput()
    batch = full_json(rs)
    try:
        wait_listening(bed, nc.IPERF_PORT)
        for i in range(runs):
            with in_netns(bed.node_ns):
                drop_table()
                nft(["delete", "table", "inet", "nfbct"], check=False)
            out.none.append(iperf_once(bed, seconds))
            with in_netns(bed.node_ns):
                nft(["-f", "-"], input=CT_ONLY)
            out.ct_only.append(iperf_once(bed, seconds))
            with in_netns(bed.node_ns):
                nft(["delete", "table", "inet", "nfbct"])
                NftCli(timeout=60).apply(batch)
                ok = has_element("in4", nc.IPERF_SERVER_IP) and has_element(
                    "eg4", nc.IPERF_CLIENT_IP)
            if not ok:
                raise RuntimeError("iperf3 pods are not in the vmaps")
            if i == 0:  # the ruleset enforces: only TCP 5201 client -> server is allowed
                blocked = bed.probe_many([
                    _probe("client", nc.IPERF_SERVER_IP, 80),
                    _probe("server", nc.IPERF_CLIENT_IP, 80)])
                if any(blocked):
                    raise RuntimeError(f"isolation not enforced: probes {blocked}")
                res.notes.append("iperf3 pods in the vmaps and isolated: client->server and "
                                 "server->client TCP 80 dropped, client->server TCP 5201 "
                                 "allowed")
            out.ruleset.append(iperf_once(bed, seconds))
        with in_netns(bed.node_ns):
            drop_table()
    finally:
        server.terminate()  # our own child, by its pid
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
    return out


def _probe(src: str, dst: str, port: int) -> Any:
    from tests.kernel.bed import Probe

    return Probe(src, dst, "tcp", port, 0.5)


def input_path_note(state: ClusterState) -> str:
    """The agent's input side of a pod event: ``Agent._patch`` turns the watch event's object
    into a Pod and patches the snapshot (medians of 5); the rows above start from the patched
    snapshot. A full rebuild from the watch store (re-list, or kinds other than pods)
    re-parses everything: timed once for comparison."""
    from netfence import api
    from netfence.agent.run import Agent, AgentConfig

    agent = Agent(AgentConfig(node=nc.LOCAL, cluster=True), Syncer(TimedApplier("nft")),
                  lambda _s: None)
    pods = [p for p in state.pods if p.node != nc.LOCAL][:5]
    times = []
    for i, pod in enumerate(pods):
        obj = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pod.name, "namespace": pod.namespace,
                            "labels": dict(pod.labels)},
               "spec": {"nodeName": pod.node, "containers": [{"name": "c", "image": "i", "ports": [
                   {"name": cp.name, "containerPort": cp.port, "protocol": cp.protocol.value}
                   for cp in pod.ports if cp.name]}]},
               "status": {"phase": "Running", "podIP": nc.node_ip(200, 10 + i)}}
        t0 = time.perf_counter()
        patched = agent._patch(state, [("MODIFIED", (pod.namespace, pod.name), obj)])
        times.append(time.perf_counter() - t0)
        assert patched is not None and patched.pods != state.pods
    objs = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": p.name, "namespace": p.namespace, "labels": dict(p.labels)},
             "spec": {"nodeName": p.node, "containers": [{"name": "c", "image": "i"}]},
             "status": {"podIP": p.ips[0]}} for p in state.pods if p.ips]
    t0 = time.perf_counter()
    api.pods_from_objects(objs)
    whole = time.perf_counter() - t0
    return (f"agent input path for a pod event: the watch event patches the {len(state.pods)}-"
            f"pod snapshot in {ms(statistics.median(times))} (median of {len(times)}, "
            f"`Agent._patch`), before the compile/diff/apply above; rebuilding just the pods "
            f"from the watch store instead would take {ms(whole)}")


# -- report ---------------------------------------------------------------------------------------
def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def med(steps: list[Step], attr: str) -> float:
    return float(statistics.median(float(getattr(s, attr)) for s in steps))


def kernel_table(res: KernelResults, tp: Throughput, pods: int, seconds: int) -> str:
    out = ("| measurement | compile | diff / batch | apply | total (median) | max total | "
           "GC pauses in total | batch commands | target | ratio to target | holds |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|\n")

    def row(name: str, steps: list[Step], target: float) -> str:
        total = med(steps, "total")
        worst = max(s.total for s in steps)
        return (f"| {name} ({len(steps)} runs) | {ms(med(steps, 'compile_s'))} | "
                f"{ms(med(steps, 'diff_s'))} | {ms(med(steps, 'apply_s'))} | {ms(total)} | "
                f"{ms(worst)} | {ms(med(steps, 'gc_s'))} | "
                f"{int(statistics.median(s.commands for s in steps))} | "
                f"<= {ms(target)} | {total / target:.2f}x | "
                f"{'yes' if total <= target else 'NO'} |\n")

    out += row("cold load, empty table", res.cold, TARGET_COLD_S)
    for name, steps in res.events.items():
        target = TARGET_POLICY_S if name.startswith("NetworkPolicy") else TARGET_CHURN_S
        out += row(name, steps, target)
    if tp.none and tp.ruleset:
        b, r = statistics.median(tp.none), statistics.median(tp.ruleset)
        c = statistics.median(tp.ct_only)
        out += (f"| iperf3 -t {seconds}, {pods}-pod ruleset vs no table ({len(tp.ruleset)}+"
                f"{len(tp.none)} runs, medians) | - | - | - "
                f"| {r / 1e9:.2f} vs {b / 1e9:.2f} Gbit/s | - | - | - | >= {TARGET_IPERF:.0%} | "
                f"{r / b:.1%} | {'yes' if r / b >= TARGET_IPERF else 'NO'} |\n"
                f"| (control) conntrack-only table vs no table | - | - | - | {c / 1e9:.2f} vs "
                f"{b / 1e9:.2f} Gbit/s | - | - | - | - | {c / b:.1%} | - |\n")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--per-node", type=int, default=110)
    ap.add_argument("--events", type=int, default=5)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--iperf-runs", type=int, default=3)
    ap.add_argument("--iperf-seconds", type=int, default=5)
    ap.add_argument("--mode", choices=("bridge", "routed"), default="bridge")
    ap.add_argument("--transport", choices=("auto", "nft", "libnftables"), default="auto",
                    help="the agent's applier: auto (its default), nft -j -f -, or libnftables")
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--pure", action="store_true", help="only the rule/element count tables")
    ap.add_argument("--profile", action="store_true", help="cProfile compile_node (stderr)")
    ap.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args()
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M")

    sizes = [int(x) for x in args.sizes.split(",") if x]
    same, grown = scaling(sizes, args.per_node)
    pure = ("Rules and elements of node-000's view as the cluster grows: (a) same policies "
            "(gen.py, 10 namespaces), replicas scaled, node-000 holding replica 0 of every "
            "Deployment; (b) gen.py grown by namespaces (policies grow too), pods spread.\n\n"
            + shape_table(same) + "\n" + shape_table(grown))
    print(pure, flush=True)
    invariant = len({(s.chains, s.rules) for s in same}) == 1
    print(f"group-chain rules constant with same policies: {'yes' if invariant else 'NO'}\n",
          flush=True)

    kernel = ""
    if not args.pure:
        if os.geteuid() != 0:
            raise SystemExit("the kernel part needs root (or run with --pure)")
        if args.transport == "libnftables":
            expose_system_nftables()
        from tests.kernel.bed import Bed, PodSpec, session_suffix

        t0 = time.perf_counter()
        cluster = nc.node_view_cluster(args.pods, per_node=args.per_node)
        print(f"cluster: gen.py {cluster.namespaces} namespaces + bench-iperf, "
              f"{cluster.pods} pods, {cluster.policies} policies, "
              f"{len(cluster.local_pods())} on {nc.LOCAL} (built in "
              f"{time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
        res = KernelResults()
        pods = [PodSpec("server", nc.IPERF_SERVER_IP, tcp=(80,), udp=()),
                PodSpec("client", nc.IPERF_CLIENT_IP, tcp=(80,), udp=())]
        with Bed(f"b{session_suffix()}", pods, args.mode) as bed:
            syncer, applier = cold_loads(bed.node_ns, cluster.state, args.cold_runs, res,
                                         args.profile, args.transport)
            events(bed.node_ns, cluster, syncer, applier, args.events, res, args.profile)
            assert syncer.applied is not None
            tp = iperf(bed, syncer.applied, args.iperf_runs, args.iperf_seconds, res)
        c = res.counts
        res.notes.append(input_path_note(cluster.state))
        table = kernel_table(res, tp, cluster.pods, args.iperf_seconds)
        runs = "; ".join(f"{name}: " + ", ".join(f"{x / 1e9:.2f}" for x in xs) for name, xs in (
            ("no table", tp.none), ("conntrack only", tp.ct_only), ("ruleset", tp.ruleset)))
        kernel = (f"Node view: gen.py {cluster.namespaces} namespaces + bench-iperf = "
                  f"{cluster.pods} pods, {cluster.policies} policies, "
                  f"{len(cluster.local_pods())} pods on {nc.LOCAL}; kernel table after the cold "
                  f"load: {c['chains']} chains, {c['rules']} rules, {c['sets']} sets, "
                  f"{c['elements']} set elements, {c['map_elements']} vmap elements (read back, "
                  f"equal to the compiled ruleset). Bed: {args.mode}. Transport: "
                  f"{TRANSPORTS[args.transport]}. Cold load lists the table "
                  f"first (absent: {ms(statistics.median(res.listing_s))}, inside 'diff / "
                  f"batch').\n\n{table}\n" + "".join(f"- {n}\n" for n in res.notes)
                  + f"- iperf3 runs in round order (Gbit/s): {runs}\n")
        print(kernel, flush=True)
    load_after = os.getloadavg()
    loads = (f"Load average (1/5/15 min) before: {load_before[0]:.2f}/{load_before[1]:.2f}/"
             f"{load_before[2]:.2f}, after: {load_after[0]:.2f}/{load_after[1]:.2f}/"
             f"{load_after[2]:.2f}")
    print(loads)
    if args.write:
        cmd = ".venv/bin/python benchmarks/agent.py " + " ".join(sys.argv[1:])
        with (ROOT / "benchmarks" / "RESULTS.md").open("a") as fh:
            fh.write(f"\n## {started}, node agent ({os.cpu_count()} cores, Python "
                     f"{platform.python_version()}, {nft(['--version']).stdout.strip()})\n\n"
                     f"Command: `{cmd}`\n\n{loads}.\n\n{kernel}\n{pure}")
    return 0 if invariant else 1


if __name__ == "__main__":
    sys.exit(main())
