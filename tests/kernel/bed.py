"""Network-namespace test bed: a "node" netns and one netns per "pod" on 10.244.0.0/16.

    pods = [PodSpec("a", "10.244.1.11"), PodSpec("b", "10.244.1.12")]
    with Bed("t1", pods, "bridge") as bed:
        bed.nft(RULESET)                                  # loaded in the node netns
        assert bed.probe("a", "10.244.1.12", "tcp", 80)   # bounded TCP connect + echo
        oks = bed.probe_many([Probe("a", "10.244.1.12", "udp", 53), ...])

Topologies (pod-to-pod traffic crosses the node's inet `forward` hook in both):
- bridge: node netns has `br0` 10.244.1.1/24; each pod's eth0 is a veth enslaved to br0; pods
  use a /24 and route default via 10.244.1.1; br_netfilter (`bridge-nf-call-iptables=1`, ip6
  too) hands bridged IPv4/IPv6 to the inet hooks (indev/outdev br0, physindev/physoutdev the
  veth).
- routed: each pod's eth0 has its /32; the node side of its veth carries 10.244.0.1/32 (the
  same address on every veth, the gateway) and a route `<pod ip>/32 dev <veth>`; pods route
  `10.244.0.1 dev eth0 scope link` and default via it; ip_forward=1 in the node netns.

Names: netns `nf-<tag>-node` and `nf-<tag>-<pod>`; node-side veth `v<tag><index>`; pod side
`eth0`. Everything is created inside namespaces the bed owns (veths are created straight into
them), so the host's namespace is never touched. Teardown deletes each namespace by name, also
after errors; setup first sweeps stale `nf-<tag>-*` namespaces left by a crashed run of the same
tag (refusing ones still owned by a live process). Every pod runs one helper
(tests/kernel/podhelper.py) that serves TCP/UDP echo ports and runs probe batches concurrently.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

Mode = Literal["bridge", "routed"]
Proto = Literal["tcp", "udp"]

POD_NET = ipaddress.ip_network("10.244.0.0/16")
BRIDGE_NET = ipaddress.ip_network("10.244.1.0/24")
BRIDGE_GW = "10.244.1.1"
ROUTED_GW = "10.244.0.1"
DEFAULT_TCP = (80, 81, 8080)
DEFAULT_UDP = (53, 5353)

HELPER = Path(__file__).resolve().with_name("podhelper.py")
CMD_TIMEOUT = 30.0
READY_TIMEOUT = 15.0
REPLY_MARGIN = 10.0  # seconds beyond the slowest probe before a batch counts as hung

_TAG_RE = re.compile(r"^[a-z0-9]{1,8}$")
_POD_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_OWNER_RE = re.compile(r"^nf-bed owner=(\d+)$")
_active_tags: set[str] = set()
_active_lock = threading.Lock()


class BedError(RuntimeError):
    """The bed could not be built, torn down or driven."""


@dataclass(frozen=True)
class PodSpec:
    name: str
    ip: str
    tcp: tuple[int, ...] = DEFAULT_TCP
    udp: tuple[int, ...] = DEFAULT_UDP


@dataclass(frozen=True)
class Probe:
    src: str  # pod name
    dst: str  # IP address (10.244.0.0/16)
    proto: Proto
    port: int
    timeout: float = 0.5


def run(args: Sequence[str], *, input: str | None = None, check: bool = True,
        timeout: float = CMD_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a command with a bounded timeout; on failure raise BedError with its stderr."""
    proc = subprocess.run(list(args), input=input, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise BedError(f"{' '.join(args)} -> rc {proc.returncode}: {proc.stderr.strip()}")
    return proc


def list_netns() -> list[str]:
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def bed_namespaces(tag: str) -> list[str]:
    """Existing namespaces named `nf-<tag>-*` (exactly this tag)."""
    prefix = f"nf-{tag}-"
    return [ns for ns in list_netns() if ns.startswith(prefix)]


def _owner(ns: str) -> int | None:
    proc = run(["ip", "-n", ns, "-j", "link", "show", "lo"], check=False)
    if proc.returncode != 0:
        return None
    with contextlib.suppress(ValueError, IndexError, KeyError, TypeError):
        match = _OWNER_RE.match(json.loads(proc.stdout)[0].get("ifalias", ""))
        if match:
            return int(match.group(1))
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphans() -> list[str]:
    """Delete `nf-*` namespaces marked as made by a Bed whose owning process is gone."""
    removed = []
    for ns in list_netns():
        if ns.startswith("nf-"):
            owner = _owner(ns)
            if owner is not None and owner != os.getpid() and not _alive(owner):
                run(["ip", "netns", "del", ns], check=False)
                removed.append(ns)
    return removed


def session_suffix() -> str:
    """Four base-36 characters from our pid: tags unique among concurrent test sessions."""
    n = os.getpid() % 36**4
    digits = ""
    for _ in range(4):
        n, r = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
    return digits


def sweep(tag: str) -> list[str]:
    """Delete stale `nf-<tag>-*` namespaces; refuse ones owned by another live process."""
    removed = []
    for ns in bed_namespaces(tag):
        owner = _owner(ns)
        if owner is not None and owner != os.getpid() and _alive(owner):
            raise BedError(f"netns {ns} belongs to live process {owner}: pick another tag")
        run(["ip", "netns", "del", ns], check=False)
        removed.append(ns)
    return removed


class _Helper:
    """One podhelper process: JSON lines in, JSON lines out (read by a thread)."""

    def __init__(self, ns: str, tcp: Iterable[int], udp: Iterable[int], python: str) -> None:
        self.ns = ns
        self.stderr: IO[bytes] = tempfile.TemporaryFile(prefix=f"{ns}-")  # noqa: SIM115
        args = ["ip", "netns", "exec", ns, python, "-I", str(HELPER),
                "--tcp", ",".join(map(str, tcp)), "--udp", ",".join(map(str, udp))]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, bufsize=1)
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.next_id = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.replies.put(json.loads(line))
        self.replies.put({"eof": True})

    def error_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-2000:]

    def wait_ready(self, deadline: float) -> None:
        msg = self._get(deadline, lambda m: "ready" in m or "eof" in m)
        if not msg.get("ready"):
            raise BedError(f"helper in {self.ns} failed to start: {msg.get('error', '')}"
                           f" {self.error_text()}")

    def send(self, op: str, **fields: Any) -> int:
        self.next_id += 1
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"id": self.next_id, "op": op, **fields}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise BedError(f"helper in {self.ns} is gone: {self.error_text()}") from exc
        return self.next_id

    def reply(self, req_id: int, deadline: float) -> dict[str, Any]:
        msg = self._get(deadline, lambda m: m.get("id") == req_id or "eof" in m)
        if "eof" in msg:
            raise BedError(f"helper in {self.ns} exited: {self.error_text()}")
        if msg.get("ok") is False:
            raise BedError(f"helper in {self.ns}: {msg.get('error')}")
        return msg

    def _get(self, deadline: float, want: Any) -> dict[str, Any]:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BedError(f"helper in {self.ns} did not answer in time "
                               f"{self.error_text()}")
            try:
                msg = self.replies.get(timeout=remaining)
            except queue.Empty:
                continue
            if want(msg):
                if "eof" in msg:
                    self.replies.put(msg)  # keep EOF visible to later calls
                return msg

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own child, by its pid
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=3)
        self.thread.join(timeout=3)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()


@dataclass
class Bed:
    """A node netns plus one netns per pod; see the module docstring."""

    tag: str
    pods: list[PodSpec]
    mode: Mode = "bridge"
    python: str = sys.executable
    _created: list[str] = field(default_factory=list, init=False, repr=False)
    _helpers: dict[str, _Helper] = field(default_factory=dict, init=False, repr=False)
    _entered: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if not _TAG_RE.match(self.tag):
            raise ValueError(f"tag must match {_TAG_RE.pattern}: {self.tag!r}")
        if self.mode not in ("bridge", "routed"):
            raise ValueError(f"mode must be bridge or routed: {self.mode!r}")
        names = [p.name for p in self.pods]
        ips = [p.ip for p in self.pods]
        if len(set(names)) != len(names) or "node" in names:
            raise ValueError(f"pod names must be unique and not 'node': {names}")
        if len(set(ips)) != len(ips):
            raise ValueError(f"pod IPs must be unique: {ips}")
        for p in self.pods:
            if not _POD_RE.match(p.name):
                raise ValueError(f"pod name must match {_POD_RE.pattern}: {p.name!r}")
            addr = ipaddress.ip_address(p.ip)
            if addr not in POD_NET or p.ip in (BRIDGE_GW, ROUTED_GW):
                raise ValueError(f"pod IP must be in {POD_NET} (not a gateway): {p.ip}")
            if self.mode == "bridge" and (addr not in BRIDGE_NET or addr in (
                    BRIDGE_NET.network_address, BRIDGE_NET.broadcast_address)):
                raise ValueError(f"bridge mode puts pods in {BRIDGE_NET}: {p.ip}")
        if len(self.pods) > 99:
            raise ValueError("at most 99 pods")

    # -- names --------------------------------------------------------------------------------
    @property
    def node_ns(self) -> str:
        return f"nf-{self.tag}-node"

    @property
    def node_ip(self) -> str:
        """The node's address as pods see it (their gateway)."""
        return BRIDGE_GW if self.mode == "bridge" else ROUTED_GW

    def ns(self, pod: str) -> str:
        self.spec(pod)
        return f"nf-{self.tag}-{pod}"

    def spec(self, pod: str) -> PodSpec:
        for p in self.pods:
            if p.name == pod:
                return p
        raise KeyError(f"no pod {pod!r} in bed {self.tag}")

    def ip(self, pod: str) -> str:
        return self.spec(pod).ip

    def veth(self, pod: str) -> str:
        """Node-side interface name of the pod's veth."""
        return f"v{self.tag}{[p.name for p in self.pods].index(pod)}"

    def namespaces(self) -> list[str]:
        return [self.node_ns, *(self.ns(p.name) for p in self.pods)]

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> Bed:
        with _active_lock:
            if self.tag in _active_tags:
                raise BedError(f"a bed with tag {self.tag!r} is already up in this process")
            _active_tags.add(self.tag)
        self._entered = True
        try:
            self._setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.teardown(raise_errors=exc_type is None)

    def _setup(self) -> None:
        sweep(self.tag)
        owner = f"nf-bed owner={os.getpid()}"
        for ns in self.namespaces():
            run(["ip", "netns", "add", ns])
            self._created.append(ns)
            self._batch(ns, ["link set lo up", f'link set lo alias "{owner}"'])
        sysctls = ["net.ipv4.ip_forward=1"]
        node_cmds: list[str] = []
        if self.mode == "bridge":
            node_cmds += ["link add br0 type bridge", f"addr add {BRIDGE_GW}/24 dev br0",
                          "link set br0 up"]
            sysctls += ["net.bridge.bridge-nf-call-iptables=1",
                        "net.bridge.bridge-nf-call-ip6tables=1"]
        for i, p in enumerate(self.pods):
            veth = f"v{self.tag}{i}"
            node_cmds.append(f"link add {veth} type veth peer name eth0 netns {self.ns(p.name)}")
            if self.mode == "bridge":
                node_cmds.append(f"link set {veth} master br0 up")
            else:
                node_cmds += [f"addr add {ROUTED_GW}/32 dev {veth}", f"link set {veth} up",
                              f"route add {p.ip}/32 dev {veth}"]
        self._batch(self.node_ns, node_cmds)
        proc = run(["ip", "netns", "exec", self.node_ns, "sysctl", "-q", "-w", *sysctls],
                   check=False)
        if proc.returncode != 0:
            hint = " (is br_netfilter loaded?)" if self.mode == "bridge" else ""
            raise BedError(f"sysctl in {self.node_ns} failed{hint}: {proc.stderr.strip()}")
        for p in self.pods:
            if self.mode == "bridge":
                cmds = [f"addr add {p.ip}/24 dev eth0", "link set eth0 up",
                        f"route add default via {BRIDGE_GW} dev eth0"]
            else:
                cmds = [f"addr add {p.ip}/32 dev eth0", "link set eth0 up",
                        f"route add {ROUTED_GW} dev eth0 scope link",
                        f"route add default via {ROUTED_GW} dev eth0"]
            self._batch(self.ns(p.name), cmds)
        for p in self.pods:
            self._helpers[p.name] = _Helper(self.ns(p.name), p.tcp, p.udp, self.python)
        deadline = time.monotonic() + READY_TIMEOUT
        for helper in self._helpers.values():
            helper.wait_ready(deadline)

    def _batch(self, ns: str, cmds: list[str]) -> None:
        if cmds:
            run(["ip", "-n", ns, "-batch", "-"], input="\n".join(cmds) + "\n")

    def teardown(self, raise_errors: bool = False) -> None:
        """Stop helpers, delete every namespace this bed created (by name)."""
        if not self._entered:
            return
        errors: list[str] = []
        for helper in self._helpers.values():
            try:
                helper.stop()
            except Exception as exc:  # keep going: namespaces must still be deleted
                errors.append(f"stop helper {helper.ns}: {exc}")
        self._helpers.clear()
        for ns in reversed(self._created):
            for attempt in range(3):
                proc = run(["ip", "netns", "del", ns], check=False)
                if proc.returncode == 0 or ns not in list_netns():
                    break
                time.sleep(0.1 * (attempt + 1))
            else:
                errors.append(f"ip netns del {ns}: {proc.stderr.strip()}")
        self._created.clear()
        with _active_lock:
            _active_tags.discard(self.tag)
        self._entered = False
        if errors and raise_errors:
            raise BedError("; ".join(errors))

    # -- commands -------------------------------------------------------------------------------
    def node_exec(self, args: Sequence[str], input: str | None = None, *, check: bool = False,
                  timeout: float = CMD_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run a command in the node netns (bounded; raises BedError only if `check`)."""
        return run(["ip", "netns", "exec", self.node_ns, *args], input=input, check=check,
                   timeout=timeout)

    def pod_exec(self, pod: str, args: Sequence[str], input: str | None = None, *,
                 check: bool = False, timeout: float = CMD_TIMEOUT
                 ) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.ns(pod), *args], input=input, check=check,
                   timeout=timeout)

    def nft(self, text: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Load nft text (`nft -f -`) in the node netns; raise BedError on failure."""
        return self.node_exec(["nft", "-f", "-"], input=text, check=check)

    def nft_json(self, *args: str) -> Any:
        """`nft -j <args>` in the node netns, parsed (e.g. nft_json("list", "ruleset"))."""
        return json.loads(self.node_exec(["nft", "-j", *args], check=True).stdout)

    def counter(self, family: str, table: str, name: str) -> tuple[int, int]:
        """(packets, bytes) of a named counter in the node netns."""
        data = self.nft_json("list", "counter", family, table, name)
        for item in data["nftables"]:
            if "counter" in item:
                return int(item["counter"]["packets"]), int(item["counter"]["bytes"])
        raise BedError(f"no counter {family} {table} {name}")

    # -- services and probes --------------------------------------------------------------------
    def serve(self, pod: str, tcp: Iterable[int] = (), udp: Iterable[int] = ()) -> None:
        """Also listen on these ports in the pod (TCP echo, UDP echo)."""
        helper = self._helper(pod)
        req = helper.send("serve", tcp=list(tcp), udp=list(udp))
        helper.reply(req, time.monotonic() + READY_TIMEOUT)

    def probe(self, src: str, dst: str, proto: Proto, port: int, timeout: float = 0.5) -> bool:
        return self.probe_many([Probe(src, dst, proto, port, timeout)])[0]

    def probe_many(self, probes: Sequence[Probe]) -> list[bool]:
        """Run probes, one batch per source pod, all pods at once; results in input order."""
        by_src: dict[str, list[int]] = {}
        for i, pr in enumerate(probes):
            if ipaddress.ip_address(pr.dst) not in POD_NET:
                raise ValueError(f"probe target outside {POD_NET}: {pr.dst}")
            if pr.proto not in ("tcp", "udp") or not 0 < pr.port < 65536:
                raise ValueError(f"bad probe {pr}")
            if not 0 < pr.timeout <= 10:
                raise ValueError(f"probe timeout must be in (0, 10] s: {pr}")
            self._helper(pr.src)
            by_src.setdefault(pr.src, []).append(i)
        if not probes:
            return []
        slowest = max(pr.timeout for pr in probes)
        pending = {}
        for src, idxs in by_src.items():
            batch = [{"proto": probes[i].proto, "dst": probes[i].dst, "port": probes[i].port,
                      "timeout": probes[i].timeout} for i in idxs]
            pending[src] = self._helpers[src].send("probe", probes=batch)
        deadline = time.monotonic() + slowest + REPLY_MARGIN
        results: list[bool | None] = [None] * len(probes)
        for src, req in pending.items():
            got = self._helpers[src].reply(req, deadline)["results"]
            if len(got) != len(by_src[src]):
                raise BedError(f"helper in {self.ns(src)} answered {len(got)} results")
            for i, ok in zip(by_src[src], got, strict=True):
                results[i] = bool(ok)
        return [bool(r) for r in results]

    def nflog(self, group: int, count: int = 1, timeout: float = 5.0) -> NflogWatch:
        """Start `python -m netfence.agent.nflog` in the node netns (bound when this returns).

            with bed.nflog(100) as watch:
                bed.probe(...)
            records = watch.records   # list of dicts, one per logged packet
        """
        return NflogWatch(self.node_ns, group, count, timeout, self.python)

    def pairs(self, proto: Proto, port: int, timeout: float = 0.5) -> list[Probe]:
        """A probe from every pod to every other pod's IP."""
        return [Probe(a.name, b.ip, proto, port, timeout)
                for a in self.pods for b in self.pods if a.name != b.name]

    def _helper(self, pod: str) -> _Helper:
        self.spec(pod)
        if pod not in self._helpers:
            raise BedError(f"bed {self.tag} is not up (no helper for {pod})")
        return self._helpers[pod]


class NflogWatch:
    """The NFLOG reader CLI running in a namespace; `records` holds its JSON lines."""

    def __init__(self, ns: str, group: int, count: int, timeout: float, python: str) -> None:
        self.ns = ns
        self.timeout = timeout
        self.records: list[dict[str, Any]] = []
        self.returncode: int | None = None
        self._out: list[str] = []
        self._err: list[str] = []
        args = ["ip", "netns", "exec", ns, python, "-m", "netfence.agent.nflog",
                "--group", str(group), "--count", str(count), "--timeout", str(timeout)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self._ready: queue.Queue[bool] = queue.Queue()
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._threads:
            t.start()
        try:
            ok = self._ready.get(timeout=READY_TIMEOUT)
        except queue.Empty:
            ok = False
        if not ok:
            self.stop()
            raise BedError(f"nflog reader in {ns} did not bind: {self.stderr}")

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._out.append(line)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._err.append(line)
            if line.startswith("nflog: listening"):
                self._ready.put(True)
        self._ready.put(False)

    def wait(self) -> list[dict[str, Any]]:
        """Wait (bounded by the reader's own timeout) for it to exit; parse its records."""
        try:
            self.proc.wait(timeout=self.timeout + REPLY_MARGIN)
        except subprocess.TimeoutExpired:
            self.stop()
            raise BedError(f"nflog reader in {self.ns} overran its timeout") from None
        self._finish()
        return self.records

    def _finish(self) -> None:
        for t in self._threads:
            t.join(timeout=3)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        self.returncode = self.proc.returncode
        self.records = [json.loads(line) for line in self._out if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by its pid
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._finish()

    def __enter__(self) -> NflogWatch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.wait()
        else:
            self.stop()
