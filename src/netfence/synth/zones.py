"""SegmentationModel -> NetworkPolicies (and optional Admin ClusterNetworkPolicy guardrails).

Pure: returns plain dicts in a deterministic order with deterministic names; the CLI prints
them as YAML. The policy set per namespace is documented in docs/generate.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from netfence.model.cluster import METADATA_NAME
from netfence.model.zones import Area, NetPort, PodPort, PodRef, SegmentationModel

PRIVATE_V4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
PRIVATE_V6 = ("fc00::/7", "fe80::/10")
MANAGED_BY = {"app.kubernetes.io/managed-by": "netfence"}


def _meta(name: str, namespace: str | None, model: SegmentationModel,
          part: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = dict(MANAGED_BY)
    meta["annotations"] = {
        "netfence.dev/generated-from": f"SegmentationModel/{model.name}#{part}"}
    return meta


def network_policy(metadata: dict[str, Any], subject: dict[str, Any], types: list[str],
                   ingress: list[dict[str, Any]] | None = None,
                   egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A NetworkPolicy object (shared by the zone and the intents generators)."""
    spec: dict[str, Any] = {"podSelector": subject, "policyTypes": types}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": metadata, "spec": spec}


def _np(name: str, ns: str, model: SegmentationModel, part: str, subject: dict[str, Any],
        types: list[str], ingress: list[dict[str, Any]] | None = None,
        egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return network_policy(_meta(name, ns, model, part), subject, types, ingress, egress)


def _pods_peer(ref: PodRef) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {METADATA_NAME: ref.namespace}},
            "podSelector": {"matchLabels": dict(ref.labels)}}


def _ports(ports: tuple[NetPort, ...]) -> list[dict[str, Any]]:
    out = []
    for p in ports:
        entry: dict[str, Any] = {"protocol": str(p.protocol), "port": p.port}
        if p.end_port is not None and p.end_port != p.port:
            entry["endPort"] = p.end_port
        out.append(entry)
    return out


def _pod_ports(ports: tuple[PodPort, ...]) -> list[dict[str, Any]]:
    out = []
    for p in ports:
        entry: dict[str, Any] = {"protocol": str(p.protocol), "port": p.port}
        if p.end_port is not None and p.end_port != p.port:
            entry["endPort"] = p.end_port
        if entry not in out:
            out.append(entry)
    return out


def _rule_subject(model: SegmentationModel, kind: str | None,
                  exclude: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The pods a default ingress rule is for: endpoint pods if ``kind`` is endpoint-only,
    minus the protected workloads (``exclude``: one label each, as NotIn)."""
    out: dict[str, Any] = {}
    if kind is not None and kind in model.endpoint_only:
        out["matchLabels"] = dict(model.endpoint_label)
    if exclude:
        values: dict[str, list[str]] = {}
        for k, v in exclude:
            values.setdefault(k, []).append(v)
        out["matchExpressions"] = [{"key": k, "operator": "NotIn", "values": sorted(vs)}
                                   for k, vs in sorted(values.items())]
    return out


def _public_blocks(model: SegmentationModel) -> list[dict[str, Any]]:
    blocks = []
    for whole, private in (("0.0.0.0/0", PRIVATE_V4), ("::/0", PRIVATE_V6)):
        fam = ipaddress.ip_network(whole).version
        excepts = list(private)
        for c in model.cluster_cidrs:
            net = ipaddress.ip_network(c)
            if net.version == fam and not any(
                    net.subnet_of(ipaddress.ip_network(p)) for p in private):  # type: ignore[arg-type]
                excepts.append(str(net))
        blocks.append({"ipBlock": {"cidr": whole, "except": sorted(excepts)}})
    return blocks


def namespace_policies(model: SegmentationModel, ns: str,
                       exclude: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """The policy set for one model namespace (docs/generate.md table); ``exclude`` leaves the
    protected workloads (one distinguishing label each) out of the default ingress rules."""
    area = model.area_of(ns)
    assert area is not None
    out: list[dict[str, Any]] = []
    both = ["Ingress", "Egress"]

    out.append(_np("netfence-default-deny", ns, model, "default-deny", {}, both))
    out.append(_np("netfence-allow-same-namespace", ns, model, "same-namespace",
                   _rule_subject(model, None, exclude), both,
                   ingress=[{"from": [{"podSelector": {}}]}],
                   egress=[{"to": [{"podSelector": {}}]}]))
    out.append(_np("netfence-allow-same-area", ns, model, f"area/{area.name}",
                   _rule_subject(model, "sameArea", exclude), ["Ingress"],
                   ingress=[{"from": [{"namespaceSelector": {"matchLabels": {
                       model.area_label: area.name}}}]}]))
    for other in sorted(model.areas, key=lambda a: a.name):
        if area.name in other.may_enter and other.name != area.name:
            out.append(_np(f"netfence-allow-from-{other.name}", ns, model,
                           f"area/{other.name}/mayEnter/{area.name}",
                           _rule_subject(model, "otherAreas", exclude), ["Ingress"],
                           ingress=[{"from": [{"namespaceSelector": {"matchLabels": {
                               model.area_label: other.name}}}]}]))
    controllers: list[Area] = [area] if area.ingress_controller else []
    for ex in model.exceptions:
        if ex.namespace == ns:
            for name in ex.ingress_controllers_of:
                a = model.area(name)
                if a is not None and a.ingress_controller is not None and a not in controllers:
                    controllers.append(a)
    if controllers:
        out.append(_np("netfence-allow-ingress-controller", ns, model,
                       "ingress-controller/" + ",".join(a.name for a in controllers),
                       _rule_subject(model, "ingressController", exclude), ["Ingress"],
                       ingress=[{"from": [_pods_peer(a.ingress_controller)
                                          for a in controllers
                                          if a.ingress_controller is not None]}]))
    if model.monitoring is not None:
        out.append(_np("netfence-allow-monitoring", ns, model, "monitoring", {}, ["Ingress"],
                       ingress=[{"from": [_pods_peer(model.monitoring.pods)],
                                 "ports": [{"protocol": "TCP",
                                            "port": model.monitoring.port}]}]))
    mine = _rule_subject(model, None, exclude)  # protected pods: their intents only
    out.append(_np("netfence-allow-egress-cluster", ns, model, "egress-cluster", mine,
                   ["Egress"], egress=[{"to": [{"namespaceSelector": {}}]}]))
    out.append(_np("netfence-allow-dns", ns, model, "dns", {}, ["Egress"],
                   egress=[{"to": [_pods_peer(model.dns)],
                            "ports": [{"protocol": "UDP", "port": 53},
                                      {"protocol": "TCP", "port": 53}]}]))
    rules = []
    for name in [*area.networks, *[n for n in model.all_areas if n not in area.networks]]:
        net = model.network(name)
        if net is None:
            continue
        rule: dict[str, Any] = {"to": [{"ipBlock": {"cidr": c}} for c in net.cidrs]}
        if net.ports:
            rule["ports"] = _ports(net.ports)
        rules.append(rule)
    if rules:
        out.append(_np("netfence-allow-egress-networks", ns, model,
                       "networks/" + ",".join([*area.networks, *model.all_areas]), mine,
                       ["Egress"], egress=rules))
    if model.public_internet:
        rule = {"to": _public_blocks(model)}
        if model.public_ports:
            rule["ports"] = _ports(model.public_ports)
        out.append(_np("netfence-allow-egress-public", ns, model, "egress-public", mine,
                       ["Egress"], egress=[rule]))
    return out


def _forward_peers(model: SegmentationModel, area: Area) -> list[dict[str, Any]]:
    """Where area ``area``'s ingress controller forwards: the area's namespaces and those of
    the exceptions naming it (their endpoint pods if ``ingressController`` is endpoint-only)."""
    pods: dict[str, Any] = {}
    if "ingressController" in model.endpoint_only:
        pods = {"podSelector": {"matchLabels": dict(model.endpoint_label)}}
    peers = [{"namespaceSelector": {"matchLabels": {model.area_label: area.name}}, **pods}]
    for ex in model.exceptions:
        if area.name in ex.ingress_controllers_of:
            peer = {"namespaceSelector": {"matchLabels": {METADATA_NAME: ex.namespace}}, **pods}
            if peer not in peers:
                peers.append(peer)
    return peers


def platform_policies(model: SegmentationModel, ns: str) -> list[dict[str, Any]]:
    """The policy set of one fenced platform namespace (docs/generate.md): default deny,
    monitoring in and DNS out as everywhere, plus what the model's roles hosted here need."""
    out: list[dict[str, Any]] = []
    out.append(_np("netfence-default-deny", ns, model, "platform/default-deny", {},
                   ["Ingress", "Egress"]))
    if ns in model.platform_same_namespace:
        out.append(_np("netfence-allow-same-namespace", ns, model, "platform/same-namespace",
                       {}, ["Ingress", "Egress"], ingress=[{"from": [{"podSelector": {}}]}],
                       egress=[{"to": [{"podSelector": {}}]}]))
    mon = model.monitoring
    if mon is not None:
        out.append(_np("netfence-allow-monitoring", ns, model, "monitoring", {}, ["Ingress"],
                       ingress=[{"from": [_pods_peer(mon.pods)],
                                 "ports": [{"protocol": "TCP", "port": mon.port}]}]))
    out.append(_np("netfence-allow-dns", ns, model, "dns", {}, ["Egress"],
                   egress=[{"to": [_pods_peer(model.dns)],
                            "ports": [{"protocol": "UDP", "port": 53},
                                      {"protocol": "TCP", "port": 53}]}]))
    if model.dns.namespace == ns:
        out.append(_np("netfence-allow-dns-queries", ns, model, "dns/queries",
                       {"matchLabels": dict(model.dns.labels)}, ["Ingress"],
                       ingress=[{"from": [{"namespaceSelector": {}}],
                                 "ports": [{"protocol": "UDP", "port": 53},
                                           {"protocol": "TCP", "port": 53}]}]))
    if mon is not None and mon.pods.namespace == ns:
        out.append(_np("netfence-allow-monitoring-scrape", ns, model, "monitoring/scrape",
                       {"matchLabels": dict(mon.pods.labels)}, ["Egress"],
                       egress=[{"to": [{"namespaceSelector": {}}],
                                "ports": [{"protocol": "TCP", "port": mon.port}]}]))
    for area in sorted(model.areas, key=lambda a: a.name):
        ic = area.ingress_controller
        if ic is None or ic.namespace != ns:
            continue
        subject = {"matchLabels": dict(ic.labels)} if ic.labels else {}
        if area.clients:
            blocks = [{"ipBlock": {"cidr": c}} for name in area.clients
                      for net in [model.network(name)] if net is not None for c in net.cidrs]
            rule: dict[str, Any] = {"from": blocks}
            if area.client_ports:
                rule["ports"] = _pod_ports(area.client_ports)
            out.append(_np(f"netfence-allow-clients-{area.name}", ns, model,
                           f"area/{area.name}/ingressController/clients/"
                           + ",".join(area.clients), subject, ["Ingress"], ingress=[rule]))
        out.append(_np(f"netfence-allow-forward-{area.name}", ns, model,
                       f"area/{area.name}/ingressController/forward", subject, ["Egress"],
                       egress=[{"to": _forward_peers(model, area)}]))
    return out


def guardrails(model: SegmentationModel) -> list[dict[str, Any]]:
    """Admin-tier ClusterNetworkPolicies: areas that may not enter an area are denied there."""
    out = []
    names = sorted(a.name for a in model.areas)
    for i, area in enumerate(sorted(model.areas, key=lambda a: a.name)):
        allowed = {a.name for a in model.areas if area.name in a.may_enter} | {area.name}
        denied = [n for n in names if n not in allowed]
        if not denied:
            continue
        out.append({
            "apiVersion": "policy.networking.k8s.io/v1beta1", "kind": "ClusterNetworkPolicy",
            "metadata": _meta(f"netfence-area-{area.name}-guardrail", None, model,
                              f"area/{area.name}/guardrail"),
            "spec": {"tier": "Admin", "priority": 100 + i,
                     "subject": {"namespaces": {"matchLabels": {
                         model.area_label: area.name}}},
                     "ingress": [{"name": "deny-areas-that-may-not-enter", "action": "Deny",
                                  "from": [{"namespaces": {"matchExpressions": [{
                                      "key": model.area_label, "operator": "In",
                                      "values": denied}]}}]}]}})
    return out


def generate_zones(model: SegmentationModel, flavor: str = "networkpolicy",
                   exclusions: Mapping[str, list[tuple[str, str]]] | None = None,
                   ) -> list[dict[str, Any]]:
    """All generated objects, ordered by namespace then name (guardrails first).
    ``exclusions``: namespace -> labels of its protected workloads (``model.protected``,
    resolved on the cluster), on top of those given by label (``model.protected_pods``)."""
    out: list[dict[str, Any]] = []
    if flavor == "clusternetworkpolicy":
        out.extend(guardrails(model))
    excl = merged_exclusions(model, exclusions)
    model_ns = set(model.namespaces())
    for ns in model.fenced_namespaces():
        policies = (namespace_policies(model, ns, excl.get(ns)) if ns in model_ns
                    else platform_policies(model, ns))
        out.extend(sorted(policies, key=lambda o: o["metadata"]["name"]))
    return out


def merged_exclusions(model: SegmentationModel,
                      resolved: Mapping[str, list[tuple[str, str]]] | None = None,
                      ) -> dict[str, list[tuple[str, str]]]:
    """Namespace -> the labels of its protected pods: given by label, then resolved ones."""
    out = model.explicit_exclusions()
    for ns, labels in (resolved or {}).items():
        for label in labels:
            if label not in out.setdefault(ns, []):
                out[ns].append(label)
    return out


def probe_cluster(model: SegmentationModel) -> list[dict[str, Any]]:
    """A small cluster that exercises every rule of the model: per model namespace one plain
    and one endpoint pod (named ports http and the monitoring port), the ingress controllers,
    the monitoring and the DNS pods. Used by the self-check when no manifests are given."""
    objs: list[dict[str, Any]] = []
    metrics = model.monitoring.port if model.monitoring is not None else "metrics"
    ports = [{"name": "http", "containerPort": 8080}, {"name": metrics, "containerPort": 9102}]

    def ns(name: str, labels: dict[str, str]) -> None:
        objs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": name, "labels": labels}})

    def pod(namespace: str, name: str, labels: dict[str, str],
            pod_ports: list[dict[str, Any]]) -> None:
        objs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": name, "namespace": namespace, "labels": labels},
                     "spec": {"containers": [{"name": "c", "image": "probe",
                                              "ports": pod_ports}]}})

    platform: dict[str, list[tuple[str, dict[str, str], list[dict[str, Any]]]]] = {}
    for a in model.areas:
        if a.ingress_controller is not None:
            named = sorted({str(p.port) for p in a.client_ports if isinstance(p.port, str)}
                           - {"http", metrics})
            ic_ports = ports + [{"name": n, "containerPort": 8443 + i}
                                for i, n in enumerate(named)]
            platform.setdefault(a.ingress_controller.namespace, []).append(
                (f"ic-{a.name}", dict(a.ingress_controller.labels), ic_ports))
    if model.monitoring is not None:
        platform.setdefault(model.monitoring.pods.namespace, []).append(
            ("monitoring", dict(model.monitoring.pods.labels), ports))
    platform.setdefault(model.dns.namespace, []).append(
        ("dns", dict(model.dns.labels), [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                         {"name": "dns-tcp", "containerPort": 53}]))
    for name in model.platform_namespaces:
        platform.setdefault(name, []).append(("workload", {"app": "workload"}, ports))
    for name in model.namespaces():
        area = model.area_of(name)
        assert area is not None
        ns(name, {model.area_label: area.name})
        pod(name, "workload", {"app": "workload"}, ports)
        pod(name, "endpoint", {"app": "endpoint", **dict(model.endpoint_label)}, ports)
        for i, ref in enumerate(model.protected_pods):
            if ref.namespace == name:
                pod(name, f"protected-{i}", {"app": f"protected-{i}", **dict(ref.labels)},
                    ports)
    for name, pods in sorted(platform.items()):
        if name not in model.namespaces():
            ns(name, {})
        for i, (pname, labels, pports) in enumerate(pods):
            pod(name, f"{pname}-{i}", labels, pports)
    return objs
