"""Test session setup: rank promotion raises, XLA compiles for speed of compilation, one compilation cache.

The suite's programs are tiny (a few units, a few steps, a few epochs): XLA's optimization passes cost more time
than they save, so the fast tests run with JAX's `jax_disable_most_optimizations` (its documented switch for that
case; set in the environment, so the CLI subprocesses the tests start inherit it). Every comparison in them is
between programs compiled the same way, or against tolerances, except where a test asks for the `optimized` fixture
(numbers stored from an optimized run, compared to the bit). Slow tests (real training) run optimized. The speed of
the optimized programs is measured in `benchmarks/`, not here.

The suite trains many tiny ensembles whose programs repeat across tests and across the CLI subprocesses the tests
start (the same `jaxrnn train` program compiled by `train`, by `evaluate` and again on resume). A persistent
compilation cache in a temporary folder, set in the environment before JAX is imported so subprocesses inherit it,
compiles each of them once per session. It changes no number: a cache hit is the executable XLA built for the same
program. The folder is removed at exit; a run of the suite never reads a previous run's cache.
"""

import atexit
import os
import shutil
import tempfile

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="jaxrnn-tests-xla-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def optimized():
    """The test's programs, and those of the subprocesses it starts, compiled with XLA's optimizations on, as users
    run them: for a test that compares with numbers stored from such a run (to the bit), and for every slow test
    (real training, where the unoptimized programs run about 3x slower)."""
    from jaxrnn.training import train

    before = jax.config.read("jax_disable_most_optimizations")
    env_before = os.environ.get("JAX_DISABLE_MOST_OPTIMIZATIONS")

    def use(value, env):
        jax.config.update("jax_disable_most_optimizations", value)
        jax.clear_caches()  # jit's executables of the other setting
        train.clear_programs()
        os.environ.pop("JAX_DISABLE_MOST_OPTIMIZATIONS", None)
        if env is not None:
            os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = env

    use(False, "0")
    yield
    use(before, env_before)


def pytest_collection_modifyitems(config, items):
    """Every slow test runs optimized (`optimized`)."""
    for item in items:
        if item.get_closest_marker("slow") and "optimized" not in item.fixturenames:
            item.fixturenames.append("optimized")
