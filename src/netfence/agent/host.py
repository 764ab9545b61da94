"""Legacy host mode: the dead-man switch around applying a host ruleset.

Protecting a standalone machine can lock its operators out. So ``apply_with_deadman`` saves
our table as it was, applies the new ruleset in one batch, then waits for a confirmation (a
probe command that exits 0, or a confirm file touched after the apply, e.g. by
``netfence agent confirm`` from a new SSH session). Without it before the deadline, the saved
table is restored in one batch (or our table removed when there was none). Other tables
(firewalld, ufw, docker) are never touched.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netfence.agent.sync import RulesetApplier, Syncer
from netfence.nft import Ruleset
from netfence.nft.model import TABLE

__all__ = ["DEFAULT_CONFIRM_FILE", "apply_with_deadman", "probe_command", "restore_batch"]

DEFAULT_CONFIRM_FILE = "/run/netfence/confirm"


def restore_batch(listing: dict[str, Any] | None) -> dict[str, Any]:
    """One batch that puts table ``inet netfence`` back as ``listing`` showed it."""
    cmds: list[dict[str, Any]] = [
        {"add": {"table": {"family": "inet", "name": TABLE}}},
        {"delete": {"table": {"family": "inet", "name": TABLE}}},
    ]
    if listing is not None:
        items = [i for i in listing.get("nftables", []) if "metainfo" not in i]
        # order matters: map elements name chains, rules name sets and chains. So: the
        # table, sets and maps without elements, chains, rules, and the elements last.
        order = {"table": 0, "set": 1, "map": 1, "chain": 2, "rule": 3}
        elements: list[dict[str, Any]] = []
        for item in sorted(items, key=lambda i: order.get(next(iter(i)), 4)):
            (kind, obj), = item.items()
            obj = {k: v for k, v in obj.items() if k != "handle"}
            if kind in ("set", "map") and "elem" in obj:
                elements.append({"add": {"element": {
                    "family": obj["family"], "table": obj["table"], "name": obj["name"],
                    "elem": obj.pop("elem")}}})
            cmds.append({"add": {kind: obj}})
        cmds += elements
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *cmds]}


def probe_command(argv: list[str], timeout: float = 5.0) -> Callable[[], bool]:
    def run() -> bool:
        try:
            return subprocess.run(argv, capture_output=True, timeout=timeout,
                                  check=False).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False
    return run


def file_confirmed(path: str, since: float) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return Path(path).stat().st_mtime >= since
        except OSError:
            return False
    return check


def apply_with_deadman(applier: RulesetApplier, desired: Ruleset, timeout: float,
                       confirmed: Callable[[], bool], say: Callable[[str], None],
                       poll: float = 0.5) -> bool:
    """Apply; keep it only if ``confirmed()`` turns true within ``timeout`` seconds."""
    before = applier.listing()
    result = Syncer(applier, fail_open=True).sync(desired)
    if result.error:
        say(f"netfence agent: the kernel rejected the ruleset, nothing changed: {result.error}")
        return False
    say(f"netfence agent: applied; waiting up to {timeout:g} s for confirmation")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if confirmed():
            say("netfence agent: confirmed; keeping the new ruleset")
            return True
        time.sleep(poll)
    applier.apply(restore_batch(before))
    say("netfence agent: NOT confirmed in time; restored the previous ruleset")
    return False
