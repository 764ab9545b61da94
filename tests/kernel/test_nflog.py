"""NFLOG in the node netns: a denied probe yields a record with the prefix and 5-tuple."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.kernel.bed import Bed, Mode, PodSpec

MakeBed = Callable[..., Bed]
Require = Callable[[str], None]

RULES = """table inet t {
    chain f {
        type filter hook forward priority filter; policy accept;
        tcp dport 81 log prefix "D|I|g1|0|" group 100 drop
        udp dport 5353 log prefix "W|I|g1|1|" group 100 accept
    }
}
"""


def pods(mode: Mode) -> list[PodSpec]:
    b_ip = "10.244.1.12" if mode == "bridge" else "10.244.2.12"
    return [PodSpec("a", "10.244.1.11"), PodSpec("b", b_ip)]


@pytest.mark.parametrize("mode", ["bridge", "routed"])
def test_denied_probe_is_logged_with_prefix_and_five_tuple(
        make_bed: MakeBed, require: Require, mode: Mode) -> None:
    require("nflog")
    bed = make_bed("l", pods(mode), mode)
    bed.nft(RULES)
    b_ip = bed.ip("b")
    with bed.nflog(100, count=1, timeout=5) as watch:
        assert bed.probe("a", b_ip, "tcp", 80)  # not logged
        assert not bed.probe("a", b_ip, "tcp", 81)
    assert watch.returncode == 0, watch.stderr
    assert len(watch.records) == 1
    rec = watch.records[0]
    assert rec["prefix"] == "D|I|g1|0|"
    assert (rec["family"], rec["src"], rec["dst"], rec["proto"], rec["dport"]) == (
        "ip", "10.244.1.11", b_ip, "tcp", 81)
    assert 1024 <= rec["sport"] <= 65535
    assert rec["group"] == 100
    assert rec["length"] <= 128
    if mode == "bridge":  # br_netfilter: IP devices are the bridge, ports are the veths
        assert (rec["indev_name"], rec["outdev_name"]) == ("br0", "br0")
        assert rec["physindev_name"] == bed.veth("a")
        assert rec["physoutdev_name"] == bed.veth("b")
    else:
        assert (rec["indev_name"], rec["outdev_name"]) == (bed.veth("a"), bed.veth("b"))
        assert rec["physindev"] is None and rec["physoutdev"] is None


def test_audit_log_keeps_traffic_flowing(make_bed: MakeBed, require: Require) -> None:
    require("nflog")
    bed = make_bed("la", pods("routed"), "routed")
    bed.nft(RULES)
    with bed.nflog(100, count=1, timeout=5) as watch:
        assert bed.probe("a", bed.ip("b"), "udp", 5353)
    assert [r["prefix"] for r in watch.records] == ["W|I|g1|1|"]
    rec = watch.records[0]
    assert (rec["src"], rec["dst"], rec["proto"], rec["dport"]) == (
        "10.244.1.11", bed.ip("b"), "udp", 5353)


def test_nothing_logged_means_timeout_exit(make_bed: MakeBed, require: Require) -> None:
    """The reader's --timeout bounds it; without packets it exits 3 with no records."""
    require("nflog")
    bed = make_bed("ln", pods("routed"), "routed")
    bed.nft(RULES)
    with bed.nflog(100, count=1, timeout=0.5) as watch:
        assert bed.probe("a", bed.ip("b"), "tcp", 80)
    assert watch.returncode == 3
    assert watch.records == []


OVERFLOW = """
import json, socket
from netfence.agent.nflog import NflogReader
with NflogReader(rcvbuf=4096) as reader:
    reader.open(101)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(500):
        tx.sendto(b"x", ("127.0.0.1", 9))
    got = 0
    for _ in range(50):
        batch = reader.read(0.2)
        if not batch:
            break
        got += len(batch)
    dropped = reader.dropped
    tx.sendto(b"x", ("127.0.0.1", 10))  # still reading after the overflow
    after = [p.dport for p in reader.read(2.0)]
print(json.dumps({"got": got, "dropped": dropped, "after": after}))
"""


def test_socket_overflow_is_counted_and_reading_continues(
        make_bed: MakeBed, require: Require) -> None:
    require("nflog")
    bed = make_bed("lo", [], "routed")
    bed.nft("""table inet o {
    chain out {
        type filter hook output priority filter; policy accept;
        ip daddr 127.0.0.1 udp dport { 9, 10 } log prefix "flood|" group 101
    }
}
""")
    proc = bed.node_exec([bed.python, "-c", OVERFLOW], timeout=30)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["dropped"] >= 1
    assert 0 < result["got"] < 500
    assert result["after"] == [10]
