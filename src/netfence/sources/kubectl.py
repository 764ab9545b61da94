"""Read a live cluster through ``kubectl get -o json`` (kubectl's own auth; ECOSYSTEM.md).

Tests replace ``kubectl`` on PATH with a recorded fake and say so.
"""

from __future__ import annotations

import shutil
import subprocess

from netfence.errors import ClusterError
from netfence.sources.files import TextFile

RESOURCES = (
    "namespaces", "nodes", "pods", "deployments.apps", "statefulsets.apps", "daemonsets.apps",
    "replicasets.apps", "replicationcontrollers", "jobs.batch", "cronjobs.batch", "services",
    "networkpolicies.networking.k8s.io",
)
OPTIONAL = (
    "clusternetworkpolicies.policy.networking.k8s.io",
    "adminnetworkpolicies.policy.networking.k8s.io",
    "baselineadminnetworkpolicies.policy.networking.k8s.io",
)


def read_cluster(context: str | None, kubeconfig: str | None,
                 timeout: float = 60.0) -> list[TextFile]:
    exe = shutil.which("kubectl")
    if exe is None:
        raise ClusterError("kubectl not found on PATH (needed for --cluster)")
    base = [exe]
    if kubeconfig:
        base += ["--kubeconfig", kubeconfig]
    if context:
        base += ["--context", context]
    out: list[TextFile] = []
    for res in RESOURCES + OPTIONAL:
        cmd = [*base, "get", res, "-A", "-o", "json"]
        if res in ("namespaces", "nodes") or res in OPTIONAL:
            cmd = [*base, "get", res, "-o", "json"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ClusterError(f"kubectl get {res} timed out after {timeout:.0f}s") from None
        if proc.returncode != 0:
            err = (proc.stderr.strip().splitlines() or ["no error text"])[-1]
            if res in OPTIONAL and ("the server doesn't have a resource type" in err
                                    or "NotFound" in err):
                continue
            if "Forbidden" in err or "forbidden" in err:
                raise ClusterError(f"kubectl get {res}: forbidden: {err[:200]}")
            raise ClusterError(f"kubectl get {res} failed: {err[:200]}")
        out.append(TextFile(f"cluster:{res}", proc.stdout, True))
    return out
