"""Differential property test: the nftables compiler against the engine, without a kernel.

Random clusters (the generator of ``test_engine_vs_oracle``: two nodes, pods with IPs, named
ports, hostNetwork pods, NetworkPolicies and Admin/Baseline ClusterNetworkPolicies, some of them
in audit mode) are compiled per node; every flow is then pushed through the compiled rulesets
by ``nft.simulate`` the way the kernel would see it (source node's forward hook, then the
destination node's; node-local traffic never enters forward) and compared with the engine.
Real-kernel agreement is checked separately in ``tests/kernel``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from netfence.model.cluster import Pod
from netfence.model.ports import Protocol
from netfence.nft import Ruleset, compile_node
from netfence.nft.simulate import Packet, forward
from tests.unit.test_engine_vs_oracle import (
    EXTERNALS,
    NODES,
    PROBES,
    SETTINGS,
    Loaded,
    cluster_st,
    engine_allowed,
    load_docs,
)

Doc = dict[str, Any]
NODE_OF_IP = {ip: name for name, ip in NODES.items()}


def kernel_path_allows(rulesets: dict[str, Ruleset], src: Pod | str, dst: Pod | str,
                       proto: Protocol, port: int) -> bool | None:
    """What the compiled rulesets do with a new connection (None: not enforceable here)."""
    src_ip = src.ips[0] if isinstance(src, Pod) else src
    dst_ip = dst.ips[0] if isinstance(dst, Pod) else dst
    src_node = src.node if isinstance(src, Pod) else NODE_OF_IP.get(src_ip)
    dst_node = dst.node if isinstance(dst, Pod) else NODE_OF_IP.get(dst_ip)
    src_host = not isinstance(src, Pod) or src.host_network
    dst_host = not isinstance(dst, Pod) or dst.host_network
    if (":" in src_ip and ":" not in dst_ip) or (":" in dst_ip and ":" not in src_ip):
        return None
    pkt = Packet(src_ip, dst_ip, str(proto).lower(), port)
    hops: list[str] = []
    if not src_host and src_node:
        hops.append(src_node)  # leaves its pod through the node's forward hook
    if not dst_host and dst_node and dst_node not in hops:
        hops.append(dst_node)
    if src_host and src_node and src_node == dst_node:
        return True  # node -> its own pod: output hook, never filtered (sp-3)
    if dst_host and dst_node and dst_node == src_node:
        return True  # pod -> its own node: input hook (sp-3)
    return all(forward(rulesets[node], pkt).accepted for node in hops)


def mismatches(loaded: Loaded) -> list[str]:
    rulesets = {n: compile_node(loaded.state, n) for n in NODES}
    bad: list[str] = []
    points: list[Pod | str] = [p for p in loaded.pods if p.ips]
    points += [e for e in EXTERNALS if e not in NODES.values()]
    for src in points:
        for dst in points:
            if isinstance(src, str) and isinstance(dst, str):
                continue
            for proto, port in PROBES:
                got = kernel_path_allows(rulesets, src, dst, proto, port)
                if got is None:
                    continue
                fv = engine_allowed(loaded, src, dst, proto, port)
                if got != fv:
                    s = src.key if isinstance(src, Pod) else src
                    d = dst.key if isinstance(dst, Pod) else dst
                    bad.append(f"{s} -> {d} {proto} {port}: nft {'allow' if got else 'deny'}, "
                               f"engine {'allow' if fv else 'deny'}")
    return bad


def _no_domains(docs: list[Doc]) -> bool:
    return "domainNames" not in repr(docs)


@settings(SETTINGS, max_examples=300)
@given(cluster_st().filter(_no_domains), st.randoms(use_true_random=False))
def test_compiled_rulesets_agree_with_engine(docs: list[Doc], rnd: Any) -> None:
    # put some policies in audit mode: they must change no verdict
    for doc in docs:
        if doc["kind"] in ("NetworkPolicy", "ClusterNetworkPolicy") and rnd.random() < 0.25:
            doc["metadata"].setdefault("annotations", {})["netfence.dev/mode"] = "audit"
    loaded = load_docs(docs)
    note(loaded.text)
    bad = mismatches(loaded)
    assert not bad, "\n".join(bad[:20])
