"""Label indexes: key -> value -> bitset of objects, with memoised selector evaluation.

Selecting with an index costs one AND/OR per selector term instead of one match per object
(ARCHITECTURE "Scale": index label selectors and memoise identical ones).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from netfence.model.policy import LabelSelector, Operator


class LabelIndex:
    """Bitsets over a fixed sequence of label sets (bit ``i`` is ``labels[i]``)."""

    def __init__(self, labels: Sequence[Mapping[str, str] | None]) -> None:
        self.by_kv: dict[str, dict[str, int]] = {}
        self.by_key: dict[str, int] = {}
        universe = 0
        for i, lab in enumerate(labels):
            if lab is None:
                continue  # not selectable (e.g. hostNetwork pods)
            bit = 1 << i
            universe |= bit
            for k, v in lab.items():
                self.by_kv.setdefault(k, {})
                self.by_kv[k][v] = self.by_kv[k].get(v, 0) | bit
                self.by_key[k] = self.by_key.get(k, 0) | bit
        self.universe = universe
        self._cache: dict[LabelSelector, int] = {}

    def _values(self, key: str, values: tuple[str, ...]) -> int:
        vals = self.by_kv.get(key, {})
        out = 0
        for v in values:
            out |= vals.get(v, 0)
        return out

    def select(self, selector: LabelSelector | None) -> int:
        """Objects matching ``selector`` (None or empty: all of them)."""
        if selector is None:
            return self.universe
        got = self._cache.get(selector)
        if got is not None:
            return got
        m = self.universe
        for k, v in selector.match_labels:
            m &= self.by_kv.get(k, {}).get(v, 0)
        for r in selector.match_expressions:
            if r.operator is Operator.IN:
                m &= self._values(r.key, r.values)
            elif r.operator is Operator.NOT_IN:
                m &= ~self._values(r.key, r.values)  # objects lacking the key match (sel-6)
            elif r.operator is Operator.EXISTS:
                m &= self.by_key.get(r.key, 0)
            else:
                m &= ~self.by_key.get(r.key, 0)
        m &= self.universe
        self._cache[selector] = m
        return m
