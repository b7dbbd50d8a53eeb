"""Analyses of trained ensembles. They return numbers (arrays, dataclasses); `jaxrnn.plots` draws them.

Import submodules directly."""
