"""ex-3 for the bulk path: ``Query.allowed`` (rows) equals ``Query.flow`` (trace) everywhere."""

from __future__ import annotations

import itertools

import pytest

from netfence import api
from netfence.engine.query import External
from netfence.model.ports import Protocol
from tests.conftest import EXAMPLES

FINTECH = EXAMPLES / "fintech"


@pytest.fixture(scope="module")
def analysis() -> api.Analysis:
    state = api.load([str(FINTECH / "manifests"), str(FINTECH / "cluster-policies")])
    return api.analyze(state)


PROBES = [(Protocol.TCP, 5432), (Protocol.TCP, 8080), (Protocol.UDP, 53), (Protocol.TCP, 9102),
          (Protocol.TCP, 443), (Protocol.SCTP, 9092)]


def test_allowed_equals_explained_verdict_for_every_pair(analysis: api.Analysis) -> None:
    q = analysis.query
    # one pod per class is enough: pods of a class behave identically
    reps = {q.endpoint(p): p for p in analysis.state.pods}
    pods = list(reps.values())
    points = [*pods, External("8.8.8.8"), External("10.30.1.1"), External("198.51.100.7")]
    checked = 0
    allowed = 0
    for src, dst in itertools.product(points, points):
        if isinstance(src, External) and isinstance(dst, External):
            continue
        for proto, port in PROBES:
            fast = q.allowed(src, dst, proto, port)
            assert fast == q.flow(src, dst, proto, port).allowed, (src, dst, proto, port)
            checked += 1
            allowed += fast
    assert checked > 5000
    assert 0 < allowed < checked  # the example has both verdicts
