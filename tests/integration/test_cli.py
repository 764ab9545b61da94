"""The CLI as users drive it: formats, filters, streams, exit codes, plugin name, --cluster.

``--cluster`` tests run against a recorded fake ``kubectl`` (tests/fixtures/kubectl): no live
Kubernetes API server is reachable from this machine, so its answers are recorded JSON.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import EXAMPLES, REPO, run_netfence

FINTECH = EXAMPLES / "fintech"
MANIFESTS = str(FINTECH / "manifests")
TIERS = str(FINTECH / "cluster-policies")
FAKE = REPO / "tests" / "fixtures" / "kubectl"
SCHEMA = json.loads((REPO / "schemas" / "connectivity-map.schema.json").read_text())


@pytest.fixture(scope="module")
def fintech_json() -> dict[str, object]:
    run = run_netfence("map", "-f", MANIFESTS, "-f", TIERS, "-o", "json")
    assert run.code == 0, run.stderr
    doc: dict[str, object] = run.json()
    return doc


def test_map_json_matches_schema(fintech_json: dict[str, object]) -> None:
    jsonschema.validate(fintech_json, SCHEMA)
    assert fintech_json["complete"] is True
    conns = fintech_json["connections"]
    assert isinstance(conns, list) and len(conns) > 50


def test_map_json_guardrail_holds(fintech_json: dict[str, object]) -> None:
    """Only the declared callers (and monitoring on the metrics port) reach payments-db."""
    conns = fintech_json["connections"]
    assert isinstance(conns, list)
    into_db = {c["from"]: c["ports"] for c in conns
               if c["to"] == "payments/statefulset/payments-db"}
    assert into_db == {
        "ledger/deployment/ledger-writer": "TCP 5432",
        "monitoring/deployment/prometheus": "TCP 9187",
        "payments/deployment/payments-api": "TCP 5432",
    }


def test_map_output_is_deterministic() -> None:
    a = run_netfence("map", "-f", MANIFESTS, "-o", "json")
    b = run_netfence("map", "-f", MANIFESTS, "-o", "json")
    assert a.code == b.code == 0
    assert a.stdout == b.stdout


@pytest.mark.parametrize("fmt", ["table", "wide", "yaml", "csv", "md", "dot", "mermaid"])
def test_every_format_renders(fmt: str) -> None:
    run = run_netfence("map", "-f", MANIFESTS, "--to", "payments/*", "-o", fmt)
    assert run.code == 0, run.stderr
    assert "payments-db" in run.stdout
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(run.stdout)))
        assert rows[0] == ["from", "to", "ports", "dns_conditional"]
        assert all(len(r) == 4 for r in rows)
    if fmt == "dot":
        assert run.stdout.startswith("digraph") and run.stdout.rstrip().endswith("}")
    if fmt == "mermaid":
        assert run.stdout.startswith("flowchart LR")
    if fmt == "yaml":
        import yaml
        doc = yaml.safe_load(run.stdout)
        assert doc["kind"] == "ConnectivityMap" and doc["connections"]


def test_views_and_filters() -> None:
    ns = run_netfence("map", "-f", MANIFESTS, "--by", "namespace", "-o", "json").json()
    pairs = {(c["from"], c["to"]) for c in ns["connections"]}
    assert ("shop-web", "payments") in pairs
    assert ("payments", "shop-web") not in pairs  # backoffice never enters publicfrontal
    pods = run_netfence("map", "-f", MANIFESTS, "--by", "pod", "-n", "ledger",
                        "-o", "json").json()
    assert pods["view"] == "pod"
    for c in pods["connections"]:
        assert "ledger" in (c["from"].split("/")[0], c["to"].split("/")[0])
    sel = run_netfence("map", "-f", MANIFESTS, "-l", "app.kubernetes.io/name=payments-db",
                       "-o", "json").json()
    assert sel["connections"]
    assert all("payments-db" in c["from"] + c["to"] for c in sel["connections"])
    frm = run_netfence("map", "-f", MANIFESTS, "--from", "monitoring/*", "-o", "json").json()
    assert frm["connections"] and all(c["from"].startswith("monitoring/")
                                      for c in frm["connections"])


def test_csv_cells_cannot_inject_formulas(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\n"
        "spec: {containers: [{name: c, image: i}]}\n---\n"
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: p, namespace: x}\n"
        "spec:\n  podSelector: {}\n  egress:\n  - to: [{ipBlock: {cidr: 8.8.8.8/32}}]\n")
    run = run_netfence("map", "-f", str(tmp_path), "-o", "csv")
    assert run.code == 0, run.stderr
    for row in list(csv.reader(io.StringIO(run.stdout)))[1:]:
        assert not row[0].startswith(("=", "+", "-", "@"))


def test_stdin_input() -> None:
    text = (FINTECH / "manifests" / "00-namespaces.yaml").read_text()
    text += "\n---\n" + (FINTECH / "manifests" / "payments-workloads.yaml").read_text()
    run = run_netfence("map", "-f", "-", "-o", "json", stdin=text)
    assert run.code == 0, run.stderr
    assert run.json()["summary"]["pods"] > 0


def test_usage_errors_exit_2() -> None:
    assert run_netfence("map").code == 2
    assert run_netfence("map", "-f", MANIFESTS, "-o", "nope").code == 2
    assert run_netfence("frobnicate").code == 2


def test_explain_json_names_deciding_rule() -> None:
    run = run_netfence("explain", "-f", MANIFESTS, "-f", TIERS, "shop-web/storefront",
                       "payments/payments-db", "--port", "5432", "-o", "json")
    assert run.code == 0, run.stderr
    doc = run.json()
    assert doc["verdict"] == "deny"
    ingress = doc["flows"][0]["ingress"]
    assert ingress["tier"] == "Admin"
    assert ingress["policy"]["name"] == "admin-payments-db-guardrail"
    assert ingress["policy"]["line"] > 0
    assert ingress["rule"]["name"] == "deny-outside-backoffice"


def test_explain_text_denied_names_isolating_policies() -> None:
    run = run_netfence("explain", "-f", MANIFESTS, "shop-web/storefront",
                       "payments/payments-db", "--port", "postgres")
    assert run.code == 0, run.stderr
    assert "DENIED" in run.stdout
    assert "payments/default-deny-all" in run.stdout
    assert "payments-policies.yaml:" in run.stdout
    assert "the peer does not match" in run.stdout


def test_explain_unknown_endpoint_is_input_error() -> None:
    run = run_netfence("explain", "-f", MANIFESTS, "nope/nothing", "payments/payments-api",
                       "--port", "80")
    assert run.code == 3
    assert "nope/nothing" in run.stderr


def test_test_junit_and_exit_codes(tmp_path: Path) -> None:
    tests = tmp_path / "t.yaml"
    tests.write_text(
        "apiVersion: netfence.dev/v1alpha1\nkind: ConnectivityTest\nmetadata: {name: t}\n"
        "spec:\n  cases:\n"
        "  - {name: ok, from: payments/payments-api, to: payments/payments-db, port: postgres,"
        " expect: allow}\n"
        "  - {name: wrong on purpose, from: shop-web/storefront, to: payments/payments-db,"
        " port: 5432, expect: allow}\n")
    run = run_netfence("test", "-f", MANIFESTS, "--expect", str(tests), "-o", "junit")
    assert run.code == 1
    root = ET.fromstring(run.stdout)
    cases = root.findall(".//testcase")
    assert len(cases) == 2
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and "DENIED" in (failure.text or "")


def test_kubectl_plugin_name(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "kubectl-netfence"
    if not exe.exists():
        pytest.skip("console scripts not installed in this environment")
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0
    assert "Usage: kubectl netfence" in proc.stdout
    plain = subprocess.run([str(exe.parent / "netfence"), "--help"], capture_output=True,
                           text=True, timeout=60, check=False)
    assert "Usage: netfence" in plain.stdout


def _fake_path(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(FAKE / "kubectl", bin_dir / "kubectl")
    # the fake reads recordings from its own directory
    for f in FAKE.glob("*.json"):
        shutil.copy(f, bin_dir / f.name)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_KUBECTL_LOG": str(tmp_path / "calls.log")}


def test_cluster_reads_through_kubectl(tmp_path: Path) -> None:
    """Recorded responses: live pods are attributed to their Deployment through the
    ReplicaSet, no representative pods are invented, and the named port resolves."""
    env = _fake_path(tmp_path)
    run = run_netfence("map", "--cluster", "--context", "kind-dev", "-o", "json", env=env)
    assert run.code == 0, run.stderr
    doc = run.json()
    assert doc["summary"]["pods"] == 3
    conns = {(c["from"], c["to"]): c["ports"] for c in doc["connections"]}
    assert conns[("shop/deployment/web", "payments/deployment/api")] == "TCP 8443"
    calls = (tmp_path / "calls.log").read_text()
    assert "--context kind-dev get pods -A -o json" in calls
    exp = run_netfence("explain", "--cluster", "ip:10.244.1.10", "payments/api", "--port",
                       "http", env=env)
    assert exp.code == 0, exp.stderr
    assert "ALLOWED" in exp.stdout and "payments/api-from-shop" in exp.stdout


def test_cluster_forbidden_is_exit_3(tmp_path: Path) -> None:
    env = _fake_path(tmp_path)
    env["FAKE_KUBECTL_FORBIDDEN"] = "1"
    run = run_netfence("map", "--cluster", env=env)
    assert run.code == 3
    assert "forbidden" in run.stderr.lower()
    assert "Traceback" not in run.stderr


def test_zone_view_groups_namespaces_by_area_label() -> None:
    run = run_netfence("map", "-f", MANIFESTS, "--by", "zone", "-o", "json")
    assert run.code == 0, run.stderr
    doc = run.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["view"] == "zone"
    pairs = {(c["from"], c["to"]) for c in doc["connections"]}
    assert ("zone:publicfrontal", "zone:backoffice") in pairs
    assert ("zone:backoffice", "zone:publicfrontal") not in pairs
    zone = next(c for c in doc["connections"] if c["from"] == "zone:publicfrontal")
    assert zone["source"] == {"type": "zone", "name": "publicfrontal"}
