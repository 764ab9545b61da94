"""Equal priorities in one tier whose order changes a verdict: NF016 (tier-8, D-5).

Candidate pairs come from ``engine.checks.ambiguous_pairs`` (same tier and priority, common
subject pods, rules in a common direction). A pair is reported only when swapping the two
policies' blocks of rules in the compiled per-class view changes ``Engine.decide``'s outcome for
some pod class and port class: equal priorities whose order does not matter are fine.
"""

from __future__ import annotations

from collections.abc import Iterator

from netfence.checks.catalogue import check
from netfence.checks.context import Context, lowest, policy_obj, port_groups
from netfence.checks.findings import Finding
from netfence.engine.checks import ambiguous_pairs
from netfence.engine.classes import bits
from netfence.engine.evaluate import CRule, Subjected
from netfence.model.policy import Direction, Policy, Tier


def check_priorities(ctx: Context) -> Iterator[Finding]:
    eng = ctx.engine
    u = ctx.universe
    for a, b, dirs in ambiguous_pairs(eng):
        witness = _witness(ctx, a, b, dirs)
        if witness is None:
            continue
        d, c, p = witness
        cls = u.classes[c]
        pods = ctx.workloads_of(1 << c)
        who = f"{pods[0].namespace}/{pods[0].name}" if pods else f"namespace {cls.namespace}"
        yield Finding(
            check("NF016"), policy_obj(a), a.source,
            f"{a.ref} and {b.ref} share priority {a.priority} in the {a.tier.label()} tier and "
            f"their order changes the {d} verdict (e.g. for {who} on {u.portset(1 << p)}): "
            "the API leaves it undefined; netfence evaluates them by kind and name (D-5)",
            f"with/{b.ref.kind}/{b.ref.name}", (policy_obj(b),))


def _witness(ctx: Context, a: Policy, b: Policy,
             dirs: list[Direction]) -> tuple[Direction, int, int] | None:
    """(direction, class, port class) where the two orders disagree, if any."""
    eng = ctx.engine
    u = ctx.universe
    common = eng.subject_mask(a.subject) & eng.subject_mask(b.subject)
    for d in dirs:
        for c in bits(common):
            view = eng.subjected(c, d)
            swapped = _swap(view, a, b)
            if swapped is None:
                continue
            for group in port_groups(view, u.all_ports):
                p = lowest(group)
                x = eng.decide(view, p, u.all_mask)
                y = eng.decide(swapped, p, u.all_mask)
                if (x.allow, x.deny, x.dns) != (y.allow, y.deny, y.dns):
                    return d, c, p
    return None


def _swap(view: Subjected, a: Policy, b: Policy) -> Subjected | None:
    rules = view.admin if a.tier is Tier.ADMIN else view.baseline
    ia = [i for i, cr in enumerate(rules) if cr.policy is a]
    ib = [i for i, cr in enumerate(rules) if cr.policy is b]
    if not ia or not ib:
        return None
    a0, a1, b0, b1 = ia[0], ia[-1] + 1, ib[0], ib[-1] + 1
    if a0 > b0:
        a0, a1, b0, b1 = b0, b1, a0, a1
    out: list[CRule] = [*rules[:a0], *rules[b0:b1], *rules[a1:b0], *rules[a0:a1], *rules[b1:]]
    if a.tier is Tier.ADMIN:
        return Subjected(admin=out, isolated_by=view.isolated_by, netpol=view.netpol,
                         baseline=view.baseline)
    return Subjected(admin=view.admin, isolated_by=view.isolated_by, netpol=view.netpol,
                     baseline=out)
