"""Generate a realistic synthetic fintech cluster, parameterised by namespaces.

Per namespace: a network area label, ~2.5 Deployments with 1-6 replicas and named ports,
default-deny, same-namespace, same-area, DNS, monitoring and ingress-controller policies,
allow-from-callers policies per service (by client label, or by namespace+app, named or numeric
ports), egress ipBlocks with except and endPort ranges; cluster-wide Admin and Baseline
ClusterNetworkPolicies. At 600 namespaces: ~1,500 Deployments, ~4,500 pods, ~6,500 policies.

    python benchmarks/gen.py 600 OUTDIR      # writes OUTDIR/cluster.yaml (multi-document)
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import yaml

AREAS = ("publicfrontal", "backoffice", "internalservices")
PORTS = (("http", 8080), ("grpc", 9090), ("https", 8443))


def _ns(name: str, area: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"networkArea": area, "team": name}}}


def _deploy(ns: str, app: str, replicas: int, port: tuple[str, int],
            calls: list[str]) -> dict[str, Any]:
    labels = {"app": app, "app.kubernetes.io/part-of": ns}
    for c in calls:
        labels[f"calls-{c}"] = "true"
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": app, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                     "name": app, "image": f"registry.example/{app}:1",
                     "ports": [{"name": port[0], "containerPort": port[1]},
                               {"name": "metrics", "containerPort": 9102}]}]}}}}


def _np(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def generate(namespaces: int, seed: int = 42) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    objs: list[dict[str, Any]] = []
    for platform in ("kube-system", "monitoring", "ingress-public", "ingress-backoffice",
                     "ingress-internal"):
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": platform}})
    objs.append(_deploy("kube-system", "coredns", 2, ("dns", 53), []))
    objs[-1]["spec"]["template"]["metadata"]["labels"]["k8s-app"] = "kube-dns"
    objs[-1]["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "dns", "containerPort": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}]
    objs.append(_deploy("monitoring", "prometheus", 2, ("http", 9090), []))
    for area, ns in zip(AREAS, ("ingress-public", "ingress-backoffice", "ingress-internal"),
                        strict=True):
        objs.append(_deploy(ns, f"ingress-{area}", 2, ("https", 443), []))
    services: list[tuple[str, str, tuple[str, int]]] = []
    names = [f"ns-{i:04d}" for i in range(namespaces)]
    area_of = {n: AREAS[i % 3] for i, n in enumerate(names)}
    per_ns: dict[str, list[tuple[str, tuple[str, int]]]] = {}
    for n in names:
        objs.append(_ns(n, area_of[n]))
        count = rnd.choice((2, 2, 3, 3, 2, 3))
        per_ns[n] = []
        for j in range(count):
            app = f"svc-{n[3:]}-{j}"
            port = rnd.choice(PORTS)
            per_ns[n].append((app, port))
            services.append((n, app, port))
    for n in names:
        for app, port in per_ns[n]:
            callees = rnd.sample(services, k=min(len(services), rnd.randint(1, 4)))
            objs.append(_deploy(n, app, rnd.randint(1, 6), port,
                                sorted({c[1] for c in callees})[:3]))
    area_ingress = dict(zip(AREAS, ("ingress-public", "ingress-backoffice", "ingress-internal"),
                            strict=True))
    for idx, n in enumerate(names):
        area = area_of[n]
        objs.append(_np(n, "default-deny", {"podSelector": {},
                                            "policyTypes": ["Ingress", "Egress"]}))
        objs.append(_np(n, "allow-same-namespace", {
            "podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}],
            "egress": [{"to": [{"podSelector": {}}]}]}))
        objs.append(_np(n, "allow-same-area", {
            "podSelector": {}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                "networkArea": area}}}], "ports": [{"port": 8080}, {"port": 8443}]}]}))
        objs.append(_np(n, "allow-dns", {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}))
        objs.append(_np(n, "allow-monitoring", {
            "podSelector": {}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": "monitoring"}}}], "ports": [{"port": "metrics"}]}]}))
        objs.append(_np(n, "allow-ingress-controller", {
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": area_ingress[area]}}}]}]}))
        objs.append(_np(n, "allow-egress-external", {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [
                "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
                "ports": [{"port": 443}]},
                {"to": [{"ipBlock": {"cidr": f"10.{20 + idx % 3}.0.0/16"}}],
                 "ports": [{"port": 9092, "endPort": 9094}]}]}))
        for app, port in per_ns[n]:
            callers = [s for s in services if s[1] != app and rnd.random() < 6 / len(services)]
            if rnd.random() < 0.5:
                peers: list[dict[str, Any]] = [{"namespaceSelector": {}, "podSelector": {
                    "matchLabels": {f"calls-{app}": "true"}}}]
            else:
                peers = [{"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": c[0]}},
                    "podSelector": {"matchLabels": {"app": c[1]}}} for c in callers[:4]] or [
                    {"podSelector": {"matchLabels": {"app": app}}}]
            ports = [{"port": port[0]}] if rnd.random() < 0.5 else [{"port": port[1]}]
            objs.append(_np(n, f"allow-{app}-from-callers", {
                "podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": peers, "ports": ports}]}))
            objs.append(_np(n, f"allow-{app}-egress-to-callees", {
                "podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"namespaceSelector": {}, "podSelector": {
                    "matchExpressions": [{"key": "app", "operator": "In",
                                          "values": [s[1] for s in rnd.sample(
                                              services, k=min(3, len(services)))]}]}}]}]}))
    objs.append({
        "apiVersion": "policy.networking.k8s.io/v1beta1", "kind": "ClusterNetworkPolicy",
        "metadata": {"name": "admin-monitoring"},
        "spec": {"tier": "Admin", "priority": 10, "subject": {"namespaces": {}},
                 "ingress": [{"name": "scrape", "action": "Accept", "from": [
                     {"namespaces": {"matchLabels": {
                         "kubernetes.io/metadata.name": "monitoring"}}}],
                     "protocols": [{"destinationNamedPort": "metrics"}]}]}})
    objs.append({
        "apiVersion": "policy.networking.k8s.io/v1beta1", "kind": "ClusterNetworkPolicy",
        "metadata": {"name": "admin-backoffice-guard"},
        "spec": {"tier": "Admin", "priority": 20, "subject": {"namespaces": {"matchLabels": {
            "networkArea": "backoffice"}}},
            "ingress": [{"name": "deny-publicfrontal", "action": "Deny", "from": [
                {"namespaces": {"matchLabels": {"networkArea": "publicfrontal"}}}],
                "protocols": [{"tcp": {"destinationPort": {"range": {"start": 5000,
                                                                       "end": 5999}}}}]},
                {"name": "pass-rest", "action": "Pass", "from": [{"namespaces": {}}]}]}})
    objs.append({
        "apiVersion": "policy.networking.k8s.io/v1beta1", "kind": "ClusterNetworkPolicy",
        "metadata": {"name": "baseline-deny-cross-namespace"},
        "spec": {"tier": "Baseline", "priority": 100, "subject": {"namespaces": {}},
                 "ingress": [{"name": "deny-all", "action": "Deny",
                              "from": [{"namespaces": {}}]}]}})
    return objs


def main() -> int:
    namespaces = int(sys.argv[1])
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    objs = generate(namespaces)
    (out / "cluster.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))
    kinds: dict[str, int] = {}
    pods = 0
    for o in objs:
        kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
        if o["kind"] == "Deployment":
            pods += o["spec"]["replicas"]
    print(f"{namespaces} namespaces: {kinds}, pods {pods}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
