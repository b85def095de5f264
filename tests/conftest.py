"""Test hygiene: Hypothesis profiles, seeds, and markers for optional parts.

HYPOTHESIS_PROFILE selects the profile: ``dev`` (default, quick), ``ci`` (what .ci/run uses:
bounded and derandomized, so a CI run is reproducible) or ``thorough`` (many more examples, for
a local run before a release: ``HYPOTHESIS_PROFILE=thorough make test``).
"""
import os
import random
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global random state."""
    random.seed(0)
    np.random.seed(0)
    yield


def _has_cupy_gpu() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    gpu = _has_cupy_gpu()
    dot = shutil.which("dot") is not None
    for item in items:
        if "gpu" in item.keywords and not gpu:
            item.add_marker(pytest.mark.skip(reason="no CUDA GPU with CuPy here"))
        if "dot" in item.keywords and not dot:
            item.add_marker(pytest.mark.skip(reason="no system Graphviz 'dot' here"))
