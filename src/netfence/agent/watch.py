"""The agent's live-cluster source: list, then watch, through the API (lightkube).

``ClusterWatch`` lists each kind the agent compiles from, then watches it from the list's
resourceVersion (re-listing on 410 Gone and, with a bounded backoff, on any other error). It
keeps one in-memory store per kind, sets ``changed`` whenever a stored object changes, and
``snapshot()`` returns the stores as the per-kind List JSON files that ``sources/kubectl.py``
produces (same names), for ``api.load_texts``.

The watches run on an asyncio loop in one background thread. That thread only decodes JSON
and updates the stores; the snapshot's text is built, and parsed by api, on the caller's thread.

Auth is lightkube's: ``--kubeconfig`` FILE, else the in-cluster service account, else
``$KUBECONFIG``, else ``~/.kube/config``; ``--context`` picks a kubeconfig context.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
from lightkube import ApiError, AsyncClient, KubeConfig, SingleConfig
from lightkube.generic_resource import (
    GenericGlobalResource,
    GenericNamespacedResource,
    create_api_info,
)

from netfence.errors import ClusterError, clean
from netfence.sources.files import TextFile

__all__ = ["KINDS", "ClusterWatch", "Kind"]


@dataclass(frozen=True, slots=True)
class Kind:
    """A resource to watch; ``name`` is kubectl's (the snapshot file is ``cluster:NAME``)."""

    name: str
    kind: str
    group: str
    versions: tuple[str, ...]  # tried in this order; 404 on all of them: not served
    namespaced: bool
    optional: bool = False  # not served (404): skipped; any other kind must be served

    @property
    def plural(self) -> str:
        return self.name.split(".", 1)[0]


_PNK = "policy.networking.k8s.io"
KINDS = (
    Kind("namespaces", "Namespace", "", ("v1",), False),
    Kind("nodes", "Node", "", ("v1",), False),
    Kind("pods", "Pod", "", ("v1",), True),
    Kind("services", "Service", "", ("v1",), True),
    Kind("networkpolicies.networking.k8s.io", "NetworkPolicy", "networking.k8s.io", ("v1",),
         True),
    Kind(f"clusternetworkpolicies.{_PNK}", "ClusterNetworkPolicy", _PNK,
         ("v1beta1", "v1alpha2"), False, True),
    Kind(f"adminnetworkpolicies.{_PNK}", "AdminNetworkPolicy", _PNK, ("v1alpha1",), False, True),
    Kind(f"baselineadminnetworkpolicies.{_PNK}", "BaselineAdminNetworkPolicy", _PNK,
         ("v1alpha1",), False, True),
)

# Fields the model never reads (sources/manifests.py: pods use status.podIP(s), hostIP and
# phase; nodes status.addresses) but that the API server rewrites often (heartbeats,
# conditions, resourceVersion): dropped, so such updates are not changes and cause no sync.
_POD_STATUS = frozenset({"podIP", "podIPs", "hostIP", "hostIPs", "phase"})
_NODE_STATUS = frozenset({"addresses"})
_META_DROP = frozenset({"managedFields", "resourceVersion"})


def trim(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """``obj`` without what the model does not read and the API server keeps rewriting."""
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and not _META_DROP.isdisjoint(meta):
        out["metadata"] = {k: v for k, v in meta.items() if k not in _META_DROP}
    keep = _POD_STATUS if kind == "Pod" else _NODE_STATUS if kind == "Node" else None
    status = out.get("status")
    if keep is not None and isinstance(status, dict):
        out["status"] = {k: v for k, v in status.items() if k in keep}
    return out


class _NotServed(Exception):
    pass


def status_code(exc: BaseException) -> int | None:
    """The HTTP status of an API error (a JSON Status or a bare response), else None."""
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.code:
        return int(exc.status.code)
    if isinstance(exc, httpx2.HTTPStatusError):
        return exc.response.status_code
    return None


def describe(exc: BaseException) -> str:
    """One line for the log: what went wrong talking to the API server, no traceback."""
    code = status_code(exc)
    if code is not None:
        what = {401: "unauthorized", 403: "forbidden", 404: "not found",
                410: "gone (resourceVersion expired)"}.get(code, "error")
        msg = ""
        if isinstance(exc, ApiError) and exc.status is not None:
            msg = exc.status.message or exc.status.reason or ""
        return f"{what} (HTTP {code})" + (f": {clean(msg)}" if msg else "")
    if isinstance(exc, httpx2.TimeoutException):
        return "timed out talking to the API server"
    if isinstance(exc, httpx2.TransportError):
        return f"cannot reach the API server: {clean(str(exc) or type(exc).__name__)}"
    return clean(f"{type(exc).__name__}: {exc}")


def load_config(context: str | None, kubeconfig: str | None) -> SingleConfig:
    """kubeconfig FILE, else in-cluster, else $KUBECONFIG or ~/.kube/config (with context)."""
    try:
        kc = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        got = kc.get(context_name=context)
    except Exception as exc:  # ConfigError, a missing key, bad YAML: one line, no traceback
        raise ClusterError(f"cannot load the cluster configuration: {describe(exc)}") from None
    if got is None:
        raise ClusterError("cannot load the cluster configuration: no context")
    return got


def _resource(kind: Kind, version: str) -> Any:
    """A lightkube resource class for ``kind`` at ``version``, holding raw JSON objects (not in
    lightkube's global registry, where its typed core models own these kinds)."""
    base = GenericNamespacedResource if kind.namespaced else GenericGlobalResource
    info = create_api_info(kind.group, version, kind.kind, kind.plural,
                           verbs=["list", "watch", "global_list", "global_watch"])
    return type(kind.kind, (base,), {"_api_info": info})


@dataclass
class _Store:
    kind: Kind
    api_version: str = ""
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    state: str = "pending"  # "listed" or "absent" once known
    error: str = ""
    logged: str = ""
    generation: int = 0
    text: tuple[int, TextFile] | None = None  # the snapshot file at a generation
    lists: int = 0
    # changes since the consumer last drained them; None: re-listed (take a full snapshot)
    events: list[tuple[str, tuple[str, str], dict[str, Any] | None]] | None = field(
        default_factory=list)


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _list_json(items: list[dict[str, Any]]) -> str:
    """A kubectl-style List, one item per line (diagnostics point at the object's line)."""
    body = ",\n".join(json.dumps(o, separators=(",", ":"), sort_keys=True) for o in items)
    return ('{"apiVersion": "v1", "kind": "List", "metadata": {}, "items": ['
            + (f"\n{body}\n" if items else "") + "]}\n")


class ClusterWatch:
    """List+watch the cluster in a background thread; ``snapshot()`` on the caller's."""

    def __init__(self, context: str | None = None, kubeconfig: str | None = None, *,
                 kinds: tuple[Kind, ...] = KINDS, say: Callable[[str], None] | None = None,
                 timeout: float = 10.0, server_timeout: int = 300, chunk_size: int = 500,
                 backoff: tuple[float, float] = (0.5, 30.0), absent_retry: float = 300.0,
                 ) -> None:
        self.context = context
        self.kubeconfig = kubeconfig
        self.say = say or (lambda _msg: None)
        self.timeout = timeout
        self.server_timeout = server_timeout
        self.chunk_size = chunk_size
        self.backoff = backoff
        self.absent_retry = absent_retry
        self.changed = threading.Event()  # set on every change; the consumer clears it
        self.ready = threading.Event()  # every kind listed (or, if optional, not served)
        self._stores = [_Store(k) for k in kinds]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Future[Any] | None = None
        self._thread: threading.Thread | None = None
        self._fatal = ""

    # -- caller's side ------------------------------------------------------------------------

    def start(self) -> None:
        """Load the configuration here (ClusterError if unusable), then watch in a thread."""
        config = load_config(self.context, self.kubeconfig)
        try:
            client = AsyncClient(config=config, timeout=httpx2.Timeout(self.timeout))
        except Exception as exc:  # e.g. a context without a user, an unreadable CA file
            raise ClusterError(f"cannot use the cluster configuration: {describe(exc)}"
                               ) from None
        self._thread = threading.Thread(target=self._thread_main, args=(client,),
                                        name="cluster-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_ready(self, timeout: float) -> bool:
        return self.ready.wait(timeout)

    def lists(self, name: str) -> int:
        """How many times kind ``name`` was listed (1 + re-lists)."""
        with self._lock:
            return next(s.lists for s in self._stores if s.kind.name == name)

    def errors(self) -> list[str]:
        with self._lock:
            return [s.error for s in self._stores if s.error] + (
                [self._fatal] if self._fatal else [])

    def snapshot(self) -> list[TextFile]:
        """The stores as List JSON files; ClusterError until every kind has been listed."""
        with self._lock:
            if not self.ready.is_set():
                waiting = [s.error or f"{s.kind.name}: not listed yet" for s in self._stores
                           if s.state == "pending"]
                raise ClusterError("cluster watch not ready: " + "; ".join(
                    ([self._fatal] if self._fatal else []) + waiting))
            plan = [(s, s.generation,
                     None if s.text and s.text[0] == s.generation else
                     [o for _k, o in sorted(s.objects.items())])
                    for s in self._stores if s.state == "listed"]
        out: list[TextFile] = []
        for s, gen, items in plan:
            if items is None:
                assert s.text is not None
                out.append(s.text[1])
                continue
            tf = TextFile(f"cluster:{s.kind.name}", _list_json(items), True)
            with self._lock:
                if s.generation == gen:
                    s.text = (gen, tf)
            out.append(tf)
        return out

    def drain(self) -> dict[str, list[tuple[str, tuple[str, str], dict[str, Any] | None]]] | None:
        """Object changes per kind since the last drain (``MODIFIED`` carries the object as
        stored, ``DELETED`` None), or None when a kind was re-listed or dropped meanwhile: then
        only a full ``snapshot()`` is right. Either way the log starts afresh."""
        with self._lock:
            whole = any(s.events is None for s in self._stores)
            out = {s.kind.name: s.events for s in self._stores if s.events}
            for s in self._stores:
                s.events = []
        return None if whole else out

    # -- the watch thread ---------------------------------------------------------------------

    def _thread_main(self, client: AsyncClient) -> None:
        try:
            asyncio.run(self._main(client))
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # never a traceback from a daemon thread
            with self._lock:
                self._fatal = f"cluster watch stopped: {describe(exc)}"
            self.say(f"netfence agent: {self._fatal}")

    async def _main(self, client: AsyncClient) -> None:
        try:
            tasks = [asyncio.ensure_future(self._run(client, s)) for s in self._stores]
            gathered = asyncio.gather(*tasks)
            with self._lock:
                self._loop = asyncio.get_running_loop()
                self._task = gathered
            if self._stop.is_set():
                gathered.cancel()
            await gathered
        finally:
            with self._lock:
                self._loop = self._task = None
            await client.close()

    def _delay(self, failures: int) -> float:
        low, high = self.backoff
        return float(min(high, low * 2 ** max(failures - 1, 0)) * random.uniform(0.5, 1.0))

    async def _run(self, client: AsyncClient, s: _Store) -> None:
        failures = 0
        while True:
            try:
                res, rv = await self._list(client, s)
            except _NotServed:
                await asyncio.sleep(self.absent_retry)
                continue
            except Exception as exc:
                failures += 1
                self._failed(s, "list", exc)
                await asyncio.sleep(self._delay(failures))
                continue
            try:
                events = client.watch(res, namespace="*" if s.kind.namespaced else None,
                                      resource_version=rv, server_timeout=self.server_timeout)
                async for typ, obj in events:
                    self._event(s, typ, obj)
                    failures = 0
            except Exception as exc:
                failures += 1
                if status_code(exc) == 410:  # resourceVersion too old: list again
                    self.say(f"netfence agent: cluster watch: {s.kind.name}: resourceVersion "
                             f"{rv} expired (410 Gone): re-listing")
                    if failures > 1:
                        await asyncio.sleep(self._delay(failures - 1))
                    continue
                self._failed(s, "watch", exc)
                await asyncio.sleep(self._delay(failures))

    async def _list(self, client: AsyncClient, s: _Store) -> tuple[Any, str]:
        for version in s.kind.versions:
            res = _resource(s.kind, version)
            listing = client.list(res, namespace="*" if s.kind.namespaced else None,
                                  chunk_size=self.chunk_size)
            try:
                items = [dict(o) async for o in listing]
            except Exception as exc:
                if status_code(exc) == 404:
                    continue
                raise
            rv = listing.resourceVersion
            api_version = f"{s.kind.group}/{version}" if s.kind.group else version
            self._replace(s, api_version, items)
            return res, rv
        if not s.kind.optional:
            raise ClusterError(f"{s.kind.name} is not served by the API server (404 for "
                               f"{', '.join(s.kind.versions)})")
        self._absent(s)
        raise _NotServed

    # -- store updates (the watch thread; under the lock) -----------------------------------

    def _normal(self, s: _Store, obj: dict[str, Any]) -> dict[str, Any]:
        out = trim(obj, s.kind.kind)
        out["apiVersion"] = s.api_version
        out["kind"] = s.kind.kind
        return out

    def _notify(self, s: _Store) -> None:
        s.generation += 1
        self.changed.set()

    def _check_ready(self) -> None:
        if not self.ready.is_set() and all(s.state != "pending" for s in self._stores):
            self.ready.set()
            self.changed.set()

    def _replace(self, s: _Store, api_version: str, items: list[dict[str, Any]]) -> None:
        with self._lock:
            s.api_version = api_version
            objects = {_key(o): self._normal(s, o) for o in items}
            if objects != s.objects or s.state != "listed":
                s.objects = objects
                s.events = None
                self._notify(s)
            s.state = "listed"
            s.lists += 1
            recovered, s.error, s.logged = s.logged, "", ""
            self._check_ready()
        if recovered:
            self.say(f"netfence agent: cluster watch: {s.kind.name}: listed again")

    def _event(self, s: _Store, typ: str, obj: Any) -> None:
        new = self._normal(s, dict(obj))
        key = _key(new)
        with self._lock:
            if typ == "DELETED":
                if s.objects.pop(key, None) is not None:
                    if s.events is not None:
                        s.events.append(("DELETED", key, None))
                    self._notify(s)
            elif typ in ("ADDED", "MODIFIED") and s.objects.get(key) != new:
                s.objects[key] = new
                if s.events is not None:
                    s.events.append(("MODIFIED", key, new))
                self._notify(s)

    def _absent(self, s: _Store) -> None:
        with self._lock:
            first = s.state != "absent"
            if s.objects or s.state == "listed":
                s.objects = {}
                s.events = None
                self._notify(s)
            s.state = "absent"
            s.error = ""
            self._check_ready()
        if first:
            self.say(f"netfence agent: cluster watch: {s.kind.name} is not served by the API "
                     "server (not installed): skipped")

    def _failed(self, s: _Store, what: str, exc: BaseException) -> None:
        msg = str(exc) if isinstance(exc, ClusterError) else describe(exc)
        with self._lock:
            s.error = f"{what} {s.kind.name}: {msg}"
            repeat = s.logged == msg
            s.logged = msg
        if not repeat:
            self.say(f"netfence agent: cluster watch: {what} {s.kind.name}: {msg} "
                     "(retrying with backoff)")
