"""The incremental node compiler equals a fresh compile after any sequence of pod churn.

Random clusters (the oracle generator) are compiled once; then pods are relabelled,
re-addressed, moved between nodes, added and removed, a few at a time, and after every step
``NodeCompiler.compile`` must produce exactly what ``compile_node`` produces from scratch:
same sets and elements, chains, maps, groups and log provenance. Policy or namespace changes
are incremental too (only the node's pods they select regroup); namespace or node changes
take the full path.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from netfence.nft import compile_node
from netfence.nft.compile import NodeCompiler
from netfence.nft.model import Ruleset
from tests.unit.test_engine_vs_oracle import (
    LABEL_KEYS,
    LABEL_VALUES,
    SETTINGS,
    cluster_st,
    load_docs,
)

Doc = dict[str, Any]


def same(a: Ruleset, b: Ruleset) -> list[str]:
    out = []
    for name in ("sets", "elements", "chains", "maps", "groups", "provenance", "entry"):
        x, y = getattr(a, name), getattr(b, name)
        if x != y:
            extra = sorted(set(x) ^ set(y)) if isinstance(x, dict) else []
            diff = [k for k in x if k in y and x[k] != y[k]] if isinstance(x, dict) else []
            out.append(f"{name}: only one side {extra[:4]}; differ {diff[:4]}")
    return out


@st.composite
def churn_st(draw: st.DrawFn, docs: list[Doc]) -> list[Doc]:
    """A few pod changes: relabel, new address, other node, removal, a new pod."""
    docs = copy.deepcopy(docs)
    pods = [d for d in docs if d["kind"] == "Pod" and not d["spec"].get("hostNetwork")]
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(("relabel", "address", "move", "remove", "add")))
        if not pods and action != "add":
            action = "add"
        if action == "add":
            base = copy.deepcopy(draw(st.sampled_from(pods))) if pods else None
            if base is None:
                continue
            taken = {d["metadata"]["name"] for d in docs}
            n = 50
            while f"new{n}" in taken:
                n += 1
            base["metadata"]["name"] = f"new{n}"
            base["status"] = {"phase": "Running", "podIP": f"10.244.3.{n}",
                              "podIPs": [{"ip": f"10.244.3.{n}"}]}
            docs.append(base)
            pods.append(base)
            continue
        pod = draw(st.sampled_from(pods))
        if action == "relabel":
            pod["metadata"]["labels"] = draw(st.dictionaries(
                st.sampled_from(LABEL_KEYS), st.sampled_from(LABEL_VALUES), max_size=3))
        elif action == "address":
            ip = f"10.244.4.{draw(st.integers(1, 250))}"
            if any(d.get("status", {}).get("podIP") == ip for d in docs):
                continue
            pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
        elif action == "move":
            pod["spec"]["nodeName"] = "node-2" if pod["spec"]["nodeName"] == "node-1" \
                else "node-1"
        else:
            docs.remove(pod)
            pods.remove(pod)
    return docs


@settings(SETTINGS, max_examples=200)
@given(st.data())
def test_incremental_equals_full_compile(data: st.DataObject) -> None:
    docs = data.draw(cluster_st())
    nc = NodeCompiler("node-1")
    nc.compile(load_docs(docs).state)
    for step in range(3):
        docs = data.draw(churn_st(docs))
        state = load_docs(docs).state
        got = nc.compile(state)
        want = compile_node(state, "node-1")
        note(f"step {step}")
        assert same(got, want) == [], same(got, want)


def test_churn_and_policy_edits_are_incremental_namespace_changes_are_not() -> None:
    docs: list[Doc] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "np", "namespace": "x"},
         "spec": {"podSelector": {"matchLabels": {"app": "a"}},
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]}},
    ]
    for i, (app, node) in enumerate((("a", "node-1"), ("b", "node-2"), ("b", "node-2"))):
        docs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"p{i}", "namespace": "x", "labels": {"app": app}},
                     "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
                     "status": {"podIP": f"10.244.1.{10 + i}"}})
    nc = NodeCompiler("node-1")
    nc.compile(load_docs(docs).state)
    docs[-1]["status"]["podIP"] = "10.244.1.99"  # a remote client gets a new address
    state = load_docs(docs).state
    rs = nc.compile(state)
    assert nc.full_compiles == 1
    assert same(rs, compile_node(state, "node-1")) == []
    assert any(("10.244.1.99",) in e for e in rs.elements.values())
    docs[1]["spec"]["ingress"] = []  # a policy edit: incremental too
    state = load_docs(docs).state
    assert same(nc.compile(state), compile_node(state, "node-1")) == []
    docs[0]["metadata"]["labels"] = {"team": "a"}  # a namespace relabelled: full
    nc.compile(load_docs(docs).state)
    assert nc.full_compiles == 2


@st.composite
def policy_edit_st(draw: st.DrawFn, docs: list[Doc]) -> list[Doc]:
    """Add, remove or replace one policy (NetworkPolicy or ClusterNetworkPolicy)."""
    from tests.unit.test_engine_vs_oracle import cnp_st, np_st

    docs = copy.deepcopy(docs)
    policies = [d for d in docs if d["kind"] in ("NetworkPolicy", "ClusterNetworkPolicy")]
    action = draw(st.sampled_from(("add", "remove", "replace")))
    if action in ("remove", "replace") and policies:
        victim = draw(st.sampled_from(policies))
        at = docs.index(victim)
        docs.remove(victim)
        if action == "replace":
            if victim["kind"] == "NetworkPolicy":
                new = draw(np_st(victim["metadata"]["namespace"], victim["metadata"]["name"]))
            else:
                new = draw(cnp_st(victim["metadata"]["name"]))
            docs.insert(at, new)
        return docs
    taken = {d["metadata"]["name"] for d in docs}
    n = len(docs)
    while f"edit{n}" in taken:
        n += 1
    name = f"edit{n}"
    docs.append(draw(np_st("x", name)) if draw(st.booleans()) else draw(cnp_st(name)))
    return docs


@settings(SETTINGS, max_examples=150)
@given(st.data())
def test_incremental_equals_full_compile_across_policy_edits(data: st.DataObject) -> None:
    docs = data.draw(cluster_st())
    nc = NodeCompiler("node-1")
    nc.compile(load_docs(docs).state)
    for step in range(3):
        docs = data.draw(policy_edit_st(docs) if data.draw(st.booleans()) else churn_st(docs))
        state = load_docs(docs).state
        got = nc.compile(state)
        want = compile_node(state, "node-1")
        note(f"step {step}")
        assert same(got, want) == [], same(got, want)
