"""``netfence lint`` through the real CLI (a subprocess, as a user runs it): exit codes, every
output format, file:line of each finding, SARIF validated against the OASIS schema, fingerprints
that survive line moves, suppressions, the bundled example.

Fixtures in tests/fixtures/lint/ mark each expected finding with a ``# lint: ID object``
comment on the line the finding must point at.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import REPO, run_netfence

FIXTURES = REPO / "tests" / "fixtures" / "lint"
EXAMPLE = ["-f", str(REPO / "examples/fintech/manifests"),
           "-f", str(REPO / "examples/fintech/cluster-policies")]
MARK = re.compile(r"# lint: (NF\d{3} [\w.-]+(?:; NF\d{3} [\w.-]+)*)\s*$")


def markers(*files: Path) -> set[tuple[str, str, str, int]]:
    """(check id, object name or namespace, file, line) from the fixtures' marker comments."""
    out = set()
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            m = MARK.search(line)
            if m:
                for item in m.group(1).split("; "):
                    cid, obj = item.split(" ")
                    out.add((cid, obj, str(f), n))
    return out


def found(doc: dict[str, Any]) -> set[tuple[str, str, str, int]]:
    out = set()
    for f in doc["findings"]:
        for key in (f["object"]["name"], f["object"]["namespace"]):
            out.add((f["id"], key, f["file"], f["line"]))
    return out


def sarif_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO / "schemas" / "sarif-schema-2.1.0.json").read_text(
        encoding="utf-8"))
    return data


# -- the bundled example -------------------------------------------------------------------------

def test_example_is_clean_at_the_default_fail_on() -> None:
    run = run_netfence("lint", *EXAMPLE)
    assert run.code == 0, run.stdout + run.stderr
    assert "--fail-on high: OK" in run.stdout
    assert " high " not in run.stdout and "critical" not in run.stdout.split("\n")[0]


def test_example_findings_are_the_documented_ones() -> None:
    """docs/lint.md explains each of these; a change here must change the docs too."""
    doc = run_netfence("lint", *EXAMPLE, "-o", "json").json()
    got = sorted({(f["id"], f["object"]["namespace"], f["object"]["name"])
                  for f in doc["findings"]})
    by_id: dict[str, int] = {}
    for cid, _, _ in got:
        by_id[cid] = by_id.get(cid, 0) + 1
    assert by_id == {"NF001": 1, "NF006": 2, "NF012": 7, "NF015": 23}, got
    assert ("NF001", "notifications", "allow-ingress-controller") in got
    assert {(n, x) for c, n, x in got if c == "NF006"} == {("", "legacy-bos"), ("", "sandbox")}
    assert {x for c, _, x in got if c == "NF012"} == {"allow-same-namespace"}
    text = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    for cid in by_id:
        assert cid in text


def test_example_fails_at_medium_and_without_cluster_policies() -> None:
    assert run_netfence("lint", *EXAMPLE, "--fail-on", "medium").code == 1
    # manifests alone: sandbox and legacy-bos are open to everything (NF008, high)
    run = run_netfence("lint", "-f", str(REPO / "examples/fintech/manifests"))
    assert run.code == 1 and "NF008" in run.stdout


# -- findings point at file:line ----------------------------------------------------------------

def test_each_finding_points_at_its_object_file_and_line() -> None:
    fixture = FIXTURES / "problems" / "cluster.yaml"
    run = run_netfence("lint", "-f", str(fixture), "-o", "json")
    assert run.code == 1
    doc = run.json()
    assert doc["complete"] is True and doc["failed"] is True
    expected = markers(fixture)
    assert expected <= found(doc), expected - found(doc)
    assert len(doc["findings"]) == len(expected)


def test_same_named_policies_in_two_namespaces_are_never_confused() -> None:
    files = sorted((FIXTURES / "same-name").glob("*.yaml"))
    doc = run_netfence("lint", "-f", str(FIXTURES / "same-name"), "-o", "json").json()
    expected = markers(*files)
    assert expected <= found(doc), expected - found(doc)
    names = {(f["object"]["namespace"], f["object"]["name"], f["id"]) for f in doc["findings"]}
    assert names == {("team-a", "allow-web", "NF002"), ("team-b", "allow-web", "NF011")}


# -- exit codes and options ----------------------------------------------------------------------

def test_fail_on_threshold() -> None:
    fixture = str(FIXTURES / "problems")
    assert run_netfence("lint", "-f", fixture).code == 1  # high findings
    assert run_netfence("lint", "-f", fixture, "--fail-on", "critical").code == 0
    assert run_netfence("lint", "-f", fixture, "--disable", "NF008,NF009").code == 0
    assert run_netfence("lint", "-f", fixture, "--disable", "NF008", "--disable", "NF009",
                        "--fail-on", "medium").code == 1


def test_bad_input_exits_3_never_1() -> None:
    run = run_netfence("lint", "-f", str(FIXTURES / "bad-input.yaml"))
    assert run.code == 3
    assert "bad-input.yaml:16: error: NetworkPolicy legacy/broken" in run.stderr
    doc = run_netfence("lint", "-f", str(FIXTURES / "bad-input.yaml"), "-o", "json")
    assert doc.code == 3 and doc.json()["complete"] is False
    assert run_netfence("lint", "-f", str(FIXTURES / "missing.yaml")).code == 3


def test_usage_errors_exit_2() -> None:
    fixture = str(FIXTURES / "problems")
    for args in (["--disable", "NF999"], ["--fail-on", "severe"], ["-o", "xml"],
                 ["--ingress-controller", "app in (a"]):
        run = run_netfence("lint", "-f", fixture, *args)
        assert run.code == 2, (args, run.stderr)
    assert run_netfence("lint").code == 2  # no input


def test_explain_and_list() -> None:
    run = run_netfence("lint", "--explain", "nf011")
    assert run.code == 0
    assert run.stdout.startswith("NF011 redundant-rule (severity low)")
    assert "netfence.dev/ignore-reason" in run.stdout
    assert run_netfence("lint", "--explain", "NF999").code == 2
    listing = run_netfence("lint", "--list")
    assert listing.code == 0
    assert len(re.findall(r"^NF\d{3} ", listing.stdout, re.M)) == 18
    assert "(opt-in)" in listing.stdout


def test_default_deny_egress_option() -> None:
    fixture = str(FIXTURES / "problems")
    ids = {f["id"] for f in run_netfence("lint", "-f", fixture, "-o", "json").json()[
        "findings"]}
    assert "NF007" not in ids
    doc = run_netfence("lint", "-f", fixture, "--default-deny", "both", "-o", "json").json()
    assert {f["object"]["name"] for f in doc["findings"] if f["id"] == "NF007"} == {
        "kube-system", "legacy"}
    doc = run_netfence("lint", "-f", fixture, "--default-deny", "none", "-o", "json").json()
    assert not {f["id"] for f in doc["findings"]} & {"NF006", "NF007"}


def test_ingress_controller_option_replaces_the_defaults() -> None:
    fixture = str(FIXTURES / "problems")
    run = run_netfence("lint", "-f", fixture, "--ingress-controller", "app=web", "-o", "json")
    assert "NF009" not in {f["id"] for f in run.json()["findings"]}


# -- suppressions --------------------------------------------------------------------------------

def test_suppressions_by_annotation() -> None:
    run = run_netfence("lint", "-f", str(FIXTURES / "suppressed.yaml"), "-o", "json")
    doc = run.json()
    by_id = {f["id"]: f for f in doc["findings"]}
    assert by_id["NF006"]["suppressed"] is True
    assert by_id["NF006"]["suppressionReason"].startswith("lifted from ECS")
    assert by_id["NF008"]["suppressed"] is False  # no reason: not applied ...
    assert by_id["NF017"]["object"]["name"] == "box"  # ... and reported
    assert run.code == 1
    assert doc["summary"]["suppressed"] == 1


# -- formats -------------------------------------------------------------------------------------

def test_sarif_validates_against_the_schema() -> None:
    run = run_netfence("lint", "-f", str(FIXTURES / "problems"), "-o", "sarif")
    assert run.code == 1
    log = run.json()
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    run0 = log["runs"][0]
    rules = run0["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(r["id"] for r in rules)
    for res in run0["results"]:
        rule = rules[res["ruleIndex"]]
        assert rule["id"] == res["ruleId"]
        phys = res["locations"][0]["physicalLocation"]
        assert phys["artifactLocation"]["uri"].endswith("cluster.yaml")
        assert phys["region"]["startLine"] >= 1
        assert rule["properties"]["security-severity"]


def test_sarif_suppressions_and_stdin_input_validate() -> None:
    log = run_netfence("lint", "-f", str(FIXTURES / "suppressed.yaml"), "-o", "sarif").json()
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    suppressed = [r for r in log["runs"][0]["results"] if r.get("suppressions")]
    assert len(suppressed) == 1 and suppressed[0]["ruleId"] == "NF006"
    text = (FIXTURES / "suppressed.yaml").read_text(encoding="utf-8")
    log = run_netfence("lint", "-f", "-", "-o", "sarif", stdin=text).json()
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    assert all("physicalLocation" not in r["locations"][0]
               for r in log["runs"][0]["results"])


def test_fingerprints_survive_moved_lines(tmp_path: Path) -> None:
    src = FIXTURES / "problems" / "cluster.yaml"
    moved = tmp_path / "cluster.yaml"
    docs = src.read_text(encoding="utf-8").split("\n---\n")
    # new comment lines on top and the documents in another order: every line moves
    moved.write_text("# moved\n# around\n" + "\n---\n".join(reversed(docs)), encoding="utf-8")
    shutil.copy(src, tmp_path / "orig.yaml")

    def prints(path: Path) -> dict[str, int]:
        log = run_netfence("lint", "-f", str(path), "-o", "sarif").json()
        return {r["partialFingerprints"]["netfenceFinding/v1"]:
                r["locations"][0]["physicalLocation"]["region"]["startLine"]
                for r in log["runs"][0]["results"]}

    before, after = prints(tmp_path / "orig.yaml"), prints(moved)
    assert set(before) == set(after) and len(before) == 10
    assert all(before[k] != after[k] for k in before)


def test_gitlab_code_quality() -> None:
    run = run_netfence("lint", "-f", str(FIXTURES / "problems"), "-o", "gitlab")
    issues = run.json()
    assert run.code == 1 and len(issues) == 10
    for i in issues:
        assert set(i) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert i["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert i["location"]["path"].endswith("cluster.yaml")
        assert i["location"]["lines"]["begin"] >= 1
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    assert {i["severity"] for i in issues} == {"critical", "major", "info"}


def test_junit() -> None:
    run = run_netfence("lint", "-f", str(FIXTURES / "problems"), "-o", "junit")
    assert run.code == 1
    root = ET.fromstring(run.stdout)
    cases = root.findall(".//testcase")
    failures = [c for c in cases if c.find("failure") is not None]
    assert {c.get("classname") for c in failures} == {"netfence.lint.NF008",
                                                      "netfence.lint.NF009"}
    assert root.get("failures") == "2"
    below = [c for c in cases if c.find("system-out") is not None]
    assert len(below) == 8  # medium and info findings: reported, not failing at high
    passing = {c.get("classname") for c in cases if c.find("failure") is None
               and c.find("system-out") is None}
    assert "netfence.lint.NF013" in passing


def test_json_document() -> None:
    doc = run_netfence("lint", "-f", str(FIXTURES / "problems"), "-o", "json").json()
    assert doc["kind"] == "LintReport" and doc["failOn"] == "high"
    assert doc["summary"]["high"] == 2 and doc["summary"]["total"] == 10
    assert [c["id"] for c in doc["checks"]][:3] == ["NF001", "NF002", "NF003"]
    for f in doc["findings"]:
        assert len(f["fingerprint"]) == 32 and f["severity"] in {"info", "low", "medium",
                                                                  "high", "critical"}


@pytest.mark.parametrize("fmt", ["table", "json", "sarif", "junit", "gitlab"])
def test_output_is_deterministic(fmt: str) -> None:
    a = run_netfence("lint", *EXAMPLE, "-o", fmt)
    b = run_netfence("lint", *EXAMPLE, "-o", fmt)
    assert a.code == 0 and a.stdout == b.stdout
