"""Test session setup: rank promotion raises, and one XLA compilation cache for the whole session.

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

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
