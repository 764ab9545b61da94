"""NFLOG reader: logged packets from nftables `log group N` rules, in pure stdlib.

The kernel sends each logged packet as an nfnetlink message (subsystem ULOG) on a
NETLINK_NETFILTER socket bound to a log group. Constants and layouts follow the Linux UAPI
headers `linux/netfilter/nfnetlink.h` and `linux/netfilter/nfnetlink_log.h`.

    with NflogReader() as reader:
        reader.open(100)
        for pkt in reader.read(timeout=1.0):
            print(pkt.prefix, pkt.src, pkt.dst, pkt.proto, pkt.dport)

`fileno()` lets an asyncio loop watch the socket (`loop.add_reader`); `read(0)` then drains
whatever is queued without blocking. Socket overflow (ENOBUFS) is counted in `dropped` and
reading continues; the reader's own queue is bounded too (`overflowed`).

Command line (one JSON object per packet on stdout; run it inside a netns with
`ip netns exec`):

    python -m netfence.agent.nflog --group 100 --count 1 --timeout 5

Once bound it writes `nflog: listening on group N` to stderr (callers wait for that line
before sending traffic). Exit 0 when --count packets were printed (or the timeout ended a
count-less run), 3 when the timeout came first, 2 on a socket/config error.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from types import TracebackType

# --- netlink (linux/netlink.h) -------------------------------------------------------------
NETLINK_NETFILTER = 12
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLM_F_REQUEST = 0x01
NLM_F_ACK = 0x04
NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid (host byte order)
_NLATTR = struct.Struct("=HH")  # len, type
_NFGENMSG = struct.Struct("!BBH")  # family, version, res_id (big endian)

# --- nfnetlink (linux/netfilter/nfnetlink.h) -----------------------------------------------
NFNETLINK_V0 = 0
NFNL_SUBSYS_ULOG = 4

# --- nfnetlink_log (linux/netfilter/nfnetlink_log.h) ---------------------------------------
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1

NFULA_PACKET_HDR = 1
NFULA_MARK = 2
NFULA_TIMESTAMP = 3
NFULA_IFINDEX_INDEV = 4
NFULA_IFINDEX_OUTDEV = 5
NFULA_IFINDEX_PHYSINDEV = 6
NFULA_IFINDEX_PHYSOUTDEV = 7
NFULA_HWADDR = 8
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10
NFULA_UID = 11
NFULA_SEQ = 12
NFULA_SEQ_GLOBAL = 13
NFULA_GID = 14
NFULA_HWTYPE = 15
NFULA_HWHEADER = 16
NFULA_HWLEN = 17
NFULA_CT = 18
NFULA_CT_INFO = 19
NFULA_VLAN = 20
NFULA_L2HDR = 21

NFULNL_CFG_CMD_NONE = 0
NFULNL_CFG_CMD_BIND = 1
NFULNL_CFG_CMD_UNBIND = 2
NFULNL_CFG_CMD_PF_BIND = 3
NFULNL_CFG_CMD_PF_UNBIND = 4

NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_NLBUFSIZ = 3
NFULA_CFG_TIMEOUT = 4
NFULA_CFG_QTHRESH = 5
NFULA_CFG_FLAGS = 6

NFULNL_COPY_NONE = 0x00
NFULNL_COPY_META = 0x01
NFULNL_COPY_PACKET = 0x02

MSG_PACKET = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET
MSG_CONFIG = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG

_CFG_MODE = struct.Struct("!IBB")  # copy_range (be32), copy_mode, pad
_PACKET_HDR = struct.Struct("!HBB")  # hw_protocol (be16), hook, pad
_TIMESTAMP = struct.Struct("!QQ")  # sec, usec (be64 each)
_BE32 = struct.Struct("!I")

# --- IP ------------------------------------------------------------------------------------
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp", 136: "udplite"}
_PORT_PROTOS = frozenset({6, 17, 132, 136})
_ICMP_PROTOS = frozenset({1, 58})
# IPv6 extension headers walked to find the transport header: hop-by-hop, routing, fragment,
# AH, destination options.
_IP6_EXT = frozenset({0, 43, 44, 51, 60})
_IP6_MAX_EXT = 8

DEFAULT_SNAPLEN = 128
DEFAULT_RCVBUF = 1 << 20
DEFAULT_MAX_QUEUE = 65536
_RECV_SIZE = 1 << 16
_SO_RCVBUFFORCE = 33  # asm-generic/socket.h
_ACK_TIMEOUT = 2.0


@dataclass(frozen=True)
class NflogPacket:
    """One logged packet. Addresses are strings; absent fields are None."""

    prefix: str
    family: str  # "ip", "ip6" or "" (payload missing or not IP)
    src: str | None
    dst: str | None
    proto: str | None  # "tcp", "udp", "sctp", "icmp", "icmpv6", ... or the number as text
    sport: int | None
    dport: int | None
    indev: int | None
    outdev: int | None
    physindev: int | None
    physoutdev: int | None
    ts: float | None
    group: int = 0
    pf: int = 0  # protocol family of the logging hook (2 ip, 10 ip6, 7 bridge)
    hook: int | None = None
    hw_protocol: int | None = None
    proto_num: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    mark: int | None = None
    length: int = 0  # bytes of payload copied (<= snaplen)


class NflogError(OSError):
    """A configuration request was refused by the kernel."""


def _align4(n: int) -> int:
    return (n + 3) & ~3


def encode_attr(attr_type: int, value: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = _NLATTR.size + len(value)
    return _NLATTR.pack(length, attr_type) + value + b"\0" * (_align4(length) - length)


def encode_config(seq: int, group: int, attrs: bytes, family: int = socket.AF_UNSPEC) -> bytes:
    """An NFULNL_MSG_CONFIG request (with ACK) for `group` carrying encoded attributes."""
    body = _NFGENMSG.pack(family, NFNETLINK_V0, group) + attrs
    hdr = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK,
                         seq, 0)
    return hdr + body


def iter_messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, seq, payload) for each netlink message in one datagram."""
    off = 0
    end = len(data)
    while off + _NLMSGHDR.size <= end:
        length, mtype, flags, seq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size or off + length > end:
            return  # truncated or corrupt: stop, never loop
        yield mtype, flags, seq, data[off + _NLMSGHDR.size: off + length]
        off += _align4(length)


def iter_attrs(data: bytes, off: int = 0) -> Iterator[tuple[int, bytes]]:
    """(type without flag bits, value) for each attribute from `off`."""
    end = len(data)
    while off + _NLATTR.size <= end:
        length, atype = _NLATTR.unpack_from(data, off)
        if length < _NLATTR.size or off + length > end:
            return
        yield atype & NLA_TYPE_MASK, data[off + _NLATTR.size: off + length]
        off += _align4(length)


def _be32(value: bytes) -> int | None:
    return int(_BE32.unpack_from(value)[0]) if len(value) >= 4 else None


@dataclass(frozen=True)
class _L34:
    family: str = ""
    src: str | None = None
    dst: str | None = None
    proto_num: int | None = None
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None


def parse_ip(payload: bytes) -> _L34:
    """Addresses, transport protocol and ports (or ICMP type/code) of an IP packet."""
    if not payload:
        return _L34()
    version = payload[0] >> 4
    if version == 4 and len(payload) >= 20:
        ihl = (payload[0] & 0x0F) * 4
        src = str(ipaddress.IPv4Address(payload[12:16]))
        dst = str(ipaddress.IPv4Address(payload[16:20]))
        proto = payload[9]
        frag_offset = struct.unpack_from("!H", payload, 6)[0] & 0x1FFF
        if ihl < 20 or frag_offset:
            return _L34("ip", src, dst, proto)
        return _transport("ip", src, dst, proto, payload, ihl)
    if version == 6 and len(payload) >= 40:
        src = str(ipaddress.IPv6Address(payload[8:24]))
        dst = str(ipaddress.IPv6Address(payload[24:40]))
        nxt = payload[6]
        off = 40
        for _ in range(_IP6_MAX_EXT):
            if nxt not in _IP6_EXT or off + 8 > len(payload):
                break
            if nxt == 44:  # fragment header: fixed 8 bytes; only the first fragment has ports
                frag_offset = struct.unpack_from("!H", payload, off + 2)[0] >> 3
                nxt = payload[off]
                off += 8
                if frag_offset:
                    return _L34("ip6", src, dst, nxt)
                continue
            ext_len = (payload[off + 1] + 2) * 4 if nxt == 51 else (payload[off + 1] + 1) * 8
            nxt = payload[off]
            off += ext_len
        if nxt in _IP6_EXT:
            return _L34("ip6", src, dst, None)
        return _transport("ip6", src, dst, nxt, payload, off)
    return _L34()


def _transport(family: str, src: str, dst: str, proto: int, payload: bytes, off: int) -> _L34:
    if proto in _PORT_PROTOS and off + 4 <= len(payload):
        sport, dport = struct.unpack_from("!HH", payload, off)
        return _L34(family, src, dst, proto, sport=sport, dport=dport)
    if proto in _ICMP_PROTOS and off + 2 <= len(payload):
        return _L34(family, src, dst, proto, icmp_type=payload[off], icmp_code=payload[off + 1])
    return _L34(family, src, dst, proto)


def parse_packet(body: bytes) -> NflogPacket:
    """Decode the body (after nlmsghdr) of an NFULNL_MSG_PACKET message."""
    if len(body) < _NFGENMSG.size:
        raise ValueError("NFULNL_MSG_PACKET shorter than nfgenmsg")
    pf, _version, group = _NFGENMSG.unpack_from(body)
    prefix = ""
    payload = b""
    ifidx: dict[int, int | None] = {}
    ts: float | None = None
    hook: int | None = None
    hw_protocol: int | None = None
    mark: int | None = None
    for atype, value in iter_attrs(body, _NFGENMSG.size):
        if atype == NFULA_PREFIX:
            prefix = value.split(b"\0", 1)[0].decode("utf-8", "replace")
        elif atype == NFULA_PAYLOAD:
            payload = value
        elif atype in (NFULA_IFINDEX_INDEV, NFULA_IFINDEX_OUTDEV,
                       NFULA_IFINDEX_PHYSINDEV, NFULA_IFINDEX_PHYSOUTDEV):
            ifidx[atype] = _be32(value)
        elif atype == NFULA_TIMESTAMP and len(value) >= _TIMESTAMP.size:
            sec, usec = _TIMESTAMP.unpack_from(value)
            ts = sec + usec / 1e6
        elif atype == NFULA_PACKET_HDR and len(value) >= _PACKET_HDR.size:
            hw_protocol, hook, _pad = _PACKET_HDR.unpack_from(value)
        elif atype == NFULA_MARK:
            mark = _be32(value)
    l34 = parse_ip(payload)
    proto = None
    if l34.proto_num is not None:
        proto = PROTO_NAMES.get(l34.proto_num, str(l34.proto_num))
    return NflogPacket(
        prefix=prefix, family=l34.family, src=l34.src, dst=l34.dst, proto=proto,
        sport=l34.sport, dport=l34.dport,
        indev=ifidx.get(NFULA_IFINDEX_INDEV), outdev=ifidx.get(NFULA_IFINDEX_OUTDEV),
        physindev=ifidx.get(NFULA_IFINDEX_PHYSINDEV),
        physoutdev=ifidx.get(NFULA_IFINDEX_PHYSOUTDEV),
        ts=ts, group=group, pf=pf, hook=hook, hw_protocol=hw_protocol,
        proto_num=l34.proto_num, icmp_type=l34.icmp_type, icmp_code=l34.icmp_code,
        mark=mark, length=len(payload),
    )


def parse_datagram(data: bytes) -> tuple[list[NflogPacket], list[tuple[int, int]]]:
    """Packets and (seq, errno) acknowledgements in one datagram read from the socket.

    Messages that are neither packets nor acknowledgements (NLMSG_DONE after a batch, noops)
    are skipped; a malformed packet message is skipped rather than stopping the reader.
    """
    packets: list[NflogPacket] = []
    acks: list[tuple[int, int]] = []
    for mtype, _flags, seq, body in iter_messages(data):
        if mtype == MSG_PACKET:
            try:
                packets.append(parse_packet(body))
            except (ValueError, struct.error):
                continue
        elif mtype == NLMSG_ERROR and len(body) >= 4:
            err = struct.unpack_from("=i", body)[0]
            acks.append((seq, -err))
    return packets, acks


class NflogReader:
    """Reads packets logged to one NFLOG group in the current network namespace."""

    def __init__(self, *, snaplen: int = DEFAULT_SNAPLEN, qthresh: int = 1,
                 rcvbuf: int = DEFAULT_RCVBUF, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.snaplen = snaplen
        self.qthresh = qthresh
        self.rcvbuf = rcvbuf
        self.group: int | None = None
        self.dropped = 0  # kernel -> socket overflows (ENOBUFS); each may lose many packets
        self.overflowed = 0  # packets discarded because the reader's own queue was full
        self._sock: socket.socket | None = None
        self._queue: deque[NflogPacket] = deque()
        self._max_queue = max_queue
        self._seq = int(time.monotonic() * 1000) & 0x7FFFFFFF

    # -- lifecycle --------------------------------------------------------------------------
    def open(self, group: int) -> None:
        """Bind to `group` with copy-packet mode (snaplen) and a flush threshold."""
        if self._sock is not None:
            raise RuntimeError("reader already open")
        if not 0 <= group <= 0xFFFF:
            raise ValueError(f"NFLOG group out of range: {group}")
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            try:  # root may exceed net.core.rmem_max; others get what rmem_max allows
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, self.rcvbuf)
            except OSError:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.bind((0, 0))
            self._sock = sock
            self.group = group
            self._request(group, encode_attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])))
            cfg = encode_attr(NFULA_CFG_MODE, _CFG_MODE.pack(self.snaplen, NFULNL_COPY_PACKET, 0))
            if self.qthresh > 0:
                cfg += encode_attr(NFULA_CFG_QTHRESH, _BE32.pack(self.qthresh))
            self._request(group, cfg)
        except BaseException:
            self._sock = None
            self.group = None
            sock.close()
            raise

    def bind_pf(self, family: int, bind: bool = True) -> None:
        """NFULNL_CFG_CMD_PF_BIND/UNBIND: make nfnetlink_log the default logger of `family`.

        Not needed for `log group N` rules; it only redirects plain `log` statements of this
        netns, so the reader never does it on its own.
        """
        cmd = NFULNL_CFG_CMD_PF_BIND if bind else NFULNL_CFG_CMD_PF_UNBIND
        self._request(0, encode_attr(NFULA_CFG_CMD, bytes([cmd])), family=family)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if self.group is not None:
                cmd = encode_attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_UNBIND]))
                sock.send(encode_config(self._next_seq(), self.group, cmd))
        except OSError:
            pass  # the kernel frees the instance when the socket closes anyway
        finally:
            sock.close()

    def __enter__(self) -> NflogReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def fileno(self) -> int:
        return self._socket().fileno()

    # -- reading ----------------------------------------------------------------------------
    def read(self, timeout: float, max_packets: int = 4096) -> list[NflogPacket]:
        """Packets available within `timeout` seconds (0: only what is already queued).

        Waits at most `timeout` for the first datagram, then drains what the socket holds
        without blocking; returns at most `max_packets` (the rest stay queued).
        """
        sock = self._socket()
        if not self._queue:
            ready, _, _ = select.select([sock], [], [], max(0.0, timeout))
            if ready:
                self._drain(max_datagrams=1024)
        else:
            self._drain(max_datagrams=1024)
        out: list[NflogPacket] = []
        while self._queue and len(out) < max_packets:
            out.append(self._queue.popleft())
        return out

    def _drain(self, max_datagrams: int) -> None:
        sock = self._socket()
        for _ in range(max_datagrams):
            try:
                data = sock.recv(_RECV_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.dropped += 1
                    continue
                raise
            packets, _acks = parse_datagram(data)
            self._enqueue(packets)

    def _enqueue(self, packets: list[NflogPacket]) -> None:
        for pkt in packets:
            if len(self._queue) >= self._max_queue:
                self.overflowed += 1
            else:
                self._queue.append(pkt)

    # -- helpers ----------------------------------------------------------------------------
    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise RuntimeError("reader is not open")
        return self._sock

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0x7FFFFFFF
        return self._seq

    def _request(self, group: int, attrs: bytes, family: int = socket.AF_UNSPEC) -> None:
        """Send one config request and wait (bounded) for its acknowledgement."""
        sock = self._socket()
        seq = self._next_seq()
        sock.send(encode_config(seq, group, attrs, family))
        deadline = time.monotonic() + _ACK_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NflogError(errno.ETIMEDOUT, f"no ack from nfnetlink_log (seq {seq})")
            ready, _, _ = select.select([sock], [], [], remaining)
            if not ready:
                continue
            try:
                data = sock.recv(_RECV_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.dropped += 1
                    continue
                raise
            packets, acks = parse_datagram(data)
            self._enqueue(packets)  # packets may already flow before our last ack
            for ack_seq, err in acks:
                if ack_seq != seq:
                    continue
                if err:
                    # The kernel answers EPERM (older ones EBUSY) when another socket in this
                    # netns already holds the group.
                    hint = (" (group bound by another socket?)"
                            if err in (errno.EPERM, errno.EBUSY) else "")
                    raise NflogError(err, f"nfnetlink_log config, group {group}: "
                                          f"{os.strerror(err)}{hint}")
                return


# --- command line ----------------------------------------------------------------------------
def _ifname(index: int | None) -> str | None:
    if not index:
        return None
    try:
        return socket.if_indextoname(index)
    except OSError:
        return None


def packet_json(pkt: NflogPacket) -> dict[str, object]:
    """The packet as a JSON-ready dict, plus interface names resolved in this netns."""
    out: dict[str, object] = asdict(pkt)
    for field in ("indev", "outdev", "physindev", "physoutdev"):
        index = getattr(pkt, field)
        out[f"{field}_name"] = _ifname(index)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m netfence.agent.nflog",
        description="Print packets logged to an NFLOG group, one JSON object per line.")
    parser.add_argument("--group", type=int, required=True)
    parser.add_argument("--count", type=int, default=None,
                        help="exit after this many packets (exit 3 if the timeout comes first)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="overall seconds before exiting (default: no limit)")
    parser.add_argument("--snaplen", type=int, default=DEFAULT_SNAPLEN)
    args = parser.parse_args(argv)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    seen = 0
    try:
        with NflogReader(snaplen=args.snaplen) as reader:
            reader.open(args.group)
            print(f"nflog: listening on group {args.group}", file=sys.stderr, flush=True)
            while args.count is None or seen < args.count:
                wait = 1.0
                if deadline is not None:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        break
                want = None if args.count is None else args.count - seen
                for pkt in reader.read(min(wait, 1.0), max_packets=want or 4096):
                    print(json.dumps(packet_json(pkt), sort_keys=True), flush=True)
                    seen += 1
            if reader.dropped or reader.overflowed:
                print(f"nflog: socket overflows {reader.dropped}, queue overflows "
                      f"{reader.overflowed}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"nflog: {exc}", file=sys.stderr)
        return 2
    if args.count is not None and seen < args.count:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
