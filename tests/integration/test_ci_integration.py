"""The published CI integrations parse and only use verbs and flags netfence has."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import REPO, run_netfence

SOURCES = [REPO / "action.yml", REPO / ".pre-commit-hooks.yaml", REPO / "docs" / "ci.md"]


def test_action_is_a_composite_action() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"path", "fail-on", "sarif-file", "args"} <= set(action["inputs"])
    for step in action["runs"]["steps"]:
        assert step["shell"] == "bash"


def test_pre_commit_hooks_are_whole_repo() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"netfence-lint", "netfence-test"}
    for h in hooks:
        assert h["language"] == "python" and h["pass_filenames"] is False


def _uses() -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for path in SOURCES:
        text = path.read_text()
        text = re.sub(r"\\\n\s*", " ", text)  # join shell continuation lines
        for m in re.finditer(r"netfence (map|explain|test|diff|lint)\b([^\n'\"|>]*)", text):
            for flag in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", m.group(2)):
                out.add((m.group(1), flag))
            out.add((m.group(1), ""))
    return out


@pytest.mark.parametrize(("verb", "flag"), sorted(_uses()))
def test_documented_commands_exist(verb: str, flag: str) -> None:
    run = run_netfence(verb, "--help")
    assert run.code == 0, run.stderr
    if flag:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}\b", run.stdout), (verb, flag)
