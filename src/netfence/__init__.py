"""netfence: model, verify and enforce zero-trust network fences around Kubernetes workloads.

The public API is the use-case layer: ``load`` a cluster state, ``analyze`` it, ``resolve``
endpoints and ``run_tests``.
"""

from netfence.api import Analysis, analyze, load, resolve, run_tests

__all__ = ["Analysis", "analyze", "load", "resolve", "run_tests"]
__version__ = "0.1.0"
