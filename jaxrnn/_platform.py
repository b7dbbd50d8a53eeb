"""The fast CPU set-up, chosen before JAX starts: one single-threaded XLA CPU device per core, XLA's YNN fusions off.

Small RNNs do not profit from XLA's intra-op (Eigen) threading on a few cores; running one single-threaded CPU
device per core with the ensemble's member axis sharded over them (`train.fit` does the sharding) was measured 2x
faster than one multi-threaded device (issue 8). XLA's experimental YNNPACK fusions cost time on the small matmuls of
these networks on Intel: on a 2-core Xeon (Emerald Rapids) the training epoch of `benchmarks/trainer_setup.py` took
0.074 s per network with them and 0.064 s without (median of 9; results/benchmarks/intel/trainer_setup.md), on a
2-core AMD EPYC the two measured the same (0.094 / 0.093), so they are off by default where jaxlib knows the flag
(jaxlib >= 0.10; an older XLA aborts on an unknown flag). XLA reads its flags once, when the JAX backend starts, so
`configure()` must run before `import jax`; the CLI calls it first thing.

`configure()` changes nothing when the user has set `XLA_FLAGS`, when a JAX backend has already started, when a GPU/TPU
backend is wanted (`JAX_PLATFORMS` names one, or a GPU plugin is installed and `JAX_PLATFORMS` does not say cpu),
or when `JAXRNN_NO_CONFIGURE=1`.

Allocator: the issue's prototype gained 35% from preloading tcmalloc (fewer page faults on large buffers). The
training fast path (`network._rnn`) no longer allocates anything of size (T, B, N) per update outside its loops,
and then tcmalloc, or glibc tuned to keep freed memory (`mallopt`), measured the same as plain glibc through
`train.fit` (2-core CPU, E = 16, N = 50: 0.095 / 0.098 / 0.093 s per network per epoch, within noise), so nothing is
done about it here. `tcmalloc_path()` finds an installed one for `LD_PRELOAD` experiments.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys

#: XLA flags of the fast CPU set-up; `{cores}` is filled in by `cpu_flags`.
CPU_FLAGS = ("--xla_force_host_platform_device_count={cores}", "--xla_cpu_multi_thread_eigen=false")
#: Turns XLA's experimental YNNPACK fusions off (module docstring); in the default when `ynn_flag_known()`.
YNN_OFF = "--xla_cpu_experimental_ynn_fusion_type="
#: The first jaxlib measured to know the YNN flag (0.10.2 here); older ones are not given it.
_YNN_JAXLIB = (0, 10)
_GPU_NAMES = ("cuda", "gpu", "rocm", "tpu", "metal")
_GPU_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin", "libtpu")


def cores() -> int:
    """CPU cores this process may run on (its affinity mask when the OS tells it, else os.cpu_count())."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def ynn_flag_known() -> bool:
    """Whether the installed jaxlib is recent enough to know `YNN_OFF` (read from its metadata, without importing
    it)."""
    from importlib import metadata

    try:
        version = tuple(int(p) for p in metadata.version("jaxlib").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return version >= _YNN_JAXLIB


def cpu_flags(n_devices: int | None = None, ynn_off: bool | None = None) -> str:
    """The XLA_FLAGS string of the fast CPU set-up with `n_devices` devices (default: one per core); `ynn_off`
    None: YNN fusions off when `ynn_flag_known()`."""
    flags = [f.format(cores=n_devices or cores()) for f in CPU_FLAGS]
    if ynn_flag_known() if ynn_off is None else ynn_off:
        flags.append(YNN_OFF)
    return " ".join(flags)


def _gpu_wanted(environ) -> bool:
    platforms = (environ.get("JAX_PLATFORMS", "") + "," + environ.get("JAX_PLATFORM_NAME", "")).lower()
    if any(name in platforms for name in _GPU_NAMES):
        return True
    if platforms.strip(",") in ("cpu", "cpu,"):
        return False
    return any(importlib.util.find_spec(name) is not None for name in _GPU_PLUGINS)


def configure(n_devices: int | None = None, ynn_off: bool | None = None, environ=None) -> str | None:
    """Set the fast CPU defaults in XLA_FLAGS, if nobody chose otherwise and JAX has not started.

    Args:
        n_devices: CPU devices to create (default: one per core, `cores()`).
        ynn_off: turn XLA's experimental YNN fusions off (see `YNN_OFF`); None: when `ynn_flag_known()`.
        environ: the environment to read and change (default `os.environ`; tests pass a dict).
    Returns:
        The XLA_FLAGS set, or None when nothing was changed.
    """
    env = os.environ if environ is None else environ
    if env.get("JAXRNN_NO_CONFIGURE", "") not in ("", "0") or "XLA_FLAGS" in env or _gpu_wanted(env):
        return None
    if environ is None and _backend_started():  # too late: XLA has read its flags already
        return None
    flags = cpu_flags(n_devices, ynn_off)
    env["XLA_FLAGS"] = flags
    return flags


def _backend_started() -> bool:
    """Whether JAX has started a backend in this process (XLA reads XLA_FLAGS then, not at `import jax`)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # pragma: no cover - other jax versions: assume the worst
        return True


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; elsewhere what `platform` says)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def tcmalloc_path() -> str | None:
    """Path of an installed tcmalloc (for LD_PRELOAD), or None."""
    for directory in ("/usr/lib/*", "/usr/lib", "/usr/lib64", "/usr/local/lib"):
        pattern = f"{directory}/libtcmalloc_minimal.so.4"
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def tcmalloc_loaded() -> bool:
    """Whether tcmalloc is preloaded into this process."""
    return "tcmalloc" in os.environ.get("LD_PRELOAD", "")
