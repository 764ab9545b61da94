"""`make demo`: the main job on the bundled fintech example, as a user would run it."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EX = "examples/fintech"
NF = [sys.executable, "-m", "netfence"]

STEPS: list[tuple[str, list[str], tuple[int, ...]]] = [
    ("Who may talk to whom, by namespace (NetworkPolicies + Admin/Baseline tiers)",
     ["map", "-f", f"{EX}/manifests", "-f", f"{EX}/cluster-policies", "--by", "namespace"],
     (0,)),
    ("Every connection into the payments database, by workload",
     ["map", "-f", f"{EX}/manifests", "-f", f"{EX}/cluster-policies",
      "--to", "payments/statefulset/payments-db"], (0,)),
    ("Explain an ALLOWED connection: payments-api -> payments-db on the named port 'postgres'",
     ["explain", "-f", f"{EX}/manifests", "-f", f"{EX}/cluster-policies",
      "payments/payments-api", "payments/payments-db", "--port", "postgres"], (0,)),
    ("Explain a DENIED connection: the storefront may not reach the payments database",
     ["explain", "-f", f"{EX}/manifests", "-f", f"{EX}/cluster-policies",
      "shop-web/storefront", "payments/payments-db", "--port", "5432"], (0,)),
    ("Connectivity tests as code (what CI runs)",
     ["test", "-f", f"{EX}/manifests", "-f", f"{EX}/cluster-policies",
      "--expect", f"{EX}/tests"], (0,)),
    ("Lint: mistakes and zero-trust gaps (findings below --fail-on high are reported, exit 0)",
     ["lint", "-f", f"{EX}/manifests", "-f", f"{EX}/cluster-policies"], (0,)),
    ("A pull request opens the payments database: the semantic diff catches it (exit 1)",
     ["diff", "-f", f"{EX}/manifests", "--head", f"{EX}/manifests",
      "--head", f"{EX}/pull-request"], (1,)),
    ("Generate the area policies from the zone model; the engine proves them exact",
     ["generate", "zones", "-f", f"{EX}/model/segmentation.yaml",
      "--cluster-manifests", f"{EX}/manifests", "--check"], (0,)),
]


def main() -> int:
    for title, args, ok in STEPS:
        print(f"\n=== {title}\n$ netfence {shlex.join(args)}\n", flush=True)
        if args[0] == "generate":  # show the proof and a summary, not 60 policies of YAML
            proc = subprocess.run([*NF, *args], cwd=ROOT, check=False, capture_output=True,
                                  text=True)
            docs = proc.stdout.count("kind: NetworkPolicy")
            print(f"{docs} NetworkPolicies generated (YAML on stdout)")
            sys.stderr.write(proc.stderr)
        else:
            proc = subprocess.run([*NF, *args], cwd=ROOT, check=False)
        if proc.returncode not in ok:
            print(f"demo step failed with exit code {proc.returncode}", file=sys.stderr)
            return proc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
