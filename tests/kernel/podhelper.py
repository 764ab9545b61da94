"""One long-lived helper per pod namespace: serves TCP/UDP echo ports and runs probe batches.

Run inside a pod netns (stdlib only, any python3):

    ip netns exec nf-t-a python3 tests/kernel/podhelper.py --tcp 80,81 --udp 53

Protocol: JSON lines. After binding its ports the helper prints
    {"ready": true, "tcp": [...], "udp": [...]}
then reads requests on stdin, one per line, and answers each with one line carrying its id:
    {"id": 1, "op": "serve", "tcp": [8080], "udp": []}         -> {"id": 1, "ok": true, ...}
    {"id": 2, "op": "probe", "probes": [{"proto": "tcp", "dst": "10.244.1.12", "port": 80,
                                          "timeout": 0.5}, ...]} -> {"id": 2, "results": [..]}
    {"id": 3, "op": "ping"}                                     -> {"id": 3, "ok": true}
The helper exits on EOF of stdin (so it dies with the test process that started it).

Probes run concurrently, one thread each: TCP = connect, send a token and read the echo;
UDP = send a token (resent once at half the timeout) and wait for the echo. Every probe ends
by its deadline. Only loopback and 10.244.0.0/16 may be probed.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import selectors
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ALLOWED_NETS = (ipaddress.ip_network("10.244.0.0/16"), ipaddress.ip_network("127.0.0.0/8"),
                ipaddress.ip_network("::1/128"))
MAX_PROBE_TIMEOUT = 10.0
MAX_WORKERS = 256
ECHO_IDLE = 2.0

_out_lock = threading.Lock()


def emit(obj: dict[str, Any]) -> None:
    with _out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def allowed(dst: str) -> bool:
    try:
        addr = ipaddress.ip_address(dst)
    except ValueError:
        return False
    return any(addr.version == net.version and addr in net for net in ALLOWED_NETS)


# --- servers -------------------------------------------------------------------------------
class Servers:
    """All listening sockets in one selector thread; TCP connections echo in short threads."""

    def __init__(self) -> None:
        self.sel = selectors.EpollSelector()
        self.lock = threading.Lock()
        self.tcp: set[int] = set()
        self.udp: set[int] = set()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _sockets(self, kind: int, port: int) -> list[socket.socket]:
        socks = []
        s4 = socket.socket(socket.AF_INET, kind)
        s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s4.bind(("0.0.0.0", port))
        socks.append(s4)
        if socket.has_ipv6:
            try:
                s6 = socket.socket(socket.AF_INET6, kind)
                s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s6.bind(("::", port))
                socks.append(s6)
            except OSError:
                pass  # IPv6 disabled in this netns: IPv4 only
        for s in socks:
            if kind == socket.SOCK_STREAM:
                s.listen(128)
            s.setblocking(False)
        return socks

    def add(self, tcp: list[int], udp: list[int]) -> None:
        with self.lock:
            for port in tcp:
                if port not in self.tcp:
                    for s in self._sockets(socket.SOCK_STREAM, port):
                        self.sel.register(s, selectors.EVENT_READ, "tcp")
                    self.tcp.add(port)
            for port in udp:
                if port not in self.udp:
                    for s in self._sockets(socket.SOCK_DGRAM, port):
                        self.sel.register(s, selectors.EVENT_READ, "udp")
                    self.udp.add(port)

    def _loop(self) -> None:
        # epoll allows registering from another thread while this one waits; new ports are
        # picked up by the next wait (<= 0.2 s, usually at once).
        while True:
            try:
                events = self.sel.select(timeout=0.2)
            except (OSError, ValueError, RuntimeError):
                time.sleep(0.05)
                continue
            for key, _ in events:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if key.data == "tcp":
                    with contextlib.suppress(OSError):
                        conn, _addr = sock.accept()
                        threading.Thread(target=_echo_tcp, args=(conn,), daemon=True).start()
                else:
                    with contextlib.suppress(OSError):
                        data, addr = sock.recvfrom(65535)
                        sock.sendto(data, addr)


def _echo_tcp(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(ECHO_IDLE)
        with contextlib.suppress(OSError):
            data = conn.recv(4096)
            if data:
                conn.sendall(data)


# --- probes --------------------------------------------------------------------------------
def _family(dst: str) -> int:
    return socket.AF_INET6 if ":" in dst else socket.AF_INET


def probe_tcp(dst: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    token = b"nf-" + os.urandom(8).hex().encode()
    try:
        with socket.socket(_family(dst), socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((dst, port))
            s.sendall(token)
            got = b""
            while len(got) < len(token):
                # The echo gets at least 0.2 s even if the connect used most of the budget.
                s.settimeout(max(deadline - time.monotonic(), 0.2))
                chunk = s.recv(len(token) - len(got))
                if not chunk:
                    return False
                got += chunk
            return got == token
    except OSError:
        return False


def probe_udp(dst: str, port: int, timeout: float) -> bool:
    start = time.monotonic()
    deadline = start + timeout
    token = b"nf-" + os.urandom(8).hex().encode()
    resent = False
    try:
        with socket.socket(_family(dst), socket.SOCK_DGRAM) as s:
            s.connect((dst, port))
            s.send(token)
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return False
                wake = deadline if resent else min(deadline, start + timeout / 2)
                s.settimeout(max(wake - now, 0.001))
                try:
                    if s.recv(4096) == token:
                        return True
                except TimeoutError:
                    if not resent:
                        resent = True
                        s.send(token)
    except OSError:  # ICMP port unreachable / admin prohibited -> refused
        return False


def run_probe(p: dict[str, Any]) -> bool:
    dst = str(p["dst"])
    port = int(p["port"])
    timeout = min(float(p.get("timeout", 0.5)), MAX_PROBE_TIMEOUT)
    if not allowed(dst) or not 0 < port < 65536:
        return False
    if p["proto"] == "tcp":
        return probe_tcp(dst, port, timeout)
    if p["proto"] == "udp":
        return probe_udp(dst, port, timeout)
    return False


def run_batch(probes: list[dict[str, Any]]) -> list[bool]:
    if not probes:
        return []
    with ThreadPoolExecutor(max_workers=min(len(probes), MAX_WORKERS)) as pool:
        return list(pool.map(run_probe, probes))


# --- main ----------------------------------------------------------------------------------
def _ports(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", type=_ports, default=[])
    ap.add_argument("--udp", type=_ports, default=[])
    args = ap.parse_args()
    servers = Servers()
    try:
        servers.add(args.tcp, args.udp)
    except OSError as exc:
        emit({"ready": False, "error": str(exc)})
        return 1
    emit({"ready": True, "tcp": sorted(servers.tcp), "udp": sorted(servers.udp),
          "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        req: dict[str, Any] = {}
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "probe":
                probes = req["probes"]
                for p in probes:
                    if not allowed(str(p["dst"])):
                        raise ValueError(f"refusing to probe {p['dst']}: not 10.244.0.0/16")
                emit({"id": req.get("id"), "results": run_batch(probes)})
            elif op == "serve":
                servers.add([int(x) for x in req.get("tcp", [])],
                            [int(x) for x in req.get("udp", [])])
                emit({"id": req.get("id"), "ok": True, "tcp": sorted(servers.tcp),
                      "udp": sorted(servers.udp)})
            elif op == "ping":
                emit({"id": req.get("id"), "ok": True})
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # answer every request, never hang the caller
            emit({"id": req.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
