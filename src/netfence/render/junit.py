"""JUnit XML (one writer for every verb): test suites of cases that pass, fail or are skipped.

GitLab (``artifacts:reports:junit``) and Jenkins read it; every value from the input is
XML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from netfence.render.escape import xml


@dataclass(frozen=True, slots=True)
class JUnitCase:
    """One test case; ``failure`` is (message, body), ``output`` goes to system-out."""

    classname: str
    name: str
    failure: tuple[str, str] | None = None
    failure_type: str = ""
    output: str = ""
    file: str = ""
    line: int = 0


def junit(suite: str, cases: Sequence[JUnitCase]) -> list[str]:
    """The document as chunks of text."""
    failed = sum(1 for c in cases if c.failure is not None)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>\n',
             f'<testsuites tests="{len(cases)}" failures="{failed}">\n',
             f'  <testsuite name="{xml(suite)}" tests="{len(cases)}" failures="{failed}">\n']
    for c in cases:
        attrs = f'classname="{xml(c.classname)}" name="{xml(c.name)}"'
        if c.file:
            attrs += f' file="{xml(c.file)}"'
            if c.line:
                attrs += f' line="{c.line}"'
        lines.append(f"    <testcase {attrs}>")
        if c.failure is not None:
            message, body = c.failure
            kind = f' type="{xml(c.failure_type)}"' if c.failure_type else ""
            lines.append(f'\n      <failure message="{xml(message)}"{kind}>{xml(body)}'
                         "</failure>\n    ")
        if c.output:
            lines.append(f"\n      <system-out>{xml(c.output)}</system-out>\n    ")
        lines.append("</testcase>\n")
    lines.append("  </testsuite>\n</testsuites>\n")
    return lines
