"""Render a semantic diff: table, json, md (pull-request comment), csv, dot, mermaid."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from netfence.engine.diff import Change
from netfence.render import escape
from netfence.render.table import table

FORMATS = ("table", "json", "md", "csv", "dot", "mermaid")
SYMBOL = {"added": "+", "removed": "-", "changed": "~"}
COLOUR = {"added": "#2da44e", "removed": "#cf222e", "changed": "#bf8700"}


def summary(changes: Sequence[Change]) -> dict[str, int]:
    out = {"added": 0, "removed": 0, "changed": 0}
    for c in changes:
        out[c.kind] += 1
    return out


def summary_line(changes: Sequence[Change], base: str, head: str) -> str:
    s = summary(changes)
    if not changes:
        return f"No connectivity change from {base} to {head}."
    return (f"{s['added']} connection(s) added, {s['removed']} removed, {s['changed']} "
            f"changed from {base} to {head}.")


def _delta(c: Change) -> str:
    if c.kind == "added":
        return f"+ {c.after}"
    if c.kind == "removed":
        return f"- {c.before}"
    parts = []
    if c.gained:
        parts.append(f"+ {c.gained}")
    if c.lost:
        parts.append(f"- {c.lost}")
    return "; ".join(parts)


def render(changes: Sequence[Change], fmt: str, base: str, head: str,
           meta: dict[str, object], mermaid_in_md: bool = True) -> Iterator[str]:
    if fmt == "table":
        if not changes:
            yield summary_line(changes, base, head) + "\n"
            return
        rows = [[SYMBOL[c.kind], c.src, c.dst, _delta(c),
                 "; ".join(c.base_policies) or "-", "; ".join(c.head_policies) or "-"]
                for c in changes]
        yield table(["", "FROM", "TO", "PORTS", "BASE DECIDED BY", "HEAD DECIDED BY"], rows)
        yield "\n" + summary_line(changes, base, head) + "\n"
    elif fmt == "json":
        doc = {"apiVersion": "netfence.dev/v1alpha1", "kind": "ConnectivityDiff",
               "base": base, "head": head, "summary": summary(changes), **meta,
               "changes": [c.to_json() for c in changes]}
        yield json.dumps(doc, indent=2, sort_keys=True) + "\n"
    elif fmt == "csv":
        yield "change,from,to,before,after,gained,lost,base_policies,head_policies\r\n"
        for c in changes:
            cells = [c.kind, c.src, c.dst, str(c.before), str(c.after), str(c.gained),
                     str(c.lost), "; ".join(c.base_policies), "; ".join(c.head_policies)]
            yield ",".join('"' + escape.csv_cell(x).replace('"', '""') + '"'
                           for x in cells) + "\r\n"
    elif fmt == "md":
        yield from _markdown(changes, base, head, mermaid_in_md)
    elif fmt == "dot":
        yield "digraph diff {\n  rankdir=LR;\n  node [shape=box];\n"
        for c in changes:
            yield (f'  "{escape.dot(c.src)}" -> "{escape.dot(c.dst)}" [label="'
                   f'{escape.dot(_delta(c))}", color="{COLOUR[c.kind]}"];\n')
        yield "}\n"
    elif fmt == "mermaid":
        yield from _mermaid(changes)
    else:
        raise ValueError(f"unknown format {fmt}")


def _mermaid(changes: Sequence[Change]) -> Iterator[str]:
    yield "flowchart LR\n"
    ids: dict[str, str] = {}
    for i, c in enumerate(changes):
        for e in (c.src, c.dst):
            if e not in ids:
                ids[e] = f"n{len(ids)}"
                yield f'  {ids[e]}["{escape.mermaid(e)}"]\n'
        yield f'  {ids[c.src]} -->|"{escape.mermaid(_delta(c))}"| {ids[c.dst]}\n'
        yield f"  linkStyle {i} stroke:{COLOUR[c.kind]},stroke-width:2px\n"


def _markdown(changes: Sequence[Change], base: str, head: str,
              with_mermaid: bool) -> Iterator[str]:
    s = summary(changes)
    icon = "✅" if not changes else "⚠️"
    yield f"### {icon} netfence: {escape.md(summary_line(changes, base, head))}\n\n"
    if not changes:
        return
    for kind, title in (("added", "Opened"), ("removed", "Closed"), ("changed", "Changed")):
        group = [c for c in changes if c.kind == kind]
        if not group:
            continue
        yield f"#### {title} ({s[kind]})\n\n| from | to | ports | decided by (head) |" \
              f" decided by (base) |\n|---|---|---|---|---|\n"
        for c in group:
            yield (f"| {escape.md(c.src)} | {escape.md(c.dst)} | {escape.md(_delta(c))} | "
                   f"{escape.md('; '.join(c.head_policies) or '-')} | "
                   f"{escape.md('; '.join(c.base_policies) or '-')} |\n")
        yield "\n"
    if with_mermaid and len(changes) <= 60:
        yield "<details><summary>Diagram</summary>\n\n```mermaid\n"
        yield from _mermaid(changes)
        yield "```\n\n</details>\n"
