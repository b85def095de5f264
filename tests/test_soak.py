"""Long-running use levels off: thousands of unroll / value_and_grad / train cycles at varying
τ, fresh circuits and reused ones, and the process stops growing."""
import gc
import linecache
import os

import numpy as np
import pytest

import unroll as ur


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _cycle(c, params, rng, T):
    g = c.unroll(steps=T)
    x = rng.standard_normal((T, 2, 3))
    y = rng.integers(0, 2, (T, 2))
    loss, grads = g.value_and_grad(params, x=x, y=y)
    opt = ur.optim.SGD(params, lr=1e-3)
    ur.training.train(g, params, [{"x": x, "y": y}], opt, progress=False)
    return float(loss)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_memory_levels_off_over_thousands_of_cycles():
    rng = np.random.default_rng(0)
    c = ur.models.elman(3, 6, 2)
    params = c.init_params(seed=0)

    def rounds(n):
        for i in range(n):
            _cycle(c, params, rng, int(rng.integers(4, 12)))     # the same circuit, reused
            if i % 4 == 0:                                      # a fresh circuit, dropped
                fresh = ur.models.elman(3, 6, 2)
                _cycle(fresh, fresh.init_params(seed=i), rng, int(rng.integers(4, 12)))
        gc.collect()

    rounds(300)                          # warm up: caches and allocator pools fill
    base, entries = _rss_mib(), len(linecache.cache)
    rounds(1200)
    grown = _rss_mib() - base
    assert grown < 32.0, f"the process grew by {grown:.1f} MiB over 1,200 more cycles"
    assert len(linecache.cache) <= entries + 10, "generated sources pile up in linecache"
