"""``netfence diff`` from the command line: directories and git refs (a real git repository
made in tmp_path), exit codes and formats."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_netfence

FINTECH = EXAMPLES / "fintech"
BASE = str(FINTECH / "manifests")
PR = str(FINTECH / "pull-request")
TIERS = str(FINTECH / "cluster-policies")


def test_same_input_is_equivalent_exit_0() -> None:
    run = run_netfence("diff", "-f", BASE, "--head", BASE)
    assert run.code == 0, run.stderr
    assert "No connectivity change" in run.stdout


def test_pull_request_opening_the_payments_db_is_caught() -> None:
    run = run_netfence("diff", "-f", BASE, "--head", BASE, "--head", PR, "-o", "json")
    assert run.code == 1, run.stderr
    doc = run.json()
    assert doc["summary"] == {"added": 1, "removed": 0, "changed": 0}
    change = doc["changes"][0]
    assert change["from"] == "shop-web/deployment/storefront"
    assert change["to"] == "payments/statefulset/payments-db"
    assert change["gained"] == "TCP 5432"
    assert any("payments-db-allow-storefront" in p for p in change["headPolicies"])
    assert any("denied" in p for p in change["basePolicies"])


def test_pull_request_is_also_caught_by_test() -> None:
    run = run_netfence("test", "-f", BASE, "-f", PR, "--expect",
                       str(FINTECH / "tests" / "connectivity.yaml"))
    assert run.code == 1
    assert "storefront is not a caller" in run.stdout


def test_admin_guardrail_makes_the_pull_request_harmless() -> None:
    run = run_netfence("diff", "-f", BASE, "-f", TIERS, "--head", BASE, "--head", PR,
                       "--head", TIERS)
    assert run.code == 0, run.stdout + run.stderr


def test_markdown_is_ready_for_a_pull_request_comment() -> None:
    run = run_netfence("diff", "-f", BASE, "--head", BASE, "--head", PR, "-o", "md")
    assert run.code == 1
    lines = run.stdout.splitlines()
    assert lines[0].startswith("### ") and "1 connection(s) added" in lines[0]
    assert "#### Opened (1)" in run.stdout
    assert "```mermaid" in run.stdout
    nomer = run_netfence("diff", "-f", BASE, "--head", BASE, "--head", PR, "-o", "md",
                         "--no-mermaid")
    assert "mermaid" not in nomer.stdout


@pytest.mark.parametrize("fmt", ["table", "csv", "dot", "mermaid"])
def test_formats(fmt: str) -> None:
    run = run_netfence("diff", "-f", BASE, "--head", BASE, "--head", PR, "-o", fmt)
    assert run.code == 1
    assert "payments-db" in run.stdout


def test_by_namespace_and_zone() -> None:
    ns = run_netfence("diff", "-f", BASE, "--head", BASE, "--head", PR, "--by", "namespace",
                      "-o", "json").json()
    # shop-web already reaches other pods in payments: the namespace view gains only 5432 if
    # that port was not allowed to any payments pod before
    for c in ns["changes"]:
        assert (c["from"], c["to"]) == ("shop-web", "payments")
    zone = run_netfence("diff", "-f", BASE, "--head", BASE, "--head", PR, "--by", "zone",
                        "-o", "json").json()
    for c in zone["changes"]:
        assert (c["from"], c["to"]) == ("zone:publicfrontal", "zone:backoffice")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def test_git_refs_without_touching_the_work_tree(tmp_path: Path) -> None:
    repo = tmp_path / "gitops"
    shutil.copytree(FINTECH / "manifests", repo / "deploy")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "add", "-A")
    _git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "base")
    shutil.copy(FINTECH / "pull-request" / "open-payments-db.yaml", repo / "deploy")
    _git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "add", "-A")
    _git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "pr")
    (repo / "deploy" / "open-payments-db.yaml").unlink()  # dirty work tree: head == base
    before = sorted(p.name for p in (repo / "deploy").iterdir())
    refs = run_netfence("diff", "--base", "HEAD~1", "--head", "HEAD", "-f", "deploy",
                        "-o", "json", cwd=repo)
    assert refs.code == 1, refs.stderr
    assert refs.json()["changes"][0]["to"] == "payments/statefulset/payments-db"
    assert refs.json()["base"] == "HEAD~1"
    work = run_netfence("diff", "--base", "HEAD~1", "-f", "deploy", cwd=repo)
    assert work.code == 0, work.stdout + work.stderr  # working tree equals the base again
    assert sorted(p.name for p in (repo / "deploy").iterdir()) == before
    bad = run_netfence("diff", "--base", "no-such-ref", "-f", "deploy", cwd=repo)
    assert bad.code == 3
    assert "no-such-ref" in bad.stderr and "Traceback" not in bad.stderr
