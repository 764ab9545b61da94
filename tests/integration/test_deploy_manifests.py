"""deploy/ (Kubernetes manifests, Dockerfile, systemd unit) against the agent CLI they drive.

No cluster and no image build: every YAML file is parsed with PyYAML; the ClusterRole must be
read-only yet cover every resource the live-cluster reader lists; the DaemonSet's args, the
Dockerfile's ENTRYPOINT and the systemd unit's ExecStart must name flags and commands that
``netfence agent run --help`` (the real CLI, in a subprocess) lists, and must parse with the
real click command once Kubernetes' ``$(VAR)`` references are substituted. The checkers are
also run on bad input, so a regression cannot pass by checking nothing.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from netfence.cli import cli
from netfence.sources.kubectl import OPTIONAL, RESOURCES
from tests.conftest import REPO, run_netfence

DEPLOY = REPO / "deploy"
READ_VERBS = frozenset({"get", "list", "watch"})
FORBIDDEN_RESOURCES = frozenset({"secrets", "configmaps", "serviceaccounts/token"})
# fieldRef values a kubelet would substitute (any plausible value works for parsing)
FIELD_REFS = {"spec.nodeName": "node-a", "status.podIP": "192.0.2.10",
              "metadata.name": "netfence-agent-x", "metadata.namespace": "netfence-system"}
VAR_RE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

Doc = dict[str, Any]


# --- loading ------------------------------------------------------------------------------
def yaml_files() -> list[Path]:
    return sorted([*DEPLOY.glob("*.yaml"), *DEPLOY.glob("*.yml")])


@functools.cache
def documents() -> list[tuple[str, Doc]]:
    out: list[tuple[str, Doc]] = []
    for path in yaml_files():
        with path.open(encoding="utf-8") as fh:
            for doc in yaml.safe_load_all(fh):
                if doc is not None:
                    out.append((path.name, doc))
    return out


def objects(kind: str) -> list[Doc]:
    return [d for _, d in documents() if d.get("kind") == kind]


def one(kind: str) -> Doc:
    found = objects(kind)
    assert len(found) == 1, f"expected one {kind} in deploy/, found {len(found)}"
    return found[0]


def agent_container() -> Doc:
    containers = one("DaemonSet")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "the DaemonSet runs one container (the agent)"
    container: Doc = containers[0]
    return container


@functools.cache
def run_help() -> str:
    got = run_netfence("agent", "run", "--help")
    assert got.code == 0, got.stderr
    return got.stdout


@functools.cache
def run_flags() -> frozenset[str]:
    """Every option spelling in ``netfence agent run --help`` (-f, --filename, ...)."""
    flags: set[str] = set()
    for line in run_help().splitlines():
        m = re.match(r"^  (-\S.*?)(?:\s{2,}|$)", line)  # the option column of click's help
        if m:
            flags.update(re.findall(r"(?<![\w-])--?[A-Za-z0-9][\w-]*", m.group(1)))
    return frozenset(flags)


# --- checkers (also exercised on bad input below) ------------------------------------------
def flag_problems(args: list[str], flags: frozenset[str]) -> list[str]:
    """Arguments that look like options but are not options of ``agent run``."""
    bad = []
    for arg in args:
        if not arg.startswith("-") or re.fullmatch(r"-\d+(\.\d+)?", arg):
            continue
        name = arg.split("=", 1)[0]
        if name not in flags:
            bad.append(arg)
    return bad


def rbac_problems(role: Doc) -> list[str]:
    """Anything in a ClusterRole beyond get/list/watch on named resources (no secrets)."""
    bad = []
    rules = role.get("rules") or []
    if role.get("aggregationRule"):
        bad.append("aggregationRule (can pull in other roles' permissions)")
    for i, rule in enumerate(rules):
        verbs = set(rule.get("verbs") or [])
        if not verbs:
            bad.append(f"rule {i}: no verbs")
        if verbs - READ_VERBS:
            bad.append(f"rule {i}: verbs {sorted(verbs - READ_VERBS)}")
        if rule.get("nonResourceURLs"):
            bad.append(f"rule {i}: nonResourceURLs")
        for fld in ("apiGroups", "resources"):
            if "*" in (rule.get(fld) or []):
                bad.append(f"rule {i}: '*' in {fld}")
        for res in rule.get("resources") or []:
            if res in FORBIDDEN_RESOURCES or res.split("/")[0] in FORBIDDEN_RESOURCES:
                bad.append(f"rule {i}: {res}")
    return bad


def substitute(args: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' $(VAR) expansion; an undefined reference fails (k8s would pass it on
    literally, which the agent would then reject or misread)."""
    out = []
    for arg in args:
        missing = [v for v in VAR_RE.findall(arg) if v not in env]
        assert not missing, f"{arg!r} refers to undefined variable(s) {missing}"
        out.append(VAR_RE.sub(lambda m: env[m.group(1)], arg))
    return out


def container_env(container: Doc) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env."""
    env: dict[str, str] = {}
    configmaps = {c["metadata"]["name"]: c.get("data") or {} for c in objects("ConfigMap")}
    for src in container.get("envFrom") or []:
        ref = src.get("configMapRef")
        assert ref is not None, f"only configMapRef envFrom is expected: {src}"
        assert ref["name"] in configmaps, f"envFrom names missing ConfigMap {ref['name']}"
        env.update({(src.get("prefix") or "") + k: str(v)
                    for k, v in configmaps[ref["name"]].items()})
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = substitute([str(item["value"])], env)[0]
        else:
            path = item["valueFrom"]["fieldRef"]["fieldPath"]
            assert path in FIELD_REFS, f"unexpected fieldRef {path}"
            env[item["name"]] = FIELD_REFS[path]
    return env


def resolve(words: list[str]) -> click.Command:
    """The click command that ``netfence <words...>`` names (raises if there is none)."""
    cmd: click.Command = cli
    ctx = click.Context(cli, info_name="netfence")
    for word in words:
        assert isinstance(cmd, click.Group), f"{cmd.name!r} has no subcommand {word!r}"
        sub = cmd.get_command(ctx, word)
        assert sub is not None, f"no command {word!r} under {cmd.name!r}"
        cmd = sub
    return cmd


def parse(command: click.Command, args: list[str]) -> dict[str, Any]:
    """Parse ``args`` with the real command (types, choices, unknown options) without running
    it; returns its parameters."""
    ctx = command.make_context(command.name or "run", list(args))
    return dict(ctx.params)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) with line continuations joined and comments dropped."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    out = []
    for line in logical:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)  # exec (JSON) form: the agent is PID 1 and gets SIGTERM
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value


def systemd_exec_start(text: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [ln for ln in joined.splitlines() if ln.startswith("ExecStart=")]
    assert len(lines) == 1, "one ExecStart= line"
    return shlex.split(lines[0].removeprefix("ExecStart="))


# --- tests ----------------------------------------------------------------------------------
def test_every_yaml_file_parses_into_kubernetes_objects() -> None:
    files = yaml_files()
    assert {"daemonset.yaml", "rbac.yaml", "configmap.yaml"} <= {f.name for f in files}
    kinds = sorted(d.get("kind", "?") for _, d in documents())
    for name, doc in documents():
        assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), name
    for kind in ("Namespace", "ServiceAccount", "DaemonSet", "ClusterRole",
                 "ClusterRoleBinding", "ConfigMap"):
        assert kind in kinds, f"no {kind} in deploy/: {kinds}"
    namespace = one("Namespace")["metadata"]["name"]
    assert namespace == "netfence-system"
    for kind in ("ServiceAccount", "DaemonSet", "ConfigMap"):
        for obj in objects(kind):
            assert obj["metadata"].get("namespace") == namespace, (kind, obj["metadata"])


def test_kustomization_lists_every_manifest() -> None:
    kust = [d for _, d in documents() if d.get("kind") == "Kustomization"]
    assert len(kust) == 1
    listed = set(kust[0]["resources"])
    manifests = {f.name for f in yaml_files() if f.name != "kustomization.yaml"}
    assert listed == manifests
    images = {i["name"] for i in kust[0].get("images") or []}
    assert agent_container()["image"].split(":")[0] in images


def test_cluster_role_is_read_only() -> None:
    roles = objects("ClusterRole") + objects("Role")
    assert roles
    for role in roles:
        assert rbac_problems(role) == [], role["metadata"]["name"]


def test_cluster_role_covers_every_resource_the_cluster_reader_lists() -> None:
    """``kubectl get`` of any of these Forbidden = the agent cannot read the cluster at all."""
    granted: set[tuple[str, str, str]] = set()
    for rule in one("ClusterRole")["rules"]:
        for group in rule.get("apiGroups") or []:
            for res in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    granted.add((group, res, verb))
    for spec in RESOURCES + OPTIONAL:
        res, _, group = spec.partition(".")
        for verb in ("list", "get", "watch"):
            assert (group, res, verb) in granted, f"ClusterRole lacks {verb} on {spec}"


def test_binding_gives_the_role_to_the_daemonsets_service_account() -> None:
    binding = one("ClusterRoleBinding")
    role = one("ClusterRole")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": role["metadata"]["name"]}
    sa = one("ServiceAccount")["metadata"]
    pod = one("DaemonSet")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"],
                                    "namespace": sa["namespace"]}]


def test_help_lists_the_flags_the_manifests_rely_on() -> None:
    flags = run_flags()
    for flag in ("--node", "--cluster", "--metrics-address", "--flow-log", "--fail-open",
                 "--resync-interval", "--debounce", "-f", "--host", "--help"):
        assert flag in flags, (flag, sorted(flags))


def test_daemonset_args_are_flags_of_agent_run() -> None:
    container = agent_container()
    assert "command" not in container, "use the image ENTRYPOINT (netfence agent run)"
    args = [str(a) for a in container["args"]]
    assert flag_problems(args, run_flags()) == []
    params = parse(resolve(["agent", "run"]), substitute(args, container_env(container)))
    assert params["cluster"] is True
    assert params["node"] == FIELD_REFS["spec.nodeName"]
    assert not params["host_mode"] and not params["no_flow_log"]


def test_configmap_keys_all_reach_the_agent() -> None:
    """No setting in the ConfigMap that nothing reads (an invented setting would be a lie)."""
    args = " ".join(str(a) for a in agent_container()["args"])
    for cm in objects("ConfigMap"):
        for key in cm.get("data") or {}:
            assert f"$({key})" in args, f"ConfigMap key {key} is not used by the agent's args"


def test_metrics_port_probes_and_scrape_annotations_agree() -> None:
    ds = one("DaemonSet")
    pod = ds["spec"]["template"]
    container = agent_container()
    params = parse(resolve(["agent", "run"]),
                   substitute([str(a) for a in container["args"]], container_env(container)))
    host, _, port = params["metrics_address"].rpartition(":")
    assert host not in ("", "127.0.0.1", "localhost"), "probes and Prometheus cannot reach it"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == int(port)
    ann = pod["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == port and ann["prometheus.io/path"] == "/metrics"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] in ("metrics", int(port)) and get["path"] in ("/healthz", "/metrics")
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_daemonset_runs_on_every_node_with_least_privilege() -> None:
    pod = one("DaemonSet")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in pod["tolerations"]
    sc = agent_container()["securityContext"]
    assert sc["capabilities"]["add"] == ["NET_ADMIN"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc.get("privileged") is not True and sc["allowPrivilegeEscalation"] is False
    res = agent_container()["resources"]
    assert res["requests"] and res["limits"]


def test_flow_log_goes_to_the_host_path_volume() -> None:
    container = agent_container()
    params = parse(resolve(["agent", "run"]),
                   substitute([str(a) for a in container["args"]], container_env(container)))
    flow = Path(params["flow_log"])
    volumes = {v["name"]: v for v in one("DaemonSet")["spec"]["template"]["spec"]["volumes"]}
    mounts = [m for m in container["volumeMounts"]
              if flow.is_relative_to(m["mountPath"]) and "hostPath" in volumes[m["name"]]]
    assert mounts, f"{flow} is not on a hostPath mount"
    assert volumes[mounts[0]["name"]]["hostPath"]["path"] == "/var/log/netfence"


def test_dockerfile_entrypoint_is_an_existing_command() -> None:
    instructions = dockerfile_instructions((DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    final = instructions[last_from:]
    entry = [exec_form(rest) for word, rest in final if word == "ENTRYPOINT"]
    cmd = [exec_form(rest) for word, rest in final if word == "CMD"]
    assert entry, "the final stage has an ENTRYPOINT"
    words = entry[-1] + (cmd[-1] if cmd else [])
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["scripts"]
    assert words[0] in scripts and scripts[words[0]] == "netfence.cli:main", words
    assert words[1:3] == ["agent", "run"], words
    command = resolve(words[1:3])
    assert flag_problems(words[3:], run_flags()) == []
    assert command is resolve(["agent", "run"])
    # the local files it copies exist (a renamed lock file would break the build)
    for word, rest in instructions:
        if word == "COPY" and "--from=" not in rest:
            for src in shlex.split(rest)[:-1]:
                assert (REPO / src).exists(), f"COPY {src}: not in the repository"
    installs = " ".join(rest for word, rest in final if word == "RUN")
    for package in ("nftables", "python3"):
        assert re.search(rf"\b{package}\b", installs), f"runtime stage lacks {package}"


def test_systemd_unit_runs_agent_run_with_existing_flags() -> None:
    argv = systemd_exec_start((DEPLOY / "netfence-host.service").read_text(encoding="utf-8"))
    assert Path(argv[0]).name == "netfence" and argv[1:3] == ["agent", "run"], argv
    assert flag_problems(argv[3:], run_flags()) == []
    params = parse(resolve(["agent", "run"]), argv[3:])
    assert params["host_mode"] is True
    assert params["management"], "host mode needs a management CIDR (SSH failsafe)"
    assert params["addresses"], "without --address the host's policy is never entered"


# --- the checkers fail on bad input ----------------------------------------------------------
def test_checkers_reject_bad_manifests() -> None:
    flags = run_flags()
    assert flag_problems(["--node", "n", "--no-such-flag", "--debounce=0.1"], flags) == [
        "--no-such-flag"]
    assert flag_problems(["--metrics-port", "9617"], flags) == ["--metrics-port"]
    assert rbac_problems({"rules": [{"apiGroups": [""], "resources": ["pods"],
                                     "verbs": ["get", "patch"]}]})
    assert rbac_problems({"rules": [{"apiGroups": [""], "resources": ["secrets"],
                                     "verbs": ["get"]}]})
    assert rbac_problems({"rules": [{"apiGroups": ["*"], "resources": ["*"],
                                     "verbs": ["list"]}]})
    with pytest.raises(AssertionError):
        substitute(["--node", "$(NOT_DEFINED)"], {})
    with pytest.raises(click.UsageError):
        parse(resolve(["agent", "run"]), ["--debounce", "soon"])
    with pytest.raises(AssertionError):
        resolve(["agent", "serve"])
