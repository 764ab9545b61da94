"""`netfence generate all` at benchmark scale: generation plus the exact self-verification.

The cluster is `benchmarks/gen.py`'s (its own policies are set aside, as `generate` does). The
zone model has every feature of docs/generate.md: three areas with ingress controllers and their
client networks, area and all-area networks, public egress, monitoring and DNS, the five platform
namespaces fenced (monitoring with sameNamespace), and one protected workload in every tenth
namespace. The intents are the calls the cluster's workloads carry as `calls-<app>` labels (on the
callee's named port), an address call for every fifth service, and the platform workloads'
addresses (Kubernetes API, upstream resolver).

    python benchmarks/generate.py [--sizes 100,600] [--runs 3]

Prints one Markdown row per size: the CLI's wall time and peak RSS (best of ``--runs``), the
generated objects, and an in-process breakdown (load, generate, evaluate, the zone and intents
checks).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from benchmarks.gen import AREAS, generate  # noqa: E402
from benchmarks.run import CACHE, timed_child  # noqa: E402

CONTROLLERS = dict(zip(AREAS, ("ingress-public", "ingress-backoffice", "ingress-internal"),
                       strict=True))
KUBE_API = "10.30.0.16/28"


def model_and_intents(cluster: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A SegmentationModel and ServiceIntents for a `gen.py` cluster."""
    names = sorted(o["metadata"]["name"] for o in cluster
                   if o["kind"] == "Namespace" and o["metadata"]["name"].startswith("ns-"))
    area_of = {o["metadata"]["name"]: o["metadata"]["labels"]["networkArea"] for o in cluster
               if o["kind"] == "Namespace" and o["metadata"].get("labels", {}).get(
                   "networkArea")}
    deployments = [o for o in cluster if o["kind"] == "Deployment"]
    where = {d["metadata"]["name"]: d for d in deployments}
    areas = []
    for i, area in enumerate(AREAS):
        areas.append({
            "name": area, "namespaces": [n for n in names if area_of[n] == area],
            "ingressController": {"namespace": CONTROLLERS[area],
                                  "podSelector": {"app": f"ingress-{area}"},
                                  "clients": ["internet" if area == "publicfrontal"
                                              else "offices"],
                                  "clientPorts": ["https"]},
            "mayEnter": list(AREAS[i + 1:]),
            "networks": [f"kafka-{area}"]})
    spec: dict[str, Any] = {
        "areaLabel": "networkArea", "areas": areas,
        "dns": {"namespace": "kube-system", "podSelector": {"k8s-app": "kube-dns"}},
        "monitoring": {"namespace": "monitoring", "podSelector": {"app": "prometheus"},
                       "port": "metrics"},
        "clusterCIDRs": ["10.244.0.0/16", "10.96.0.0/12"],
        "networks": [
            *({"name": f"kafka-{a}", "cidrs": [f"10.{20 + i}.0.0/16"],
               "ports": [{"port": 9092, "endPort": 9094}]} for i, a in enumerate(AREAS)),
            {"name": "vpc", "cidrs": ["10.30.0.0/16"]},
            {"name": "internet", "cidrs": ["0.0.0.0/0"]},
            {"name": "offices", "cidrs": ["192.0.2.0/25", "203.0.113.0/28"]}],
        "egress": {"publicInternet": True, "publicPorts": [{"port": 443}], "allAreas": ["vpc"]},
        "platformNamespaces": [*CONTROLLERS.values(), {"name": "monitoring",
                                                       "sameNamespace": True}, "kube-system"],
        "protected": [{"namespace": n, "podSelector": {"app": f"svc-{n[3:]}-0"}}
                      for n in names[::10]]}
    docs: list[dict[str, Any]] = [{"apiVersion": "netfence.dev/v1alpha1",
                                   "kind": "SegmentationModel", "metadata": {"name": "bench"},
                                   "spec": spec}]

    def intents(ns: str, app: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
        return {"apiVersion": "netfence.dev/v1alpha1", "kind": "ServiceIntents",
                "metadata": {"name": f"{ns}.{app}"},
                "spec": {"service": f"{ns}/{app}", "calls": calls}}

    for i, d in enumerate(deployments):
        ns, app = d["metadata"]["namespace"], d["metadata"]["name"]
        if not ns.startswith("ns-"):
            continue
        labels = d["spec"]["template"]["metadata"]["labels"]
        calls: list[dict[str, Any]] = []
        for key in sorted(labels):
            callee = where.get(key.removeprefix("calls-")) if key.startswith("calls-") else None
            if callee is not None and callee is not d:
                port = callee["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"]
                calls.append({"service": f"{callee['metadata']['namespace']}/"
                                         f"{callee['metadata']['name']}", "ports": [port]})
        if i % 5 == 0:
            calls.append({"cidrs": ["198.51.100.0/24"], "ports": [443]})
        if calls:
            docs.append(intents(ns, app, calls))
    docs.append(intents("kube-system", "coredns", [
        {"cidrs": ["10.30.0.2/32"], "ports": [{"port": 53, "protocol": "UDP"}, 53]},
        {"cidrs": [KUBE_API], "ports": [443]}]))
    docs.append(intents("monitoring", "prometheus", [{"cidrs": [KUBE_API], "ports": [443]}]))
    for area, ns in CONTROLLERS.items():
        docs.append(intents(ns, f"ingress-{area}", [{"cidrs": [KUBE_API], "ports": [443]}]))
    return docs


def workdir(n: int) -> Path:
    d = CACHE / f"generate{n}"
    if not (d / "intents.yaml").exists():
        d.mkdir(parents=True, exist_ok=True)
        cluster = generate(n)
        (d / "cluster.yaml").write_text(yaml.safe_dump_all(cluster, sort_keys=False))
        docs = model_and_intents(cluster)
        (d / "model.yaml").write_text(yaml.safe_dump(docs[0], sort_keys=False))
        (d / "intents.yaml").write_text(yaml.safe_dump_all(docs[1:], sort_keys=False))
    return d


def breakdown(d: Path) -> dict[str, float]:
    """In-process seconds of the steps of ``api.generate_all`` (GC off, as in the CLI)."""
    import gc

    from netfence import api
    from netfence.sources.intents import load_intents
    from netfence.sources.manifests import build_state
    from netfence.sources.zones import load_models
    from netfence.synth.intents import (
        WorkloadIndex,
        intended_egress_addresses,
        intended_ingress,
        resolve,
        verify_intents,
    )
    from netfence.synth.intents import generate_intents as synth_intents
    from netfence.synth.verify import verify
    from netfence.synth.zones import generate_zones

    gc.disable()
    paths = [str(d / "model.yaml"), str(d / "intents.yaml")]
    out: dict[str, float] = {}
    t = time.perf_counter()
    models, _ = load_models(paths)
    intent_set, _ = load_intents(paths, require=False)
    kept, cdiags, _ = api._cluster_docs([str(d / "cluster.yaml")])
    state = build_state(kept, cdiags)
    out["load"] = time.perf_counter() - t
    t = time.perf_counter()
    model = models[0]
    index = WorkloadIndex(state)
    resolved, _ = resolve(intent_set, index, model.dns, tuple(model.fenced_namespaces()))
    objects = generate_zones(model) + synth_intents(resolved, index.by_ns)
    text = api._dump(objects)
    full = api._with_generated(state, text)
    out["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    an = api.analyze(full)
    ev = an.evaluation
    out["evaluate"] = time.perf_counter() - t
    t = time.perf_counter()
    zone = verify(model, ev, intended_ingress(resolved, ev.u),
                  intended_egress_addresses(resolved, ev.u))
    out["zone check"] = time.perf_counter() - t
    t = time.perf_counter()
    proof = verify_intents(resolved, ev, an.query, frozenset(model.fenced_namespaces()))
    out["intents check"] = time.perf_counter() - t
    assert zone.ok and proof.ok, (zone.gaps, proof.gaps)
    out["objects"] = len(objects)
    out["pods"] = len(state.pods)
    gc.enable()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,600")
    ap.add_argument("--runs", type=int, default=3)
    opts = ap.parse_args()
    exe = str(Path(sys.executable).parent / "netfence")
    print("| namespaces | pods | generated objects | `generate all --check` wall (best of "
          f"{opts.runs}) | peak RSS | load | generate | evaluate | zone check | intents check |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in (int(x) for x in opts.sizes.split(",")):
        d = workdir(n)
        best = (float("inf"), 0.0)
        for _ in range(opts.runs):
            wall, rss, code = timed_child(
                [exe, "generate", "all", "-f", str(d / "model.yaml"), "-f",
                 str(d / "intents.yaml"), "--cluster-manifests", str(d / "cluster.yaml"),
                 "--check", "-q"], d / "generated.yaml")
            if code != 0:
                raise SystemExit(f"netfence generate all failed at {n} namespaces (exit {code})")
            best = min(best, (wall, rss))
        b = breakdown(d)
        print(f"| {n} | {int(b['pods'])} | {int(b['objects'])} | {best[0]:.2f} s | "
              f"{best[1]:.0f} MiB | {b['load']:.2f} s | {b['generate']:.2f} s | "
              f"{b['evaluate']:.2f} s | {b['zone check']:.2f} s | {b['intents check']:.2f} s |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
