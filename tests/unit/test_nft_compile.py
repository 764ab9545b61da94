"""The nftables compiler, pure: layout, per-pod named ports, ipBlock ranges, diffs, fail-closed.

No kernel here (see tests/kernel for the real thing); these pin the properties the brief asks
for: endpoint groups shared by identical pods, pod churn touching only elements, a policy edit
replacing chains, the JSON batch never deleting the table.
"""

from __future__ import annotations

import json
from pathlib import Path

from netfence import api
from netfence.agent.sync import fail_closed
from netfence.nft import compile_node, render_text, transaction
from netfence.nft.model import AddrMatch, L4Match, NamedMatch, Ruleset
from netfence.nft.simulate import Packet, forward
from tests.kernel.test_agent_truth import PODS, cluster_yaml, np


def build(tmp_path: Path, *policies: str, cluster: str | None = None) -> Ruleset:
    (tmp_path / "cluster.yaml").write_text(cluster or cluster_yaml(), encoding="utf-8")
    (tmp_path / "policies.yaml").write_text("---\n".join(policies) or "{}\n", encoding="utf-8")
    return compile_node(api.load([str(tmp_path)]), "node1")


IP = {n: i for n, _ns, i, _l, _p in PODS}
WEB_HTTP = np("web-http", "shop", """
    podSelector: {matchLabels: {app: web}}
    ingress: [{ports: [{port: http}]}]""")


def test_ingress_named_port_is_resolved_per_pod(tmp_path: Path) -> None:
    rs = build(tmp_path, WEB_HTTP)
    chains = {rs.maps["in4"][IP["web1"]], rs.maps["in4"][IP["web2"]]}
    assert len(chains) == 2  # web1 says http=80, web2 says http=8080: two groups
    ports = {name: [m for r in rs.chains[name].rules for m in r.matches
                    if isinstance(m, L4Match)] for name in chains}
    assert sorted(p[0].ports for p in ports.values()) == [((80, 80),), ((8080, 8080),)]
    assert forward(rs, Packet(IP["client"], IP["web2"], "tcp", 8080)).accepted
    assert not forward(rs, Packet(IP["client"], IP["web2"], "tcp", 80)).accepted


def test_identical_pods_share_one_group(tmp_path: Path) -> None:
    rs = build(tmp_path, np("deny", "shop", "podSelector: {}\npolicyTypes: [Ingress]"))
    shop = [IP[n] for n in ("web1", "web2", "db")]
    assert len({rs.maps["in4"][ip] for ip in shop}) == 1
    assert rs.groups[rs.maps["in4"][IP["db"]]] == ("shop/db", "shop/web1", "shop/web2")
    assert IP["client"] not in rs.maps["in4"]  # not selected: no dispatch, default allow


def test_egress_named_port_uses_each_peers_number(tmp_path: Path) -> None:
    rs = build(tmp_path, np("out", "ops", """
        podSelector: {matchLabels: {app: client}}
        policyTypes: [Egress]
        egress: [{to: [{namespaceSelector: {}}], ports: [{port: http}]}]"""))
    named = [m for c in rs.chains.values() for r in c.rules for m in r.matches
             if isinstance(m, NamedMatch) and m.family == 4]
    assert len(named) == 1
    assert rs.elements[named[0].set] == {(IP["web1"], "tcp", 80), (IP["web2"], "tcp", 8080),
                                         (IP["other"], "tcp", 81)}


def test_ipblock_except_becomes_ranges(tmp_path: Path) -> None:
    rs = build(tmp_path, np("blocks", "shop", """
        podSelector: {matchLabels: {app: db}}
        ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.244.0.0/16]}}]}]"""))
    sets = [m.set for c in rs.chains.values() for r in c.rules for m in r.matches
            if isinstance(m, AddrMatch) and m.set.startswith("b4-")]
    assert rs.elements[sets[0]] == {("10.0.0.0", "10.243.255.255"),
                                    ("10.245.0.0", "10.255.255.255")}
    text = render_text(rs)
    assert "flags interval" in text and "10.0.0.0-10.243.255.255" in text


def test_pod_churn_changes_only_elements(tmp_path: Path) -> None:
    policy = np("db-in", "shop", """
        podSelector: {matchLabels: {app: db}}
        ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}]}]""")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    old = build(tmp_path / "a", policy)
    moved = cluster_yaml().replace(IP["client"], "10.244.1.99")
    new = build(tmp_path / "b", policy, cluster=moved)
    cmds = transaction(old, new)["nftables"][1:]
    kinds = {(verb, next(iter(body))) for c in cmds for verb, body in c.items()}
    assert kinds <= {("delete", "element"), ("add", "element")}, kinds
    # the old address goes before the new one comes (IP reuse safe)
    verbs = [next(iter(c)) for c in cmds if "element" in next(iter(c.values()))]
    assert verbs.index("delete") < verbs.index("add")


def test_policy_edit_replaces_chains_and_never_deletes_the_table(tmp_path: Path) -> None:
    a = np("web-in", "shop", """
        podSelector: {matchLabels: {app: web}}
        ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 80}]}]""")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    old = build(tmp_path / "a", a)
    new = build(tmp_path / "b", a.replace("port: 80", "port: 81"))
    cmds = transaction(old, new)["nftables"][1:]
    added = [c["add"]["chain"]["name"] for c in cmds if "chain" in c.get("add", {})]
    deleted = [c["delete"]["chain"]["name"] for c in cmds if "chain" in c.get("delete", {})]
    assert len(added) == 1 and len(deleted) == 1  # web1 and web2 share one group
    assert not set(added) & set(deleted)
    assert not any("table" in c.get("delete", {}) for c in cmds)
    # map entries point to the new chains in the same batch, before old chains go
    pos = {json.dumps(c, sort_keys=True): i for i, c in enumerate(cmds)}
    first_delete = min(i for k, i in pos.items() if '"delete": {"chain"' in k)
    map_adds = [i for k, i in pos.items() if '"add": {"element"' in k and '"in4"' in k]
    assert map_adds and max(map_adds) < first_delete
    full = transaction(None, new)["nftables"]
    assert not any("table" in c.get("delete", {}) for c in full)


def test_fail_closed_drops_everything_it_governs(tmp_path: Path) -> None:
    rs = fail_closed(build(tmp_path, WEB_HTTP), "test")
    assert not forward(rs, Packet(IP["client"], IP["web1"], "tcp", 80)).accepted
    assert forward(rs, Packet(IP["web1"], IP["client"], "tcp", 80)).accepted  # not isolated
    assert all(name.endswith("-fc") for name in rs.chains)


def test_audit_policy_logs_would_deny_but_allows(tmp_path: Path) -> None:
    rs = build(tmp_path, np("audit", "shop", """
        podSelector: {matchLabels: {app: db}}
        ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]""",
                            "{netfence.dev/mode: audit}"))
    v = forward(rs, Packet(IP["client"], IP["db"], "tcp", 5432))
    assert v.accepted and [p.split("|")[0] for p in v.logs] == ["W"]
    _code, _dir, gid, rid, _ = v.logs[0].split("|")
    assert rs.provenance[f"{gid}|{rid}"].policies == ("NetworkPolicy shop/audit",)
    v = forward(rs, Packet(IP["web1"], IP["db"], "tcp", 5432))
    assert v.accepted and not v.logs


def test_unknown_mode_annotation_is_reported_and_enforced(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(cluster_yaml(), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(np("typo", "shop", "podSelector: {}",
                                        "{netfence.dev/mode: Audit}"), encoding="utf-8")
    state = api.load([str(tmp_path)])
    assert any(d.code == "policy-mode" and "'Audit'" in d.message for d in state.diagnostics)
    rs = compile_node(state, "node1")
    assert not forward(rs, Packet(IP["client"], IP["db"], "tcp", 5432)).accepted


def test_host_mode_enters_its_chains_without_known_addresses(tmp_path: Path) -> None:
    from netfence.nft import HostConfig, HostEndpoint, compile_host

    (tmp_path / "cluster.yaml").write_text(cluster_yaml(), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(np("legacy", "legacy-hosts", """
        podSelector: {matchLabels: {role: legacy}}
        ingress: [{ports: [{port: 8080}]}]"""), encoding="utf-8")
    rs = compile_host(api.load([str(tmp_path)]),
                      HostEndpoint("h1", "legacy-hosts", {"role": "legacy"}, ()),
                      HostConfig(("10.0.0.0/24",)))
    text = render_text(rs)
    assert rs.entry["in"] in text and f"goto {rs.entry['in']}" in text
    # failsafe before policy: SSH from the management CIDR comes first in input
    assert text.index("tcp dport 22 accept") < text.index(f"goto {rs.entry['in']}")


def test_dual_stack_pods_are_enforced_on_both_families(tmp_path: Path) -> None:
    """IPv6 in the compiled ruleset (the kernel bed is IPv4 only): ip6 sets and in6/eg6 maps,
    checked through the simulator against the engine for every pod pair, both families."""
    import json as _json

    from netfence.model.ports import Protocol

    docs = [_json.loads(d) for d in cluster_yaml().split("\n---\n") if d.strip()]
    for i, d in enumerate(x for x in docs if x["kind"] == "Pod"):
        v4 = d["status"]["podIP"]
        d["status"]["podIPs"] = [{"ip": v4}, {"ip": f"fd00:10:244::{i + 11:x}"}]
    (tmp_path / "cluster.json").write_text(_json.dumps({"apiVersion": "v1", "kind": "List",
                                                        "items": docs}), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(np("db-in", "shop", """
        podSelector: {matchLabels: {app: db}}
        ingress:
        - from: [{podSelector: {matchLabels: {app: web}}}]
          ports: [{port: 5432}]
        - from: [{ipBlock: {cidr: "fd00:10:244::10/124"}}]
          ports: [{port: 81}]"""), encoding="utf-8")
    state = api.load([str(tmp_path)])
    rs = compile_node(state, "node1")
    assert any(v.startswith("in-") for v in rs.maps["in6"].values())
    assert rs.elements["self6"]
    query = api.analyze(state).query
    pods = [p for p in state.pods if p.ips]
    checked = 0
    for src in pods:
        for dst in pods:
            for port in (81, 5432):
                want = query.flow(src, dst, Protocol.TCP, port).allowed
                for fam in (0, 1):
                    got = forward(rs, Packet(src.ips[fam], dst.ips[fam], "tcp", port)).accepted
                    assert got == want, (src.key, dst.key, port, fam)
                    checked += 1
    assert checked == len(pods) ** 2 * 4
    # the ipBlock is IPv6-only and holds ops/dns's v6 address (fd00:10:244::10): by NF-D4 the
    # pod is matched on its IPv4 address too, in the kernel as in the engine
    assert forward(rs, Packet(IP["dns"], IP["db"], "tcp", 81)).accepted
    assert not forward(rs, Packet(IP["other"], IP["db"], "tcp", 81)).accepted
