"""Escaping of input-derived values for each output format."""

from __future__ import annotations

import re

from netfence.errors import clean

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def term(text: str) -> str:
    """Terminal-safe: ANSI escapes and control characters removed."""
    return clean(_ANSI.sub("", text), 10_000)


def csv_cell(text: str) -> str:
    """No formula injection: prefix cells starting with = + - @ (and tab/CR) with a quote."""
    text = term(text)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def md(text: str) -> str:
    out = term(text)
    for ch in "\\`*_[]|<>":
        out = out.replace(ch, "\\" + ch)
    return out


def dot(text: str) -> str:
    return term(text).replace("\\", "\\\\").replace('"', '\\"')


def mermaid(text: str) -> str:
    return term(text).replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def xml(text: str) -> str:
    out = term(text)
    return (out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
