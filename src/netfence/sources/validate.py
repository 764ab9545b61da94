"""Strict field validation with file:line diagnostics, as the Kubernetes API validates.

``Ctx`` carries where an object came from and collects diagnostics; helpers check one field
each and return ``None`` (after recording an error) when the value is unusable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from netfence.errors import Diagnostic, ObjectRef, Severity, SourceRef, clean
from netfence.model.net import IPSet
from netfence.model.policy import LabelSelector, Operator, Requirement
from netfence.model.ports import Protocol
from netfence.sources.parse import line_of

_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IANA = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def show(value: object) -> str:
    """Quote an offending value for a message (bounded, no control characters)."""
    return clean(repr(value) if not isinstance(value, str) else f"'{value}'")


def type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list",
            dict: "mapping", type(None): "null"}.get(type(value), type(value).__name__) \
        if type(value) in (bool, int, float, str, list, dict, type(None)) else (
            "mapping" if isinstance(value, dict) else
            "list" if isinstance(value, list) else type(value).__name__)


def valid_name(kind: str, name: str) -> bool:
    """RFC 1123: a label (<= 63, no dots) for namespaces, a subdomain (<= 253) otherwise."""
    if kind == "Namespace":
        return len(name) <= 63 and bool(_IANA.match(name)) and "." not in name
    return len(name) <= 253 and bool(_DNS_SUBDOMAIN.match(name))


class Ctx:
    """Diagnostics for one object: file, document index, object ref and line lookups."""

    def __init__(self, file: str, doc: int, line: int, obj: ObjectRef | None,
                 sink: list[Diagnostic]) -> None:
        self.file = file
        self.doc = doc
        self.line = line
        self.obj = obj
        self.sink = sink
        self.errors = 0

    def ref(self, line: int = 0) -> SourceRef:
        return SourceRef(self.file, line or self.line, self.doc, self.obj)

    def error(self, code: str, msg: str, line: int = 0) -> None:
        self.errors += 1
        self.sink.append(Diagnostic(Severity.ERROR, code, msg, self.ref(line)))

    def warn(self, code: str, msg: str, line: int = 0) -> None:
        self.sink.append(Diagnostic(Severity.WARNING, code, msg, self.ref(line)))

    # -- shapes ------------------------------------------------------------------------------
    def mapping(self, value: Any, path: str, line: int, allowed: set[str] | None = None,
                ) -> dict[str, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error("type", f"{path}: expected a mapping, got {type_name(value)} "
                       f"{show(value)}", line)
            return None
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.error("unknown-field", f"{path}: unknown field '{clean(key)}'",
                               line_of(value, key) or line)
        return value

    def seq(self, value: Any, path: str, line: int) -> list[Any] | None:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error("type", f"{path}: expected a list, got {type_name(value)} "
                       f"{show(value)}", line)
            return None
        return value

    def items(self, seq: list[Any], path: str, line: int, allowed: set[str],
              ) -> Iterator[tuple[str, int, dict[str, Any] | None]]:
        """(path, line, mapping or None after an error) for each item of a list of mappings."""
        for i, item in enumerate(seq):
            ip = f"{path}[{i}]"
            il = line_of(seq, i) or line
            yield ip, il, self.mapping(item, ip, il, allowed)

    def one_key(self, m: dict[str, Any], options: tuple[str, ...], path: str,
                line: int) -> str | None:
        """The single field of a one-of mapping (the API's minProperties=maxProperties=1)."""
        if len(m) != 1:
            self.error("ports", f"{path}: set exactly one of {', '.join(options)}", line)
            return None
        return next(iter(m))

    def string(self, value: Any, path: str, line: int) -> str | None:
        if not isinstance(value, str):
            self.error("type", f"{path}: expected a string, got {type_name(value)} "
                       f"{show(value)}", line)
            return None
        return value

    def integer(self, value: Any, path: str, line: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error("type", f"{path}: expected an integer, got {type_name(value)} "
                       f"{show(value)}", line)
            return None
        return value

    # -- Kubernetes values -------------------------------------------------------------------
    def label_key(self, key: Any, path: str, line: int) -> bool:
        if not isinstance(key, str):
            self.error("label-key", f"{path}: invalid label key {show(key)}", line)
            return False
        prefix, slash, name = key.rpartition("/")
        ok = bool(name) and len(name) <= 63 and bool(_LABEL_NAME.match(name))
        if slash and not prefix:
            ok = False
        elif prefix:
            ok = ok and len(prefix) <= 253 and bool(_DNS_SUBDOMAIN.match(prefix))
        if not ok:
            self.error("label-key", f"{path}: invalid label key {show(key)}", line)
        return ok

    def label_value(self, value: Any, path: str, line: int) -> bool:
        if not isinstance(value, str):
            self.error("label-value", f"{path}: label value must be a string, got "
                       f"{type_name(value)} {show(value)} (quote it)", line)
            return False
        if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
            self.error("label-value", f"{path}: invalid label value {show(value)}", line)
            return False
        return True

    def labels(self, value: Any, path: str, line: int) -> dict[str, str] | None:
        m = self.mapping(value, path, line)
        if m is None:
            return None
        ok = True
        for k, v in m.items():
            kl = line_of(m, k) or line
            ok = self.label_key(k, f"{path}", kl) and ok
            ok = self.label_value(v, f"{path}.{clean(str(k))}", kl) and ok
        return dict(m) if ok else None

    def selector(self, value: Any, path: str, line: int) -> LabelSelector | None:
        m = self.mapping(value, path, line, {"matchLabels", "matchExpressions"})
        if m is None:
            return None
        before = self.errors
        ml = self.labels(m.get("matchLabels"), f"{path}.matchLabels",
                         line_of(m, "matchLabels") or line) or {}
        reqs: list[Requirement] = []
        exprs = self.seq(m.get("matchExpressions"), f"{path}.matchExpressions",
                         line_of(m, "matchExpressions") or line) or []
        for i, e in enumerate(exprs):
            ep = f"{path}.matchExpressions[{i}]"
            el = line_of(exprs, i) or line
            em = self.mapping(e, ep, el, {"key", "operator", "values"})
            if em is None:
                continue
            key = em.get("key")
            if key is None:
                self.error("selector", f"{ep}: 'key' is required", el)
                continue
            self.label_key(key, f"{ep}.key", el)
            op_raw = em.get("operator")
            try:
                op = Operator(op_raw)
            except ValueError:
                self.error("selector-operator", f"{ep}.operator: unknown operator {show(op_raw)}"
                           " (In, NotIn, Exists, DoesNotExist)", line_of(em, "operator") or el)
                continue
            vals = self.seq(em.get("values"), f"{ep}.values", line_of(em, "values") or el)
            if vals is None:
                continue
            for v in vals:
                self.label_value(v, f"{ep}.values", line_of(em, "values") or el)
            if op in (Operator.IN, Operator.NOT_IN) and not vals:
                self.error("selector-values", f"{ep}: operator {op.value} needs at least one "
                           "value", el)
            if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and vals:
                self.error("selector-values", f"{ep}: operator {op.value} takes no values", el)
            reqs.append(Requirement(str(key), op, tuple(str(v) for v in vals)))
        if self.errors != before:
            return None
        return LabelSelector(tuple(sorted(ml.items())), tuple(reqs))

    def protocol(self, value: Any, path: str, line: int) -> Protocol | None:
        if value is None:
            return Protocol.TCP
        try:
            return Protocol(value)
        except ValueError:
            self.error("protocol", f"{path}: unsupported protocol {show(value)} "
                       "(TCP, UDP or SCTP)", line)
            return None

    def port_number(self, value: Any, path: str, line: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error("port", f"{path}: expected a port number, got {type_name(value)} "
                       f"{show(value)}", line)
            return None
        if not 1 <= value <= 65535:
            self.error("port-range", f"{path}: port {value} out of range 1-65535", line)
            return None
        return value

    def port_name(self, value: Any, path: str, line: int) -> str | None:
        if not isinstance(value, str):
            self.error("port-name", f"{path}: invalid port name {show(value)}", line)
            return None
        if (len(value) > 15 or not _IANA.match(value) or "--" in value
                or not any(c.isalpha() for c in value)):
            hint = " (a quoted number is a name, not a port)" if value.isdigit() else ""
            self.error("port-name", f"{path}: invalid port name {show(value)}: must be an "
                       "IANA service name (at most 15 lowercase letters, digits and '-', "
                       f"with a letter){hint}", line)
            return None
        return value

    def cidr(self, value: Any, path: str, line: int, strict_host: bool = False,
             ) -> IPSet | None:
        if not isinstance(value, str):
            self.error("cidr", f"{path}: expected a CIDR string, got {show(value)}", line)
            return None
        text = value
        if "/" not in text:
            self.error("cidr", f"{path}: invalid CIDR {show(value)} (missing prefix length)",
                       line)
            return None
        addr, _, plen = text.partition("/")
        if "." in addr and ":" not in addr:
            octets = addr.split(".")
            if len(octets) == 4 and all(o.isdigit() for o in octets) and any(
                    len(o) > 1 and o.startswith("0") for o in octets):
                self.warn("cidr-leading-zero", f"{path}: CIDR {show(value)} has leading zeros "
                          "(accepted by Kubernetes as decimal)", line)
                addr = ".".join(str(int(o)) for o in octets)
        try:
            import ipaddress
            net = ipaddress.ip_network(f"{addr}/{plen}", strict=False)
        except ValueError:
            self.error("cidr", f"{path}: invalid CIDR {show(value)}", line)
            return None
        if int(net.network_address) != int(ipaddress.ip_address(addr)):
            if strict_host:
                self.error("cidr-host-bits", f"{path}: CIDR {show(value)} has host bits set",
                           line)
                return None
            self.warn("cidr-host-bits", f"{path}: CIDR {show(value)} has host bits set; it "
                      f"means {net}", line)
        return IPSet.parse(str(net))


MODE_ANNOTATION = "netfence.dev/mode"


def audit_mode(ctx: Ctx, annotations: dict[str, Any]) -> bool:
    """``netfence.dev/mode``: ``audit`` (log what it would deny, change no verdict) or
    ``enforce``; anything else is reported and enforced."""
    mode = annotations.get(MODE_ANNOTATION)
    if mode is not None and mode not in ("audit", "enforce"):
        ctx.warn("policy-mode", f"metadata.annotations[{MODE_ANNOTATION}]: unknown mode "
                 f"{show(mode)} (audit or enforce): the policy is enforced")
    return mode == "audit"
