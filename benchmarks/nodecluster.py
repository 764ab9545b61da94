"""Synthetic clusters with scheduled pods (node names and pod IPs) for the node agent.

``benchmarks/gen.py`` writes Deployments only, so every pod it implies is a representative
pod without ``spec.nodeName`` or ``status.podIP``: the nftables compiler has nothing to put
on a node. This module keeps gen.py's namespaces, Deployments and policies and turns the
representative pods into scheduled ones:

* ``spread``: pods shuffled (fixed seed) and dealt round-robin to ``ceil(pods / per_node)``
  nodes, like a scheduler spreading a big cluster: node ``node-000`` gets ~``per_node`` pods
  of many Deployments.
* ``striped``: replica ``r`` of every Deployment goes to node ``r % nodes``: ``node-000``
  holds replica 0 of every Deployment whatever the size, so the same policy views are local
  at 100 and at 10,000 pods (the scaling test compares like with like).

Node ``k`` owns 10.244.(k+1).0/24 (pods from .10 up, at most 190 per node; .200-.254 are
free for churn events and pinned pods); ``node-000`` is 10.244.1.0/24, the subnet of the
kernel test bed's bridge, so bed pods can stand in for local pods.

Nothing here touches the kernel: pure data, used by ``benchmarks/agent.py`` and
``tests/unit/test_nft_scaling.py``.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from benchmarks.gen import generate
from netfence.errors import Severity
from netfence.model.cluster import ClusterState, Pod
from netfence.model.policy import Policy
from netfence.sources.manifests import build_state
from netfence.sources.parse import Document

Layout = Literal["spread", "striped"]
LOCAL = "node-000"
POD_FIRST, POD_LAST = 10, 199  # host offsets for scheduled pods on each node's /24
FREE_FIRST = 200  # .200-.254: churn events and pinned pods
IPERF_NS = "bench-iperf"
IPERF_PORT = 5201
IPERF_SERVER_IP = "10.244.1.250"
IPERF_CLIENT_IP = "10.244.1.251"


def node_name(k: int) -> str:
    return f"node-{k:03d}"


def node_ip(k: int, host: int) -> str:
    return f"10.244.{k + 1}.{host}"


def deployments(objs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == "Deployment"]


def pod_count(objs: Sequence[dict[str, Any]]) -> int:
    return sum(int(o["spec"]["replicas"]) for o in deployments(objs))


def rescale(objs: list[dict[str, Any]], total: int) -> list[dict[str, Any]]:
    """The same objects with Deployment replicas scaled (largest remainder) to ``total`` pods.

    Policies, namespaces and Deployments stay identical; only ``spec.replicas`` changes
    (every Deployment keeps at least one replica).
    """
    out = copy.deepcopy(objs)
    deps = deployments(out)
    if total < len(deps):
        raise ValueError(f"{total} pods cannot cover {len(deps)} Deployments")
    base = [int(d["spec"]["replicas"]) for d in deps]
    scale = total / sum(base)
    want = [max(1, int(b * scale)) for b in base]
    order = sorted(range(len(deps)), key=lambda i: (-(base[i] * scale - want[i]), i))
    k = 0
    while sum(want) < total:  # bounded: each pass adds one pod
        want[order[k % len(order)]] += 1
        k += 1
    while sum(want) > total:
        i = max(range(len(want)), key=lambda j: (want[j], -j))
        want[i] -= 1
    for d, w in zip(deps, want, strict=True):
        d["spec"]["replicas"] = w
    return out


def namespaces_for(pods: int) -> int:
    """The smallest gen.py namespace count whose cluster has at least ``pods`` pods."""
    n = max(1, int(pods / 8.9))
    for _ in range(200):  # pods per namespace is ~8.8: a handful of steps either way
        if pod_count(generate(n)) >= pods:
            if n == 1 or pod_count(generate(n - 1)) < pods:
                return n
            n -= 1
        else:
            n += 1
    raise RuntimeError(f"no namespace count found for {pods} pods")


def iperf_objects() -> list[dict[str, Any]]:
    """Namespace ``bench-iperf``: a server and a client pod, isolated both ways, with policies
    allowing client -> server on TCP 5201 only (server ingress, client egress)."""
    def deploy(app: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": app, "namespace": IPERF_NS},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
                         "template": {"metadata": {"labels": {"app": app}},
                                      "spec": {"containers": [{"name": app, "image": "iperf3",
                                                               "ports": ports}]}}}}

    def np(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": IPERF_NS}, "spec": spec}

    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": IPERF_NS, "labels": {"networkArea": "backoffice"}}},
        deploy("iperf-server", [{"name": "iperf", "containerPort": IPERF_PORT}]),
        deploy("iperf-client", []),
        np("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        np("allow-iperf-in", {
            "podSelector": {"matchLabels": {"app": "iperf-server"}}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "iperf-client"}}}],
                         "ports": [{"port": IPERF_PORT, "protocol": "TCP"}]}]}),
        np("allow-iperf-out", {
            "podSelector": {"matchLabels": {"app": "iperf-client"}}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "iperf-server"}}}],
                        "ports": [{"port": IPERF_PORT, "protocol": "TCP"}]}]}),
    ]


def load_objects(objs: Sequence[dict[str, Any]]) -> ClusterState:
    """Build a snapshot straight from manifest dicts (no YAML round trip); errors raise."""
    diags: list[Any] = []
    docs = [Document("generated", i, 0, o) for i, o in enumerate(objs)]
    state = build_state(docs, diags)
    errors = [d for d in state.diagnostics if d.severity >= Severity.ERROR]
    if errors:
        raise ValueError(f"generated cluster does not load: {errors[:3]}")
    return state


def _replica(pod: Pod) -> int:
    return int(pod.name.rsplit("-", 1)[1])


def schedule(state: ClusterState, layout: Layout, per_node: int = 110, seed: int = 1,
             pinned: dict[str, str] | None = None) -> ClusterState:
    """Turn representative pods into scheduled pods with a node and an IPv4 address.

    ``pinned`` maps pod keys (``ns/name``) to a fixed address on ``node-000``.
    """
    pinned = pinned or {}
    pods = [p for p in state.pods if p.key not in pinned]
    nodes = max(1, -(-len(pods) // per_node))
    if nodes > 254:
        raise ValueError(f"{nodes} nodes do not fit 10.244.0.0/16 with one /24 each")
    if layout == "spread":
        order = sorted(pods, key=lambda p: p.key)
        random.Random(seed).shuffle(order)
        where = {p.key: i % nodes for i, p in enumerate(order)}
    else:
        where = {p.key: _replica(p) % nodes for p in pods}
    used = [POD_FIRST] * nodes
    out: list[Pod] = []
    for p in state.pods:
        if p.key in pinned:
            k, ip = 0, pinned[p.key]
        else:
            k = where[p.key]
            if used[k] > POD_LAST:
                raise ValueError(f"{node_name(k)} has more than {POD_LAST - POD_FIRST + 1} "
                                 "pods: raise the node count")
            ip = node_ip(k, used[k])
            used[k] += 1
        out.append(scheduled(p, node_name(k), ip))
    return replace(state, pods=tuple(out))


def scheduled(p: Pod, node: str, ip: str, name: str | None = None) -> Pod:
    """A real (non-synthetic) pod like ``p`` on ``node`` with address ``ip``."""
    return Pod(p.namespace, name or p.name, p.labels, p.ports, p.workload, p.host_network,
               (ip,), node, p.source, annotations=p.annotations)


@dataclass
class Cluster:
    objects: list[dict[str, Any]]
    state: ClusterState
    namespaces: int

    @property
    def pods(self) -> int:
        return len(self.state.pods)

    @property
    def policies(self) -> int:
        return len(self.state.policies)

    def local_pods(self, node: str = LOCAL) -> list[Pod]:
        return [p for p in self.state.pods if p.node == node]


def node_view_cluster(pods: int, per_node: int = 110, iperf: bool = True) -> Cluster:
    """gen.py grown by namespaces until it has ``pods`` pods, spread over nodes of
    ``per_node`` pods (plus, with ``iperf``, the two bench-iperf pods pinned on node-000)."""
    n = namespaces_for(pods)
    objs = generate(n) + (iperf_objects() if iperf else [])
    pinned = {f"{IPERF_NS}/iperf-server-0": IPERF_SERVER_IP,
              f"{IPERF_NS}/iperf-client-0": IPERF_CLIENT_IP} if iperf else {}
    state = schedule(load_objects(objs), "spread", per_node, pinned=pinned)
    return Cluster(objs, state, n)


def same_policies_cluster(pods: int, namespaces: int = 10, per_node: int = 110) -> Cluster:
    """gen.py's ``namespaces`` namespaces and policies, replicas scaled to ``pods`` pods,
    striped over ``ceil(pods / per_node)`` nodes (node-000 holds replica 0 of everything)."""
    objs = rescale(generate(namespaces), pods)
    state = schedule(load_objects(objs), "striped", per_node)
    return Cluster(objs, state, namespaces)


# -- events --------------------------------------------------------------------------------------
def with_pods(state: ClusterState, pods: Sequence[Pod]) -> ClusterState:
    return replace(state, pods=tuple(pods))


def replace_pod(state: ClusterState, key: str, new_ip: str) -> ClusterState:
    """The pod ``key`` deleted and a replacement (same workload and node, new name and IP)."""
    out = []
    for p in state.pods:
        if p.key == key:
            base, _, gen = p.name.partition("~")
            p = scheduled(p, p.node, new_ip, f"{base}~{int(gen or 0) + 1}")
        out.append(p)
    return with_pods(state, out)


def add_pod(state: ClusterState, like: Pod, node: str, ip: str, name: str) -> ClusterState:
    """One more replica of ``like``'s workload on ``node``."""
    return with_pods(state, [*state.pods, scheduled(like, node, ip, name)])


def edit_policy(state: ClusterState, objs: Sequence[dict[str, Any]], namespace: str, name: str,
                edit: Any) -> tuple[ClusterState, list[dict[str, Any]]]:
    """``edit(spec)`` applied to NetworkPolicy ``namespace/name``; returns the new state and
    objects. Only that one object is re-parsed (what a watch event delivers)."""
    new_objs = copy.copy(list(objs))
    for i, o in enumerate(new_objs):
        meta = o["metadata"]
        if o["kind"] == "NetworkPolicy" and meta["name"] == name \
                and meta.get("namespace") == namespace:
            o = copy.deepcopy(o)
            edit(o["spec"])
            new_objs[i] = o
            break
    else:
        raise KeyError(f"no NetworkPolicy {namespace}/{name}")
    parsed = load_objects([o])
    if len(parsed.policies) != 1:
        raise ValueError(f"edited policy {namespace}/{name} did not parse to one policy")
    new: Policy = parsed.policies[0]
    policies = tuple(new if p.ref == new.ref else p for p in state.policies)
    return replace(state, policies=policies), new_objs
