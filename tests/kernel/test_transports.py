"""Both transports load the same ruleset: ``nft -j -f -`` and in-process libnftables.

libnftables' Python binding (Debian ``python3-nftables``) exists for the system Python only,
so the in-process side runs ``/usr/bin/python3`` with this checkout on PYTHONPATH; the test
skips, saying why, when that interpreter lacks the module.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from netfence import api
from netfence.nft import compile_node, full_json
from tests.kernel.bed import Bed, PodSpec
from tests.kernel.test_agent_truth import SCENARIOS, cluster_yaml
from tests.kernel.test_nft_parity import listing

SYSTEM_PYTHON = "/usr/bin/python3"
SRC = str(Path(__file__).resolve().parents[2] / "src")
APPLY = ("import json, sys; from netfence.agent.sync import LibNftables; "
         "LibNftables().apply(json.load(sys.stdin))")


def test_nft_cli_and_libnftables_agree(make_bed: Callable[..., Bed], tmp_path: Path) -> None:
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import nftables, netfence.agent.sync"], capture_output=True,
        text=True, check=False, timeout=30, env={**os.environ, "PYTHONPATH": SRC},
    ) if os.path.exists(SYSTEM_PYTHON) else None
    if probe is None or probe.returncode != 0:
        why = probe.stderr.strip().splitlines()[-1] if probe and probe.stderr else "absent"
        pytest.skip(f"the system Python cannot import nftables and netfence ({why}); "
                    "apt install python3-nftables python3-yaml")
    bed = make_bed("trn", [PodSpec("a", "10.244.1.11")])
    (tmp_path / "cluster.yaml").write_text(cluster_yaml(), encoding="utf-8")
    policies = [p for name in ("admin-pass-then-netpol-and-baseline", "named-ports-differ-per-pod",
                               "ipblock-except") for p in SCENARIOS[name]]
    (tmp_path / "policies.yaml").write_text("---\n".join(policies), encoding="utf-8")
    batch = json.dumps(full_json(compile_node(api.load([str(tmp_path)]), "node1")))
    proc = bed.node_exec(["nft", "-j", "-f", "-"], input=batch)
    assert proc.returncode == 0, proc.stderr
    via_cli = listing(bed)
    bed.node_exec(["nft", "delete", "table", "inet", "netfence"], check=True)
    proc = bed.node_exec(["env", f"PYTHONPATH={SRC}", SYSTEM_PYTHON, "-c", APPLY], input=batch)
    assert proc.returncode == 0, proc.stderr
    assert len(via_cli) > 30
    assert listing(bed) == via_cli
