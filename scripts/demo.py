"""`make demo`: the main job on the bundled fintech example, as a user would run it; then the
same example regenerated from its zone model and intents: model -> policies -> map -> tests."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EX = "examples/fintech"
NF = [sys.executable, "-m", "netfence"]
# the example's namespaces and workloads with the generated policies instead of the hand-written
# ones (filled in by main())
GEN = Path(tempfile.gettempdir()) / "netfence-demo" / "generated-cluster"

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
    ("Model -> policies: generate the example's policies from its zone model and intents; "
     "the engine proves them exact",
     ["generate", "all", "-f", f"{EX}/model", "-f", f"{EX}/intents",
      "--cluster-manifests", f"{EX}/manifests", "--check"], (0,)),
    ("Policies -> map: the generated policies on the example's workloads, by zone",
     ["map", "-f", str(GEN), "--by", "zone"], (0,)),
    ("Map -> tests: the example's connectivity tests pass on the generated policies",
     ["test", "-f", str(GEN), "--expect", f"{EX}/tests/connectivity.yaml"], (0,)),
]


def _cluster_without_policies() -> None:
    """GEN: the example's namespaces and workloads (no hand-written policy)."""
    shutil.rmtree(GEN, ignore_errors=True)
    GEN.mkdir(parents=True)
    manifests = ROOT / EX / "manifests"
    for f in [manifests / "00-namespaces.yaml", *sorted(manifests.glob("*-workloads.yaml"))]:
        shutil.copy(f, GEN / f.name)


def main() -> int:
    _cluster_without_policies()
    for title, args, ok in STEPS:
        print(f"\n=== {title}\n$ netfence {shlex.join(args)}\n", flush=True)
        if args[0] == "generate":  # show the proof and a summary, not 100 policies of YAML
            proc = subprocess.run([*NF, *args], cwd=ROOT, check=False, capture_output=True,
                                  text=True)
            (GEN / "generated.yaml").write_text(proc.stdout)
            docs = proc.stdout.count("kind: NetworkPolicy")
            print(f"{docs} NetworkPolicies generated (YAML on stdout; saved as "
                  f"{GEN / 'generated.yaml'} next to the example's namespaces and workloads)")
            sys.stderr.write(proc.stderr)
        else:
            proc = subprocess.run([*NF, *args], cwd=ROOT, check=False)
        if proc.returncode not in ok:
            print(f"demo step failed with exit code {proc.returncode}", file=sys.stderr)
            return proc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
