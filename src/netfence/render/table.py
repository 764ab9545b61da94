"""Plain aligned text tables (rich-free so that render/ stays pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from netfence.render.escape import term


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    body = [[term(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in body:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for r in body:
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(lines) + "\n"
