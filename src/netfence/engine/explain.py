"""Explain one flow by re-running the evaluation pipeline with a trace collector (ex-3).

The verdict comes from ``Engine.decide`` exactly as in ``Evaluation``; this module only reads
its trace to say which tier, policy and rule decided, and for a denial why nothing allowed it.
"""

from __future__ import annotations

from dataclasses import dataclass

from netfence.engine.evaluate import Engine, Step, Subjected
from netfence.model.policy import Action, Direction, Policy, Rule, Tier

KIND_ACTION = {
    "ClusterNetworkPolicy": {Action.ALLOW: "Accept", Action.DENY: "Deny", Action.PASS: "Pass"},
}


def action_word(policy: Policy, action: Action) -> str:
    return KIND_ACTION.get(policy.ref.kind, {}).get(action, action.value)


def cite(policy: Policy) -> str:
    src = policy.source
    where = f" ({src.location()})" if src.file else ""
    return f"{policy.ref}{where}"


def rule_label(policy: Policy, rule: Rule) -> str:
    if policy.tier is Tier.NETWORK_POLICY:
        kind = "ingress" if policy.ingress and rule in policy.ingress else "egress"
        return f"{kind} rule {rule.index}"
    name = f" '{rule.name}'" if rule.name else ""
    return f"rule {rule.index}{name}"


@dataclass(frozen=True, slots=True)
class DirectionVerdict:
    """Verdict for one direction with the deciding policy/rule and the full chain."""

    direction: Direction
    allowed: bool
    tier: Tier
    policy: Policy | None
    rule: Rule | None
    steps: tuple[Step, ...]
    sentences: tuple[str, ...]
    dns_conditional: bool = False
    ambiguous: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "direction": str(self.direction),
            "allowed": self.allowed,
            "tier": self.tier.label(),
            "policy": None if self.policy is None else {
                "kind": self.policy.ref.kind, "namespace": self.policy.ref.namespace,
                "name": self.policy.ref.name, "file": self.policy.source.file,
                "line": self.policy.source.line},
            "rule": None if self.rule is None else {
                "index": self.rule.index, "name": self.rule.name, "line": self.rule.line},
            "dnsConditional": self.dns_conditional,
            "explanation": list(self.sentences),
            "chain": [
                {"tier": s.tier.label(), "policy": str(s.policy.ref),
                 "rule": None if s.rule is None else s.rule.index, "outcome": s.outcome}
                for s in self.steps],
        }


def _peer_text(step: Step) -> str:
    assert step.rule is not None
    if step.peer_index is None or not step.rule.peers:
        return "any peer"
    return str(step.rule.peers[step.peer_index])


def _port_text(step: Step) -> str:
    assert step.rule is not None
    if step.rule.ports is None:
        return "all ports"
    if step.clause_index is None:
        return ", ".join(str(c) for c in step.rule.ports)
    return str(step.rule.ports[step.clause_index])


def _miss_text(step: Step) -> str:
    assert step.rule is not None
    what = {"peer-miss": "the peer does not match ({}), the port does",
            "port-miss": "the peer matches, the port does not ({})",
            "both-miss": "neither peer nor port matches ({})",
            "skipped": "the flow was already decided ({})"}[step.outcome]
    if step.outcome == "port-miss":
        detail = ", ".join(str(c) for c in step.rule.ports or ()) or "all ports"
    else:
        detail = "; ".join(str(p) for p in step.rule.peers) or "no peers"
    return what.format(detail)


def _equal_priority(view: Subjected, tier: Tier) -> tuple[str, ...]:
    rules = view.admin if tier is Tier.ADMIN else view.baseline
    seen: dict[int, set[str]] = {}
    for cr in rules:
        seen.setdefault(cr.policy.priority, set()).add(str(cr.policy.ref))
    return tuple(
        f"{' and '.join(sorted(names))} share priority {prio} in the {tier.label()} tier: "
        "the API leaves their order undefined; netfence orders them by kind and name (D-5)"
        for prio, names in sorted(seen.items()) if len(names) > 1)


def explain_direction(engine: Engine, view: Subjected, direction: Direction, p: int,
                      peer_ep: int, subject_text: str, peer_text: str) -> DirectionVerdict:
    """Decide one direction for one peer with the trace on, and put it into sentences."""
    trace: list[Step] = []
    out = engine.decide(view, p, 1 << peer_ep, trace)
    allowed = bool(out.allow)
    dns = bool(out.dns)
    where = "egress from" if direction is Direction.EGRESS else "ingress to"
    lines: list[str] = []
    ambiguous = _equal_priority(view, Tier.ADMIN) + _equal_priority(view, Tier.BASELINE)
    if not (view.admin or view.netpol or view.baseline or view.isolated_by):
        lines.append(f"No policy selects {subject_text} for {direction}: "
                     f"{where} it is allowed by default.")
        return DirectionVerdict(direction, True, Tier.DEFAULT, None, None, (), tuple(lines), dns)
    for step in trace:
        if step.outcome == "dns":
            lines.append(f"{cite(step.policy)} {rule_label(step.policy, step.rule)}"  # type: ignore[arg-type]
                         " names domains: whether it matches depends on DNS (D-7).")
    decided: Step | None = None
    np_matches = [s for s in trace if s.tier is Tier.NETWORK_POLICY and s.outcome == "matched"]
    for step in trace:
        if step.tier is Tier.NETWORK_POLICY or step.rule is None or step.outcome == "dns":
            continue
        if step.outcome == "matched":
            word = action_word(step.policy, step.rule.action)
            lines.append(
                f"{step.tier.label()} tier: {cite(step.policy)} "
                f"{rule_label(step.policy, step.rule)} ({word}) matches {peer_text} "
                f"via {_peer_text(step)} on {_port_text(step)}.")
            if step.rule.action is not Action.PASS:
                decided = step
                break
            lines.append(f"Pass: the rest of the {step.tier.label()} tier is skipped.")
        elif step.outcome != "skipped":
            lines.append(f"{step.tier.label()} tier: {cite(step.policy)} "
                         f"{rule_label(step.policy, step.rule)} does not match: "
                         f"{_miss_text(step)}.")
    if decided is not None and decided.tier is Tier.ADMIN:
        return DirectionVerdict(direction, allowed, Tier.ADMIN, decided.policy, decided.rule,
                                tuple(trace), tuple(lines), dns, ambiguous)
    if view.isolated_by:
        names = ", ".join(cite(p) for p in view.isolated_by)
        if np_matches:
            first = np_matches[0]
            assert first.rule is not None
            lines.append(
                f"NetworkPolicy tier: {subject_text} is isolated for {direction}; "
                f"{cite(first.policy)} {rule_label(first.policy, first.rule)} allows "
                f"{peer_text} via {_peer_text(first)} on {_port_text(first)}.")
            return DirectionVerdict(direction, allowed, Tier.NETWORK_POLICY, first.policy,
                                    first.rule, tuple(trace), tuple(lines), dns, ambiguous)
        lines.append(f"NetworkPolicy tier: {subject_text} is isolated for {direction} by "
                     f"{names}, and none of their rules allows {peer_text} on this port.")
        for step in trace:
            if step.tier is Tier.NETWORK_POLICY and step.rule is not None:
                lines.append(f"  {cite(step.policy)} {rule_label(step.policy, step.rule)}: "
                             f"{_miss_text(step)}.")
        if not view.netpol:
            lines.append("  (the isolating policies have no rules for this direction)")
        return DirectionVerdict(direction, allowed, Tier.NETWORK_POLICY, view.isolated_by[0],
                                None, tuple(trace), tuple(lines), dns, ambiguous)
    if decided is not None:
        return DirectionVerdict(direction, allowed, Tier.BASELINE, decided.policy, decided.rule,
                                tuple(trace), tuple(lines), dns, ambiguous)
    lines.append(f"No rule decides {where} {subject_text} for {peer_text}: allowed by default "
                 "(not isolated by any NetworkPolicy, no Admin or Baseline rule matched).")
    return DirectionVerdict(direction, allowed, Tier.DEFAULT, None, None, tuple(trace),
                            tuple(lines), dns, ambiguous)
