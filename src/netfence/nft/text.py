"""Readable ``nft -f`` text for a compiled ruleset (reviewed by humans, golden-tested)."""

from __future__ import annotations

from netfence.nft.model import (
    LOG_GROUP,
    TABLE,
    AddrMatch,
    HostConfig,
    Match,
    NamedMatch,
    NRule,
    Ruleset,
    SetDef,
)

__all__ = ["LOG_RATE", "SET_TYPES", "base_chain_specs", "render_text", "rule_text"]

LOG_RATE = 10  # log lines per second per rule; the rest is dropped silently
SNAPLEN = 128

SET_TYPES: dict[tuple[str, int], tuple[str, ...]] = {
    ("addr", 4): ("ipv4_addr",), ("addr", 6): ("ipv6_addr",),
    ("interval", 4): ("ipv4_addr",), ("interval", 6): ("ipv6_addr",),
    ("named", 4): ("ipv4_addr", "inet_proto", "inet_service"),
    ("named", 6): ("ipv6_addr", "inet_proto", "inet_service"),
    ("pair", 4): ("ipv4_addr", "ipv4_addr"), ("pair", 6): ("ipv6_addr", "ipv6_addr"),
}

ICMP4_FAILSAFE = ("destination-unreachable", "time-exceeded", "parameter-problem")
ICMP6_FAILSAFE = ("destination-unreachable", "packet-too-big", "time-exceeded",
                  "parameter-problem", "nd-router-solicit", "nd-router-advert",
                  "nd-neighbor-solicit", "nd-neighbor-advert")


def _ip(family: int) -> str:
    return "ip" if family == 4 else "ip6"


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'").replace("\\", "/") + '"'


def _ports(ports: tuple[tuple[int, int], ...]) -> str:
    items = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ports]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def match_text(m: Match) -> str:
    if isinstance(m, AddrMatch):
        return f"{_ip(m.family)} {m.field} @{m.set}"
    if isinstance(m, NamedMatch):
        return f"{_ip(m.family)} daddr . meta l4proto . th dport @{m.set}"
    out = f"meta l4proto {m.proto}"
    if m.ports is not None:
        out += f" th dport {_ports(m.ports)}"
    return out


def _verdict(v: str) -> str:
    if v.startswith(("goto:", "jump:")):
        return f"{v[:4]} {v[5:]}"
    return v


def rule_text(r: NRule) -> str:
    parts = [match_text(m) for m in r.matches]
    if r.log is not None:
        parts.append(f"limit rate {LOG_RATE}/second log prefix {_quote(r.log.prefix)} "
                     f"group {LOG_GROUP} snaplen {SNAPLEN}")
    if r.verdict:
        parts.append(_verdict(r.verdict))
    if r.comment:
        parts.append(f"comment {_quote(r.comment)}")
    return " ".join(parts)


def element_text(kind: str, elem: tuple[object, ...]) -> str:
    if kind == "interval":
        return "-".join(str(e) for e in elem)
    return " . ".join(str(e) for e in elem)


def base_chain_specs(rs: Ruleset) -> list[tuple[str, str, int, list[str]]]:
    """(name, hook, priority offset from filter, rules) of the base chains."""
    if rs.host is None:
        return [("forward", "forward", 0, [
            "ct state established,related accept",
            "ct state invalid drop",
            "ip saddr . ip daddr @self4 accept",
            "ip6 saddr . ip6 daddr @self6 accept",
            "ip saddr vmap @eg4",
            "ip6 saddr vmap @eg6",
            "ip daddr vmap @in4",
            "ip6 daddr vmap @in6",
        ])]
    return _host_chains(rs, rs.host)


def _host_chains(rs: Ruleset, host: HostConfig) -> list[tuple[str, str, int, list[str]]]:
    inp = ['iifname "lo" accept', "ct state established,related accept",
           "ct state invalid drop"]
    mgmt4 = [c for c in host.management if ":" not in c]
    mgmt6 = [c for c in host.management if ":" in c]
    if mgmt4:
        inp.append(f"ip saddr {{ {', '.join(mgmt4)} }} tcp dport {host.ssh_port} accept")
    if mgmt6:
        inp.append(f"ip6 saddr {{ {', '.join(mgmt6)} }} tcp dport {host.ssh_port} accept")
    inp += ["udp sport 67 udp dport 68 accept", "udp sport 547 udp dport 546 accept",
            f"icmp type {{ {', '.join(ICMP4_FAILSAFE)} }} accept",
            f"icmpv6 type {{ {', '.join(ICMP6_FAILSAFE)} }} accept"]
    out = ['oifname "lo" accept', "ct state established,related accept",
           "ct state invalid drop", "udp dport 67 accept", "udp dport 547 accept",
           f"icmpv6 type {{ {', '.join(ICMP6_FAILSAFE)} }} accept"]
    if "in" in rs.entry:
        inp.append(f"goto {rs.entry['in']}")
    if "eg" in rs.entry:
        out.append(f"jump {rs.entry['eg']}")
    return [("input", "input", host.priority, inp), ("output", "output", host.priority, out)]


def _set_text(sd: SetDef, elements: frozenset[tuple[object, ...]]) -> list[str]:
    # set comments stay in the text only: nft 1.0.6 drops them from JSON input
    lines = [f"\t# {sd.comment}"] if sd.comment else []
    lines += [f"\tset {sd.name} {{", f"\t\ttype {' . '.join(SET_TYPES[(sd.kind, sd.family)])}"]
    if sd.kind == "interval":
        lines += ["\t\tflags interval", "\t\tauto-merge"]
    if elements:
        items = sorted(element_text(sd.kind, e) for e in elements)
        lines.append("\t\telements = { " + ",\n\t\t\t     ".join(items) + " }")
    lines.append("\t}")
    return lines


def _priority(offset: int) -> str:
    return "filter" if offset == 0 else f"filter {'+' if offset > 0 else '-'} {abs(offset)}"


def render_text(rs: Ruleset) -> str:
    """The whole table as ``nft -f`` input (deterministic: sorted names and elements)."""
    lines = [f"# netfence ruleset for {'host' if rs.host else 'node'} {rs.node}",
             f"table inet {TABLE} {{"]
    for name, sd in rs.sets.items():
        lines += _set_text(sd, rs.elements.get(name, frozenset()))
    for name in ("eg4", "eg6", "in4", "in6"):
        fam = int(name[-1])
        entries = rs.maps.get(name, {})
        kw = "goto" if name.startswith("in") else "jump"
        lines += [f"\tmap {name} {{", f"\t\ttype {SET_TYPES[('addr', fam)][0]} : verdict"]
        if entries:
            items = [f"{k} : {kw} {v}" for k, v in sorted(entries.items())]
            lines.append("\t\telements = { " + ",\n\t\t\t     ".join(items) + " }")
        lines.append("\t}")
    for name, chain in rs.chains.items():
        pods = rs.groups.get(name)
        if pods is not None:
            lines.append(f"\t# {name}: {len(pods)} pod(s): {', '.join(pods[:5])}"
                         + (" ..." if len(pods) > 5 else ""))
        lines.append(f"\tchain {name} {{")
        lines += [f"\t\t{rule_text(r)}" for r in chain.rules]
        lines.append("\t}")
    for name, hook, prio, rules in base_chain_specs(rs):
        lines.append(f"\tchain {name} {{")
        lines.append(f"\t\ttype filter hook {hook} priority {_priority(prio)}; policy accept;")
        lines += [f"\t\t{r}" for r in rules]
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"
