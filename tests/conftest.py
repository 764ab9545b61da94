"""Shared fixtures: run the real CLI in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@dataclass(frozen=True)
class Run:
    """Outcome of one `python -m netfence ...` invocation."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_netfence(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None, timeout: float = 120) -> Run:
    """Run the CLI exactly as a user would, with a bounded timeout."""
    full_env = dict(os.environ)
    full_env.pop("NO_COLOR", None)
    full_env["COLUMNS"] = "200"
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "netfence", *args],
        input=stdin, capture_output=True, text=True, env=full_env,
        cwd=str(cwd) if cwd else None, timeout=timeout, check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def netfence() -> Any:
    """The `run_netfence` function as a fixture."""
    return run_netfence
