"""The namespace bed itself: reachability, the node's forward hook, probes, cleanup."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.kernel.bed import (
    Bed,
    BedError,
    Mode,
    PodSpec,
    Probe,
    Proto,
    bed_namespaces,
    list_netns,
    run,
)

MakeBed = Callable[..., Bed]
MODES: list[Mode] = ["bridge", "routed"]


def pods_for(mode: Mode) -> list[PodSpec]:
    if mode == "bridge":
        ips = ["10.244.1.11", "10.244.1.12", "10.244.1.13", "10.244.1.14"]
    else:  # routed /32s need not share a subnet
        ips = ["10.244.1.11", "10.244.1.12", "10.244.2.21", "10.244.3.31"]
    return [PodSpec(name, ip) for name, ip in zip("abcd", ips, strict=True)]


DROP_B_80 = """table inet t {
    chain f {
        type filter hook forward priority filter; policy accept;
        ip daddr 10.244.1.12 tcp dport 80 drop
    }
}
"""

COUNT = """table inet c {
    counter fwd_tcp { }
    counter fwd_udp { }
    chain f {
        type filter hook forward priority filter; policy accept;
        ip saddr 10.244.1.11 ip daddr 10.244.1.12 tcp dport 80 counter name "fwd_tcp"
        ip saddr 10.244.1.11 ip daddr 10.244.1.12 udp dport 53 counter name "fwd_udp"
    }
}
"""


CASES: list[tuple[Proto, int]] = [("tcp", 80), ("tcp", 8080), ("udp", 53), ("udp", 5353)]


def matrix(bed: Bed) -> list[Probe]:
    return [probe for proto, port in CASES for probe in bed.pairs(proto, port)]


@pytest.mark.parametrize("mode", MODES)
def test_every_pod_reaches_every_pod_without_rules(make_bed: MakeBed, mode: Mode) -> None:
    bed = make_bed("r", pods_for(mode), mode)
    probes = matrix(bed)
    results = bed.probe_many(probes)
    failed = [p for p, ok in zip(probes, results, strict=True) if not ok]
    assert not failed
    assert len(probes) == 4 * 3 * 4


@pytest.mark.parametrize("mode", MODES)
def test_unserved_ports_fail(make_bed: MakeBed, mode: Mode) -> None:
    """Probes can fail: nothing listens on port 9 (TCP reset, UDP port unreachable)."""
    bed = make_bed("u", pods_for(mode)[:2], mode)
    assert bed.probe_many(bed.pairs("tcp", 9) + bed.pairs("udp", 9)) == [False] * 4


@pytest.mark.parametrize("mode", MODES)
def test_pod_traffic_crosses_node_forward_hook(make_bed: MakeBed, mode: Mode) -> None:
    bed = make_bed("f", pods_for(mode), mode)
    bed.nft(COUNT)
    assert bed.counter("inet", "c", "fwd_tcp")[0] == 0
    assert bed.probe("a", "10.244.1.12", "tcp", 80)
    assert bed.probe("a", "10.244.1.12", "udp", 53)
    tcp_packets = bed.counter("inet", "c", "fwd_tcp")[0]
    udp_packets = bed.counter("inet", "c", "fwd_udp")[0]
    assert tcp_packets >= 3  # SYN, ACK, data (, FIN): every packet of a -> b
    assert udp_packets >= 1


@pytest.mark.parametrize("mode", MODES)
def test_one_drop_rule_blocks_exactly_one_probe(make_bed: MakeBed, mode: Mode) -> None:
    bed = make_bed("d", pods_for(mode), mode)
    bed.nft(DROP_B_80)
    probes = matrix(bed)
    results = bed.probe_many(probes)
    blocked = {(p.src, p.dst, p.proto, p.port)
               for p, ok in zip(probes, results, strict=True) if not ok}
    expected = {(src, "10.244.1.12", "tcp", 80) for src in ("a", "c", "d")}
    assert blocked == expected


def test_denied_batch_runs_concurrently(make_bed: MakeBed) -> None:
    bed = make_bed("c", pods_for("routed")[:2], "routed")
    bed.nft("""table inet t {
    chain f {
        type filter hook forward priority filter; policy accept;
        ip daddr 10.244.1.12 drop
    }
}
""")
    probes = [Probe("a", "10.244.1.12", "tcp" if i % 2 else "udp", 80 + i % 3, 0.5)
              for i in range(100)]
    start = time.monotonic()
    results = bed.probe_many(probes)
    elapsed = time.monotonic() - start
    assert results == [False] * 100
    assert 0.45 <= elapsed < 3.0, elapsed  # ~one timeout, not 100 of them


def test_serve_adds_ports(make_bed: MakeBed) -> None:
    bed = make_bed("s", pods_for("routed")[:2], "routed")
    assert not bed.probe("a", "10.244.1.12", "tcp", 9090)
    assert not bed.probe("a", "10.244.1.12", "udp", 9091)
    bed.serve("b", tcp=[9090], udp=[9091])
    assert bed.probe("a", "10.244.1.12", "tcp", 9090)
    assert bed.probe("a", "10.244.1.12", "udp", 9091)


@pytest.mark.parametrize("mode", MODES)
def test_node_ip_is_the_pods_gateway(make_bed: MakeBed, mode: Mode) -> None:
    bed = make_bed("n", pods_for(mode)[:1], mode)
    route = bed.pod_exec("a", ["ip", "route", "show", "default"], check=True).stdout
    assert f"via {bed.node_ip} dev eth0" in route
    connect = "import socket; socket.create_connection(('10.244.1.11', 80), timeout=2).close()"
    bed.node_exec([bed.python, "-c", connect], check=True)  # node -> pod works too


def test_probe_targets_outside_the_bed_are_refused(make_bed: MakeBed) -> None:
    bed = make_bed("g", pods_for("routed")[:2], "routed")
    with pytest.raises(ValueError, match="outside"):
        bed.probe("a", "192.0.2.1", "tcp", 80)
    with pytest.raises(KeyError):
        bed.probe("zz", "10.244.1.12", "tcp", 80)


def test_teardown_deletes_namespaces_also_after_errors(make_bed: MakeBed) -> None:
    bed = make_bed("t", pods_for("routed")[:3], "routed")  # only to learn the tagged name
    tag = bed.tag + "x"
    bed.teardown(raise_errors=True)
    assert bed_namespaces(bed.tag) == []
    with pytest.raises(RuntimeError, match="boom"), Bed(tag, pods_for("routed")[:3], "routed"):
        assert len(bed_namespaces(tag)) == 4
        raise RuntimeError("boom")
    assert bed_namespaces(tag) == []


def test_failed_setup_cleans_up(make_bed: MakeBed) -> None:
    tag = make_bed("e", [], "routed").tag + "x"
    bad = Bed(tag, [PodSpec("a", "10.244.1.11", tcp=(70000,))], "routed")
    with pytest.raises(BedError), bad:
        pass
    assert bed_namespaces(tag) == []


def test_startup_sweep_removes_only_its_own_tag(make_bed: MakeBed) -> None:
    base = make_bed("w", [], "routed").tag
    tag, other = base + "y", base + "z"
    stale, keep = f"nf-{tag}-a", f"nf-{other}-a"
    run(["ip", "netns", "add", stale])
    run(["ip", "netns", "add", keep])
    try:
        with Bed(tag, pods_for("routed")[:1], "routed"):
            names = list_netns()
            assert keep in names
            assert f"nf-{tag}-node" in names
        assert stale not in list_netns()
        assert keep in list_netns()
    finally:
        for ns in (stale, keep):
            if ns in list_netns():
                run(["ip", "netns", "del", ns], check=False)
    assert bed_namespaces(tag) == [] and bed_namespaces(other) == []
