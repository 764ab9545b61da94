"""Interpret a compiled ruleset in Python: what the kernel would do with a new connection.

Used to compare the compiler with the engine on many random clusters without a kernel, and
by ``netfence agent render --probe`` style checks. It follows nftables semantics: ``jump``
pushes a return point, ``goto`` does not, ``return`` pops (or ends the base chain's call),
log-only rules continue, and the base chain's policy is accept.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from netfence.nft.model import AddrMatch, L4Match, Match, NamedMatch, NRule, Ruleset

__all__ = ["Packet", "Verdict", "forward"]

MAX_STEPS = 10_000  # bounded: a ruleset loop would be a compiler bug


@dataclass(frozen=True, slots=True)
class Packet:
    src: str
    dst: str
    proto: str  # tcp | udp | sctp | icmp
    dport: int = 0


@dataclass(slots=True)
class Verdict:
    accepted: bool
    logs: list[str] = field(default_factory=list)  # log prefixes emitted on the way


def _in_set(rs: Ruleset, name: str, key: tuple[object, ...]) -> bool:
    kind = rs.sets[name].kind
    elems = rs.elements.get(name, frozenset())
    if kind != "interval":
        return key in elems
    addr = ipaddress.ip_address(str(key[0]))
    value = int(addr)
    for e in elems:
        lo = ipaddress.ip_address(str(e[0]))
        if lo.version == addr.version and int(lo) <= value <= int(
                ipaddress.ip_address(str(e[-1]))):
            return True
    return False


def _match(rs: Ruleset, m: Match, pkt: Packet, family: int) -> bool:
    if isinstance(m, AddrMatch):
        if m.family != family:
            return False
        return _in_set(rs, m.set, (pkt.src if m.field == "saddr" else pkt.dst,))
    if isinstance(m, NamedMatch):
        return m.family == family and _in_set(rs, m.set, (pkt.dst, pkt.proto, pkt.dport))
    assert isinstance(m, L4Match)
    if pkt.proto != m.proto:
        return False
    return m.ports is None or any(lo <= pkt.dport <= hi for lo, hi in m.ports)


def _rule_hits(rs: Ruleset, r: NRule, pkt: Packet, family: int) -> bool:
    return all(_match(rs, m, pkt, family) for m in r.matches)


def _run(rs: Ruleset, chain: str, pkt: Packet, family: int, logs: list[str]) -> str:
    """Run ``chain`` as if jumped to; returns ``accept``, ``drop`` or ``return``."""
    stack: list[tuple[str, int]] = []
    cur, pos = chain, 0
    for _ in range(MAX_STEPS):
        rules = rs.chains[cur].rules
        if pos >= len(rules):
            if not stack:
                return "return"
            cur, pos = stack.pop()
            continue
        r = rules[pos]
        pos += 1
        if not _rule_hits(rs, r, pkt, family):
            continue
        if r.log is not None:
            logs.append(r.log.prefix)  # the rate limit is not modelled
        v = r.verdict
        if not v:
            continue
        if v in ("accept", "drop"):
            return v
        if v == "return":
            if not stack:
                return "return"
            cur, pos = stack.pop()
        elif v.startswith("jump:"):
            stack.append((cur, pos))
            cur, pos = v[5:], 0
        elif v.startswith("goto:"):
            cur, pos = v[5:], 0
    raise RuntimeError(f"ruleset loop from chain {chain}")


def forward(rs: Ruleset, pkt: Packet) -> Verdict:
    """A new connection through the node's ``forward`` hook (cluster mode)."""
    family = ipaddress.ip_address(pkt.src).version
    logs: list[str] = []
    if (pkt.src, pkt.dst) in rs.elements.get(f"self{family}", frozenset()):
        return Verdict(True, logs)
    eg = rs.maps.get(f"eg{family}", {}).get(pkt.src)
    if eg is not None:
        got = _run(rs, eg, pkt, family, logs)
        if got == "drop":
            return Verdict(False, logs)
        if got == "accept":
            return Verdict(True, logs)
    ing = rs.maps.get(f"in{family}", {}).get(pkt.dst)
    if ing is not None:
        got = _run(rs, ing, pkt, family, logs)  # entered by goto: its return ends the hook
        return Verdict(got != "drop", logs)
    return Verdict(True, logs)
