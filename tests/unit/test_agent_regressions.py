"""Regressions found in review (pure): each test pins a bug of the compiler or the agent
that was found by an independent review and then fixed; each docstring says what was wrong.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from netfence import api
from netfence.agent.run import Agent, AgentConfig, desired_ruleset
from netfence.agent.sync import Syncer
from netfence.errors import Severity
from netfence.model.cluster import ClusterState
from netfence.nft import HostEndpoint, compile_node
from netfence.nft.compile import NodeCompiler
from netfence.nft.simulate import Packet, forward
from tests.kernel.test_agent_truth import cluster_yaml
from tests.unit.test_agent_loop import FakeWatch, Recorder
from tests.unit.test_nft_incremental import same

Doc = dict[str, Any]
NS: Doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}


def load(tmp: Path, docs: list[Doc]) -> ClusterState:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "c.yaml").write_text("\n---\n".join(json.dumps(d) for d in docs), encoding="utf-8")
    return api.load([str(tmp)])


def pod(name: str, ip: str, labels: dict[str, str], node: str = "n1", ns: str = "x") -> Doc:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "podIP": ip}}


def np_doc(name: str, sel: dict[str, str], frm: dict[str, str], ns: str = "x") -> Doc:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"podSelector": {"matchLabels": sel},
                     "ingress": [{"from": [{"podSelector": {"matchLabels": frm}}]}]}}


def _duplicate_ip_docs() -> list[Doc]:
    """A terminating pod still shows its IP while its replacement already reuses it."""
    old = pod("a-old", "10.244.1.10", {"app": "a"})
    old["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return [NS, np_doc("a-in", {"app": "a"}, {"app": "a"}), old,
            pod("a-new", "10.244.1.10", {"app": "a"}),
            pod("intruder", "10.244.2.12", {"app": "z"}, node="n2")]


# -- 1. NodeCompiler: two pods with one IP in a snapshot ---------------------------------------

def test_incremental_keeps_ip_still_held_by_another_pod(tmp_path: Path) -> None:
    """compile.py _update_local/_update_sets: removing a pod deletes its IP from the in/eg
    maps, self4 and every peer set, although another (unchanged) pod still holds that IP.
    The surviving pod becomes non-isolated (fail-open) and is dropped from peer sets."""
    docs = _duplicate_ip_docs()
    s1 = load(tmp_path / "1", docs)
    assert not [d for d in s1.diagnostics if d.severity >= Severity.ERROR]
    nc = NodeCompiler("n1")
    nc.compile(s1)
    s2 = load(tmp_path / "2", [d for d in docs if d["metadata"]["name"] != "a-old"])
    got = nc.compile(s2)
    want = compile_node(s2, "n1")
    # the fresh compile still isolates a-new; the incremental one lets the intruder in
    pkt = Packet("10.244.2.12", "10.244.1.10", "tcp", 80)
    assert not forward(want, pkt).accepted
    assert not forward(got, pkt).accepted, "incremental ruleset let the intruder in"
    assert same(got, want) == []


# -- 2. Agent: a full resync never recompiles from scratch -------------------------------------

def test_full_resync_heals_incremental_compiler_drift(tmp_path: Path) -> None:
    """run.py _sync_once: sync_once(full=True) reuses the NodeCompiler, whose compile() returns
    the cached ruleset when no pod signature changed; any drift of the incremental compiler
    (finding 1) therefore survives every periodic full resync, until namespaces or nodes
    change or the agent restarts."""
    docs = _duplicate_ip_docs()
    path = tmp_path / "in"
    load(path, docs)
    agent = Agent(AgentConfig(paths=[str(path)], node="n1"), Syncer(Recorder()), lambda s: None)
    assert agent.sync_once(full=True)
    load(path, [d for d in docs if d["metadata"]["name"] != "a-old"])
    assert agent.sync_once()
    assert agent.sync_once(full=True)  # the periodic resync
    fresh = compile_node(api.load([str(path)]), "n1")
    assert agent.syncer.applied is not None
    assert agent.syncer.applied.maps == fresh.maps
    assert agent.syncer.applied.elements == fresh.elements


# -- 3. Agent: stale diagnostics after policy watch events -------------------------------------

def test_fixed_policy_from_watch_lifts_fail_closed() -> None:
    """run.py _patch_policies: the patched snapshot keeps the diagnostics of the last full load,
    so a policy that was invalid and is fixed (or deleted) through a watch event keeps its
    namespace's pods fail-closed until the next full resync (default 300 s)."""
    docs = [json.loads(d) for d in cluster_yaml().split("\n---\n") if d.strip()]
    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "db-in", "namespace": "shop"},
           "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
               {"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}}]}]}}
    watch = FakeWatch([*docs, bad])
    cfg = AgentConfig(node="node1", cluster=True)
    agent = Agent(cfg, Syncer(Recorder()), lambda s: None)
    agent.watch = watch  # type: ignore[assignment]
    loaded = agent.current_state(whole=False)
    first = desired_ruleset(loaded, cfg, agent.compiler)
    assert "in-failclosed" in first.maps["in4"].values()  # broken: shop fails closed
    fixed = copy.deepcopy(bad)
    fixed["spec"]["ingress"][0]["from"][0]["ipBlock"]["except"] = ["10.0.1.0/24"]
    watch.put("MODIFIED", fixed)
    patched = agent.current_state(whole=False)  # broken policies on record: a full reload
    got = desired_ruleset(patched, cfg, agent.compiler)
    full = desired_ruleset(api.load_texts(watch.snapshot()), cfg)
    assert "in-failclosed" not in full.maps["in4"].values()
    assert "in-failclosed" not in got.maps["in4"].values(), "still fail-closed after the fix"


# -- 4. Host mode ignores broken policies ------------------------------------------------------

def test_host_mode_fails_closed_on_a_broken_policy(tmp_path: Path) -> None:
    """run.py _fail_closed_pods: fail-closed works through the vmaps and state.pods only; in
    host mode the endpoint is not in state.pods and its chains hang off rs.entry, so a broken
    policy in the host's namespace leaves the host's input wide open (fail-open) although
    fail_open is False."""
    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "legacy-in", "namespace": "legacy"},
           "spec": {"podSelector": {"matchLabels": {"role": "legacy"}}, "ingress": [
               {"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}}]}]}}
    state = load(tmp_path, [bad])
    assert any(d.severity >= Severity.ERROR for d in state.diagnostics)
    cfg = AgentConfig(host=HostEndpoint("h1", "legacy", {"role": "legacy"}, ("10.9.0.1",)))
    rs = desired_ruleset(state, cfg)
    entry = rs.entry.get("in")
    assert entry is not None, "no ingress entry: the host accepts everything"
    assert all(r.verdict == "drop" for r in rs.chains[entry].rules)


# -- 5. Audit-mode Allow/Pass rules: sets a fresh compile keeps, the incremental one drops -----

def test_audit_allow_sets_incremental_equals_full(tmp_path: Path) -> None:
    """compile.py _first_match: for an audit-mode Accept/Pass rule rule_matches() is still
    called, creating pod sets no chain references. A full compile keeps them; the incremental
    compiler's garbage collection (after any group disappears) deletes them, so
    NodeCompiler.compile != compile_node (the property the module promises) and every later
    full resync re-adds them."""
    audit = {"apiVersion": "policy.networking.k8s.io/v1beta1", "kind": "ClusterNetworkPolicy",
             "metadata": {"name": "audit-admin", "annotations": {"netfence.dev/mode": "audit"}},
             "spec": {"tier": "Admin", "priority": 1, "subject": {"namespaces": {}},
                      "ingress": [{"name": "r0", "action": "Accept", "from": [{"pods": {
                          "namespaceSelector": {},
                          "podSelector": {"matchLabels": {"app": "c"}}}}]}]}}
    deny_b = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "b", "namespace": "x"},
              "spec": {"podSelector": {"matchLabels": {"app": "b"}}, "ingress": []}}
    docs = [NS, audit, deny_b, pod("a", "10.244.1.10", {"app": "a"}),
            pod("b", "10.244.1.11", {"app": "b"}), pod("c", "10.244.1.12", {"app": "c"}, "n2")]
    nc = NodeCompiler("n1")
    nc.compile(load(tmp_path / "1", docs))
    s2 = load(tmp_path / "2", [d for d in docs if d["metadata"]["name"] != "b"])
    assert same(nc.compile(s2), compile_node(s2, "n1")) == []


# -- 6. Warnings grow without bound in the incremental compiler --------------------------------

def test_incremental_warnings_do_not_accumulate(tmp_path: Path) -> None:
    """compile.py NodeCompiler.compile copies prev.warnings and addr_alternatives appends the
    domainNames warning again each time a selected local pod is regrouped: a long-running
    agent's ruleset.warnings grows with pod churn (a slow memory leak)."""
    dns = {"apiVersion": "policy.networking.k8s.io/v1beta1", "kind": "ClusterNetworkPolicy",
           "metadata": {"name": "dns-out"},
           "spec": {"tier": "Admin", "priority": 1, "subject": {"namespaces": {}},
                    "egress": [{"name": "r0", "action": "Accept",
                                "to": [{"domainNames": ["example.com"]}]}]}}
    base = [NS, dns, pod("c", "10.244.2.12", {"app": "c"}, "n2")]
    nc = NodeCompiler("n1")
    counts = []
    for i in range(6):
        state = load(tmp_path / str(i), [*base, pod("a", f"10.244.1.{10 + i}", {"app": "a"})])
        counts.append(len(nc.compile(state).warnings))
    fresh = len(compile_node(state, "n1").warnings)
    assert counts[-1] <= fresh, counts
