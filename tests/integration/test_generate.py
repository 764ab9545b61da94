"""``netfence generate zones``: deterministic YAML, annotations, an exact self-check that can
fail, and bad model files reported with the JSON path of the field (exit 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLES, run_netfence

MODEL = EXAMPLES / "fintech" / "model" / "segmentation.yaml"
MANIFESTS = EXAMPLES / "fintech" / "manifests"


def test_generation_is_pure_deterministic_yaml() -> None:
    a = run_netfence("generate", "zones", "-f", str(MODEL))
    b = run_netfence("generate", "zones", "-f", str(MODEL))
    assert a.code == 0, a.stderr
    assert a.stdout == b.stdout
    objs = list(yaml.safe_load_all(a.stdout))
    assert objs and all(o["kind"] == "NetworkPolicy" for o in objs)
    for o in objs:
        ann = o["metadata"]["annotations"]["netfence.dev/generated-from"]
        assert ann.startswith("SegmentationModel/fintech#")
    names = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs]
    assert names == sorted(names)
    assert "proof: exact" in a.stderr


def test_self_check_on_the_cluster_manifests_is_exact(tmp_path: Path) -> None:
    run = run_netfence("generate", "zones", "-f", str(MODEL), "--cluster-manifests",
                       str(MANIFESTS), "--check")
    assert run.code == 0, run.stderr
    assert "proof: exact" in run.stderr
    # the generated policies load cleanly and reproduce the area rules on the real workloads
    out = tmp_path / "generated.yaml"
    out.write_text(run.stdout)
    workloads = [str(p) for p in sorted(MANIFESTS.glob("*-workloads.yaml"))]
    cases = tmp_path / "cases.yaml"
    rows = [
        ("publicfrontal may enter backoffice", "shop-web/storefront", "payments/payments-api",
         "8080", "TCP", "allow"),
        ("backoffice may not enter publicfrontal", "payments/payments-api",
         "shop-web/storefront", "8080", "TCP", "deny"),
        ("internalservices may not enter backoffice", "customer/customer-profile",
         "ledger/ledger-api", "8080", "TCP", "deny"),
        ("monitoring scrapes the metrics port", "monitoring/prometheus", "ledger/ledger-api",
         "metrics", "TCP", "allow"),
        ("monitoring scrapes nothing else", "monitoring/prometheus", "ledger/ledger-api",
         "8080", "TCP", "deny"),
        ("DNS", "risk/risk-scoring", "kube-system/coredns", "53", "UDP", "allow"),
        ("kafka range", "customer/customer-profile", "ip:10.20.1.1", "9094", "TCP", "allow"),
        ("no public internet in this model", "customer/customer-profile", "ip:8.8.8.8", "443",
         "TCP", "deny"),
    ]
    cases.write_text(yaml.safe_dump({
        "apiVersion": "netfence.dev/v1alpha1", "kind": "ConnectivityTest",
        "metadata": {"name": "generated-areas"},
        "spec": {"cases": [{"name": n, "from": f, "to": t,
                            "port": int(p) if p.isdigit() else p, "protocol": pr,
                            "expect": e} for n, f, t, p, pr, e in rows]}}))

    args = ["-f", str(MANIFESTS / "00-namespaces.yaml")]
    for w in workloads:
        args += ["-f", w]
    test = run_netfence("test", *args, "-f", str(out), "--expect", str(cases))
    assert test.code == 0, test.stdout + test.stderr


def test_self_check_finds_gaps_and_check_exits_1(tmp_path: Path) -> None:
    """The cluster disagrees with the model: risk is labelled internalservices although the
    model's exception moves it to backoffice, so same-area traffic does not match."""
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    for f in MANIFESTS.glob("*-workloads.yaml"):
        (cluster / f.name).write_text(f.read_text())
    ns = (MANIFESTS / "00-namespaces.yaml").read_text()
    start = ns.index("name: risk")
    end = ns.index("networkArea:", start)
    line_end = ns.index("\n", end)
    ns = ns[:end] + "networkArea: internalservices" + ns[line_end:]
    (cluster / "00-namespaces.yaml").write_text(ns)
    run = run_netfence("generate", "zones", "-f", str(MODEL), "--cluster-manifests",
                       str(cluster), "--check")
    assert run.code == 1, run.stderr
    assert "GAP" in run.stderr and "gap: " in run.stderr
    assert "risk/" in run.stderr
    no_check = run_netfence("generate", "zones", "-f", str(MODEL), "--cluster-manifests",
                            str(cluster))
    assert no_check.code == 0 and no_check.stdout == run.stdout


@pytest.mark.parametrize(("mutation", "path"), [
    (("mayEnter: [internalservices]", "mayEnter: [nowhere]"), "$.spec.areas[1].mayEnter[0]"),
    (("cidrs: [10.20.0.0/16]", "cidrs: [10.20.0.1/16]"), "$.spec.networks[0].cidrs[0]"),
    (("areaLabel: networkArea", "areaLabel: networkArea\n  areaLable: typo"), "$.spec"),
    (("port: metrics", "port: 9102"), "$.spec.monitoring.port"),
    (("networks: [natonly-vpc]", "networks: [missing-net]"), "$.spec.areas[2].networks[0]"),
    (("    area: backoffice\n", "    area: nowhere\n"), "$.spec.exceptions[0].area"),
    (("clients: [internet]", "clients: [intranet]"),
     "$.spec.areas[0].ingressController.clients[0]"),
    (("clientPorts: [http, https]\n    mayEnter: [backoffice",
      "clientPorts: [http, Https]\n    mayEnter: [backoffice"),
     "$.spec.areas[0].ingressController.clientPorts[1]"),
    (("  - ingress-public\n", "  - ingress-elsewhere\n"),
     "$.spec.areas[0].ingressController.clients"),
    (("  - kube-system\n", "  - payments\n"), "$.spec.platformNamespaces[4]"),
    (("{app.kubernetes.io/name: payments-db}", "{app.kubernetes.io/name: payments-db, a: b}"),
     "$.spec.protected[0].podSelector"),
    (("  - namespace: payments\n    podSelector", "  - namespace: sandbox\n    podSelector"),
     "$.spec.protected[0].namespace"),
])
def test_bad_model_names_the_json_path(tmp_path: Path, mutation: tuple[str, str],
                                       path: str) -> None:
    text = MODEL.read_text()
    assert mutation[0] in text
    bad = tmp_path / "model.yaml"
    bad.write_text(text.replace(mutation[0], mutation[1], 1))
    run = run_netfence("generate", "zones", "-f", str(bad))
    assert run.code == 3, run.stderr
    assert path in run.stderr, run.stderr
    assert f"{bad}:" in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""


def test_schema_is_published() -> None:
    run = run_netfence("generate", "zones", "--schema")
    assert run.code == 0
    assert "SegmentationModelFile" in run.stdout or "$defs" in run.stdout
    published = Path(__file__).resolve().parents[2] / "schemas" / "segmentation-model.schema.json"
    assert published.read_text() == run.stdout, (
        "regenerate: netfence generate zones --schema > schemas/segmentation-model.schema.json")


def test_clusternetworkpolicy_flavor_adds_guardrails() -> None:
    run = run_netfence("generate", "zones", "-f", str(MODEL), "--flavor",
                       "clusternetworkpolicy", "--cluster-manifests", str(MANIFESTS), "--check")
    assert run.code == 0, run.stderr
    kinds = [o["kind"] for o in yaml.safe_load_all(run.stdout)]
    assert kinds.count("ClusterNetworkPolicy") >= 2
