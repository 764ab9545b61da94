"""Group chains do not grow with pods (ENFORCEMENT.md principle 1, CI item 6).

The same generated cluster (benchmarks/gen.py: 10 namespaces, 125 policies) at 100 and at
10,000 pods: only Deployment replicas differ. Node ``node-000`` holds replica 0 of every
Deployment at both sizes (benchmarks/nodecluster.py ``striped`` layout), so the same policy
views are local; the extra pods land in sets and vmaps, never in rules. A compiler that
emitted a rule per peer pod, per peer address or per local pod would fail here.
"""

from __future__ import annotations

from benchmarks import nodecluster as nc
from netfence.nft import Ruleset, compile_node


def _node_view(pods: int) -> tuple[nc.Cluster, Ruleset]:
    cluster = nc.same_policies_cluster(pods)
    return cluster, compile_node(cluster.state, nc.LOCAL)


def test_group_chain_rules_constant_from_100_to_10000_pods() -> None:
    small_cluster, small = _node_view(100)
    big_cluster, big = _node_view(10_000)

    # the two clusters differ in pods only
    assert (small_cluster.pods, big_cluster.pods) == (100, 10_000)
    assert [p.ref for p in small_cluster.state.policies] == \
        [p.ref for p in big_cluster.state.policies]
    assert len(big_cluster.local_pods()) > len(small_cluster.local_pods())
    assert len({p.node for p in big_cluster.state.pods}) > 50
    # ... and the extra pods did reach the ruleset (as set and vmap elements)
    assert big.element_count() > 20 * small.element_count()
    assert small.rule_count() > 100  # the policies compile to real rules

    assert big.rule_count() == small.rule_count()
    assert {name: len(c.rules) for name, c in big.chains.items()} == \
        {name: len(c.rules) for name, c in small.chains.items()}
    assert set(big.sets) == set(small.sets)
