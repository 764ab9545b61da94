"""``netfence generate intents|all``: caller-owned intents (and Otterize ClientIntents) become
least-privilege policies that the engine proves exact; bad intents files are reported with the
JSON path, file and line of the bad field (exit 3); a self-check gap exits 1 with --check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES, REPO, run_netfence

FINTECH = EXAMPLES / "fintech"
MODEL = FINTECH / "model" / "segmentation.yaml"
MANIFESTS = FINTECH / "manifests"
INTENTS = FINTECH / "intents"
FIXTURES = REPO / "tests" / "fixtures" / "intents"
ANNOTATION = "netfence.dev/generated-from"
# the cluster without its hand-written policies: namespaces and workloads only
CLUSTER = [MANIFESTS / "00-namespaces.yaml", *sorted(MANIFESTS.glob("*-workloads.yaml"))]


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _by_key(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs}


def _protected_model(tmp: Path, protected: str = "[payments/payments-db]") -> Path:
    """The example model with its ``protected`` list replaced (flow style, one line)."""
    text = MODEL.read_text()
    block = ("  protected:\n  - namespace: payments\n"
             "    podSelector: {app.kubernetes.io/name: payments-db}\n")
    assert block in text
    out = tmp / "segmentation.yaml"
    out.write_text(text.replace(block, f"  protected: {protected}\n", 1))
    return out


def _unfenced_model(tmp: Path) -> Path:
    """The example model without its platform namespaces (they get no policies)."""
    doc = yaml.safe_load(MODEL.read_text())
    del doc["spec"]["platformNamespaces"]
    for area in doc["spec"]["areas"]:
        area["ingressController"].pop("clients")
        area["ingressController"].pop("clientPorts")
    out = tmp / "unfenced.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def _run_tests(tmp: Path, generated: str, cases: list[tuple[str, str, str, Any, str, str]],
               ) -> Any:
    out = tmp / "generated.yaml"
    out.write_text(generated)
    spec = tmp / "cases.yaml"
    spec.write_text(yaml.safe_dump({
        "apiVersion": "netfence.dev/v1alpha1", "kind": "ConnectivityTest",
        "metadata": {"name": "generated"},
        "spec": {"cases": [{"name": n, "from": f, "to": t, "port": p, "protocol": pr,
                            "expect": e} for n, f, t, p, pr, e in cases]}}))
    args: list[str] = []
    for c in CLUSTER:
        args += ["-f", str(c)]
    return run_netfence("test", *args, "-f", str(out), "--expect", str(spec), "-o", "json")


# -- generate intents ----------------------------------------------------------------------------

def test_intents_generate_deterministic_annotated_policies_with_an_exact_proof() -> None:
    a = run_netfence("generate", "intents", "-f", str(INTENTS), "--cluster-manifests",
                     str(MANIFESTS), "--check")
    b = run_netfence("generate", "intents", "-f", str(INTENTS), "--cluster-manifests",
                     str(MANIFESTS), "--check")
    assert a.code == 0, a.stderr
    assert a.stdout == b.stdout
    assert "intents: proof: exact:" in a.stderr
    docs = _docs(a.stdout)
    assert docs and all(d["kind"] == "NetworkPolicy" for d in docs)
    keys = [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs]
    assert keys == sorted(keys)
    for d in docs:
        assert d["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "netfence"}
        ann = d["metadata"]["annotations"][ANNOTATION]
        assert all(part.split("/", 1)[0] in ("ServiceIntents", "ClientIntents",
                                             "ServiceTypeGroup") and "#" in part
                   for part in ann.split(", ")), ann
    by = _by_key(docs)
    # one default deny per namespace that has callees; payments-db admits exactly its callers
    assert ("payments", "netfence-intents-default-deny") in by
    assert by[("payments", "netfence-intents-default-deny")]["spec"] == {
        "podSelector": {}, "policyTypes": ["Ingress"]}
    db = by[("payments", "netfence-intents-payments-db")]["spec"]
    assert db["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "payments-db"}}
    assert db["policyTypes"] == ["Ingress"]
    callers = [(r["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                r["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], r["ports"])
               for r in db["ingress"]]
    assert callers == [("ledger", "ledger-writer", [{"protocol": "TCP", "port": "postgres"}]),
                       ("payments", "payments-api", [{"protocol": "TCP", "port": "postgres"}])]
    # the caller side: DNS first, then its callees; addresses as ipBlocks
    egress = by[("payments", "netfence-intents-egress-card-gateway")]["spec"]["egress"]
    assert egress[0]["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert egress[-1] == {"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}],
                          "ports": [{"protocol": "TCP", "port": 443}]}
    # the ClientIntents of the example (risk-scoring, Otterize v2beta1): every port of callees
    risk = by[("payments", "netfence-intents-egress-payments-api")]
    assert "ServiceIntents/payments-api#caller/payments/payments-api" in \
        risk["metadata"]["annotations"][ANNOTATION]
    fraud = by[("risk", "netfence-intents-fraud-rules")]["spec"]["ingress"]
    assert fraud == [{"from": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "risk"}}, "podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "risk-scoring"}}}]}]


def test_intents_policies_allow_the_declared_edges_and_nothing_else(tmp_path: Path) -> None:
    run = run_netfence("generate", "intents", "-f", str(INTENTS), "--cluster-manifests",
                       str(MANIFESTS), "--check")
    assert run.code == 0, run.stderr
    cases = [
        ("declared: payments-api -> payments-db on postgres", "payments/payments-api",
         "payments/statefulset/payments-db", "postgres", "TCP", "allow"),
        ("declared across namespaces", "ledger/ledger-writer", "payments/payments-db", 5432,
         "TCP", "allow"),
        ("the database is no caller of its own replicas (distinct pods)",
         "payments/statefulset/payments-db", "payments/statefulset/payments-db", "postgres",
         "TCP", "deny"),
        ("same namespace but not declared", "payments/payments-worker", "payments/payments-db",
         "postgres", "TCP", "deny"),
        ("declared port only", "payments/payments-api", "payments/payments-db", 9187, "TCP",
         "deny"),
        ("named port postgres is TCP", "ledger/ledger-writer", "payments/payments-db", 5432,
         "UDP", "deny"),
        ("caller egress is restricted to its callees", "payments/payments-api",
         "shop-web/shop-bff", "http", "TCP", "deny"),
        ("DNS for every caller", "payments/card-gateway", "kube-system/coredns", "dns", "UDP",
         "allow"),
        ("declared addresses", "payments/card-gateway", "ip:198.51.100.7", 443, "TCP",
         "allow"),
        ("declared address ports only", "payments/card-gateway", "ip:198.51.100.7", 80, "TCP",
         "deny"),
        ("the card network is for card-gateway only", "payments/payments-api",
         "ip:198.51.100.7", 443, "TCP", "deny"),
        ("public HTTPS", "notifications/notification-dispatcher", "ip:93.184.216.34", 443,
         "TCP", "allow"),
        ("except carves private ranges", "notifications/notification-dispatcher",
         "ip:192.168.1.10", 443, "TCP", "deny"),
        ("Otterize targets: every port", "risk/risk-scoring", "ledger/ledger-api", 8080, "TCP",
         "allow"),
        ("default deny in a callee namespace", "sandbox/notebook", "customer/customer-profile",
         "http", "TCP", "deny"),
        ("not a callee namespace: untouched", "sandbox/notebook", "sandbox/feature-cache",
         "redis", "TCP", "allow"),
    ]
    test = _run_tests(tmp_path, run.stdout, cases)
    assert test.code == 0, test.stdout + test.stderr


def test_dns_nobody_matches_is_a_gap_and_check_exits_1() -> None:
    args = ["generate", "intents", "-f", str(INTENTS), "--cluster-manifests", str(MANIFESTS),
            "--dns-selector", "k8s-app=nope"]
    run = run_netfence(*args, "--check")
    assert run.code == 1, run.stderr
    assert "GAP(S)" in run.stderr and "gap: the DNS selector {'k8s-app': 'nope'}" in run.stderr
    no_check = run_netfence(*args)
    assert no_check.code == 0 and no_check.stdout == run.stdout


def test_service_type_group_calls_all_fenced_namespaces(tmp_path: Path) -> None:
    group = tmp_path / "group.yaml"
    group.write_text(yaml.safe_dump_all([
        {"apiVersion": "netfence.dev/v1alpha1", "kind": "ServiceIntents",
         "metadata": {"name": "storefront"},
         "spec": {"service": "shop-web/storefront",
                  "calls": [{"service": "payments/payments-api", "ports": ["http"]}]}},
        {"apiVersion": "netfence.dev/v1alpha1", "kind": "ServiceTypeGroup",
         "metadata": {"name": "monitoring"},
         "spec": {"members": ["monitoring/prometheus"], "calls": "all", "ports": ["metrics"]}},
        {"apiVersion": "netfence.dev/v1alpha1", "kind": "ServiceTypeGroup",
         "metadata": {"name": "dbadmin"},
         "spec": {"members": ["risk/risk-admin-ui"], "calls": ["payments/payments-db"],
                  "ports": [{"port": "postgres", "protocol": "TCP"}]}}]))
    run = run_netfence("generate", "intents", "-f", str(group), "--cluster-manifests",
                       str(MANIFESTS), "--check")
    assert run.code == 0, run.stderr
    by = _by_key(_docs(run.stdout))
    assert sorted(ns for ns, name in by if name == "netfence-intents-group-monitoring") == [
        "payments"]
    assert by[("payments", "netfence-intents-group-monitoring")]["spec"]["ingress"][0][
        "ports"] == [{"protocol": "TCP", "port": "metrics"}]
    cases = [
        ("group: prometheus scrapes every workload of the fenced namespace",
         "monitoring/prometheus", "payments/payments-worker", "metrics", "TCP", "allow"),
        ("group ports only", "monitoring/prometheus", "payments/payments-api", "http", "TCP",
         "deny"),
        ("a restricted caller: prometheus reaches only fenced namespaces",
         "monitoring/prometheus", "kube-system/coredns", "metrics", "TCP", "deny"),
        ("group with a list", "risk/risk-admin-ui", "payments/payments-db", "postgres", "TCP",
         "allow"),
        ("not in the list", "risk/risk-admin-ui", "payments/payments-api", "http", "TCP",
         "deny"),
    ]
    test = _run_tests(tmp_path, run.stdout, cases)
    assert test.code == 0, test.stdout + test.stderr


# -- Otterize ClientIntents ------------------------------------------------------------------------

def test_otterize_v2beta1_targets_are_imported() -> None:
    run = run_netfence("generate", "intents", "-f", str(FIXTURES / "otterize" / "v2beta1.yaml"),
                       "--cluster-manifests", str(MANIFESTS), "--check")
    assert run.code == 0, run.stderr
    by = _by_key(_docs(run.stdout))
    payments_api = {"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "payments"}}, "podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "payments-api"}}}
    # kubernetes target without a namespace: the ClientIntents' own; every port
    assert by[("payments", "netfence-intents-payments-db")]["spec"]["ingress"] == [
        {"from": [payments_api]}]
    # "name.namespace"
    assert by[("ledger", "netfence-intents-ledger-api")]["spec"]["ingress"] == [
        {"from": [payments_api]}]
    # a Service target: the Service's pods on its targetPorts
    assert by[("payments", "netfence-intents-card-gateway")]["spec"]["ingress"] == [
        {"from": [payments_api], "ports": [{"protocol": "TCP", "port": "http"}]}]
    # kafka target: the broker workload; internet ips + ports: egress ipBlocks
    assert ("payments", "netfence-intents-payments-worker") in by
    egress = by[("payments", "netfence-intents-egress-payments-api")]["spec"]["egress"]
    assert {"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}},
                   {"ipBlock": {"cidr": "203.0.113.7/32"}}],
            "ports": [{"protocol": "TCP", "port": 443}]} in egress
    ann = by[("payments", "netfence-intents-payments-db")]["metadata"]["annotations"][ANNOTATION]
    assert ann == "ClientIntents/payments/payments-api#callee/payments/payments-db"
    # what a NetworkPolicy cannot express is reported at its JSON path
    src = "tests/fixtures/intents/otterize/v2beta1.yaml"
    for path in ("$.spec.targets[1].kubernetes.http", "$.spec.targets[3].kafka.topics",
                 "$.spec.targets[4].sql", "$.spec.targets[6].internet.domains"):
        assert path in run.stderr, run.stderr
    assert f"{src}:" in run.stderr and ": warning: " in run.stderr
    quiet = run_netfence("generate", "intents", "-q", "-f",
                         str(FIXTURES / "otterize" / "v2beta1.yaml"), "--cluster-manifests",
                         str(MANIFESTS))
    assert quiet.code == 0 and quiet.stderr == ""


@pytest.mark.parametrize("version", ["v1alpha3", "v1alpha2"])
def test_otterize_service_calls_are_imported(version: str) -> None:
    run = run_netfence("generate", "intents", "-f", str(FIXTURES / "otterize" / f"{version}.yaml"),
                       "--cluster-manifests", str(MANIFESTS), "--check")
    assert run.code == 0, run.stderr
    by = _by_key(_docs(run.stdout))
    if version == "v1alpha3":
        writer = {"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "ledger"}}, "podSelector": {"matchLabels": {
                "app.kubernetes.io/name": "ledger-writer"}}}
        # "svc:payments-db.payments": the headless Service's pods on its targetPort postgres
        assert by[("payments", "netfence-intents-payments-db")]["spec"]["ingress"] == [
            {"from": [writer], "ports": [{"protocol": "TCP", "port": "postgres"}]}]
        assert by[("ledger", "netfence-intents-ledger-api")]["spec"]["ingress"] == [
            {"from": [writer]}]
        egress = by[("ledger", "netfence-intents-egress-ledger-writer")]["spec"]["egress"]
        assert egress[-1] == {"to": [{"ipBlock": {"cidr": "10.30.12.5/32"}}],
                              "ports": [{"protocol": "TCP", "port": 5432}]}
        assert "$.spec.calls[1].HTTPResources" in run.stderr
        assert "$.spec.calls[2].type: database calls" in run.stderr
    else:
        names = sorted(name for ns, name in by if ns != "shop-web" or "egress" not in name)
        assert "netfence-intents-shop-bff" in names
        assert "netfence-intents-session-cache" in names
        assert "netfence-intents-payments-api" in names
        assert "$.spec.calls[0].resources" in run.stderr
        assert "$.spec.calls[2].topics" in run.stderr


# -- generate all --------------------------------------------------------------------------------

def test_all_with_a_protected_workload_by_name(tmp_path: Path) -> None:
    """``protected`` as NS/NAME: the NotIn label is looked up on the cluster manifests; the
    result is the one the example's label form gives."""
    model = _protected_model(tmp_path)
    run = run_netfence("generate", "all", "-f", str(model), "-f", str(INTENTS),
                       "--cluster-manifests", str(MANIFESTS), "--check")
    assert run.code == 0, run.stderr
    assert "fintech: proof: exact:" in run.stderr and "intents: proof: exact:" in run.stderr
    docs = _docs(run.stdout)
    keys = [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs]
    assert keys == sorted(keys)
    by = _by_key(docs)
    notin = {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["payments-db"]}
    for name in ("netfence-allow-same-namespace", "netfence-allow-same-area",
                 "netfence-allow-from-publicfrontal", "netfence-allow-ingress-controller",
                 "netfence-allow-egress-cluster", "netfence-allow-egress-networks"):
        assert by[("payments", name)]["spec"]["podSelector"]["matchExpressions"] == [notin]
    for name in ("netfence-allow-monitoring", "netfence-allow-dns"):
        assert "matchExpressions" not in by[("payments", name)]["spec"]["podSelector"]
    assert "matchExpressions" not in by[("ledger", "netfence-allow-same-area")]["spec"][
        "podSelector"]
    example = run_netfence("generate", "all", "-f", str(MODEL), "-f", str(INTENTS),
                           "--cluster-manifests", str(MANIFESTS))
    assert example.code == 0 and example.stdout == run.stdout


def test_all_without_intents_on_the_example_model_is_exact() -> None:
    run = run_netfence("generate", "all", "-f", str(MODEL), "--cluster-manifests",
                       str(MANIFESTS), "--check")
    assert run.code == 0, run.stderr
    assert "fintech: proof: exact:" in run.stderr
    zones = run_netfence("generate", "zones", "-f", str(MODEL), "--cluster-manifests",
                         str(MANIFESTS))
    assert zones.stdout == run.stdout


def test_zones_with_protected_workloads_need_the_cluster(tmp_path: Path) -> None:
    model = _protected_model(tmp_path)
    run = run_netfence("generate", "zones", "-f", str(model))
    assert run.code == 3, run.stderr
    assert f"{model}:" in run.stderr and "--cluster-manifests" in run.stderr
    ok = run_netfence("generate", "zones", "-f", str(model), "--cluster-manifests",
                      str(MANIFESTS), "--check")
    assert ok.code == 0, ok.stderr
    assert "NotIn" in ok.stdout


def test_a_group_that_says_less_than_the_model_is_a_gap(tmp_path: Path) -> None:
    """Prometheus as a group member gets an egress policy: when its namespace is not fenced by
    the model (no scraping egress generated), scraping only payments-api contradicts the
    model's monitoring rule, and the zone self-check says where. In the fenced example, the
    model's scraping egress keeps the rule whole."""
    group = tmp_path / "group.yaml"
    group.write_text(yaml.safe_dump({
        "apiVersion": "netfence.dev/v1alpha1", "kind": "ServiceTypeGroup",
        "metadata": {"name": "scrapers"},
        "spec": {"members": ["monitoring/prometheus"], "calls": ["payments/payments-api"],
                 "ports": ["metrics"]}}))
    run = run_netfence("generate", "all", "-f", str(_unfenced_model(tmp_path)), "-f",
                       str(group), "--cluster-manifests", str(MANIFESTS), "--check")
    assert run.code == 1, run.stderr
    assert "fintech: proof: " in run.stderr and "GAP(S)" in run.stderr
    assert "gap: in the model but denied: monitoring/prometheus" in run.stderr
    fenced = run_netfence("generate", "all", "-f", str(MODEL), "-f", str(group),
                          "--cluster-manifests", str(MANIFESTS), "--check")
    assert fenced.code == 0, fenced.stderr


# -- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("mutation", "path", "text"), [
    (("- service: payments/payments-db          #", "- service: payments/payments-dbx #"),
     "$.spec.calls[0].service", "unknown workload 'payments/payments-dbx'"),
    (("    ports: [postgres]\n  - service: payments/card-gateway",
      "    ports: [postgress]\n  - service: payments/card-gateway"),
     "$.spec.calls[0].ports[0]", "'postgress' is not a named port of StatefulSet"),
    (("    ports: [http]\n  - service: risk", "    ports: [Http]\n  - service: risk"),
     "$.spec.calls[1].ports[0]", "invalid port name 'Http'"),
    (("  - cidrs: [198.51.100.0/24]", "  - cidrs: [198.51.100.1/24]"),
     "$.spec.calls[0].cidrs[0]", "invalid CIDR"),
    (("    ports: [443]", "    ports: [443]\n    service: payments/payments-api"),
     "$.spec.calls[0]", "exactly one of"),
    (("    ports: [http, grpc]", "    portz: [http, grpc]"), "$.spec.calls[0]",
     "unknown field `portz`"),
    (("  service: payments/payments-worker ", "  service: payments-worker "),
     "$.spec.service", "is not NS/NAME"),
    (("    ports: [http]\n---\napiVersion: netfence.dev/v1alpha1\nkind: ServiceIntents\n"
      "metadata: {name: card-gateway}", "    ports: [http]\n---\napiVersion: "
      "netfence.dev/v1alpha1\nkind: ServiceIntents\nmetadata: {name: payments-api}"),
     "$.metadata.name", "already defined"),
])
def test_bad_intents_name_the_json_path_and_line(tmp_path: Path, mutation: tuple[str, str],
                                                 path: str, text: str) -> None:
    src = (INTENTS / "payments.yaml").read_text()
    assert mutation[0] in src, mutation[0]
    bad = tmp_path / "payments.yaml"
    bad.write_text(src.replace(mutation[0], mutation[1], 1))
    run = run_netfence("generate", "intents", "-f", str(bad), "--cluster-manifests",
                       str(MANIFESTS))
    assert run.code == 3, run.stderr
    assert path in run.stderr and text in run.stderr, run.stderr
    line = next(ln for ln in run.stderr.splitlines() if path in ln)
    assert line.startswith(f"{bad}:") and line.split(":")[1].isdigit(), line
    assert "Traceback" not in run.stderr and run.stdout == ""


@pytest.mark.parametrize(("doc", "path", "text"), [
    ({"apiVersion": "k8s.otterize.com/v2beta1", "kind": "ClientIntents",
      "metadata": {"name": "x", "namespace": "payments"},
      "spec": {"workload": {"name": "payments-api"},
               "targets": [{"kubernetes": {"name": "nope.payments"}}]}},
     "$.spec.targets[0].kubernetes.name", "unknown workload 'payments/nope'"),
    ({"apiVersion": "k8s.otterize.com/v2beta1", "kind": "ClientIntents",
      "metadata": {"name": "x", "namespace": "payments"},
      "spec": {"workload": {"name": "payments-api"},
               "targets": [{"kubernetes": {"name": "a"}, "service": {"name": "b"}}]}},
     "$.spec.targets[0]", "exactly one of"),
    ({"apiVersion": "k8s.otterize.com/v2beta1", "kind": "ClientIntents",
      "metadata": {"name": "x", "namespace": "payments"},
      "spec": {"workload": {"name": "payments-api"}, "targetz": []}},
     "$.spec", "unknown field `targetz`"),
    ({"apiVersion": "k8s.otterize.com/v1alpha3", "kind": "ClientIntents",
      "metadata": {"name": "x", "namespace": "ledger"},
      "spec": {"service": {"name": "ledger-writer"},
               "calls": [{"name": "svc:nope.payments"}]}},
     "$.spec.calls[0].name", "unknown Service 'payments/nope'"),
    ({"apiVersion": "k8s.otterize.com/v1alpha3", "kind": "ClientIntents",
      "metadata": {"name": "x", "namespace": "ledger"},
      "spec": {"service": {"name": "ledger-writer"}, "calls": [{"name": "a", "type": "ftp"}]}},
     "$.spec.calls[0].type", "unknown call type 'ftp'"),
    ({"apiVersion": "k8s.otterize.com/v1", "kind": "ClientIntents",
      "metadata": {"name": "x", "namespace": "ledger"}, "spec": {}},
     "$.apiVersion", "unsupported ClientIntents apiVersion"),
])
def test_bad_client_intents_name_the_json_path(tmp_path: Path, doc: dict[str, Any], path: str,
                                               text: str) -> None:
    bad = tmp_path / "client-intents.yaml"
    bad.write_text("# an Otterize file\n" + yaml.safe_dump(doc, sort_keys=False))
    run = run_netfence("generate", "intents", "-f", str(bad), "--cluster-manifests",
                       str(MANIFESTS))
    assert run.code == 3, run.stderr
    assert path in run.stderr and text in run.stderr, run.stderr
    assert f"{bad}:" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(("protected", "text"), [
    ("[payments/payments-dbx]", "unknown workload 'payments/payments-dbx'"),
    ("[sandbox/notebook]", "namespace 'sandbox' is in no area of the model"),
    ("[payments]", "is not NS/NAME"),
])
def test_bad_protected_entries_name_the_json_path(tmp_path: Path, protected: str,
                                                  text: str) -> None:
    model = _protected_model(tmp_path, protected)
    run = run_netfence("generate", "all", "-f", str(model), "--cluster-manifests",
                       str(MANIFESTS))
    assert run.code == 3, run.stderr
    assert "$.spec.protected[0]" in run.stderr and text in run.stderr, run.stderr
    line = int(run.stderr.split(":")[1])
    assert "protected:" in model.read_text().splitlines()[line - 1]


def test_usage_errors_and_schema() -> None:
    no_cluster = run_netfence("generate", "intents", "-f", str(INTENTS))
    assert no_cluster.code == 2 and "--cluster-manifests" in no_cluster.stderr
    no_files = run_netfence("generate", "all", "--cluster-manifests", str(MANIFESTS))
    assert no_files.code == 2
    bad_sel = run_netfence("generate", "intents", "-f", str(INTENTS), "--cluster-manifests",
                           str(MANIFESTS), "--dns-selector", "k8s-app")
    assert bad_sel.code == 2
    two = run_netfence("generate", "all", "-f", str(MODEL), "-f", str(MODEL),
                       "--cluster-manifests", str(MANIFESTS))
    assert two.code == 3 and "exactly one SegmentationModel" in two.stderr
    schema = run_netfence("generate", "intents", "--schema")
    assert schema.code == 0
    got = json.loads(schema.stdout)
    assert {"ServiceIntentsFile", "ServiceTypeGroupFile"} <= set(got["$defs"])
    empty = run_netfence("generate", "intents", "-f", str(MODEL), "--cluster-manifests",
                         str(MANIFESTS))
    assert empty.code == 3 and "no ServiceIntents" in empty.stderr
