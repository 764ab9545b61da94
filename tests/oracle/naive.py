"""A naive, per-pod reference evaluator written straight from SEMANTICS.md.

It reads only the data model (``netfence.model``) and shares no logic with the engine or the
selector code: label selectors, namespace scopes, peers, ports and the tier pipeline are all
re-implemented here in the most direct way, one pod and one flow at a time. It is slow on
purpose and meant for small generated clusters only.

An endpoint is a ``Pod`` or an external IP address string.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from netfence.model.cluster import METADATA_NAME, ClusterState, Node, Pod
from netfence.model.net import IPSet
from netfence.model.policy import (
    Action,
    AnyPeer,
    Direction,
    DomainPeer,
    IPPeer,
    LabelSelector,
    NamespaceScope,
    NodePeer,
    NoPeer,
    Operator,
    Peer,
    PodPeer,
    Policy,
    PortClause,
    Rule,
    Subject,
    Tier,
)
from netfence.model.ports import Protocol

Endpoint = Pod | str

__all__ = ["Endpoint", "allowed", "direction_allowed", "selector_matches"]


# -- labels and selectors ----------------------------------------------------------------------


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """matchLabels AND every matchExpression; NotIn/DoesNotExist match a missing key (sel-6)."""
    for key, value in selector.match_labels:
        if key not in labels or labels[key] != value:
            return False
    for req in selector.match_expressions:
        present = req.key in labels
        if req.operator is Operator.IN:
            ok = present and labels[req.key] in req.values
        elif req.operator is Operator.NOT_IN:
            ok = (not present) or labels[req.key] not in req.values
        elif req.operator is Operator.EXISTS:
            ok = present
        elif req.operator is Operator.DOES_NOT_EXIST:
            ok = not present
        else:  # pragma: no cover - exhaustive over Operator
            raise AssertionError(req.operator)
        if not ok:
            return False
    return True


def namespace_labels(state: ClusterState, namespace: str) -> dict[str, str]:
    """The namespace's labels, always with ``kubernetes.io/metadata.name`` (sel-7)."""
    ns = state.namespaces.get(namespace)
    labels = dict(ns.labels) if ns is not None else {}
    labels[METADATA_NAME] = namespace
    return labels


def in_namespace_scope(state: ClusterState, scope: NamespaceScope, namespace: str) -> bool:
    if scope.name is not None:
        return namespace == scope.name
    if scope.selector is None:
        return False
    return selector_matches(scope.selector, namespace_labels(state, namespace))


def pod_in(state: ClusterState, scope: NamespaceScope, pods: LabelSelector | None,
           pod: Pod) -> bool:
    """Pod selection by namespace scope AND pod selector; hostNetwork pods never (sp-1)."""
    if pod.host_network:
        return False
    if not in_namespace_scope(state, scope, pod.namespace):
        return False
    return pods is None or selector_matches(pods, pod.labels)


def subject_selects(state: ClusterState, subject: Subject, pod: Pod) -> bool:
    return pod_in(state, subject.namespaces, subject.pods, pod)


# -- addresses ---------------------------------------------------------------------------------


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def ipset_contains(ips: IPSet, address: str) -> bool:
    """Membership by walking the set's raw intervals of the address's own family (ip-5)."""
    ip = _parse_ip(address)
    if ip is None:
        return False
    intervals = ips.v4 if ip.version == 4 else ips.v6
    value = int(ip)
    return any(lo <= value <= hi for lo, hi in intervals)


def same_address(a: str, b: str) -> bool:
    ia, ib = _parse_ip(a), _parse_ip(b)
    return ia is not None and ib is not None and ia == ib


def nodes_selected(state: ClusterState, selector: LabelSelector) -> list[Node]:
    return [n for n in state.nodes if selector_matches(selector, n.labels)]


def node_named(state: ClusterState, name: str) -> Node | None:
    for node in state.nodes:
        if node.name == name:
            return node
    return None


# -- peers and ports ---------------------------------------------------------------------------


def peer_matches(state: ClusterState, peer: Peer, other: Endpoint) -> bool:
    """Does ``peer`` cover the remote endpoint ``other``?"""
    if isinstance(peer, AnyPeer):
        return True
    if isinstance(peer, NoPeer | DomainPeer):
        return False
    if isinstance(peer, PodPeer):
        return isinstance(other, Pod) and pod_in(state, peer.namespaces, peer.pods, other)
    if isinstance(peer, IPPeer):
        addresses: Iterable[str] = other.ips if isinstance(other, Pod) else (other,)
        return any(ipset_contains(peer.ips, a) for a in addresses)
    if isinstance(peer, NodePeer):
        nodes = nodes_selected(state, peer.selector)
        if isinstance(other, Pod):
            return other.host_network and any(n.name == other.node for n in nodes)
        return any(same_address(other, a) for n in nodes for a in n.addresses)
    raise AssertionError(f"unknown peer {peer!r}")  # pragma: no cover


def clause_matches(clause: PortClause, destination: Endpoint, protocol: Protocol,
                   port: int) -> bool:
    """One port clause against (protocol, port) sent to ``destination`` (port-4..port-7)."""
    if clause.name is not None:
        if not isinstance(destination, Pod) or destination.host_network:
            # port-7: named ports never match external addresses; a hostNetwork destination
            # is node traffic (sp-1, D-3), so its containerPorts do not name ports either
            return False
        return any(
            cp.name == clause.name
            and (clause.protocol is None or cp.protocol is clause.protocol)
            and cp.protocol is protocol
            and cp.port == port
            for cp in destination.ports
        )
    if clause.protocol is not None and clause.protocol is not protocol:
        return False
    if clause.port is None:
        return True
    last = clause.end_port if clause.end_port is not None else clause.port
    return clause.port <= port <= last


def ports_match(ports: tuple[PortClause, ...] | None, destination: Endpoint,
                protocol: Protocol, port: int) -> bool:
    if ports is None:
        return True  # port-2
    return any(clause_matches(c, destination, protocol, port) for c in ports)


def rule_matches(state: ClusterState, rule: Rule, other: Endpoint, destination: Endpoint,
                 protocol: Protocol, port: int) -> bool:
    return (any(peer_matches(state, p, other) for p in rule.peers)
            and ports_match(rule.ports, destination, protocol, port))


# -- the tier pipeline -------------------------------------------------------------------------


def _tier_policies(state: ClusterState, tier: Tier) -> list[Policy]:
    chosen = [p for p in state.policies if p.tier is tier]
    return sorted(chosen, key=lambda p: (p.priority, p.ref.kind, p.ref.namespace, p.ref.name))


def _first_action(state: ClusterState, tier: Tier, pod: Pod, direction: Direction,
                  other: Endpoint, destination: Endpoint, protocol: Protocol,
                  port: int) -> Action | None:
    """First matching rule's action over the tier's policies in order, or None."""
    for policy in _tier_policies(state, tier):
        rules = policy.rules(direction)
        if rules is None or not subject_selects(state, policy.subject, pod):
            continue
        for rule in rules:
            if rule_matches(state, rule, other, destination, protocol, port):
                return rule.action
    return None


def direction_allowed(state: ClusterState, pod: Pod, direction: Direction, other: Endpoint,
                      protocol: Protocol, port: int) -> bool:
    """Is ``pod``'s side of the flow allowed in ``direction`` with ``other`` as the peer?"""
    if pod.host_network:
        return True  # sp-1: never selected by any policy
    destination: Endpoint = pod if direction is Direction.INGRESS else other
    action = _first_action(state, Tier.ADMIN, pod, direction, other, destination, protocol,
                           port)
    if action is Action.ALLOW:
        return True
    if action is Action.DENY:
        return False
    # No Admin match, or Pass: the NetworkPolicy tier.
    isolated = False
    for policy in state.policies:
        if policy.tier is not Tier.NETWORK_POLICY:
            continue
        rules = policy.rules(direction)
        if rules is None or not subject_selects(state, policy.subject, pod):
            continue
        isolated = True
        if any(rule_matches(state, r, other, destination, protocol, port) for r in rules):
            return True
    if isolated:
        return False  # tier-4: Baseline is not consulted
    action = _first_action(state, Tier.BASELINE, pod, direction, other, destination, protocol,
                           port)
    return action is not Action.DENY  # Allow, Pass (D-6) and no match all allow


def _own_node_address(state: ClusterState, pod: Pod, address: str) -> bool:
    """Is ``address`` one of the addresses of the node the pod runs on (sp-3)?"""
    node = node_named(state, pod.node) if pod.node else None
    mine = [*(node.addresses if node is not None else ()), pod.host_ip]
    return any(same_address(address, a) for a in mine if a)


def allowed(state: ClusterState, src: Endpoint, dst: Endpoint, protocol: Protocol,
            port: int) -> bool:
    """The verdict for a connection from ``src`` to ``dst`` on (protocol, port)."""
    if isinstance(src, Pod) and isinstance(dst, Pod):
        if src.key == dst.key:
            return True  # sp-2
        if (src.host_network or dst.host_network) and src.node and src.node == dst.node:
            return True  # sp-3: a pod and its own node
    if isinstance(src, Pod) and isinstance(dst, str) and _own_node_address(state, src, dst):
        return True  # sp-3
    if isinstance(dst, Pod) and isinstance(src, str) and _own_node_address(state, dst, src):
        return True  # sp-3
    ok = True
    if isinstance(src, Pod):
        ok = direction_allowed(state, src, Direction.EGRESS, dst, protocol, port)
    if ok and isinstance(dst, Pod):
        ok = direction_allowed(state, dst, Direction.INGRESS, src, protocol, port)
    return ok
