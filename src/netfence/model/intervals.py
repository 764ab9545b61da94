"""Closed integer intervals, shared by port sets and IP sets."""

from __future__ import annotations

from collections.abc import Iterable

Intervals = tuple[tuple[int, int], ...]


def normalise(intervals: Iterable[tuple[int, int]]) -> Intervals:
    """Sorted, merged (touching intervals join), empty ones dropped."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)
