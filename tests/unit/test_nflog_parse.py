"""NFLOG message parsing on hand-built netlink bytes (no root, no kernel)."""

from __future__ import annotations

import socket
import struct

import pytest

from netfence.agent import nflog


def attr(atype: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("=HH", length, atype) + value + b"\0" * (-length % 4)


def nlmsg(mtype: int, body: bytes, seq: int = 0, flags: int = 0) -> bytes:
    length = 16 + len(body)
    return struct.pack("=IHHII", length, mtype, flags, seq, 0) + body + b"\0" * (-length % 4)


def ipv4_tcp(src: str, dst: str, sport: int, dport: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x02, 64240, 0, 0)
    return ip + tcp


def ipv6_udp_with_hop_by_hop(src: str, dst: str, sport: int, dport: int) -> bytes:
    hbh = bytes([17, 0]) + b"\x01\x04\0\0\0\0"  # next header UDP, length 0 (8 bytes), PadN
    udp = struct.pack("!HHHH", sport, dport, 8, 0)
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(hbh) + len(udp), 0, 64,
                      socket.inet_pton(socket.AF_INET6, src),
                      socket.inet_pton(socket.AF_INET6, dst))
    return ip6 + hbh + udp


def packet_msg(payload: bytes, prefix: str = "D|I|g1|0|", group: int = 100,
               pf: int = socket.AF_INET, extra: bytes = b"") -> bytes:
    body = struct.pack("!BBH", pf, 0, group)
    body += attr(1 | 0x4000, struct.pack("!HBB", 0x0800, 2, 0))  # PACKET_HDR, NET_BYTEORDER bit
    body += attr(3, struct.pack("!QQ", 1_700_000_000, 250_000))  # TIMESTAMP
    body += attr(4, struct.pack("!I", 2))  # IFINDEX_INDEV
    body += attr(5, struct.pack("!I", 3))  # IFINDEX_OUTDEV
    body += attr(6, struct.pack("!I", 7))  # IFINDEX_PHYSINDEV
    body += attr(7, struct.pack("!I", 8))  # IFINDEX_PHYSOUTDEV
    body += attr(10, prefix.encode() + b"\0")  # PREFIX
    body += extra
    body += attr(9, payload)  # PAYLOAD
    return nlmsg(0x0400, body)  # NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET


def test_constants_match_the_uapi_header() -> None:
    assert nflog.NETLINK_NETFILTER == 12
    assert (nflog.MSG_PACKET, nflog.MSG_CONFIG) == (0x0400, 0x0401)
    assert (nflog.NFULA_PACKET_HDR, nflog.NFULA_TIMESTAMP, nflog.NFULA_IFINDEX_INDEV,
            nflog.NFULA_IFINDEX_PHYSOUTDEV, nflog.NFULA_PAYLOAD, nflog.NFULA_PREFIX) == (
        1, 3, 4, 7, 9, 10)
    assert (nflog.NFULNL_CFG_CMD_BIND, nflog.NFULNL_CFG_CMD_UNBIND,
            nflog.NFULNL_CFG_CMD_PF_BIND, nflog.NFULNL_CFG_CMD_PF_UNBIND) == (1, 2, 3, 4)
    assert (nflog.NFULA_CFG_CMD, nflog.NFULA_CFG_MODE, nflog.NFULA_CFG_QTHRESH) == (1, 2, 5)
    assert nflog.NFULNL_COPY_PACKET == 2


def test_ipv4_tcp_packet() -> None:
    data = packet_msg(ipv4_tcp("10.244.1.11", "10.244.1.12", 40000, 81))
    packets, acks = nflog.parse_datagram(data)
    assert acks == []
    assert packets == [nflog.NflogPacket(
        prefix="D|I|g1|0|", family="ip", src="10.244.1.11", dst="10.244.1.12", proto="tcp",
        sport=40000, dport=81, indev=2, outdev=3, physindev=7, physoutdev=8,
        ts=1_700_000_000.25, group=100, pf=2, hook=2, hw_protocol=0x0800, proto_num=6,
        length=40)]


def test_batch_of_messages_with_done_and_ipv6_extension_header() -> None:
    data = (packet_msg(ipv4_tcp("10.244.1.11", "10.244.1.12", 1, 2), prefix="one")
            + packet_msg(ipv6_udp_with_hop_by_hop("fd00::1", "fd00::2", 5000, 53),
                         prefix="two", pf=socket.AF_INET6)
            + nlmsg(nflog.NLMSG_DONE, b"\0\0\0\0"))
    packets, _ = nflog.parse_datagram(data)
    assert [p.prefix for p in packets] == ["one", "two"]
    six = packets[1]
    assert (six.family, six.src, six.dst, six.proto, six.sport, six.dport, six.pf) == (
        "ip6", "fd00::1", "fd00::2", "udp", 5000, 53, socket.AF_INET6)


def test_icmp_type_and_code() -> None:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 1, 0,
                     socket.inet_aton("10.244.1.11"), socket.inet_aton("10.244.1.12"))
    (pkt,), _ = nflog.parse_datagram(packet_msg(ip + bytes([8, 0, 0, 0, 0, 1, 0, 1])))
    assert (pkt.proto, pkt.icmp_type, pkt.icmp_code, pkt.sport, pkt.dport) == (
        "icmp", 8, 0, None, None)


def test_non_first_fragment_has_no_ports() -> None:
    payload = bytearray(ipv4_tcp("10.244.1.11", "10.244.1.12", 1, 2))
    payload[6:8] = struct.pack("!H", 100)  # fragment offset 100 * 8
    (pkt,), _ = nflog.parse_datagram(packet_msg(bytes(payload)))
    assert (pkt.proto, pkt.sport, pkt.dport) == ("tcp", None, None)


def test_missing_payload_and_optional_attributes() -> None:
    body = struct.pack("!BBH", socket.AF_INET, 0, 5) + attr(10, b"only\0")
    (pkt,), _ = nflog.parse_datagram(nlmsg(0x0400, body))
    assert (pkt.prefix, pkt.group, pkt.family, pkt.src, pkt.proto, pkt.ts, pkt.indev) == (
        "only", 5, "", None, None, None, None)


@pytest.mark.parametrize("cut", [1, 15, 17, 21, 30, 60])
def test_truncated_datagrams_never_raise(cut: int) -> None:
    data = packet_msg(ipv4_tcp("10.244.1.11", "10.244.1.12", 1, 2))
    packets, acks = nflog.parse_datagram(data[:cut])
    assert packets == [] and acks == []  # the length field no longer fits: message dropped


def test_truncated_payload_keeps_addresses() -> None:
    payload = ipv4_tcp("10.244.1.11", "10.244.1.12", 1, 2)[:22]  # 2 bytes of TCP
    (pkt,), _ = nflog.parse_datagram(packet_msg(payload))
    assert (pkt.src, pkt.proto, pkt.sport) == ("10.244.1.11", "tcp", None)


def test_acks_and_errors() -> None:
    ack = nlmsg(nflog.NLMSG_ERROR, struct.pack("=i", 0) + b"\0" * 16, seq=7)
    busy = nlmsg(nflog.NLMSG_ERROR, struct.pack("=i", -16) + b"\0" * 16, seq=8)
    assert nflog.parse_datagram(ack + busy) == ([], [(7, 0), (8, 16)])


def test_config_request_bytes() -> None:
    cmd = nflog.encode_attr(nflog.NFULA_CFG_CMD, bytes([nflog.NFULNL_CFG_CMD_BIND]))
    assert cmd == b"\x05\x00\x01\x00\x01\x00\x00\x00"  # len 5, type 1, cmd 1, padded to 8
    mode = nflog.encode_attr(nflog.NFULA_CFG_MODE, struct.pack("!IBB", 128, 2, 0))
    assert mode == b"\x0a\x00\x02\x00\x00\x00\x00\x80\x02\x00\x00\x00"
    msg = nflog.encode_config(9, 100, cmd)
    length, mtype, flags, seq, pid = struct.unpack_from("=IHHII", msg)
    assert (length, mtype, flags, seq, pid) == (len(msg), 0x0401, 0x05, 9, 0)
    assert msg[16:20] == b"\x00\x00\x00\x64"  # AF_UNSPEC, version 0, group 100 big-endian
    assert msg[20:] == cmd


def test_cli_json_has_interface_names() -> None:
    (pkt,), _ = nflog.parse_datagram(packet_msg(ipv4_tcp("10.244.1.11", "10.244.1.12", 1, 2)))
    out = nflog.packet_json(pkt)
    assert out["prefix"] == "D|I|g1|0|" and out["dport"] == 2
    assert {"indev_name", "outdev_name", "physindev_name", "physoutdev_name"} <= set(out)


def test_reader_refuses_use_before_open() -> None:
    reader = nflog.NflogReader()
    with pytest.raises(RuntimeError, match="not open"):
        reader.read(0)
    reader.close()  # closing an unopened reader is harmless
    with pytest.raises(ValueError, match="group"):
        reader.open(70000)
