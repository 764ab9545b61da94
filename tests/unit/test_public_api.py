"""The public API and the architecture are guarded by tests (httpx's pattern)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import netfence

REPO = Path(__file__).resolve().parents[2]


def test_public_api_is_exactly_this() -> None:
    assert sorted(netfence.__all__) == ["Analysis", "analyze", "diff", "generate", "lint", "load",
                                        "resolve", "run_tests"]
    for name in netfence.__all__:
        assert getattr(netfence, name).__module__ == "netfence.api"


def test_import_contracts_hold() -> None:
    """import-linter: the pure core imports no I/O module and layers point one way."""
    exe = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(exe), "--config", str(REPO / ".importlinter")], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 3 kept, 0 broken." in proc.stdout


def test_core_has_no_clock_randomness_or_environment() -> None:
    """Enforced by ruff banned-api too; this catches imports that ruff's rule misses."""
    core = ["errors.py", "model", "selectors", "engine", "render", "checks", "synth", "nft"]
    banned = ("import random", "from random", "os.environ", "time.time(", "datetime.now(")
    for entry in core:
        path = REPO / "src" / "netfence" / entry
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for f in files:
            text = f.read_text(encoding="utf-8")
            for b in banned:
                assert b not in text, f"{f}: {b}"
