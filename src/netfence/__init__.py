"""netfence: model, verify and enforce zero-trust network fences around Kubernetes workloads.

The public API is the use-case layer: ``load`` a cluster state, ``analyze`` it, ``resolve``
endpoints, ``run_tests``, ``diff`` two states, ``lint`` an analysis and ``generate`` policies
from a zone model.
"""

from netfence.api import Analysis, analyze, diff, generate, lint, load, resolve, run_tests

__all__ = ["Analysis", "analyze", "diff", "generate", "lint", "load", "resolve", "run_tests"]
__version__ = "0.1.0"
