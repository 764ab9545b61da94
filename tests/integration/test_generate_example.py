"""The fintech example regenerated from its model and intents (issue 6): model -> policies ->
tests. ``netfence generate all`` on ``examples/fintech/model`` + ``examples/fintech/intents``
proves its output exact, the example's own connectivity tests pass on it (87 cases alone, 93
with the cluster tiers), and it means exactly what the hand-written policies mean together
with the tiers (``netfence diff``). Without any one generated policy, either nothing changes
(it was redundant) or the self-check finds the gap; the example's tests find many of them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from netfence import api
from netfence.sources.intents import load_intents
from netfence.sources.zones import load_models
from netfence.synth.intents import (
    WorkloadIndex,
    intended_egress_addresses,
    intended_ingress,
    protected_exclusions,
    resolve,
    verify_intents,
)
from netfence.synth.verify import verify
from tests.conftest import EXAMPLES, run_netfence

FINTECH = EXAMPLES / "fintech"
MODEL = FINTECH / "model"
INTENTS = FINTECH / "intents"
MANIFESTS = FINTECH / "manifests"
TIERS = FINTECH / "cluster-policies"
TESTS = FINTECH / "tests"
# the cluster without its hand-written policies: namespaces and workloads only
CLUSTER = [MANIFESTS / "00-namespaces.yaml", *sorted(MANIFESTS.glob("*-workloads.yaml"))]


def _args(flag: str, paths: list[Path]) -> list[str]:
    return [a for p in paths for a in (flag, str(p))]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = run_netfence("generate", "all", "-f", str(MODEL), "-f", str(INTENTS),
                       "--cluster-manifests", str(MANIFESTS), "--check")
    assert run.code == 0, run.stderr
    assert "fintech: proof: exact:" in run.stderr and "intents: proof: exact:" in run.stderr
    out = tmp_path_factory.mktemp("generated") / "generated.yaml"
    out.write_text(run.stdout)
    return out


def test_generated_example_passes_the_example_tests(generated: Path) -> None:
    alone = run_netfence("test", *_args("-f", [*CLUSTER, generated]), "--expect",
                         str(TESTS / "connectivity.yaml"), "-o", "json")
    results = alone.json()["results"]
    assert alone.code == 0 and len(results) == 87, [r["name"] for r in results
                                                    if not r["passed"]]
    tiers = run_netfence("test", *_args("-f", [*CLUSTER, generated, TIERS]), "--expect",
                         str(TESTS), "-o", "json")
    results = tiers.json()["results"]
    assert tiers.code == 0 and len(results) == 93, [r["name"] for r in results
                                                    if not r["passed"]]


def test_generated_example_means_the_hand_written_one(generated: Path) -> None:
    """With the cluster tiers on both sides (the example's intended state), no connection
    differs from the 98 hand-written policies. (Without the tiers, the generated model
    namespaces may open connections to the two namespaces that are not onboarded, whose
    ingress only the Baseline tier fences; see docs/generate.md.)"""
    run = run_netfence("diff", "--strict", "-f", str(MANIFESTS), "-f", str(TIERS),
                       *_args("--head", [*CLUSTER, generated, TIERS]))
    assert run.code == 0, run.stdout + run.stderr
    assert "No connectivity change" in run.stdout


def test_generated_example_covers_the_platform(generated: Path) -> None:
    docs = [d for d in yaml.safe_load_all(generated.read_text()) if d]
    names = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs}
    for ns in ("ingress-public", "ingress-backoffice", "ingress-internal", "monitoring",
               "kube-system"):
        assert (ns, "netfence-default-deny") in names
    assert ("ingress-backoffice", "netfence-allow-clients-backoffice") in names
    assert ("ingress-internal", "netfence-allow-forward-internalservices") in names
    assert ("kube-system", "netfence-allow-dns-queries") in names
    assert ("monitoring", "netfence-allow-monitoring-scrape") in names
    assert ("monitoring", "netfence-allow-same-namespace") in names
    assert ("sandbox", "netfence-default-deny") not in names


def _checks(paths: list[str], cluster: list[str]) -> Any:
    """What ``generate all`` verifies, as a function of a cluster state (for dropped
    policies): (zone proof, intents proof)."""
    models, _ = load_models(paths)
    model = models[0]
    intents, _ = load_intents(paths, require=False)
    base = api.generate_all(paths, cluster)
    index = WorkloadIndex(base.state)
    exclusions, _ = protected_exclusions(
        zip(model.protected, model.protected_sources, model.protected_paths, strict=True), index)
    resolved, _ = resolve(intents, index, model.dns, tuple(model.fenced_namespaces()))

    def check(state: Any) -> tuple[Any, Any]:
        an = api.analyze(state)
        ev = an.evaluation
        zone = verify(model, ev, intended_ingress(resolved, ev.u),
                      intended_egress_addresses(resolved, ev.u), exclusions)
        return zone, verify_intents(resolved, ev, an.query,
                                    frozenset(model.fenced_namespaces()))

    return base, check


def test_every_generated_policy_is_needed_or_redundant() -> None:
    """Dropping any generated policy either changes no connection at all (it repeats what
    others allow: a namespace's default deny next to its allow policies, the intents inside the
    areas that the zone rules already allow...) or makes the self-check find a gap."""
    base, check = _checks([str(MODEL), str(INTENTS)], [str(MANIFESTS)])
    zone, intents = check(base.state)
    assert zone.ok and intents.ok, zone.gaps + intents.gaps
    policies = base.state.policies
    assert len(policies) == len(base.objects) > 100
    caught_by_tests = noticed = 0
    for i, pol in enumerate(policies):
        state = dataclasses.replace(base.state, policies=policies[:i] + policies[i + 1:])
        zone, intents = check(state)
        if zone.ok and intents.ok:
            changes, _ = api.diff(base.state, state)
            assert not changes, f"dropping {pol.ref} changes connections unnoticed"
            continue
        noticed += 1
        results, _ = api.run_tests(api.analyze(state), str(TESTS / "connectivity.yaml"))
        caught_by_tests += not all(r.passed for r in results)
    assert noticed >= len(policies) // 2, noticed
    # the hand-written cases were not written for this set, yet they notice many drops
    assert caught_by_tests >= len(policies) // 5, caught_by_tests


def test_a_dropped_policy_fails_the_example_tests(generated: Path, tmp_path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(generated.read_text()) if d]
    kept = [d for d in docs if (d["metadata"]["namespace"], d["metadata"]["name"]) != (
        "ingress-backoffice", "netfence-allow-clients-backoffice")]
    assert len(kept) == len(docs) - 1
    dropped = tmp_path / "dropped.yaml"
    dropped.write_text(yaml.safe_dump_all(kept, sort_keys=False))
    run = run_netfence("test", *_args("-f", [*CLUSTER, dropped]), "--expect",
                       str(TESTS / "connectivity.yaml"), "-o", "json")
    assert run.code == 1
    failed = [r["name"] for r in run.json()["results"] if not r["passed"]]
    assert failed == ["ingress: an office address (192.0.2.0/25) reaches the backoffice "
                      "controller"], failed
