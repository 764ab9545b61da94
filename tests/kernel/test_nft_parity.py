"""The two renderings of one ruleset load identically: nft text (for review) and the JSON batch.

Both are loaded into the same node namespace in turn and read back with ``nft -j list``; the
listings must be equal apart from rule handles. The scenario mixes every construct the compiler
emits (tiers with Pass, audit logging, named ports, intervals, UDP ranges).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netfence import api
from netfence.nft import compile_node, full_json, render_text
from tests.kernel.bed import Bed, PodSpec
from tests.kernel.test_agent_truth import SCENARIOS, cluster_yaml


def listing(bed: Bed) -> list[str]:
    got = bed.nft_json("list", "table", "inet", "netfence")
    out = []
    for item in got["nftables"]:
        if "metainfo" in item:
            continue
        for body in item.values():
            body.pop("handle", None)
        out.append(json.dumps(item, sort_keys=True))
    return sorted(out)


def test_text_and_json_load_the_same_ruleset(make_bed: Callable[..., Bed],
                                             tmp_path: Path) -> None:
    bed = make_bed("par", [PodSpec("a", "10.244.1.11")])
    (tmp_path / "cluster.yaml").write_text(cluster_yaml(), encoding="utf-8")
    policies = [p for name in ("admin-pass-then-netpol-and-baseline", "audit-mode-never-denies",
                               "named-ports-differ-per-pod", "ipblock-except", "endport-range")
                for p in SCENARIOS[name]]
    (tmp_path / "policies.yaml").write_text("---\n".join(policies), encoding="utf-8")
    rs = compile_node(api.load([str(tmp_path)]), "node1")
    bed.nft(render_text(rs))
    from_text = listing(bed)
    bed.node_exec(["nft", "delete", "table", "inet", "netfence"], check=True)
    proc = bed.node_exec(["nft", "-j", "-f", "-"], input=json.dumps(full_json(rs)))
    assert proc.returncode == 0, proc.stderr
    from_json: list[Any] = listing(bed)
    assert len(from_text) > 40
    assert from_text == from_json
