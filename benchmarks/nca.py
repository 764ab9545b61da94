"""Benchmark netfence side by side with IBM's network-config-analyzer (NCA).

NCA is installed into its own virtualenv (``ensure_nca``), run as

    nca --connectivity -r DIR --output_endpoints deployments -o txt_no_fw_rules -f OUT

(``txt_no_fw_rules`` is the only format that prints one line per endpoint pair; csv, json and
yaml print minimised "firewall rules" that group namespaces and label sets), and both tools'
connection maps are normalised into ``(src, dst, ports)`` triples:

- endpoints: ``ns/kind/name`` with the kind lower-cased (NCA's ``ns/name[Deployment]`` becomes
  ``ns/deployment/name``, netfence's ``from``/``to`` are already in that form);
- external endpoints: IPv4 only (NCA hides IPv6 unless ``--print_ipv6``), written
  ``ip:FIRST-LAST``. Both tools group addresses differently (netfence merges atoms with equal
  ports into CIDR lists with ``except [...]``, NCA splits ranges at every policy boundary), so per
  (workload, direction) the address space is cut into segments, the ports of every line covering
  a segment are unioned, and adjacent segments with equal ports are merged again;
- ports: netfence's rendering, ``all`` or ``TCP 80,443, UDP 53, other protocols``. NCA's
  ``All connections`` is ``all``; ``{protocols:TCP, UDP,dst_ports:53}`` cubes are unioned;
  ``All but {...}`` is complemented; protocols other than TCP/UDP/SCTP collapse to
  ``other protocols`` (as in netfence's model);
- self connections (a workload to itself) are dropped: NCA never prints them, netfence does.

Usage: ``python benchmarks/nca.py --namespaces 10 --timeout 300``. ClusterNetworkPolicy objects
are removed from the generated cluster (NCA 2.1.0 ignores them silently) and both tools read
that same copy.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NCA_VERSION = "2.1.0"
NCA_PACKAGE = f"network-config-analyzer=={NCA_VERSION}"

MIN_PORT, MAX_PORT = 1, 65535
V4_MAX = (1 << 32) - 1
PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")

Triple = tuple[str, str, str]
Interval = tuple[int, int]
# (TCP, UDP, SCTP) normalised intervals and the "other protocols" flag
Ports = tuple[tuple[Interval, ...], tuple[Interval, ...], tuple[Interval, ...], bool]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NETFENCE = REPO / ".venv" / "bin" / "netfence"
PYTHON = REPO / ".venv" / "bin" / "python"


# -- install ---------------------------------------------------------------------------------


def ensure_nca(venv_dir: Path) -> Path:
    """Install NCA (pinned) into its own virtualenv at ``venv_dir``; return the ``nca`` path.

    Idempotent: when the venv already holds the pinned version nothing is run.
    """
    nca = venv_dir / "bin" / "nca"
    marker = venv_dir / f".nca-{NCA_VERSION}"
    if nca.exists() and marker.exists():
        return nca
    if not (venv_dir / "bin" / "python").exists():
        _quiet([sys.executable, "-m", "venv", str(venv_dir)])
    _quiet([str(venv_dir / "bin" / "python"), "-m", "pip", "install", "-q",
            "--disable-pip-version-check", NCA_PACKAGE])
    if not nca.exists():
        raise RuntimeError(f"pip installed {NCA_PACKAGE} but {nca} is missing")
    marker.write_text(NCA_PACKAGE + "\n")
    return nca


def _quiet(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                           f"{proc.stdout}{proc.stderr}")


# -- measured runs ---------------------------------------------------------------------------


@dataclass
class Measured:
    """Wall time (None on timeout), peak RSS, exit code and CPU time (user+sys) of the child."""

    seconds: float | None
    peak_rss_kb: int | None
    returncode: int | None
    cpu_seconds: float | None = None


def run_measured(cmd: list[str], stdout: Path, stderr: Path, timeout_s: float) -> Measured:
    """Run ``cmd`` in its own process group; kill the group after ``timeout_s``.

    Peak RSS comes from ``os.wait4`` of that one child (``ru_maxrss``, KiB on Linux).
    """
    timed_out = threading.Event()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)

        def _kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout_s, _kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    cpu = usage.ru_utime + usage.ru_stime
    if timed_out.is_set() and os.WIFSIGNALED(status):  # not a finish just before the timer
        with contextlib.suppress(ProcessLookupError):  # stragglers of the group, if any
            os.killpg(proc.pid, signal.SIGKILL)
        return Measured(None, usage.ru_maxrss, None, cpu)
    return Measured(elapsed, usage.ru_maxrss, proc.returncode, cpu)


@dataclass
class NcaResult:
    """One NCA connectivity-map run."""

    seconds: float | None
    peak_rss_kb: int | None
    connections: set[Triple] | None
    raw_path: Path
    returncode: int | None = None
    cpu_seconds: float | None = None


def nca_command(nca: Path, manifests_dir: Path, out: Path) -> list[str]:
    """The NCA command line: connectivity map of every resource under ``manifests_dir``."""
    return [str(nca), "--connectivity", "-r", str(manifests_dir),
            "--output_endpoints", "deployments", "-o", "txt_no_fw_rules", "-f", str(out)]


def run_nca(nca: Path, manifests_dir: Path, timeout_s: float,
            out_dir: Path | None = None) -> NcaResult:
    """Run NCA's connectivity map over ``manifests_dir``; outputs go to ``out_dir``.

    ``out_dir`` defaults to the parent of ``manifests_dir``; files are ``nca.txt`` (the map),
    ``nca.stdout`` and ``nca.stderr``.
    """
    out_dir = out_dir or manifests_dir.parent
    raw = out_dir / "nca.txt"
    raw.unlink(missing_ok=True)
    m = run_measured(nca_command(nca, manifests_dir, raw), out_dir / "nca.stdout",
                     out_dir / "nca.stderr", timeout_s)
    conns: set[Triple] | None = None
    if m.seconds is not None and m.returncode == 0 and raw.exists():
        conns = parse_nca_txt(raw.read_text())
    return NcaResult(m.seconds, m.peak_rss_kb, conns, raw, m.returncode, m.cpu_seconds)


# -- ports -----------------------------------------------------------------------------------


def _norm(ivs: list[Interval]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for lo, hi in sorted(ivs):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _complement(ivs: tuple[Interval, ...], lo: int = MIN_PORT,
                hi: int = MAX_PORT) -> tuple[Interval, ...]:
    out: list[Interval] = []
    cur = lo
    for a, b in ivs:
        if a > cur:
            out.append((cur, a - 1))
        cur = max(cur, b + 1)
    if cur <= hi:
        out.append((cur, hi))
    return tuple(out)


def _union(ports: list[Ports]) -> Ports:
    return (_norm([iv for p in ports for iv in p[0]]), _norm([iv for p in ports for iv in p[1]]),
            _norm([iv for p in ports for iv in p[2]]), any(p[3] for p in ports))


_FULL: tuple[Interval, ...] = ((MIN_PORT, MAX_PORT),)
ALL_PORTS: Ports = (_FULL, _FULL, _FULL, True)


def render_ports(p: Ports) -> str:
    """netfence's rendering: 'all', or 'TCP 80,443, UDP 53-54, other protocols'."""
    if p == ALL_PORTS:
        return "all"
    parts: list[str] = []
    for name, ivs in zip(PORT_PROTOCOLS, p[:3], strict=True):
        if not ivs:
            continue
        if ivs == ((MIN_PORT, MAX_PORT),):
            parts.append(f"{name} all")
        else:
            parts.append(f"{name} " + ",".join(
                str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ivs))
    if p[3]:
        parts.append("other protocols")
    return ", ".join(parts) if parts else "none"


def _port_list(text: str) -> list[Interval]:
    out: list[Interval] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        lo, _, hi = item.partition("-")
        out.append((int(lo), int(hi or lo)))
    return out


_CUBE_KEY = re.compile(r",?\b(protocols|src_ports|dst_ports|icmp_type|icmp_code|methods|paths|"
                       r"hosts):")


def _nca_cube(body: str) -> Ports:
    """One NCA cube, e.g. 'protocols:TCP, UDP,dst_ports:53'."""
    parts = _CUBE_KEY.split(body)
    fields = dict(zip(parts[1::2], (v.strip() for v in parts[2::2]), strict=True))
    unknown = set(fields) - {"protocols", "dst_ports"}
    if unknown:
        raise ValueError(f"unsupported NCA connection dimension(s) {sorted(unknown)}: {body}")
    protos_text = fields.get("protocols", "*")
    if protos_text == "*":
        names, negate = set(PORT_PROTOCOLS) | {"other"}, False
    else:
        negate = protos_text.startswith("all but ")
        listed = {n.strip().upper() for n in protos_text.removeprefix("all but ").split(",")}
        names = {n if n in PORT_PROTOCOLS else "other" for n in listed}
        if negate:  # 'all but ICMP' still leaves other protocols
            names = (set(PORT_PROTOCOLS) - names) | {"other"}
    dst = _norm(_port_list(fields["dst_ports"])) if "dst_ports" in fields else (
        (MIN_PORT, MAX_PORT),)
    ivs = tuple(dst if n in names else () for n in PORT_PROTOCOLS)
    other = "other" in names and "dst_ports" not in fields
    return (ivs[0], ivs[1], ivs[2], other)


def parse_nca_ports(text: str) -> Ports:
    """NCA's connection string: 'All connections', '{...},{...}' or 'All but {...}'."""
    text = text.strip()
    if text == "All connections":
        return ALL_PORTS
    if text == "No connections":
        return ((), (), (), False)
    negate = text.startswith("All but ")
    cubes = [_nca_cube(b) for b in re.findall(r"\{([^{}]*)\}", text)]
    if not cubes:
        raise ValueError(f"cannot parse NCA connection {text!r}")
    u = _union(cubes)
    if negate:
        return (_complement(u[0]), _complement(u[1]), _complement(u[2]), not u[3])
    return u


def _netfence_ports(conn: dict[str, Any]) -> Ports:
    ps = conn.get("portSet")
    if not isinstance(ps, dict):
        raise ValueError(f"netfence connection without portSet: {conn}")
    ivs = [_norm([(int(a), int(b)) for a, b in ps.get(n, [])]) for n in PORT_PROTOCOLS]
    return (ivs[0], ivs[1], ivs[2], bool(ps.get("other", False)))


# -- endpoints and addresses -----------------------------------------------------------------


_NCA_WORKLOAD = re.compile(r"^(?P<ns>[^/\s]+)/(?P<name>[^\[\s]+)\[(?P<kind>[A-Za-z]+)\]$")


def _nca_endpoint(text: str) -> str | list[Interval] | None:
    """Workload id, IPv4 intervals for an address range, or None for IPv6."""
    m = _NCA_WORKLOAD.match(text)
    if m:
        return f"{m['ns']}/{m['kind'].lower()}/{m['name']}"
    if re.match(r"^[0-9a-fA-F:.]+(/\d+|-[0-9a-fA-F:.]+)?$", text) and (
            "." in text or ":" in text):
        if ":" in text:
            return None
        if "-" in text:
            a, b = text.split("-")
            return [(int(ipaddress.IPv4Address(a)), int(ipaddress.IPv4Address(b)))]
        net = ipaddress.IPv4Network(text, strict=False)
        return [(int(net.network_address), int(net.broadcast_address))]
    if "/" in text:  # a bare pod: ns/name
        ns, name = text.split("/", 1)
        return f"{ns}/pod/{name}"
    return text


_CIDR = re.compile(r"([0-9a-fA-F:.]+/\d+)(?: except \[([^\]]*)\])?")


def _netfence_addresses(text: str) -> list[Interval]:
    """IPv4 intervals of netfence's '0.0.0.0/0 except [10.0.0.0/8],::/0' address lists."""
    out: list[Interval] = []
    for cidr, excepts in _CIDR.findall(text):
        if ":" in cidr:
            continue
        net = ipaddress.IPv4Network(cidr, strict=False)
        ivs: tuple[Interval, ...] = ((int(net.network_address), int(net.broadcast_address)),)
        holes = [ipaddress.IPv4Network(e.strip(), strict=False) for e in excepts.split(",")
                 if e.strip()]
        if holes:
            hole_ivs = _norm([(int(h.network_address), int(h.broadcast_address)) for h in holes])
            ivs = _intersect(ivs, _complement(hole_ivs, 0, V4_MAX))
        out.extend(ivs)
    return out


def _intersect(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for lo, hi in a:
        for c, d in b:
            x, y = max(lo, c), min(hi, d)
            if x <= y:
                out.append((x, y))
    return _norm(out)


def _ip_label(lo: int, hi: int) -> str:
    return f"ip:{ipaddress.IPv4Address(lo)}-{ipaddress.IPv4Address(hi)}"


class _Collector:
    """Accumulates workload pairs and (workload, direction) -> address pieces."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], list[Ports]] = {}
        self.ext: dict[tuple[str, str], list[tuple[list[Interval], Ports]]] = {}

    def add(self, src: str | list[Interval] | None, dst: str | list[Interval] | None,
            ports: Ports) -> None:
        if src is None or dst is None:  # IPv6 (NCA only prints it on request)
            return
        if isinstance(src, str) and isinstance(dst, str):
            if src != dst:
                self.pairs.setdefault((src, dst), []).append(ports)
        elif isinstance(src, str) and isinstance(dst, list):
            self.ext.setdefault((src, "egress"), []).append((dst, ports))
        elif isinstance(src, list) and isinstance(dst, str):
            self.ext.setdefault((dst, "ingress"), []).append((src, ports))

    def triples(self) -> set[Triple]:
        out = {(s, d, render_ports(_union(ps))) for (s, d), ps in self.pairs.items()}
        for (wl, direction), pieces in self.ext.items():
            for lo, hi, ports in _segments(pieces):
                label = _ip_label(lo, hi)
                out.add((wl, label, ports) if direction == "egress" else (label, wl, ports))
        return {t for t in out if t[2] != "none"}


def _segments(pieces: list[tuple[list[Interval], Ports]]) -> list[tuple[int, int, str]]:
    """Cut the address space at every boundary, union ports per segment, merge equal runs."""
    cuts = sorted({b for ivs, _ in pieces for lo, hi in ivs for b in (lo, hi + 1)})
    merged: list[tuple[int, int, str]] = []
    for lo, nxt in itertools.pairwise(cuts):
        hi = nxt - 1
        covering = [p for ivs, p in pieces if any(a <= lo and hi <= b for a, b in ivs)]
        if not covering:
            continue
        text = render_ports(_union(covering))
        if merged and merged[-1][1] + 1 == lo and merged[-1][2] == text:
            merged[-1] = (merged[-1][0], hi, text)
        else:
            merged.append((lo, hi, text))
    return merged


# -- the two normalisers ---------------------------------------------------------------------


def parse_nca_txt(text: str) -> set[Triple]:
    """Triples of NCA's ``txt_no_fw_rules`` connectivity map ('A => B : conn' lines)."""
    col = _Collector()
    for line in text.splitlines():
        m = re.match(r"^(\S+) => (\S+) : (.+)$", line.strip())
        if not m:
            continue
        col.add(_nca_endpoint(m[1]), _nca_endpoint(m[2]), parse_nca_ports(m[3]))
    return col.triples()


def netfence_connections(map_json: dict[str, Any]) -> set[Triple]:
    """Triples of netfence's ``map -o json`` output (the default workload view)."""
    col = _Collector()

    def endpoint(side: dict[str, Any], text: str) -> str | list[Interval] | None:
        if side.get("type") == "external":
            ivs = _netfence_addresses(str(side.get("addresses", text)))
            return ivs or None
        return text

    for c in map_json.get("connections", []):
        col.add(endpoint(c.get("source", {}), c["from"]),
                endpoint(c.get("destination", {}), c["to"]), _netfence_ports(c))
    return col.triples()


def is_workload_pair(t: Triple) -> bool:
    """True when neither endpoint is an IP range."""
    return not (t[0].startswith("ip:") or t[1].startswith("ip:"))


def compare(a: set[Triple], b: set[Triple]) -> tuple[int, int, list[str]]:
    """Counts only-in-``a`` (netfence) and only-in-``b`` (NCA), and up to 20 example lines.

    Examples pair up both sides' ports for the same (src, dst) when both have one.
    """
    only_a, only_b = a - b, b - a
    by_pair_b: dict[tuple[str, str], list[str]] = {}
    for s, d, p in only_b:
        by_pair_b.setdefault((s, d), []).append(p)
    examples: list[str] = []
    seen: set[tuple[str, str]] = set()
    for s, d, p in sorted(only_a):
        other = by_pair_b.get((s, d))
        seen.add((s, d))
        examples.append(f"{s} -> {d}: netfence {p!r}, NCA "
                        f"{' | '.join(repr(x) for x in sorted(other)) if other else 'none'}")
    for s, d, p in sorted(only_b):
        if (s, d) not in seen:
            examples.append(f"{s} -> {d}: netfence none, NCA {p!r}")
    return len(only_a), len(only_b), examples[:20]


# -- main ------------------------------------------------------------------------------------


def strip_cnp(src: Path, dst: Path) -> int:
    """Copy ``src`` (multi-document YAML) to ``dst`` without ClusterNetworkPolicy objects."""
    docs = [d for d in yaml.safe_load_all(src.read_text()) if d]
    keep = [d for d in docs if d.get("kind") != "ClusterNetworkPolicy"]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(yaml.safe_dump_all(keep, sort_keys=False))
    return len(docs) - len(keep)


def _default_venv() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "netfence-bench" / f"nca-{NCA_VERSION}"


def _report(label: str, nf: set[Triple], nca: set[Triple]) -> None:
    a, b, examples = compare(nf, nca)
    common = len(nf & nca)
    verdict = "AGREE" if a == b == 0 else "DISAGREE"
    print(f"{label}: netfence {len(nf)}, NCA {len(nca)}, common {common}, "
          f"only netfence {a}, only NCA {b}: {verdict}")
    for line in examples:
        print(f"    {line}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--namespaces", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=300.0, help="NCA time cap, seconds")
    ap.add_argument("--venv", type=Path, default=_default_venv(), help="NCA virtualenv")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where to write the cluster and outputs (default: a new temp dir)")
    args = ap.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix=f"nca-bench-{args.namespaces}-"))
    work.mkdir(parents=True, exist_ok=True)
    nca = ensure_nca(args.venv)
    gen_dir, manifests = work / "generated", work / "manifests"
    sys.stdout.flush()
    subprocess.run([str(PYTHON), str(HERE / "gen.py"), str(args.namespaces), str(gen_dir)],
                   check=True)
    dropped = strip_cnp(gen_dir / "cluster.yaml", manifests / "cluster.yaml")
    print(f"workdir {work}; dropped {dropped} ClusterNetworkPolicy objects for the comparison")

    nf_out = work / "netfence.json"
    nfm = run_measured([str(NETFENCE), "map", "-f", str(manifests), "-o", "json"], nf_out,
                       work / "netfence.stderr", args.timeout)
    if nfm.seconds is None or nfm.returncode not in (0, None):
        print(f"netfence failed (exit {nfm.returncode}); see {work / 'netfence.stderr'}")
        return 1
    nf = netfence_connections(json.loads(nf_out.read_text()))

    print("NCA:", " ".join(nca_command(nca, manifests, work / "nca.txt")))
    res = run_nca(nca, manifests, args.timeout, work)
    print(f"netfence: {nfm.seconds:.2f} s wall, {nfm.cpu_seconds or 0:.2f} s CPU, "
          f"peak RSS {(nfm.peak_rss_kb or 0) / 1024:.0f} MiB")
    if res.seconds is None:
        print(f"NCA: timed out after {args.timeout:.0f} s (peak RSS "
              f"{(res.peak_rss_kb or 0) / 1024:.0f} MiB); ratio > "
              f"{args.timeout / nfm.seconds:.1f}x")
        return 2
    print(f"NCA: {res.seconds:.2f} s wall, {res.cpu_seconds or 0:.2f} s CPU, "
          f"peak RSS {(res.peak_rss_kb or 0) / 1024:.0f} MiB, exit {res.returncode}")
    print(f"ratio NCA/netfence: {res.seconds / nfm.seconds:.1f}x wall, "
          f"{(res.cpu_seconds or 0) / max(nfm.cpu_seconds or 0, 1e-3):.1f}x CPU")
    if res.connections is None:
        print(f"NCA output not parsed; see {res.raw_path} and {work / 'nca.stderr'}")
        return 1
    _report("workload<->workload", {t for t in nf if is_workload_pair(t)},
            {t for t in res.connections if is_workload_pair(t)})
    _report("workload<->external (IPv4)", {t for t in nf if not is_workload_pair(t)},
            {t for t in res.connections if not is_workload_pair(t)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
