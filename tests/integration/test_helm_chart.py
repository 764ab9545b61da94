"""charts/netfence-netpol-lib rendered by a REAL Helm (tests/helm_render.py: the official helm
v4.1.4 binary, pinned, cross-checked with the Helm v4.2.3 Go SDK of helm-python-sdk).

The key check: for the fintech example's values, the chart's output means exactly what
``netfence generate zones`` generates (``netfence diff`` on the cluster's workloads exits 0).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import helm_render
from tests.conftest import EXAMPLES, REPO, run_netfence

LIB = REPO / "charts" / "netfence-netpol-lib"
EXAMPLE = REPO / "charts" / "netfence-netpol-example"
MODEL = EXAMPLES / "fintech" / "model" / "segmentation.yaml"
MANIFESTS = EXAMPLES / "fintech" / "manifests"
# The cluster without its hand-written policies: namespaces and workloads only.
CLUSTER = [MANIFESTS / "00-namespaces.yaml", *sorted(MANIFESTS.glob("*-workloads.yaml"))]
MODEL_NAMESPACES = ["customer", "ledger", "mobile-api", "notifications", "payments", "risk",
                    "shop-web"]
PLATFORM_NAMESPACES = ["ingress-backoffice", "ingress-internal", "ingress-public", "kube-system",
                       "monitoring"]
ANNOTATION = "netfence.dev/generated-from"


def _unavailable(exc: Exception) -> None:
    msg = f"no real Helm renderer could be installed: {exc}"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    try:
        return helm_render.helm_binary()
    except helm_render.HelmUnavailable as exc:
        _unavailable(exc)
        raise


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["metadata"]["namespace"], doc["metadata"]["name"]


def _model_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(MODEL.read_text())["spec"]
    return spec


@pytest.fixture(scope="session")
def rendered(helm_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chart") / "netfence-netpol-example.yaml"
    out.write_text(helm_render.render(EXAMPLE, None, "fintech", "default"))
    return out


def _generate(model: Path, out: Path) -> Path:
    run = run_netfence("generate", "zones", "-f", str(model))
    if run.code == 2 and "No such command" in run.stderr:
        pytest.skip("`netfence generate` is not available yet (docs/generate.md contract)")
    assert run.code == 0, run.stderr
    out.write_text(run.stdout)
    return out


def _diff(base: list[Path], head: list[Path], *extra: str) -> Any:
    args = ["diff", "--strict"]
    for p in base:
        args += ["-f", str(p)]
    for p in head:
        args += ["--head", str(p)]
    return run_netfence(*args, *extra)


# --- the example chart's values --------------------------------------------------------------


def test_example_values_are_the_model_spec() -> None:
    values = yaml.safe_load((EXAMPLE / "values.yaml").read_text())
    assert values == _model_spec()


def test_values_schema_accepts_the_example_and_rejects_mistakes() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((EXAMPLE / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    assert list(validator.iter_errors(_model_spec())) == []
    for path, bad in ((["endpointOnly"], ["sameAre"]),
                      (["areas", 0, "mayEnterr"], ["backoffice"]),
                      (["networks", 0, "ports", 0, "port"], 70000),
                      (["egress", "publicInternet"], "yes"),
                      (["protected", 0], "payments/payments-db"),
                      (["protected", 0, "podSelector"], {"a": "1", "b": "2"}),
                      (["platformNamespaces", 3, "sameNamespace"], "yes"),
                      (["areas", 0, "ingressController", "clientPorts", 0], 70000)):
        spec = copy.deepcopy(_model_spec())
        node: Any = spec
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = bad
        assert list(validator.iter_errors(spec)), path


SCALARS = ("null", "string", "integer", "number", "boolean")


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref and unwrap `anyOf: [X, null]` (msgspec's optional fields) and the object of
    `anyOf: [scalar..., object]` (a field written as a string or number, or as an object)."""
    while True:
        if "$ref" in node:
            parts = node["$ref"].lstrip("#/").split("/")
            node = root
            for part in parts:
                node = node[part]
        elif "anyOf" in node:
            rest = [n for n in (_resolve(a, root) for a in node["anyOf"])
                    if n.get("type") != "null"]
            if len(rest) > 1:
                rest = [n for n in rest if n.get("type") not in SCALARS]
                if not rest:  # scalars only (a number or a name): no shape
                    return {}
            assert len(rest) == 1, node
            node = rest[0]
        elif "allOf" in node and len(node["allOf"]) == 1:
            node = node["allOf"][0]
        else:
            return node


def _shape(node: dict[str, Any], root: dict[str, Any]) -> Any:
    """Property names, required names and nesting of a JSON Schema, nothing else."""
    node = _resolve(node, root)
    if "properties" in node:
        return {"required": sorted(node.get("required", [])),
                "properties": {k: _shape(v, root) for k, v in node["properties"].items()}}
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        inner = _shape(node["items"], root)
        return {"items": inner} if inner else None
    return None


def test_values_schema_mirrors_the_model_spec_types() -> None:
    """values.schema.json is hand-written; it must have the fields of the msgspec ModelSpec."""
    zones = pytest.importorskip("netfence.sources.zones")
    msgspec = pytest.importorskip("msgspec")
    theirs = msgspec.json.schema(zones.ModelSpec)
    ours = json.loads((EXAMPLE / "values.schema.json").read_text())
    for helm_only in ("global", "netfence-netpol-lib"):
        ours["properties"].pop(helm_only)
    assert _shape(ours, ours) == _shape(theirs, theirs)


# --- the library chart -------------------------------------------------------------------------


def test_library_chart_has_named_templates_only(helm_bin: Path) -> None:
    meta = yaml.safe_load((LIB / "Chart.yaml").read_text())
    assert meta["type"] == "library"
    templates = sorted(p.name for p in (LIB / "templates").iterdir())
    assert templates and all(t.startswith("_") and t.endswith(".tpl") for t in templates)
    run = helm_render.helm("template", "lib", str(LIB))
    assert run.returncode != 0 and "library charts are not installable" in run.stderr
    lint = helm_render.helm("lint", "--strict", str(LIB))
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_example_chart_passes_helm_lint_strict(helm_bin: Path, tmp_path: Path) -> None:
    chart = helm_render.prepare(EXAMPLE, tmp_path)
    lint = helm_render.helm("lint", "--strict", str(chart), home=tmp_path / ".helm")
    assert lint.returncode == 0, lint.stdout + lint.stderr


# --- the example chart's output ----------------------------------------------------------------


def _expected_names(ns: str) -> set[str]:
    common = {"netfence-default-deny", "netfence-allow-monitoring", "netfence-allow-dns"}
    platform = {
        "ingress-public": {"netfence-allow-clients-publicfrontal",
                           "netfence-allow-forward-publicfrontal"},
        "ingress-backoffice": {"netfence-allow-clients-backoffice",
                               "netfence-allow-forward-backoffice"},
        "ingress-internal": {"netfence-allow-clients-internalservices",
                             "netfence-allow-forward-internalservices"},
        "kube-system": {"netfence-allow-dns-queries"},
        "monitoring": {"netfence-allow-same-namespace", "netfence-allow-monitoring-scrape"}}
    if ns in platform:
        return common | platform[ns]
    names = {"netfence-default-deny", "netfence-allow-same-namespace",
             "netfence-allow-same-area", "netfence-allow-ingress-controller",
             "netfence-allow-monitoring", "netfence-allow-egress-cluster", "netfence-allow-dns",
             "netfence-allow-egress-networks"}
    area = {"shop-web": "publicfrontal", "mobile-api": "publicfrontal", "payments": "backoffice",
            "ledger": "backoffice", "risk": "backoffice", "customer": "internalservices",
            "notifications": "internalservices"}[ns]
    entering = {"publicfrontal": [], "backoffice": ["publicfrontal"],
                "internalservices": ["publicfrontal", "backoffice"]}[area]
    return names | {f"netfence-allow-from-{a}" for a in entering}


def test_chart_renders_the_namespace_policy_sets(rendered: Path) -> None:
    docs = _docs(rendered.read_text())
    assert all(d["apiVersion"] == "networking.k8s.io/v1" and d["kind"] == "NetworkPolicy"
               for d in docs)
    assert all(d["metadata"]["annotations"][ANNOTATION] == "helm/netfence-netpol-lib"
               for d in docs)
    keys = [_key(d) for d in docs]
    assert len(keys) == len(set(keys))
    by_ns: dict[str, set[str]] = {}
    for ns, name in keys:
        by_ns.setdefault(ns, set()).add(name)
    assert sorted(by_ns) == sorted(MODEL_NAMESPACES + PLATFORM_NAMESPACES)
    for ns, names in by_ns.items():
        assert names == _expected_names(ns), ns
    policies = {_key(d): d["spec"] for d in docs}
    assert policies["payments", "netfence-default-deny"] == {
        "podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # the protected database is left out of the zone rules by a NotIn on its one label
    notin = [{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["payments-db"]}]
    for name in ("netfence-allow-same-namespace", "netfence-allow-same-area",
                 "netfence-allow-from-publicfrontal", "netfence-allow-egress-cluster",
                 "netfence-allow-egress-networks"):
        assert policies["payments", name]["podSelector"] == {"matchExpressions": notin}, name
    assert policies["payments", "netfence-allow-ingress-controller"]["podSelector"] == {
        "matchLabels": {"endpoint": "true"}, "matchExpressions": notin}
    assert policies["payments", "netfence-allow-monitoring"]["podSelector"] == {}
    # platform namespaces: the controllers' clients and forwarding, DNS, scraping
    assert policies["ingress-backoffice", "netfence-allow-clients-backoffice"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"ipBlock": {"cidr": "192.0.2.0/25"}},
                              {"ipBlock": {"cidr": "203.0.113.0/28"}}],
                     "ports": [{"protocol": "TCP", "port": "http"},
                               {"protocol": "TCP", "port": "https"}]}]}
    forward = policies["ingress-internal", "netfence-allow-forward-internalservices"]
    assert forward["egress"] == [{"to": [
        {"namespaceSelector": {"matchLabels": {"networkArea": "internalservices"}},
         "podSelector": {"matchLabels": {"endpoint": "true"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "risk"}},
         "podSelector": {"matchLabels": {"endpoint": "true"}}}]}]
    assert policies["kube-system", "netfence-allow-dns-queries"]["ingress"] == [
        {"from": [{"namespaceSelector": {}}],
         "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]
    assert policies["monitoring", "netfence-allow-monitoring-scrape"]["egress"] == [
        {"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": "metrics"}]}]
    # risk: moved to backoffice by an exception that also admits the internal controller
    risk_ic = policies["risk", "netfence-allow-ingress-controller"]
    assert risk_ic["podSelector"] == {"matchLabels": {"endpoint": "true"}}
    assert [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for p in risk_ic["ingress"][0]["from"]] == ["ingress-backoffice", "ingress-internal"]
    assert policies["ledger", "netfence-allow-same-area"] == {
        "podSelector": {}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
            "networkArea": "backoffice"}}}]}]}
    assert policies["ledger", "netfence-allow-egress-networks"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.30.0.0/16"}}]},
        {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
         "ports": [{"protocol": "TCP", "port": 9092, "endPort": 9094}]}]
    assert policies["shop-web", "netfence-allow-monitoring"]["ingress"][0]["ports"] == [
        {"protocol": "TCP", "port": "metrics"}]
    assert policies["customer", "netfence-allow-dns"]["egress"][0]["ports"] == [
        {"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def test_helm_go_sdk_renders_the_same(rendered: Path) -> None:
    """An independent Helm build (the Go SDK in helm-python-sdk) gives the same objects."""
    try:
        version, text = helm_render.render_sdk(EXAMPLE, None, "fintech", "default")
    except helm_render.HelmUnavailable as exc:
        _unavailable(exc)
    assert version.startswith("v4.")
    assert sorted(_docs(text), key=_key) == sorted(_docs(rendered.read_text()), key=_key)


def _connections(run: Any) -> set[tuple[str, str, str]]:
    def name(e: dict[str, Any]) -> str:
        return f"{e.get('namespace', '')}/{e.get('name', e.get('addresses', ''))}"
    return {(name(c["source"]), name(c["destination"]), c["ports"])
            for c in run.json()["connections"]}


def test_netfence_loads_the_rendered_chart(rendered: Path) -> None:
    run = run_netfence("map", "--strict", "-f", str(rendered), "-f",
                       str(MANIFESTS / "00-namespaces.yaml"))
    assert run.code == 0, run.stderr
    run = run_netfence("map", "--strict", "-o", "json", "-f", str(rendered),
                       *[a for p in CLUSTER for a in ("-f", str(p))])
    assert run.code == 0, run.stderr
    assert run.json()["summary"]["policies"] == sum(map(len, map(
        _expected_names, MODEL_NAMESPACES + PLATFORM_NAMESPACES)))
    conns = _connections(run)
    # the exception: the internal ingress controller reaches risk's endpoint pods only
    ic = "ingress-internal/ingress-nginx-internal"
    assert (ic, "risk/risk-admin-ui", "all") in conns
    assert not any(s == ic and d == "risk/risk-scoring" for s, d, _ in conns)
    # prometheus scrapes on the named port only; backoffice never enters publicfrontal
    assert ("monitoring/prometheus", "risk/risk-scoring", "TCP 9102") in conns
    assert not any(s.startswith("payments/") and d.startswith("shop-web/") for s, d, _ in conns)


# --- the key check: the chart means what `netfence generate zones` generates -------------------


def _strict_variant(tmp: Path) -> tuple[Path, Path]:
    """The long-term strict model plus public egress, IPv6 and an exception-only namespace."""
    doc = yaml.safe_load(MODEL.read_text())
    spec = doc["spec"]
    spec["endpointOnly"] = ["sameArea", "ingressController", "otherAreas"]
    spec["clusterCIDRs"] = [*spec["clusterCIDRs"], "fd00:10::/56", "100.64.0.0/16"]
    spec["egress"] = {"publicInternet": True, "allAreas": ["kafka", "natonly-vpc"],
                      "publicPorts": [{"port": 443},
                                      {"protocol": "UDP", "port": 8000, "endPort": 8100}]}
    spec["areas"][2]["mayEnter"] = ["publicfrontal"]
    spec["exceptions"].append({"name": "sandbox-onboarding", "namespace": "sandbox",
                               "area": "internalservices",
                               "allowIngressFromIngressControllerOf": ["publicfrontal"]})
    model, values = tmp / "model.yaml", tmp / "values.yaml"
    model.write_text(yaml.safe_dump(doc, sort_keys=False))
    values.write_text(yaml.safe_dump(spec, sort_keys=False))
    return model, values


@pytest.fixture(params=["fintech", "strict-variant"])
def model_and_chart(request: pytest.FixtureRequest, helm_bin: Path,
                    tmp_path: Path) -> tuple[Path, Path]:
    if request.param == "fintech":
        model, values = MODEL, None
    else:
        model, values = _strict_variant(tmp_path)
    chart = tmp_path / "chart.yaml"
    chart.write_text(helm_render.render(EXAMPLE, values, "fintech", "default"))
    return model, chart


def test_chart_means_exactly_what_generate_generates(model_and_chart: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    model, chart = model_and_chart
    generated = _generate(model, tmp_path / "generated.yaml")
    assert {_key(d) for d in _docs(chart.read_text())} == {
        _key(d) for d in _docs(generated.read_text())}
    run = _diff([*CLUSTER, chart], [*CLUSTER, generated])
    assert run.code == 0, run.stdout + run.stderr
    assert "No connectivity change" in run.stdout


def test_diff_is_not_blind_to_a_different_model(rendered: Path, tmp_path: Path) -> None:
    """Control for the key check: the strict variant's chart output differs from the example's."""
    _, values = _strict_variant(tmp_path)
    other = tmp_path / "other.yaml"
    other.write_text(helm_render.render(EXAMPLE, values, "fintech", "default"))
    run = _diff([*CLUSTER, rendered], [*CLUSTER, other], "-o", "json")
    assert run.code == 1, run.stderr
    assert run.json()["summary"]["removed"] > 0


# --- errors --------------------------------------------------------------------------------------


def test_bad_values_fail_with_a_clear_message(helm_bin: Path, tmp_path: Path) -> None:
    spec = _model_spec()
    spec["exceptions"] = [{"name": "x", "namespace": "sandbox", "area": "nowhere"}]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    with pytest.raises(helm_render.HelmError, match='unknown area "nowhere"'):
        helm_render.render(EXAMPLE, bad, "fintech", "default")
    spec = _model_spec()
    spec["endpointOnly"] = ["sameAre"]
    bad.write_text(yaml.safe_dump(spec))
    with pytest.raises(helm_render.HelmError, match="endpointOnly"):
        helm_render.render(EXAMPLE, bad, "fintech", "default")
    spec = _model_spec()
    spec["protected"] = ["payments/payments-db"]  # NS/NAME: netfence looks the label up
    bad.write_text(yaml.safe_dump(spec))
    with pytest.raises(helm_render.HelmError, match="protected"):
        helm_render.render(EXAMPLE, bad, "fintech", "default")


# --- the building blocks -------------------------------------------------------------------------

BLOCKS = """\
{{ include "netfence-netpol-lib.denyAll" (dict "context" $) }}
{{ include "netfence-netpol-lib.allowDns" (dict "context" $) }}
{{ include "netfence-netpol-lib.sameNamespace" (dict "context" $ "direction" "ingress") }}
{{ include "netfence-netpol-lib.fromArea"
     (dict "context" $ "area" "backoffice" "ports" (list 8080)) }}
{{ include "netfence-netpol-lib.toArea" (dict "context" $ "area" "internalservices") }}
{{ include "netfence-netpol-lib.ingressController" (dict "context" $ "endpointOnly" true
     "controller" (dict "namespace" "ingress-public"
                        "podSelector" (dict "app.kubernetes.io/name" "ingress-nginx"))) }}
{{ include "netfence-netpol-lib.toNetworks" (dict "context" $
     "networks" (list (dict "name" "kafka" "cidrs" (list "10.20.0.0/16")
                            "ports" (list (dict "port" 9092 "endPort" 9094))))) }}
{{ include "netfence-netpol-lib.toPublicInternet" (dict "context" $
     "clusterCIDRs" (list "10.244.0.0/16" "fd00:10::/56") "ports" (list 443)) }}
{{ include "netfence-netpol-lib.egressCluster" (dict "context" $) }}
{{ include "netfence-netpol-lib.kubeApi" (dict "context" $ "cidrs" (list "172.20.0.1/32")) }}
{{ include "netfence-netpol-lib.monitoring" (dict "context" $) }}
{{ include "netfence-netpol-lib.endpointContract" (dict "context" $
     "service" "payments-api" "area" "publicfrontal"
     "clientLabels" (dict "payments-client" "true") "ports" (list (dict "port" 8080))) }}
{{ include "netfence-netpol-lib.denyAll" (dict "namespace" "other" "name" "My Deny!"
     "policyTypes" (list "Ingress") "labels" (dict "team" "x")) }}
{{ include "netfence-netpol-lib.dnsQueries" (dict "context" $
     "podSelector" (dict "k8s-app" "kube-dns")) }}
{{ include "netfence-netpol-lib.scrapeEgress" (dict "context" $
     "podSelector" (dict "app" "prometheus")) }}
{{ include "netfence-netpol-lib.fromNetworks" (dict "context" $
     "networks" (list (dict "name" "offices" "cidrs" (list "192.0.2.0/25")))
     "ports" (list "https" 8443)) }}
{{ include "netfence-netpol-lib.controllerForward" (dict "context" $ "area" "backoffice"
     "namespaces" (list "risk") "endpointOnly" true
     "podSelector" (dict "app" "ingress-nginx")) }}
{{ include "netfence-netpol-lib.egressCluster" (dict "context" $ "name" "shielded"
     "podSelectorExpressions" (list (dict "key" "app" "operator" "NotIn"
                                          "values" (list "db")))) }}
"""


def _blocks_chart(tmp: Path, template: str) -> Path:
    chart = tmp / "blocks-demo"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "blocks-demo", "version": "0.1.0",
        "dependencies": [{"name": "netfence-netpol-lib", "version": "0.1.0",
                          "repository": f"file://{LIB}"}]}))
    (chart / "templates" / "policies.yaml").write_text(template)
    return chart


def test_every_building_block(helm_bin: Path, tmp_path: Path) -> None:
    text = helm_render.render(_blocks_chart(tmp_path, BLOCKS), None, "demo", "payments")
    docs = {d["metadata"]["name"]: d for d in _docs(text)}
    assert all(d["metadata"]["annotations"][ANNOTATION] == "helm/netfence-netpol-lib"
               for d in docs.values())
    spec = {name: d["spec"] for name, d in docs.items()}
    assert {d["metadata"]["namespace"] for n, d in docs.items() if n != "my-deny"} == {
        "payments"}
    assert docs["my-deny"]["metadata"]["namespace"] == "other"
    assert docs["my-deny"]["metadata"]["labels"] == {"team": "x"}
    assert docs["default-deny-all"]["metadata"]["labels"] == {
        "app.kubernetes.io/instance": "demo", "app.kubernetes.io/managed-by": "Helm"}
    assert spec["my-deny"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert spec["allow-in-namespace"] == {"podSelector": {}, "policyTypes": ["Ingress"],
                                          "ingress": [{"from": [{"podSelector": {}}]}]}
    assert spec["allow-ingress-from-area-backoffice"]["ingress"] == [
        {"from": [{"namespaceSelector": {"matchLabels": {"networkArea": "backoffice"}}}],
         "ports": [{"protocol": "TCP", "port": 8080}]}]
    assert spec["allow-egress-to-area-internalservices"]["egress"] == [
        {"to": [{"namespaceSelector": {"matchLabels": {"networkArea": "internalservices"}}}]}]
    assert spec["allow-ingress-from-ingress-controller"]["podSelector"] == {
        "matchLabels": {"endpoint": "true"}}
    assert spec["allow-egress-to-network-kafka"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
         "ports": [{"protocol": "TCP", "port": 9092, "endPort": 9094}]}]
    public = spec["allow-egress-to-public-internet"]["egress"][0]
    assert public["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": [
            "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
            "10.244.0.0/16"]}},
        {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10", "fd00:10::/56"]}}]
    assert public["ports"] == [{"protocol": "TCP", "port": 443}]
    assert spec["allow-egress-to-cluster"]["egress"] == [{"to": [{"namespaceSelector": {}}]}]
    assert spec["allow-egress-to-kube-api"]["egress"][0]["ports"] == [
        {"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]
    assert "allow-ingress-from-monitoring-tcp-port-metrics" in spec
    assert "allow-egress-to-dns" in spec
    assert spec["allow-dns-queries"]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert spec["allow-dns-queries"]["ingress"][0]["from"] == [{"namespaceSelector": {}}]
    assert spec["allow-scrape-egress"]["egress"] == [
        {"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": "metrics"}]}]
    assert spec["allow-ingress-from-networks"]["ingress"] == [
        {"from": [{"ipBlock": {"cidr": "192.0.2.0/25"}}],
         "ports": [{"protocol": "TCP", "port": "https"}, {"protocol": "TCP", "port": 8443}]}]
    assert spec["allow-forward-to-area-backoffice"]["egress"] == [{"to": [
        {"namespaceSelector": {"matchLabels": {"networkArea": "backoffice"}},
         "podSelector": {"matchLabels": {"endpoint": "true"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "risk"}},
         "podSelector": {"matchLabels": {"endpoint": "true"}}}]}]
    assert spec["shielded"]["podSelector"] == {"matchExpressions": [
        {"key": "app", "operator": "NotIn", "values": ["db"]}]}
    contract = spec["allow-ingress-to-payments-api-from-area-publicfrontal-pod-payments-client-"
                    "true-tcp-port-8080"]
    assert contract == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "payments-api"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
            "networkArea": "publicfrontal"}},
            "podSelector": {"matchLabels": {"payments-client": "true"}}}],
            "ports": [{"protocol": "TCP", "port": 8080}]}]}


CONTRACT = """\
{{ include "netfence-netpol-lib.denyAll" (dict "context" $ "policyTypes" (list "Ingress")) }}
{{ include "netfence-netpol-lib.endpointContract" (dict "context" $ "service" "payments-api"
     "areas" (list "publicfrontal" "internalservices")
     "clientLabels" (dict "payments-client" "true") "ports" (list 8080)) }}
"""

CONTRACT_CLUSTER = """\
apiVersion: v1
kind: Namespace
metadata: {name: payments, labels: {networkArea: backoffice}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop-web, labels: {networkArea: publicfrontal}}
---
apiVersion: v1
kind: Namespace
metadata: {name: sandbox}
---
apiVersion: v1
kind: Pod
metadata: {name: payments-api, namespace: payments,
           labels: {app.kubernetes.io/name: payments-api}}
spec: {containers: [{name: api, image: api, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop-web, labels: {payments-client: "true"}}
spec: {containers: [{name: c, image: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: stranger, namespace: shop-web}
spec: {containers: [{name: c, image: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: unzoned, namespace: sandbox, labels: {payments-client: "true"}}
spec: {containers: [{name: c, image: c}]}
"""


def test_endpoint_contract_admits_exactly_the_labelled_clients_of_the_areas(
        helm_bin: Path, tmp_path: Path) -> None:
    text = helm_render.render(_blocks_chart(tmp_path, CONTRACT), None, "demo", "payments")
    (tmp_path / "policies.yaml").write_text(text)
    (tmp_path / "cluster.yaml").write_text(CONTRACT_CLUSTER)
    run = run_netfence("map", "--strict", "-o", "json", "--to", "payments/*",
                       "-f", str(tmp_path / "cluster.yaml"), "-f", str(tmp_path / "policies.yaml"))
    assert run.code == 0, run.stderr
    callers = {(s, p) for s, d, p in _connections(run) if d == "payments/payments-api"}
    assert callers == {("shop-web/client", "TCP 8080")}
