"""Port sets: per-protocol interval algebra (owned here: small and central, see ECOSYSTEM.md).

A ``PortSet`` is a set of (protocol, port) pairs for TCP, UDP and SCTP, plus one flag for every
other IP protocol (ICMP and friends), which only port-less rules can match (SEMANTICS port-2).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from netfence.model.intervals import Intervals, normalise

MIN_PORT = 1
MAX_PORT = 65535


class Protocol(enum.Enum):
    """The L4 protocols that NetworkPolicy ports can name."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"

    def __str__(self) -> str:
        return self.value


PROTOCOLS: tuple[Protocol, ...] = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)





def _intersect(a: Intervals, b: Intervals) -> Intervals:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _complement(a: Intervals) -> Intervals:
    out: list[tuple[int, int]] = []
    prev = MIN_PORT
    for lo, hi in a:
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= MAX_PORT:
        out.append((prev, MAX_PORT))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PortSet:
    """An immutable set of ports per protocol, plus ``other`` for port-less protocols."""

    tcp: Intervals = ()
    udp: Intervals = ()
    sctp: Intervals = ()
    other: bool = False

    @staticmethod
    def of(protocol: Protocol, lo: int, hi: int | None = None) -> PortSet:
        return PortSet.intervals(protocol, ((lo, lo if hi is None else hi),))

    @staticmethod
    def intervals(protocol: Protocol, iv: Intervals) -> PortSet:
        if protocol is Protocol.TCP:
            return PortSet(tcp=iv)
        if protocol is Protocol.UDP:
            return PortSet(udp=iv)
        return PortSet(sctp=iv)

    @staticmethod
    def all() -> PortSet:
        full = ((MIN_PORT, MAX_PORT),)
        return PortSet(full, full, full, True)

    @staticmethod
    def protocol_all(protocol: Protocol) -> PortSet:
        return PortSet.of(protocol, MIN_PORT, MAX_PORT)

    def get(self, protocol: Protocol) -> Intervals:
        if protocol is Protocol.TCP:
            return self.tcp
        if protocol is Protocol.UDP:
            return self.udp
        return self.sctp

    def __or__(self, other: PortSet) -> PortSet:
        return PortSet(normalise(self.tcp + other.tcp), normalise(self.udp + other.udp),
                       normalise(self.sctp + other.sctp), self.other or other.other)

    def __and__(self, other: PortSet) -> PortSet:
        return PortSet(_intersect(self.tcp, other.tcp), _intersect(self.udp, other.udp),
                       _intersect(self.sctp, other.sctp), self.other and other.other)

    def __sub__(self, other: PortSet) -> PortSet:
        return PortSet(_intersect(self.tcp, _complement(other.tcp)),
                       _intersect(self.udp, _complement(other.udp)),
                       _intersect(self.sctp, _complement(other.sctp)),
                       self.other and not other.other)

    def __bool__(self) -> bool:
        return bool(self.tcp or self.udp or self.sctp or self.other)

    def contains(self, protocol: Protocol, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.get(protocol))

    def is_all(self) -> bool:
        return self == PortSet.all()

    def items(self) -> Iterator[tuple[Protocol, Intervals]]:
        for proto in PROTOCOLS:
            iv = self.get(proto)
            if iv:
                yield proto, iv

    def __str__(self) -> str:
        if self.is_all():
            return "all"
        parts: list[str] = []
        for proto, iv in self.items():
            if iv == ((MIN_PORT, MAX_PORT),):
                parts.append(f"{proto} all")
            else:
                parts.append(f"{proto} " + ",".join(
                    str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in iv))
        if self.other:
            parts.append("other protocols")
        return ", ".join(parts) if parts else "none"

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            str(proto): [[lo, hi] for lo, hi in iv] for proto, iv in self.items()
        }
        if self.other:
            out["other"] = True
        return out


def port_union(sets: Iterable[PortSet]) -> PortSet:
    """Union of many port sets, normalising once per protocol."""
    tcp: list[tuple[int, int]] = []
    udp: list[tuple[int, int]] = []
    sctp: list[tuple[int, int]] = []
    other = False
    for s in sets:
        tcp.extend(s.tcp)
        udp.extend(s.udp)
        sctp.extend(s.sctp)
        other = other or s.other
    return PortSet(normalise(tcp), normalise(udp), normalise(sctp), other)
