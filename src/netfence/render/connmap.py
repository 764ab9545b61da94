"""Render a connectivity view in every ``-o`` format, streaming line by line."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence

from netfence.model.ports import PortSet
from netfence.render import escape
from netfence.render.table import table

FORMATS = ("table", "wide", "json", "yaml", "csv", "md", "dot", "mermaid")

Row = tuple[str, str, PortSet, bool]  # from, to, ports, depends on DNS


@functools.lru_cache(maxsize=65536)
def _endpoint_text(ident: str) -> str:
    return json.dumps(endpoint_json(ident), sort_keys=True)


@functools.lru_cache(maxsize=4096)
def _ports_text(ports: PortSet) -> tuple[str, str]:
    return json.dumps(str(ports)), json.dumps(ports.to_json(), sort_keys=True)


def endpoint_json(ident: str) -> dict[str, object]:
    """Structured form of an endpoint id: ns/kind/name, ns/name (pod), ns, or CIDRs."""
    if ident.startswith("zone:"):
        return {"type": "zone", "name": ident[len("zone:"):]}
    if ident[:1].isdigit() or ":" in ident.split(",")[0]:
        return {"type": "external", "addresses": ident}
    parts = ident.split("/")
    if len(parts) == 3:
        return {"type": "workload", "namespace": parts[0], "kind": parts[1], "name": parts[2]}
    if len(parts) == 2:
        return {"type": "pod", "namespace": parts[0], "name": parts[1]}
    return {"type": "namespace", "name": ident}


def render(rows: Sequence[Row], fmt: str, meta: dict[str, object]) -> Iterator[str]:
    """Yield chunks of the output; ``meta`` carries view, completeness and diagnostics."""
    if fmt in ("table", "wide"):
        headers = ["FROM", "TO", "PORTS"]
        if fmt == "wide":
            headers.append("NOTE")
        body = []
        for a, b, ports, dns in rows:
            r = [a, b, str(ports)]
            if fmt == "wide":
                r.append("depends on DNS" if dns else "")
            body.append(r)
        if not body:
            yield "No allowed connections.\n"
            return
        yield table(headers, body)
    elif fmt == "json":
        yield from _json(rows, meta)
    elif fmt == "yaml":
        yield from _yaml(rows, meta)
    elif fmt == "csv":
        yield "from,to,ports,dns_conditional\r\n"
        for a, b, ports, dns in rows:
            cells = [escape.csv_cell(a), escape.csv_cell(b), str(ports), str(dns).lower()]
            yield ",".join('"' + c.replace('"', '""') + '"' for c in cells) + "\r\n"
    elif fmt == "md":
        yield "| from | to | ports |\n|---|---|---|\n"
        for a, b, ports, dns in rows:
            note = " (depends on DNS)" if dns else ""
            yield f"| {escape.md(a)} | {escape.md(b)} | {escape.md(str(ports))}{note} |\n"
    elif fmt == "dot":
        yield "digraph connectivity {\n  rankdir=LR;\n  node [shape=box];\n"
        for a, b, ports, dns in rows:
            style = ", style=dashed" if dns else ""
            yield (f'  "{escape.dot(a)}" -> "{escape.dot(b)}" '
                   f'[label="{escape.dot(str(ports))}"{style}];\n')
        yield "}\n"
    elif fmt == "mermaid":
        yield "flowchart LR\n"
        ids: dict[str, str] = {}
        for a, b, ports, _dns in rows:
            for e in (a, b):
                if e not in ids:
                    ids[e] = f"n{len(ids)}"
                    yield f'  {ids[e]}["{escape.mermaid(e)}"]\n'
            yield f'  {ids[a]} -->|"{escape.mermaid(str(ports))}"| {ids[b]}\n'
    else:
        raise ValueError(f"unknown format {fmt}")


def _conn(a: str, b: str, ports: PortSet, dns: bool) -> dict[str, object]:
    return {"from": a, "to": b, "source": endpoint_json(a), "destination": endpoint_json(b),
            "ports": str(ports), "portSet": ports.to_json(), "dnsConditional": dns}


def _json(rows: Sequence[Row], meta: dict[str, object]) -> Iterator[str]:
    head = {"apiVersion": "netfence.dev/v1alpha1", "kind": "ConnectivityMap", **meta}
    text = json.dumps(head, sort_keys=True, indent=None)
    yield text[:-1] + ', "connections": ['
    for i, (a, b, ports, dns) in enumerate(rows):
        # the same bytes json.dumps(_conn(...), sort_keys=True) gives, from cached parts
        pstr, pjson = _ports_text(ports)
        yield (("" if i == 0 else ",") + '\n  {"destination": ' + _endpoint_text(b)
               + ', "dnsConditional": ' + ("true" if dns else "false")
               + ', "from": ' + json.dumps(a) + ', "portSet": ' + pjson
               + ', "ports": ' + pstr + ', "source": ' + _endpoint_text(a)
               + ', "to": ' + json.dumps(b) + "}")
    yield "\n]}\n"


def _yaml(rows: Sequence[Row], meta: dict[str, object]) -> Iterator[str]:
    # JSON is valid YAML; emit block-free flow mappings per line for streaming
    head = {"apiVersion": "netfence.dev/v1alpha1", "kind": "ConnectivityMap", **meta}
    for k in sorted(head):
        yield f"{k}: {json.dumps(head[k], sort_keys=True)}\n"
    yield "connections:\n" if rows else "connections: []\n"
    for a, b, ports, dns in rows:
        yield f"- {json.dumps(_conn(a, b, ports, dns), sort_keys=True)}\n"
