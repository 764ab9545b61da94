"""Parse kubectl-style selector text (``-l app=web,tier!=db,env in (a,b),!legacy``)."""

from __future__ import annotations

import re

from netfence.model.policy import LabelSelector, Operator, Requirement

_SET = re.compile(r"^\s*([^\s!=,()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    cur = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_selector(text: str) -> LabelSelector:
    labels: list[tuple[str, str]] = []
    reqs: list[Requirement] = []
    for part in _split(text):
        m = _SET.match(part)
        if m:
            op = Operator.IN if m.group(2) == "in" else Operator.NOT_IN
            vals = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), op, vals))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(Requirement(k.strip(), Operator.NOT_IN, (v.strip(),)))
        elif "=" in part:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            labels.append((k.strip(), v.strip()))
        elif part.startswith("!"):
            reqs.append(Requirement(part[1:].strip(), Operator.DOES_NOT_EXIST))
        elif re.match(r"^[A-Za-z0-9./_-]+$", part):
            reqs.append(Requirement(part, Operator.EXISTS))
        else:
            raise ValueError(f"cannot parse selector term '{part}'")
    return LabelSelector(tuple(sorted(labels)), tuple(reqs))
