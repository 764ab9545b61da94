"""`make bench`: netfence at fintech scale, and side by side with network-config-analyzer.

For each size (namespaces): `map -o json` wall time and peak RSS (a child process, as a user
runs it), load vs evaluation time in-process, `explain` latency (median of 100 random workload
pairs after load), `test` throughput (10,000 cases after load), and the same `map` question
answered by NCA (installed into its own virtualenv, with a time cap), with the ratio measured in
the same run. Prints a Markdown table; `--write` appends it to benchmarks/RESULTS.md.

    python benchmarks/run.py [--sizes 10,50,100,200,600,2000] [--nca-sizes 10,50,100]
                             [--nca-timeout 900] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from benchmarks.gen import generate  # noqa: E402
from netfence import api  # noqa: E402
from netfence.model.cluster import Pod  # noqa: E402
from netfence.model.ports import Protocol  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "netfence-bench"


@dataclass
class Row:
    namespaces: int
    pods: int
    policies: int
    map_s: float
    map_rss_mb: float
    load_s: float
    eval_s: float
    connections: int
    explain_ms: float
    test_s: float
    diff_s: float = 0.0
    lint_s: float | None = None
    nca_s: float | None = None
    nca_note: str = ""
    agree: str = ""


def cluster_dir(n: int) -> Path:
    d = CACHE / f"ns{n}"
    f = d / "cluster.yaml"
    if not f.exists():
        import yaml
        d.mkdir(parents=True, exist_ok=True)
        f.write_text(yaml.safe_dump_all(generate(n), sort_keys=False))
    return d


def timed_child(cmd: list[str], out: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and exit code of one child process."""
    start = time.perf_counter()
    with out.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def measure(n: int) -> Row:
    d = cluster_dir(n)
    out = d / "map.json"
    exe = str(Path(sys.executable).parent / "netfence")
    wall, rss, code = timed_child([exe, "map", "-f", str(d / "cluster.yaml"), "-o", "json"],
                                  out)
    if code not in (0, 3):
        raise SystemExit(f"netfence map failed at {n} namespaces (exit {code})")
    conns = len(json.loads(out.read_text())["connections"])
    t0 = time.perf_counter()
    state = api.load([str(d / "cluster.yaml")])
    t1 = time.perf_counter()
    analysis = api.analyze(state)
    t2 = time.perf_counter()
    rnd = random.Random(7)
    workloads = sorted({(p.workload.namespace, p.workload.kind, p.workload.name)
                        for p in state.pods})
    lat: list[float] = []
    for _ in range(100):
        a, b = rnd.choice(workloads), rnd.choice(workloads)
        s0 = time.perf_counter()
        srcs = api.resolve(state, f"{a[0]}/{a[1].lower()}/{a[2]}")
        dsts = api.resolve(state, f"{b[0]}/{b[1].lower()}/{b[2]}")
        text: list[str] = []
        for s in srcs:
            for t in dsts:
                if isinstance(t, Pod):
                    text += analysis.query.flow(s, t, Protocol.TCP, 8080).sentences()
        lat.append((time.perf_counter() - s0) * 1000)
    cases = []
    for i in range(10_000):
        a, b = rnd.choice(workloads), rnd.choice(workloads)
        cases.append({"name": f"c{i}", "from": f"{a[0]}/{a[1].lower()}/{a[2]}",
                      "to": f"{b[0]}/{b[1].lower()}/{b[2]}",
                      "port": rnd.choice((8080, 8443, 9090, 53, 9102)),
                      "expect": rnd.choice(("allow", "deny"))})
    tests = d / "tests.json"
    tests.write_text(json.dumps({"apiVersion": "netfence.dev/v1alpha1",
                                 "kind": "ConnectivityTest", "metadata": {"name": "bench"},
                                 "spec": {"cases": cases}}))
    s0 = time.perf_counter()
    results, _ = api.run_tests(analysis, str(tests))
    for r in results:  # what the table output prints: the explanation of every failure
        if not r.passed:
            r.explanation()
    test_s = time.perf_counter() - s0
    assert len(results) == 10_000
    # diff: the same cluster against a pull request that adds one policy, end to end (CLI)
    pr = d / "pr"
    pr.mkdir(exist_ok=True)
    ns0 = state.pods[-1].namespace
    (pr / "extra.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        f"metadata: {{name: pr-extra, namespace: {ns0}}}\n"
        "spec: {podSelector: {}, policyTypes: [Ingress], ingress: [{from: "
        "[{namespaceSelector: {}}], ports: [{port: 7777}]}]}\n")
    diff_s, _, code = timed_child([exe, "diff", "-f", str(d / "cluster.yaml"), "--head",
                                   str(d / "cluster.yaml"), "--head", str(pr)],
                                  d / "diff.txt")
    if code not in (0, 1):
        raise SystemExit(f"netfence diff failed at {n} namespaces (exit {code})")
    lint_s: float | None = None
    lint = subprocess.run([exe, "lint", "--help"], capture_output=True, check=False)
    if lint.returncode == 0:
        lint_s, _, _ = timed_child([exe, "lint", "-f", str(d / "cluster.yaml"), "-o", "json"],
                                   d / "lint.json")
    return Row(n, len(state.pods), len(state.policies), wall, rss, t1 - t0, t2 - t1, conns,
               statistics.median(lat), test_s, diff_s, lint_s)


def with_nca(row: Row, timeout: float) -> None:
    try:
        from benchmarks import nca
    except ImportError as exc:  # pragma: no cover - optional part
        row.nca_note = f"nca module missing: {exc}"
        return
    venv = CACHE / "nca-venv"
    exe = nca.ensure_nca(venv)
    plain = CACHE / f"ns{row.namespaces}-np-only"
    plain.mkdir(parents=True, exist_ok=True)
    import yaml
    docs = [o for o in generate(row.namespaces) if o["kind"] != "ClusterNetworkPolicy"]
    (plain / "cluster.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    ours_out = plain / "map.json"
    nf = str(Path(sys.executable).parent / "netfence")
    wall, _, _ = timed_child([nf, "map", "-f", str(plain / "cluster.yaml"), "-o", "json"],
                             ours_out)
    res = nca.run_nca(exe, plain, timeout)
    if res.seconds is None:
        row.nca_s = None
        row.nca_note = f">{timeout:.0f} s (capped); ratio > {timeout / wall:.0f}x"
        return
    row.nca_s = res.seconds
    row.nca_note = f"{res.seconds / wall:.0f}x (NP-only input: netfence {wall:.2f} s)"
    if res.connections is not None:
        ours = nca.netfence_connections(json.loads(ours_out.read_text()))
        only_ours, only_theirs, _ = nca.compare(ours, res.connections)
        row.agree = "identical" if not (only_ours or only_theirs) else (
            f"differ: +{only_ours}/-{only_theirs}")


def table(rows: list[Row]) -> str:
    head = ("| namespaces | pods | policies | map -o json | peak RSS | load | evaluate | "
            "connections | explain (median) | 10k tests | diff | lint | NCA --connectivity | "
            "ratio | agreement |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            "---|\n")
    body = ""
    for r in rows:
        nca_s = "-" if r.nca_s is None and not r.nca_note else (
            f"{r.nca_s:.1f} s" if r.nca_s is not None else "capped")
        body += (f"| {r.namespaces} | {r.pods} | {r.policies} | {r.map_s:.2f} s | "
                 f"{r.map_rss_mb:.0f} MiB | {r.load_s:.2f} s | {r.eval_s:.2f} s | "
                 f"{r.connections} | {r.explain_ms:.1f} ms | {r.test_s:.2f} s | "
                 f"{r.diff_s:.2f} s | "
                 f"{'-' if r.lint_s is None else f'{r.lint_s:.2f} s'} | {nca_s} | "
                 f"{r.nca_note or '-'} | {r.agree or '-'} |\n")
    return head + body


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,50,100,200,600,2000")
    ap.add_argument("--nca-sizes", default="10,50,100")
    ap.add_argument("--nca-timeout", type=float, default=900)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    nca_sizes = {int(x) for x in args.nca_sizes.split(",") if x}
    rows = []
    for n in sizes:
        row = measure(n)
        if n in nca_sizes:
            with_nca(row, args.nca_timeout)
        rows.append(row)
        print(table([row]).splitlines()[-1], flush=True)
    text = table(rows)
    print("\n" + text)
    if args.write:
        cmd = "python benchmarks/run.py " + " ".join(sys.argv[1:])
        with (ROOT / "benchmarks" / "RESULTS.md").open("a") as fh:
            fh.write(f"\n## {time.strftime('%Y-%m-%d')} on {platform.node() or 'host'} "
                     f"({os.cpu_count()} cores, Python {platform.python_version()})\n\n"
                     f"Command: `{cmd}`\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
