"""Truth tables for Kubernetes NetworkPolicy connectivity, run through `netfence test`.

The scenarios live in tests/truth/np/<scenario-id>/: `policies.yaml` holds NetworkPolicies (and,
for a few scenarios, extra pods or namespaces) and `cases.yaml` a ConnectivityTest. They follow the
layout of the upstream e2e suite (kubernetes test/e2e/network/netpol): namespaces x, y, z; pods a,
b, c; ports 80/81 on TCP, UDP and SCTP; the shared cluster is tests/truth/np/_base/.

Every expected verdict was derived by hand from Kubernetes semantics (the rule is stated in the
header comment of each cases.yaml, with the SEMANTICS.md item ids), never by running netfence:
this suite is an independent oracle. A failure means netfence or the oracle is wrong; decide
which from the Kubernetes documentation, never by copying netfence's verdict into the table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

TRUTH = Path(__file__).resolve().parents[1] / "truth" / "np"
BASE_DIR = TRUTH / "_base"
MIN_SCENARIOS = 45
VERDICTS = frozenset({"allow", "deny"})
PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
CASE_KEYS = frozenset({"name", "from", "to", "port", "protocol", "expect"})
MAX_REPORTED = 60


class CliRun(Protocol):
    """The part of conftest's `Run` this module uses."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any: ...


Netfence = Callable[..., CliRun]


def _scenarios() -> list[Path]:
    return sorted(p for p in TRUTH.iterdir() if p.is_dir() and not p.name.startswith("_"))


SCENARIOS = _scenarios()


def _load_cases(scenario: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load((scenario / "cases.yaml").read_text(encoding="utf-8"))
    assert doc["apiVersion"] == "netfence.dev/v1alpha1"
    assert doc["kind"] == "ConnectivityTest"
    assert doc["metadata"]["name"] == scenario.name
    cases = doc["spec"]["cases"]
    assert isinstance(cases, list)
    assert cases, f"{scenario.name}: no cases"
    return cases


def _describe(result: dict[str, Any]) -> str:
    return (
        f"  {result.get('name')!r}: {result.get('from')} -> {result.get('to')} "
        f"{result.get('port')}/{result.get('protocol')} expected {result.get('expect')}, "
        f"got {result.get('verdict')}\n      {result.get('explanation')}"
    )


def test_suite_has_enough_scenarios() -> None:
    assert len(SCENARIOS) >= MIN_SCENARIOS, [p.name for p in SCENARIOS]
    assert (BASE_DIR / "cluster.yaml").is_file()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_truth_files_are_well_formed(scenario: Path) -> None:
    """Static checks that need no netfence: the tables parse and say what they mean."""
    objects = [
        d for d in yaml.safe_load_all((scenario / "policies.yaml").read_text(encoding="utf-8"))
        if d is not None
    ]
    assert objects, f"{scenario.name}: policies.yaml has no objects"
    for obj in objects:
        assert {"apiVersion", "kind", "metadata"} <= obj.keys(), obj
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace"), obj["metadata"]
    assert any(o["kind"] == "NetworkPolicy" for o in objects)

    cases = _load_cases(scenario)
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), f"{scenario.name}: duplicate case names"
    for case in cases:
        assert set(case) == CASE_KEYS, case
        assert case["expect"] in VERDICTS, case
        assert case["protocol"] in PROTOCOLS, case
        assert isinstance(case["port"], int | str), case
        assert isinstance(case["from"], str) and isinstance(case["to"], str), case
    assert {c["expect"] for c in cases} <= VERDICTS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_truth_np(scenario: Path, netfence: Netfence) -> None:
    cases = _load_cases(scenario)
    expected = {c["name"]: c["expect"] for c in cases}
    run = netfence(
        "test",
        "-f", str(BASE_DIR),
        "-f", str(scenario / "policies.yaml"),
        "--expect", str(scenario / "cases.yaml"),
        "-o", "json",
    )
    try:
        report = run.json()
    except ValueError as exc:
        pytest.fail(
            f"{scenario.name}: no JSON on stdout (exit {run.code}): {exc}\n"
            f"stdout: {run.stdout[:2000]}\nstderr: {run.stderr[:2000]}"
        )
    results: list[dict[str, Any]] = report["results"]

    # Judge against our own table, not only netfence's `passed` flag.
    wrong = [r for r in results if r.get("verdict") != expected.get(r.get("name", ""))]
    flagged = [r for r in results if not r.get("passed")]
    if wrong or flagged:
        shown = (wrong or flagged)[:MAX_REPORTED]
        pytest.fail(
            f"{scenario.name}: {len(wrong)} verdicts differ from the truth table, "
            f"{len(flagged)} results not passed (exit {run.code}):\n"
            + "\n".join(_describe(r) for r in shown)
            + (f"\n  ... and {len(wrong or flagged) - len(shown)} more"
               if len(wrong or flagged) > len(shown) else "")
        )

    got_names = [str(r.get("name")) for r in results]
    assert len(results) == len(cases), (
        f"{scenario.name}: {len(cases)} cases written, {len(results)} results; "
        f"missing {sorted(set(expected) - set(got_names))[:20]}"
    )
    assert sorted(got_names) == sorted(expected), f"{scenario.name}: result names differ"
    assert all(r.get("expect") == expected[r["name"]] for r in results), (
        f"{scenario.name}: netfence read a different `expect` than the file says"
    )
    assert report["summary"]["failed"] == 0, report["summary"]
    assert report["summary"]["passed"] == len(cases), report["summary"]
    assert run.code == 0, f"{scenario.name}: exit {run.code}\nstderr: {run.stderr[:2000]}"
