"""IP address sets as sorted integer intervals per family, on stdlib ``ipaddress``.

Owned here rather than taken from netaddr/pytricia (ECOSYSTEM.md): the engine needs only
union, difference, membership, atom boundaries and printing as CIDRs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from netfence.model.intervals import Intervals, normalise

V4_MAX = (1 << 32) - 1
V6_MAX = (1 << 128) - 1





def _minus(a: Intervals, b: Intervals) -> Intervals:
    out: list[tuple[int, int]] = []
    j = 0
    for lo, hi in a:
        cur = lo
        while j < len(b) and b[j][1] < cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= hi:
            if b[k][0] > cur:
                out.append((cur, b[k][0] - 1))
            cur = max(cur, b[k][1] + 1)
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


def _cidrs(lo: int, hi: int, bits: int) -> Iterator[tuple[int, int]]:
    """Minimal CIDR cover of [lo, hi] as (network, prefix length)."""
    while lo <= hi:
        size = (lo & -lo).bit_length() - 1 if lo else bits
        while size > 0 and lo + (1 << size) - 1 > hi:
            size -= 1
        yield lo, bits - size
        lo += 1 << size


@dataclass(frozen=True, slots=True)
class IPSet:
    """An immutable set of IPv4 and IPv6 addresses."""

    v4: Intervals = ()
    v6: Intervals = ()

    @staticmethod
    def parse(cidr: str) -> IPSet:
        """Parse a CIDR (host bits allowed) or a bare address; raises ValueError."""
        net = ipaddress.ip_network(cidr, strict=False)
        lo = int(net.network_address)
        hi = int(net.broadcast_address)
        return IPSet(v4=((lo, hi),)) if net.version == 4 else IPSet(v6=((lo, hi),))

    @staticmethod
    def address(addr: str) -> IPSet:
        ip = ipaddress.ip_address(addr)
        v = int(ip)
        return IPSet(v4=((v, v),)) if ip.version == 4 else IPSet(v6=((v, v),))

    @staticmethod
    def everything() -> IPSet:
        return IPSet(((0, V4_MAX),), ((0, V6_MAX),))

    def __or__(self, other: IPSet) -> IPSet:
        return IPSet(normalise(self.v4 + other.v4), normalise(self.v6 + other.v6))

    def __sub__(self, other: IPSet) -> IPSet:
        return IPSet(_minus(self.v4, other.v4), _minus(self.v6, other.v6))

    def __and__(self, other: IPSet) -> IPSet:
        return self - (self - other)

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    def issubset(self, other: IPSet) -> bool:
        return not (self - other)

    def contains_int(self, version: int, value: int) -> bool:
        iv = self.v4 if version == 4 else self.v6
        return any(lo <= value <= hi for lo, hi in iv)

    def cidrs(self) -> list[str]:
        out = [f"{ipaddress.IPv4Address(n)}/{p}"
               for lo, hi in self.v4 for n, p in _cidrs(lo, hi, 32)]
        out += [f"{ipaddress.IPv6Address(n)}/{p}"
                for lo, hi in self.v6 for n, p in _cidrs(lo, hi, 128)]
        return out

    def __str__(self) -> str:
        return ",".join(self.cidrs()) or "none"

    def boundaries(self) -> Iterator[tuple[int, int]]:
        """(family, first address) of every interval start and one past every end."""
        for fam, iv, top in ((4, self.v4, V4_MAX), (6, self.v6, V6_MAX)):
            for lo, hi in iv:
                yield fam, lo
                if hi < top:
                    yield fam, hi + 1


def ip_to_int(addr: str) -> tuple[int, int]:
    """(family, integer) of an address string; raises ValueError."""
    ip = ipaddress.ip_address(addr)
    return ip.version, int(ip)
