"""libnftables JSON for a compiled ruleset: whole-table loads and diff transactions.

``transaction(old, new)`` is the only way the agent changes the kernel: ONE batch that adds
new sets and chains, deletes then adds set and map elements, and deletes what is no longer
referenced last. With ``old=None`` (start-up, after an error) it is a full resync that never
deletes the table: every desired object is added (idempotent), flushed and refilled inside the
same batch, and objects found in the kernel but not desired (``present``) are deleted.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netfence.nft.model import (
    LOG_GROUP,
    TABLE,
    AddrMatch,
    L4Match,
    Match,
    NamedMatch,
    NRule,
    Ruleset,
)
from netfence.nft.text import (
    ICMP4_FAILSAFE,
    ICMP6_FAILSAFE,
    LOG_RATE,
    SET_TYPES,
    SNAPLEN,
)

__all__ = ["Present", "full_json", "transaction"]

Json = dict[str, Any]
MAPS = ("eg4", "eg6", "in4", "in6")


def _obj(**kw: Any) -> Json:
    return {"family": "inet", "table": TABLE, **kw}


def _payload(proto: str, fld: str) -> Json:
    return {"payload": {"protocol": proto, "field": fld}}


def _eq(left: Json, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _ip(family: int) -> str:
    return "ip" if family == 4 else "ip6"


def _ports(ports: tuple[tuple[int, int], ...]) -> Any:
    items: list[Any] = [lo if lo == hi else {"range": [lo, hi]} for lo, hi in ports]
    return items[0] if len(items) == 1 else {"set": items}


def match_json(m: Match) -> list[Json]:
    if isinstance(m, AddrMatch):
        return [_eq(_payload(_ip(m.family), m.field), "@" + m.set)]
    if isinstance(m, NamedMatch):
        return [_eq({"concat": [_payload(_ip(m.family), "daddr"), {"meta": {"key": "l4proto"}},
                                _payload("th", "dport")]}, "@" + m.set)]
    assert isinstance(m, L4Match)
    out = [_eq({"meta": {"key": "l4proto"}}, m.proto)]
    if m.ports is not None:
        out.append(_eq(_payload("th", "dport"), _ports(m.ports)))
    return out


def _verdict(v: str) -> Json:
    if v.startswith(("goto:", "jump:")):
        return {v[:4]: {"target": v[5:]}}
    return {v: None}


def rule_json(chain: str, r: NRule) -> Json:
    expr: list[Json] = []
    for m in r.matches:
        expr += match_json(m)
    if r.log is not None:
        expr.append({"limit": {"rate": LOG_RATE, "per": "second"}})
        expr.append({"log": {"prefix": r.log.prefix, "group": LOG_GROUP, "snaplen": SNAPLEN}})
    if r.verdict:
        expr.append(_verdict(r.verdict))
    rule: Json = _obj(chain=chain, expr=expr)
    if r.comment:
        rule["comment"] = r.comment.replace('"', "'")
    return {"rule": rule}


def element_json(kind: str, elem: tuple[object, ...]) -> Any:
    if kind == "interval":
        return elem[0] if len(elem) == 1 else {"range": list(elem)}
    if len(elem) == 1:
        return elem[0]
    return {"concat": list(elem)}


def _set_decl(rs: Ruleset, name: str) -> Json:
    sd = rs.sets[name]
    types = SET_TYPES[(sd.kind, sd.family)]
    decl: Json = _obj(name=name, type=types[0] if len(types) == 1 else list(types))
    if sd.kind == "interval":
        decl["flags"] = ["interval"]
        decl["auto-merge"] = True
    return {"set": decl}


def _map_decl(name: str) -> Json:
    return {"map": _obj(name=name, type=SET_TYPES[("addr", int(name[-1]))][0], map="verdict")}


def _map_elem(name: str, key: str, chain: str) -> list[Any]:
    return [key, {("goto" if name.startswith("in") else "jump"): {"target": chain}}]


def _ct(states: list[str] | str) -> Json:
    return _eq({"ct": {"key": "state"}}, states, "in")


def _base_rules(rs: Ruleset) -> list[tuple[Json, list[list[Json]]]]:
    """Base chain declarations with their rules (the same rules ``text.py`` prints)."""
    accept, drop = {"accept": None}, {"drop": None}
    if rs.host is None:
        rules: list[list[Json]] = [[_ct(["established", "related"]), accept],
                                   [_ct("invalid"), drop]]
        for fam in (4, 6):
            ip = _ip(fam)
            rules.append([_eq({"concat": [_payload(ip, "saddr"), _payload(ip, "daddr")]},
                              f"@self{fam}"), accept])
        for name in MAPS:
            fld = "daddr" if name.startswith("in") else "saddr"
            rules.append([{"vmap": {"key": _payload(_ip(int(name[-1])), fld),
                                    "data": "@" + name}}])
        # text.py lists eg4, eg6, in4, in6 in this same order
        return [(_obj(name="forward", type="filter", hook="forward", prio=0, policy="accept"),
                 rules)]
    host = rs.host
    lo_in = [_eq({"meta": {"key": "iifname"}}, "lo"), accept]
    inp = [lo_in, [_ct(["established", "related"]), accept], [_ct("invalid"), drop]]
    for fam in (4, 6):
        cidrs = [c for c in host.management if (":" in c) == (fam == 6)]
        if cidrs:
            nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
            items = [{"prefix": {"addr": str(n.network_address), "len": n.prefixlen}}
                     for n in nets]
            inp.append([_eq(_payload(_ip(fam), "saddr"), {"set": items}),
                        _eq(_payload("tcp", "dport"), host.ssh_port), accept])
    inp.append([_eq(_payload("udp", "sport"), 67), _eq(_payload("udp", "dport"), 68), accept])
    inp.append([_eq(_payload("udp", "sport"), 547), _eq(_payload("udp", "dport"), 546),
                accept])
    inp.append([_eq(_payload("icmp", "type"), {"set": list(ICMP4_FAILSAFE)}), accept])
    icmp6 = [_eq(_payload("icmpv6", "type"), {"set": list(ICMP6_FAILSAFE)}), accept]
    inp.append(icmp6)
    out = [[_eq({"meta": {"key": "oifname"}}, "lo"), accept],
           [_ct(["established", "related"]), accept], [_ct("invalid"), drop],
           [_eq(_payload("udp", "dport"), 67), accept],
           [_eq(_payload("udp", "dport"), 547), accept], icmp6]
    if "in" in rs.entry:
        inp.append([{"goto": {"target": rs.entry["in"]}}])
    if "eg" in rs.entry:
        out.append([{"jump": {"target": rs.entry["eg"]}}])
    prio = host.priority
    return [(_obj(name="input", type="filter", hook="input", prio=prio, policy="accept"), inp),
            (_obj(name="output", type="filter", hook="output", prio=prio, policy="accept"),
             out)]


class Present:
    """Names found in the kernel's table (from ``nft -j list table``), for a full resync."""

    def __init__(self, sets: set[str] | None = None, chains: set[str] | None = None,
                 maps: set[str] | None = None) -> None:
        self.sets = sets or set()
        self.chains = chains or set()
        self.maps = maps or set()

    @staticmethod
    def from_listing(listing: Json) -> Present:
        p = Present()
        for item in listing.get("nftables", []):
            for kind, target in (("set", p.sets), ("chain", p.chains), ("map", p.maps)):
                obj = item.get(kind)
                if isinstance(obj, dict) and obj.get("table") == TABLE \
                        and obj.get("family") == "inet":
                    target.add(str(obj.get("name")))
        return p


def _fill(rs: Ruleset, cmds: list[Json], chains: list[str], flush: bool) -> None:
    for name in chains:  # declare all first: rules may goto/jump to a later chain
        cmds.append({"add": {"chain": _obj(name=name)}})
        if flush:
            cmds.append({"flush": {"chain": _obj(name=name)}})
    for name in chains:
        cmds += [{"add": rule_json(name, r)} for r in rs.chains[name].rules]


def _elements(cmds: list[Json], verb: str, name: str, kind: str,
              elems: list[tuple[object, ...]]) -> None:
    if elems:
        cmds.append({verb: {"element": _obj(
            name=name, elem=[element_json(kind, e) for e in sorted(elems, key=str)])}})


def _map_elements(cmds: list[Json], verb: str, name: str, entries: list[tuple[str, str]]) -> None:
    if entries:
        cmds.append({verb: {"element": _obj(
            name=name, elem=[_map_elem(name, k, v) for k, v in sorted(entries)])}})


def _base(rs: Ruleset, cmds: list[Json], replace: set[str] | frozenset[str] = frozenset()
          ) -> None:
    """Base chains with their rules. Those in ``replace`` exist and may differ in hook or
    priority, which nft cannot change in place: deleted and re-added in the same batch."""
    for decl, rules in _base_rules(rs):
        name = decl["name"]
        if name in replace:
            cmds.append({"flush": {"chain": _obj(name=name)}})
            cmds.append({"delete": {"chain": _obj(name=name)}})
        cmds.append({"add": {"chain": decl}})
        cmds.append({"flush": {"chain": _obj(name=name)}})
        cmds += [{"add": {"rule": _obj(chain=name, expr=r)}} for r in rules]


def full_json(rs: Ruleset, present: Present | None = None) -> Json:
    """A full resync: one batch that makes the table exactly ``rs`` whatever it held."""
    present = present or Present()
    cmds: list[Json] = [{"add": {"table": {"family": "inet", "name": TABLE}}}]
    for name in rs.sets:  # sets first: unreferenced, no effect yet
        cmds.append({"add": _set_decl(rs, name)})
        cmds.append({"flush": {"set": _obj(name=name)}})
        _elements(cmds, "add", name, rs.sets[name].kind, list(rs.elements.get(name, ())))
    obsolete_chains = sorted(present.chains - set(rs.chains) - {"forward", "input", "output"})
    _fill(rs, cmds, list(rs.chains), flush=True)
    for name in MAPS:
        cmds.append({"add": _map_decl(name)})
        cmds.append({"flush": {"map": _obj(name=name)}})
        _map_elements(cmds, "add", name, list(rs.maps.get(name, {}).items()))
    base_names = {str(d["name"]) for d, _ in _base_rules(rs)}
    _base(rs, cmds, replace=base_names & present.chains)  # their priority is not known here
    for name in sorted({"forward", "input", "output"} & present.chains - base_names):
        cmds.append({"delete": {"chain": _obj(name=name)}})
    for name in obsolete_chains:  # may reference each other: flush all before deleting
        cmds.append({"flush": {"chain": _obj(name=name)}})
    for name in obsolete_chains:
        cmds.append({"delete": {"chain": _obj(name=name)}})
    for name in sorted(present.sets - set(rs.sets)):
        cmds.append({"delete": {"set": _obj(name=name)}})
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *cmds]}


def transaction(old: Ruleset | None, new: Ruleset, present: Present | None = None) -> Json:
    """The batch that turns ``old`` (what was applied) into ``new``; full resync if unknown."""
    if old is None:
        return full_json(new, present)
    cmds: list[Json] = []
    for name in new.sets:
        kind = new.sets[name].kind
        now = new.elements.get(name, frozenset())
        if name not in old.sets:
            cmds.append({"add": _set_decl(new, name)})
            _elements(cmds, "add", name, kind, list(now))
            continue
        was = old.elements.get(name, frozenset())
        if was is now:
            continue  # untouched by an incremental compile
        _elements(cmds, "delete", name, kind, list(was - now))  # IP reuse: delete first
        _elements(cmds, "add", name, kind, list(now - was))
    _fill(new, cmds, [n for n in new.chains if n not in old.chains], flush=False)
    for name in MAPS:
        was_m, now_m = old.maps.get(name, {}), new.maps.get(name, {})
        gone = [(k, v) for k, v in was_m.items() if now_m.get(k) != v]
        _map_elements(cmds, "delete", name, gone)
        _map_elements(cmds, "add", name, [(k, v) for k, v in now_m.items()
                                          if was_m.get(k) != v])
    if _base_rules(old) != _base_rules(new):
        declared = {str(d["name"]): d for d, _ in _base_rules(old)}
        _base(new, cmds, replace={str(d["name"]) for d, _ in _base_rules(new)
                                  if str(d["name"]) in declared
                                  and declared[str(d["name"])] != d})
        old_base = set(declared)
        new_base = {str(d["name"]) for d, _ in _base_rules(new)}
        for name in sorted(old_base - new_base):
            cmds.append({"delete": {"chain": _obj(name=name)}})
    obsolete = sorted(set(old.chains) - set(new.chains))
    for name in obsolete:
        cmds.append({"flush": {"chain": _obj(name=name)}})
    for name in obsolete:
        cmds.append({"delete": {"chain": _obj(name=name)}})
    for name in sorted(set(old.sets) - set(new.sets)):
        cmds.append({"delete": {"set": _obj(name=name)}})
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *cmds]}
