"""The compiled ruleset of one node, as plain data (no nftables syntax yet).

``Ruleset`` is what ``compile.py`` produces and what ``text.py`` / ``json.py`` render and
``transaction.py`` diffs. Every name is content- or key-derived, so two compilations of the
same state are equal and a diff between two states touches only what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TABLE = "netfence"
LOG_GROUP = 100


@dataclass(frozen=True, slots=True)
class SetDef:
    """A named set. ``kind``: ``addr`` (hash of addresses), ``interval`` (CIDR ranges),
    ``named`` (address . l4 protocol . port), ``pair`` (address . address)."""

    name: str
    family: int
    kind: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class AddrMatch:
    """``ip saddr @set`` / ``ip6 daddr @set``."""

    field: str  # "saddr" | "daddr"
    family: int
    set: str


@dataclass(frozen=True, slots=True)
class L4Match:
    """``meta l4proto P`` plus, when ``ports`` is set, ``th dport { ... }`` (inclusive ranges)."""

    proto: str  # "tcp" | "udp" | "sctp"
    ports: tuple[tuple[int, int], ...] | None = None


@dataclass(frozen=True, slots=True)
class NamedMatch:
    """``ip daddr . meta l4proto . th dport @set`` (egress named ports, per peer number)."""

    family: int
    set: str


Match = AddrMatch | L4Match | NamedMatch


@dataclass(frozen=True, slots=True)
class Log:
    """``limit rate R/second log prefix P group G`` (rate-limited NFLOG)."""

    prefix: str


@dataclass(frozen=True, slots=True)
class NRule:
    """One rule: all ``matches`` (AND), an optional rate-limited log, then ``verdict``.

    ``verdict`` is ``accept``, ``drop``, ``return``, ``goto:<chain>``, ``jump:<chain>`` or ``""``
    (log only, continue). ``comment`` names the policy rule it came from.
    """

    matches: tuple[Match, ...]
    verdict: str
    comment: str = ""
    log: Log | None = None


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    rules: tuple[NRule, ...]


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a log prefix's (group, rule id) stands for."""

    verdict: str  # D, W, AD
    direction: str  # ingress | egress
    policies: tuple[str, ...]
    rule: str


@dataclass(frozen=True, slots=True)
class HostConfig:
    """Legacy host mode: the failsafe accepted before any policy rule."""

    management: tuple[str, ...] = ()  # CIDRs allowed to reach SSH
    ssh_port: int = 22
    priority: int = -10  # relative to filter: run before firewalld/ufw/docker chains


@dataclass(slots=True)
class Ruleset:
    """The desired state of table ``inet netfence`` on one node (or legacy host)."""

    node: str
    sets: dict[str, SetDef] = field(default_factory=dict)
    elements: dict[str, frozenset[tuple[object, ...]]] = field(default_factory=dict)
    chains: dict[str, Chain] = field(default_factory=dict)
    host: HostConfig | None = None  # legacy host mode: input/output hooks, failsafe first
    maps: dict[str, dict[str, str]] = field(default_factory=dict)  # vmap: address -> chain
    entry: dict[str, str] = field(default_factory=dict)  # host mode: "in"/"eg" -> group chain
    provenance: dict[str, Provenance] = field(default_factory=dict)  # "<group>|<rule>" -> why
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # chain -> pods
    warnings: list[str] = field(default_factory=list, compare=False)

    def rule_count(self) -> int:
        return sum(len(c.rules) for c in self.chains.values())

    def element_count(self) -> int:
        return sum(len(e) for e in self.elements.values()) + sum(
            len(m) for m in self.maps.values())
