"""Duplicate, redundant and shadowed policies and rules: NF011-NF015, computed semantically.

"Redundant" means: removing it would leave every verdict unchanged. Re-evaluating the cluster
once per rule is far too slow at scale, so this module uses the structure of the pipeline
instead (docs/lint.md, "How redundancy is computed"):

* A NetworkPolicy rule only changes the NetworkPolicy-tier verdicts of the pod classes its
  policy selects, in its direction; removing a rule never changes isolation (the direction
  stays in policyTypes), and removing a policy changes it only where no other policy isolates.
* For one (class, direction) *cell* and one group of port classes no rule tells apart, the
  tier's allowed peers are ``open & (hit_1 | ... | hit_n)``, where ``hit_i`` are the compiled
  rules' peer bitsets and ``open`` the peers the Admin tier leaves undecided (computed with
  ``Engine.decide``). A rule (or a policy's rules) is redundant when, in every cell, its
  ``hit & open`` is inside the union of the others' hits.
* Mutual redundancy is resolved greedily in a fixed order, each candidate re-checked against
  what is still kept, so everything reported can be deleted *together*; identical copies give
  one finding that names the copy to keep.
* First-match tiers (Admin, Baseline): a ClusterNetworkPolicy rule is shadowed when the
  engine's own trace (``Engine.decide`` with a trace) never shows it matching, although its
  peers and ports match something.

Per-direction verdicts unchanged implies the connectivity map unchanged; the converse is not
required (an egress rule whose traffic every destination refuses is not reported here).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from netfence.checks.catalogue import check
from netfence.checks.context import (
    Context,
    lowest,
    names,
    policy_obj,
    port_groups,
    rule_label,
    rule_source,
)
from netfence.checks.findings import Finding
from netfence.engine.evaluate import DIRECTIONS, CRule, Step, Subjected
from netfence.model.policy import ALL as ALL_SELECTOR
from netfence.model.policy import (
    Action,
    AnyPeer,
    Direction,
    NamespaceScope,
    Policy,
    PolicyRef,
    Rule,
    Subject,
    Tier,
)

RuleKey = tuple[int, Direction, int]  # (policy index in evaluation order, direction, rule index)

_ALLOW_ALL_POLICY = Policy(PolicyRef("netfence-lint", "", "allow-open"), Tier.NETWORK_POLICY, 0,
                           Subject(NamespaceScope(selector=ALL_SELECTOR)), None, None)
_ALLOW_ALL_RULE = Rule(0, Action.ALLOW, (AnyPeer(),), None)


@dataclass(slots=True)
class _Cell:
    """One pod class isolated by NetworkPolicies in one direction."""

    c: int
    d: Direction
    entries: list[RuleKey]
    isolating: list[int]
    groups: list[int] = field(default_factory=list)  # port-class masks
    opens: list[int] = field(default_factory=list)  # per group: peers Admin leaves undecided
    hits: list[list[int]] = field(default_factory=list)  # per group, per entry


class _Redundancy:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.eng = ctx.engine
        self.u = ctx.universe
        self.policies = self.eng.policies
        self.index = {id(p): i for i, p in enumerate(self.policies)}
        self.cells: list[_Cell] = []
        self.rule_cells: dict[RuleKey, list[tuple[int, int]]] = {}
        self.policy_cells: dict[int, list[int]] = {}
        self.removed_policies: set[int] = set()
        self.removed_rules: set[RuleKey] = set()
        self._open_cache: dict[tuple[object, ...], int] = {}

    # -- cells ---------------------------------------------------------------------------------
    def build(self) -> None:
        u = self.u
        for d in DIRECTIONS:
            for cls in self.ctx.pod_classes():
                view = self.eng.subjected(cls.index, d)
                if not view.isolated_by:
                    continue
                entries = [(self.index[id(cr.policy)], d, cr.rule.index) for cr in view.netpol]
                cell = _Cell(cls.index, d, entries,
                             [self.index[id(p)] for p in view.isolated_by])
                for group in port_groups(view, u.all_ports):
                    p = lowest(group)
                    cell.groups.append(group)
                    cell.opens.append(self._open(view, p))
                    cell.hits.append([cr.hit(p) for cr in view.netpol])
                ci = len(self.cells)
                self.cells.append(cell)
                for j, rk in enumerate(entries):
                    self.rule_cells.setdefault(rk, []).append((ci, j))
                for pi in cell.isolating:
                    self.policy_cells.setdefault(pi, []).append(ci)

    def _open(self, view: Subjected, p: int) -> int:
        """Peers the Admin tier leaves to the NetworkPolicy tier (neither accepted nor denied)."""
        u = self.u
        if not view.admin:
            return u.all_mask
        key = tuple((id(cr.rule), cr.hit(p), cr.dns) for cr in view.admin)
        got = self._open_cache.get(key)
        if got is None:
            bare = Subjected(admin=view.admin, isolated_by=view.isolated_by)
            sentinel = CRule(_ALLOW_ALL_POLICY, _ALLOW_ALL_RULE, (u.all_mask,), u.all_mask,
                             False, True, 0, {}, ())
            full = Subjected(admin=view.admin, isolated_by=view.isolated_by, netpol=[sentinel])
            admin_allow = self.eng.decide(bare, p, u.all_mask).allow
            got = self.eng.decide(full, p, u.all_mask).allow & ~admin_allow
            self._open_cache[key] = got
        return got

    def raw(self, rk: RuleKey) -> int:
        out = 0
        for ci, j in self.rule_cells.get(rk, ()):
            for hits in self.cells[ci].hits:
                out |= hits[j]
        return out

    def effective(self, rk: RuleKey) -> int:
        out = 0
        for ci, j in self.rule_cells.get(rk, ()):
            cell = self.cells[ci]
            for g, hits in enumerate(cell.hits):
                out |= hits[j] & cell.opens[g]
        return out

    def kept(self, rk: RuleKey) -> bool:
        return rk[0] not in self.removed_policies and rk not in self.removed_rules

    # -- NF013 ---------------------------------------------------------------------------------
    def duplicates(self) -> list[tuple[int, int]]:
        """Remove extra identical copies; returns (copy, kept) pairs."""
        groups: dict[tuple[object, ...], list[int]] = {}
        for i, pol in enumerate(self.policies):
            groups.setdefault(_canon(pol), []).append(i)
        out: list[tuple[int, int]] = []
        for members in groups.values():
            if len(members) < 2:
                continue
            members.sort(key=lambda i: (self.policies[i].ref.namespace,
                                        self.policies[i].ref.name))
            for i in members[1:]:
                self.removed_policies.add(i)
                out.append((i, members[0]))
        return out

    def duplicate_finding(self, i: int, kept: int) -> Finding:
        pol = self.policies[i]
        keep = self.policies[kept]
        if kept in self.removed_policies:  # the first copy is itself redundant (NF012)
            advice = "it adds nothing either (see NF012 on it): delete this copy too"
        else:
            advice = "keep one, delete this copy"
        return Finding(check("NF013"), policy_obj(pol), pol.source,
                       f"{pol.ref} is identical to {keep.ref} ({keep.source.location()}): "
                       f"{advice}",
                       f"copy-of/{keep.ref.kind}/{keep.ref.namespace}/{keep.ref.name}",
                       (policy_obj(keep),))

    # -- NF012 ---------------------------------------------------------------------------------
    def redundant_policies(self) -> list[int]:
        """Greedily remove NetworkPolicies that add nothing; returns them in removal order."""
        candidates: list[int] = []
        for pi, pol in enumerate(self.policies):
            if pol.tier is not Tier.NETWORK_POLICY or pi in self.removed_policies:
                continue
            dirs = [d for d in DIRECTIONS if pol.rules(d) is not None]
            if not dirs or any(not pol.rules(d) for d in dirs):
                continue  # a default deny (a direction without rules) is never advised away
            if not self.policy_cells.get(pi):
                continue  # selects nothing: NF001
            if not any(self.raw((pi, d, r.index)) for d in dirs for r in pol.rules(d) or ()):
                continue  # allows nothing at all: NF002/NF005 say why
            candidates.append(pi)
        candidates.sort(key=lambda i: (self.policies[i].ref.namespace,
                                       self.policies[i].ref.name), reverse=True)
        removed: list[int] = []
        for pi in candidates:
            if self._policy_covered(pi) is not None:
                self.removed_policies.add(pi)
                removed.append(pi)
        return removed

    def policy_finding(self, pi: int) -> Finding:
        """Named against what is finally kept (every removal is covered by it, by induction
        over the greedy order), so no finding names a policy another finding deletes."""
        pol = self.policies[pi]
        verdict = self._policy_covered(pi)
        coverers, isolators, admin = verdict if verdict is not None else (set(), set(), False)
        by = [str(self.policies[q].ref) for q in sorted(coverers)]
        also = " and the Admin tier" if admin else ""
        iso = names([str(self.policies[q].ref) for q in sorted(isolators)])
        return Finding(
            check("NF012"), policy_obj(pol), pol.source,
            f"{pol.ref} adds no connection and no isolation: every pod it selects is also "
            f"isolated by {iso}, and everything it allows is allowed by {names(by)}{also}; it "
            f"can be deleted (keep {'that' if len(coverers | isolators) == 1 else 'those'})",
            "policy",
            tuple(policy_obj(self.policies[q]) for q in sorted(coverers | isolators)))

    def _policy_covered(self, pi: int) -> tuple[set[int], set[int], bool] | None:
        """Who covers policy ``pi`` (rules, isolation, Admin); None if it is needed.

        A policy whose every connection the Admin tier decides is left to the rule-level
        NF015 (information: defense in depth), so it is "needed" here."""
        coverers: set[int] = set()
        isolators: set[int] = set()
        admin = False
        needs_np = False
        for ci in self.policy_cells.get(pi, ()):
            cell = self.cells[ci]
            others_iso = [q for q in cell.isolating
                          if q != pi and q not in self.removed_policies]
            if not others_iso:
                return None
            isolators.add(others_iso[0])
            mine = [j for j, rk in enumerate(cell.entries) if rk[0] == pi]
            others = [j for j, rk in enumerate(cell.entries) if rk[0] != pi and self.kept(rk)]
            for g, hits in enumerate(cell.hits):
                h = 0
                for j in mine:
                    h |= hits[j]
                if not h:
                    continue
                need = h & cell.opens[g]
                admin = admin or bool(h & ~cell.opens[g])
                if not need:
                    continue
                needs_np = True
                union = 0
                for j in others:
                    union |= hits[j]
                if need & ~union:
                    return None
                coverers.update(cell.entries[j][0] for j in others if hits[j] & need)
        if not needs_np:
            return None
        return coverers, isolators, admin

    # -- NF015, NF011 ----------------------------------------------------------------------------
    def redundant_rules(self) -> Iterator[Finding]:
        keys = sorted((rk for rk in self.rule_cells if rk[0] not in self.removed_policies),
                      key=self._rule_order)
        live: list[RuleKey] = []
        for rk in keys:
            if not self.raw(rk):
                continue  # matches nothing: NF002/NF005
            if not self.effective(rk):
                self.removed_rules.add(rk)
                if self.ctx.on("NF015"):
                    yield self._admin_decided(rk)
                continue
            live.append(rk)
        if not self.ctx.on("NF011"):
            return
        single = self._singly_covered()
        candidates = [rk for rk in live if not self._uniquely_needed(rk, single)]
        removed: list[RuleKey] = []
        for rk in reversed(candidates):
            if self._rule_covered(rk) is not None:
                self.removed_rules.add(rk)
                removed.append(rk)
        for rk in removed:
            yield self._redundant_rule(rk, self._rule_covered(rk) or [])

    def _rule_order(self, rk: RuleKey) -> tuple[str, str, str, int]:
        pol = self.policies[rk[0]]
        return (pol.ref.namespace, pol.ref.name, str(rk[1]), rk[2])

    def _singly_covered(self) -> list[list[int]]:
        """Per cell and group: open peers allowed by exactly one kept rule."""
        out: list[list[int]] = []
        for cell in self.cells:
            kept = [j for j, rk in enumerate(cell.entries) if self.kept(rk)]
            per: list[int] = []
            for g, hits in enumerate(cell.hits):
                once = twice = 0
                for j in kept:
                    h = hits[j]
                    twice |= once & h
                    once |= h
                per.append(once & ~twice & cell.opens[g])
            out.append(per)
        return out

    def _uniquely_needed(self, rk: RuleKey, single: list[list[int]]) -> bool:
        for ci, j in self.rule_cells[rk]:
            for g, hits in enumerate(self.cells[ci].hits):
                if hits[j] & single[ci][g]:
                    return True
        return False

    def _rule_covered(self, rk: RuleKey) -> list[RuleKey] | None:
        coverers: set[RuleKey] = set()
        for ci, j in self.rule_cells[rk]:
            cell = self.cells[ci]
            others = [k for k, other in enumerate(cell.entries) if k != j and self.kept(other)]
            for g, hits in enumerate(cell.hits):
                need = hits[j] & cell.opens[g]
                if not need:
                    continue
                union = 0
                for k in others:
                    union |= hits[k]
                if need & ~union:
                    return None
                coverers.update(cell.entries[k] for k in others if hits[k] & need)
        return sorted(coverers, key=self._rule_order)

    def _rule(self, rk: RuleKey) -> Rule:
        rules = self.policies[rk[0]].rules(rk[1]) or ()
        return next(r for r in rules if r.index == rk[2])

    def _describe(self, rk: RuleKey, own: int) -> str:
        pol = self.policies[rk[0]]
        label = rule_label(rk[1], self._rule(rk))
        return label if rk[0] == own else f"{label} of {pol.ref}"

    def _redundant_rule(self, rk: RuleKey, coverers: list[RuleKey]) -> Finding:
        pol = self.policies[rk[0]]
        rule = self._rule(rk)
        label = rule_label(rk[1], rule)
        admin = bool(self.raw(rk) & ~self.effective(rk))
        if len(coverers) == 1 and _same_rule(rule, self._rule(coverers[0])):
            msg = (f"{label} is identical to {self._describe(coverers[0], rk[0])}: keep that "
                   "one, delete this one")
        else:
            by = [self._describe(k, rk[0]) for k in coverers]
            also = " (the rest is decided by the Admin tier)" if admin else ""
            keep = "that" if len(by) == 1 else "those"
            msg = (f"{label} adds no connection: everything it allows is also allowed by "
                   f"{names(by, 3)}{also}; it can be deleted (keep {keep})")
        related = tuple(sorted({policy_obj(self.policies[k[0]]) for k in coverers
                                if k[0] != rk[0]}, key=lambda o: (o.kind, o.namespace, o.name)))
        return Finding(check("NF011"), policy_obj(pol), rule_source(pol, rule), msg,
                       f"{rk[1]}/{rk[2]}", related)

    def _admin_decided(self, rk: RuleKey) -> Finding:
        pol = self.policies[rk[0]]
        rule = self._rule(rk)
        accepted: set[int] = set()
        denied: set[int] = set()
        for ci, j in self.rule_cells[rk]:
            cell = self.cells[ci]
            view = self.eng.subjected(cell.c, cell.d)
            bare = Subjected(admin=view.admin, isolated_by=view.isolated_by)
            for g, hits in enumerate(cell.hits):
                if not hits[j]:
                    continue
                trace: list[Step] = []
                self.eng.decide(bare, lowest(cell.groups[g]), hits[j], trace)
                for step in trace:
                    if step.outcome != "matched" or step.rule is None:
                        continue
                    if step.rule.action is Action.DENY:
                        denied.add(self.index[id(step.policy)])
                    elif step.rule.action is Action.ALLOW:
                        accepted.add(self.index[id(step.policy)])
        label = rule_label(rk[1], rule)
        acc = names([str(self.policies[q].ref) for q in sorted(accepted)], 3)
        den = names([str(self.policies[q].ref) for q in sorted(denied)], 3)
        if denied:
            by = f"{den} denies" + (f" and {acc} accepts" if accepted else "")
            msg = (f"{label}: the Admin tier decides every connection it allows first ({by}): "
                   "the rule promises traffic that is denied")
        else:
            msg = (f"{label}: every connection it allows is already accepted by the Admin tier "
                   f"({acc}); it has no effect while that stays (defense in depth)")
        return Finding(check("NF015"), policy_obj(pol), rule_source(pol, rule), msg,
                       f"{rk[1]}/{rk[2]}",
                       tuple(policy_obj(self.policies[q]) for q in sorted(accepted | denied)))

    # -- NF014 ---------------------------------------------------------------------------------
    def shadowed(self) -> Iterator[Finding]:
        u = self.u
        hit_seen: dict[RuleKey, bool] = {}  # rule -> consulted somewhere
        matched: set[RuleKey] = set()
        deciders: dict[RuleKey, set[int]] = {}
        cache: dict[tuple[object, ...], frozenset[int]] = {}
        for d in DIRECTIONS:
            for cls in self.ctx.pod_classes():
                view = self.eng.subjected(cls.index, d)
                if not (view.admin or view.baseline):
                    continue
                crs = [*view.admin, *view.baseline]
                isolated = bool(view.isolated_by)
                tiers = Subjected(admin=view.admin, isolated_by=view.isolated_by,
                                  baseline=view.baseline)
                for group in port_groups(tiers, u.all_ports):
                    p = lowest(group)
                    hits = [cr.hit(p) for cr in crs]
                    key = (isolated, tuple(zip((id(cr.rule) for cr in crs), hits, strict=True)))
                    got = cache.get(key)
                    if got is None:
                        trace: list[Step] = []
                        self.eng.decide(tiers, p, u.all_mask, trace)
                        got = frozenset(id(s.rule) for s in trace
                                        if s.outcome == "matched" and s.rule is not None)
                        cache[key] = got
                    for i, cr in enumerate(crs):
                        if not hits[i]:
                            continue
                        rk = (self.index[id(cr.policy)], d, cr.rule.index)
                        consulted = cr.policy.tier is Tier.ADMIN or not isolated
                        hit_seen[rk] = hit_seen.get(rk, False) or consulted
                        if id(cr.rule) in got:
                            matched.add(rk)
                        elif consulted:
                            deciders.setdefault(rk, set()).update(
                                self.index[id(crs[k].policy)] for k in range(i)
                                if id(crs[k].rule) in got and hits[k] & hits[i])
        for rk in sorted(hit_seen, key=self._rule_order):
            if rk in matched or rk[0] in self.removed_policies:
                continue
            pol = self.policies[rk[0]]
            rule = self._rule(rk)
            if not hit_seen[rk]:
                why = (f"NetworkPolicies isolate every pod it selects for {rk[1]}, so the "
                       "Baseline tier is never consulted for them (tier-4)")
                related: tuple[int, ...] = ()
            else:
                by = sorted(deciders.get(rk, set()))
                related = tuple(q for q in by if q != rk[0])
                who = [("earlier rules of this policy" if q == rk[0] else
                        str(self.policies[q].ref)) for q in by]
                why = (f"every connection it matches is decided first by {names(who, 3)}"
                       if who else "every connection it matches is decided first by earlier "
                       "rules")
            yield Finding(check("NF014"), policy_obj(pol), rule_source(pol, rule),
                          f"{rule_label(rk[1], rule)} never decides anything: {why}",
                          f"{rk[1]}/{rk[2]}",
                          tuple(policy_obj(self.policies[q]) for q in related))


def _strip(rules: tuple[Rule, ...] | None) -> tuple[object, ...] | None:
    if rules is None:
        return None
    return tuple((r.action, r.peers, r.ports) for r in rules)


def _canon(pol: Policy) -> tuple[object, ...]:
    """Everything that decides what a policy does, without names and line numbers."""
    return (pol.ref.kind, pol.tier, pol.priority, pol.subject, _strip(pol.ingress),
            _strip(pol.egress))


def _same_rule(a: Rule, b: Rule) -> bool:
    return (a.action, a.peers, a.ports) == (b.action, b.peers, b.ports)


def check_redundancy(ctx: Context) -> Iterator[Finding]:
    r = _Redundancy(ctx)
    dups = r.duplicates()
    if ctx.on("NF011", "NF012", "NF015"):
        r.build()
        removed = r.redundant_policies() if ctx.on("NF012") else []
        yield from r.redundant_rules()
        for pi in removed:  # worded against the final kept set, after the rule pass
            yield r.policy_finding(pi)
    if ctx.on("NF013"):
        for copy, kept in dups:
            yield r.duplicate_finding(copy, kept)
    if ctx.on("NF014"):
        yield from r.shadowed()
