"""Flax cells as jaxrnn networks, and the rate RNN as a Flax cell.

A network's `cell` (`jaxrnn.cells.network.NetConfig.cell`, `jaxrnn.training.train.TrainConfig.cell`) is one of

  * "rnn": the rate RNN of `jaxrnn.cells.network`, trained with its hand-written backward pass (nothing here);
  * "gru" / "lstm": `flax.linen.GRUCell(features=units)` / `flax.linen.LSTMCell(features=units)`;
  * "MODULE:ATTR": ATTR of module MODULE (imported from the Python path or the current directory; ATTR may be dotted),
    either a `flax.linen.RNNCellBase` instance or a factory called with the unit count that returns one (a cell class
    whose first field is `features`, such as `flax.linen:GRUCell`, is such a factory);
  * a `flax.linen.RNNCellBase` instance, e.g. `flax.linen.GRUCell(features=32)` or a user's own subclass.

Every cell but "rnn" runs through the adapter below: jaxrnn adds the linear readout `z_t = W_out y_t + b_out` to the
cell's output y_t (its hidden state, `units` = the size of y_t), initialises a member from its init key (the cell's
`init` with one key derived from it, `initialize_carry` with another for the initial carry) and trains by autodiff
through `forward`. The parameters stay a flat dict of arrays, as every jaxrnn network's: the cell's nested Flax
params under '/'-joined keys `cell/<module>/<param>` (e.g. `cell/ir/kernel`), the initial carry under `h0` (one
array) or `h0/<i>` (a tuple carry such as the LSTM's (c, h)), and `W_out` (n_out, N), `b_out` (n_out,). The initial
carry is trained with `train_h0` and held fixed (gradient stopped) without it.

`cell_to_json` / `cell_from_json` are what config.json stores: the strings as they are, an instance as its class
("module:QualName") and its JSON-able dataclass fields. `RateRNNCell` is the rate RNN written as a Flax cell, for use
inside other Flax models (jaxrnn itself trains the rate RNN on its fast path, not through it).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

#: The cell names that mean a Flax cell class, called with `features=units`.
BUILTIN: dict[str, Callable[..., nn.RNNCellBase]] = {"gru": nn.GRUCell, "lstm": nn.LSTMCell}
#: Prefix of the cell's parameters in a jaxrnn parameter dict.
PARAMS_PREFIX = "cell"
#: Key (or key prefix, for a tuple carry) of the initial carry in a jaxrnn parameter dict.
CARRY_PREFIX = "h0"
_SUGGEST = "give the cell as MODULE:ATTR instead (a module-level cell instance, or a factory taking the unit count)"


def is_rate_rnn(cell: Any) -> bool:
    """Whether `cell` means jaxrnn's own rate RNN ("rnn")."""
    return isinstance(cell, str) and cell == "rnn"


def label(cell: Any) -> str:
    """A one-line name of a cell for messages: the string itself, or "module:QualName(field=value, ...)"."""
    if isinstance(cell, str):
        return cell
    try:
        record = cell_to_json(cell)
    except ValueError:
        return f"{type(cell).__module__}:{type(cell).__qualname__}"
    args = ", ".join(f"{k}={v!r}" for k, v in record["fields"].items() if v is not None)
    return f"{record['class']}({args})"


# ----------------------------------------------------------------------------------------------------------------
# Resolving a cell spec to a Flax cell instance.


def _import_attr(spec: str) -> Any:
    """The object "MODULE:ATTR" names: MODULE imported (from the current directory when the Python path lacks it),
    ATTR looked up (dotted). Raises a one-line ValueError."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"cell {spec!r}: expected MODULE:ATTR, e.g. mycells:cell")
    importlib.invalidate_caches()
    cwd = os.getcwd()
    added = False
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            missing = e.name or ""
            if not (module_name == missing or module_name.startswith(missing + ".")):
                raise ValueError(f"cell {spec!r}: importing {module_name!r} failed: {e}") from None
            if any(os.path.abspath(p or os.curdir) == cwd for p in sys.path):
                raise ValueError(f"cell {spec!r}: no module named {module_name!r}") from None
            sys.path.insert(0, cwd)
            added = True
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as e2:
                raise ValueError(f"cell {spec!r}: no module named {module_name!r} ({e2})") from None
    except ValueError:
        raise
    except Exception as e:  # the module's own code failed
        raise ValueError(f"cell {spec!r}: importing {module_name!r} failed: {type(e).__name__}: {e}") from None
    finally:
        if added:
            sys.path.remove(cwd)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"cell {spec!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _what(obj: Any) -> str:
    kind = type(obj).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def resolve(cell: Any, units: int | None) -> nn.RNNCellBase:
    """The Flax cell instance of a cell spec (the module docstring); `units` is what a factory is called with.

    Raises:
        ValueError: one line: "rnn" (not a Flax cell), an unknown name, MODULE not importable, ATTR missing, neither a
            cell instance nor a factory returning one.
    """
    if isinstance(cell, nn.RNNCellBase):
        return cell
    if not isinstance(cell, str):
        raise ValueError(
            f"cell: expected 'rnn', 'gru', 'lstm', 'MODULE:ATTR' or a flax.linen.RNNCellBase instance, "
            f"got {_what(cell)}"
        )
    if cell in BUILTIN:
        return BUILTIN[cell](features=units)
    if ":" not in cell:
        raise ValueError(
            f"network: unknown cell {cell!r}; allowed: rnn, gru, lstm, or MODULE:ATTR (a flax.linen.RNNCellBase "
            "instance or a factory taking the unit count)"
        )
    obj = _import_attr(cell)
    if isinstance(obj, nn.RNNCellBase):
        return obj
    if not callable(obj):
        raise ValueError(f"cell {cell!r} is {_what(obj)}, not a flax.linen.RNNCellBase instance or a factory")
    if units is None:
        raise ValueError(f"cell {cell!r} is a factory: give the number of units")
    try:
        made = obj(units)
    except Exception as e:
        raise ValueError(f"cell {cell!r}: calling it with units={units} failed: {type(e).__name__}: {e}") from None
    if not isinstance(made, nn.RNNCellBase):
        raise ValueError(f"cell {cell!r} called with units={units} gave {_what(made)}, not a flax.linen.RNNCellBase")
    return made


def _init_variables(cell: nn.RNNCellBase, key: Array, n_in: int):
    """(the cell's variables, its initial carry, its output on a zero input) for inputs of size n_in (no batch)."""
    key_cell, key_carry = jax.random.split(key)
    x = jnp.zeros((n_in,), jnp.float32)
    carry = cell.initialize_carry(key_carry, x.shape)
    (_, y), variables = cell.init_with_output(key_cell, carry, x)
    return variables, carry, y


def check(cell: Any, units: int | None, n_in: int) -> int:
    """Check that a cell spec makes a usable Flax cell for inputs of size n_in and return its unit count (the size of
    its output); with `units` given, that the two agree. Runs nothing (`jax.eval_shape`); "MODULE:ATTR" is imported
    again on every call (so a module that went away is noticed), the cell's shapes are worked out once.

    Raises:
        ValueError: one line: what `resolve` refuses, a cell that fails on one input, one whose output is not a vector,
            with variable collections other than 'params', or whose unit count is not `units`.
    """
    return _check(resolve(cell, units), units, n_in, label(cell))


@functools.lru_cache(maxsize=64)
def _check(obj: nn.RNNCellBase, units: int | None, n_in: int, cell: str) -> int:
    """`check` of a resolved cell instance; `cell` is its spec's `label`, for the messages."""
    try:
        variables, _, y = jax.eval_shape(lambda k: _init_variables(obj, k, n_in), jax.random.key(0))
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(f"cell {label(cell)}: running it on one input of size {n_in} failed: {type(e).__name__}: "
                         f"{msg}") from None  # fmt: skip
    others = sorted(set(variables) - {"params"})
    if others:
        raise ValueError(f"cell {label(cell)}: variable collections {others} besides 'params'; jaxrnn trains 'params'")
    if not hasattr(y, "shape") or len(y.shape) != 1:
        raise ValueError(f"cell {label(cell)}: its output must be one vector per input, got {getattr(y, 'shape', y)}")
    n = int(y.shape[0])
    if units is not None and n != units:
        raise ValueError(
            f"cell {label(cell)} has {n} features but units={units}; leave units out or give the cell {units} features"
        )
    names = _flat_names(variables["params"], PARAMS_PREFIX)
    if len(set(names)) != len(names):
        raise ValueError(f"cell {label(cell)}: its parameter names are not unique once joined with '/': {names}")
    return n


def own_units(cell: Any, n_in: int) -> int | None:
    """The unit count a cell spec fixes by itself, for inputs of size n_in: an instance's (or that of the instance
    "MODULE:ATTR" names), None for "gru", "lstm" and a factory (they take the unit count they are given)."""
    obj = cell
    if isinstance(cell, str):
        if ":" not in cell:
            return None
        obj = _import_attr(cell)
    return check(cell, None, n_in) if isinstance(obj, nn.RNNCellBase) else None


# ----------------------------------------------------------------------------------------------------------------
# The adapter: a Flax cell as jaxrnn's network functions (one network, one trial).


def _key_name(entry) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _flat_names(tree, prefix: str) -> list[str]:
    """The '/'-joined names of a pytree's leaves under `prefix`, in `jax.tree_util` leaf order."""
    paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    return ["/".join([prefix, *(_key_name(e) for e in path)]) for path, _ in paths]


def flatten(tree, prefix: str) -> dict[str, Array]:
    """A pytree (nested Flax params, a carry) as a flat dict of '/'-joined names under `prefix`."""
    leaves = jax.tree_util.tree_leaves(tree)
    return dict(zip(_flat_names(tree, prefix), leaves, strict=True))


@functools.lru_cache(maxsize=64)
def _layout(cell: nn.RNNCellBase, n_in: int):
    """(param names, param treedef, carry names, carry treedef) of a cell for inputs of size n_in."""
    variables, carry, _ = jax.eval_shape(lambda k: _init_variables(cell, k, n_in), jax.random.key(0))
    params = variables["params"]
    return (
        tuple(_flat_names(params, PARAMS_PREFIX)),
        jax.tree_util.tree_structure(params),
        tuple(_flat_names(carry, CARRY_PREFIX)),
        jax.tree_util.tree_structure(carry),
    )


def _unflatten(params: dict, names, treedef):
    return jax.tree_util.tree_unflatten(treedef, [params[n] for n in names])


def _glorot_uniform(key: Array, shape: tuple[int, int]) -> Array:
    limit = math.sqrt(6.0 / sum(shape))
    return jax.random.uniform(key, shape, jnp.float32, -limit, limit)


def init_params(key: Array, cfg) -> dict[str, Array]:
    """Initial parameters of one network of a Flax cell (`cfg` a `jaxrnn.NetConfig`): the cell's `init` with
    `split(key, 3)[0]` (split again into the cell's and the carry's keys), the readout W_out (Glorot-uniform, from
    the third key) and b_out = 0, as the rate RNN's."""
    cell = resolve(cfg.cell, cfg.units)
    key_cell, _, key_out = jax.random.split(key, 3)
    variables, carry, _ = _init_variables(cell, key_cell, cfg.n_in)
    return {
        **flatten(variables["params"], PARAMS_PREFIX),
        **flatten(carry, CARRY_PREFIX),
        "W_out": _glorot_uniform(key_out, (cfg.n_out, cfg.units)),
        "b_out": jnp.zeros(cfg.n_out, jnp.float32),
    }


def cell_params(params: dict, cfg) -> tuple[nn.RNNCellBase, Any, Any]:
    """(the Flax cell, its nested params, its initial carry) of a jaxrnn parameter dict; the carry's gradient is
    stopped unless `cfg.train_h0`."""
    cell = resolve(cfg.cell, cfg.units)
    names, treedef, carry_names, carry_treedef = _layout(cell, cfg.n_in)
    carry = _unflatten(params, carry_names, carry_treedef)
    if not cfg.train_h0:
        carry = jax.lax.stop_gradient(carry)
    return cell, _unflatten(params, names, treedef), carry


def forward(params: dict, inputs: Array, cfg) -> tuple[Array, Array]:
    """Run one network of a Flax cell on one trial: outputs (T, n_out) and states (T, N), the cell's outputs."""
    cell, cell_p, carry = cell_params(params, cfg)

    def step(c, x):
        return cell.apply({"params": cell_p}, c, x)

    _, states = jax.lax.scan(step, carry, inputs)
    return states @ params["W_out"].T + params["b_out"][None, :], states


def weight_matrices(params: dict) -> list[Array]:
    """The matrices the L2 weight penalty sums over: every cell parameter with two or more axes, and W_out."""
    return [v for k, v in params.items() if k.startswith(PARAMS_PREFIX + "/") and v.ndim >= 2] + [params["W_out"]]


# ----------------------------------------------------------------------------------------------------------------
# config.json: a cell as JSON and back.


def _jsonable(v) -> bool:
    if v is None or isinstance(v, (bool, int, str)):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, (tuple, list)):
        return all(_jsonable(x) for x in v)
    return False


def _json(v):
    return [_json(x) for x in v] if isinstance(v, (tuple, list)) else v


def _tuples(v):
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def _same(a, b) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


def cell_to_json(cell: Any) -> str | dict:
    """What config.json stores for a cell: a string as it is; an instance as {"class": "module:QualName", "fields":
    {its JSON-able dataclass fields}}.

    Raises:
        ValueError: an instance that could not be rebuilt from that record: a field that is not JSON-able (a
            function, an array, ...) and differs from its default, or a class that cannot be imported by its name.
    """
    if isinstance(cell, str):
        return cell
    if not isinstance(cell, nn.RNNCellBase):
        raise ValueError(f"cell: expected a string or a flax.linen.RNNCellBase instance, got {_what(cell)}")
    cls = type(cell)
    name = f"{cls.__module__}:{cls.__qualname__}"
    fields, bad = {}, []
    for f in dataclasses.fields(cell):
        if f.name in ("parent", "name"):
            continue
        value = getattr(cell, f.name)
        if _jsonable(value):
            fields[f.name] = _json(value)
            continue
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        if default is dataclasses.MISSING or not _same(value, default):
            bad.append(f.name)
    if bad:
        raise ValueError(
            f"cell {name}: field{'s' if len(bad) > 1 else ''} {', '.join(bad)} cannot be stored in config.json "
            f"(not JSON-able), so the run directory could not be reopened; {_SUGGEST}"
        )
    if cls.__module__ == "__main__":
        raise ValueError(
            f"cell {name}: the class is defined in the script being run and cannot be imported; {_SUGGEST}"
        )
    if "<locals>" in cls.__qualname__:
        raise ValueError(f"cell {name}: the class is defined inside a function and cannot be imported; {_SUGGEST}")
    return {"class": name, "fields": fields}


def cell_from_json(value: Any) -> Any:
    """The cell of `cell_to_json`'s output: a string as it is (checked when the config is built), an instance
    rebuilt from its class and fields. Raises ValueError (one line) when the class cannot be imported or rebuilt."""
    if isinstance(value, str):
        return value
    if not (isinstance(value, dict) and isinstance(value.get("class"), str) and isinstance(value.get("fields"), dict)):
        raise ValueError(f"cell: expected a string or {{'class': 'module:QualName', 'fields': {{...}}}}, got {value!r}")
    cls = _import_attr(value["class"])
    if not (isinstance(cls, type) and issubclass(cls, nn.RNNCellBase)):
        raise ValueError(f"cell {value['class']!r} is {_what(cls)}, not a flax.linen.RNNCellBase subclass")
    try:
        return cls(**{k: _tuples(v) for k, v in value["fields"].items()})
    except Exception as e:
        raise ValueError(f"cell {value['class']!r}: rebuilding it failed: {type(e).__name__}: {e}") from None


# ----------------------------------------------------------------------------------------------------------------
# The rate RNN as a Flax cell.


class RateRNNCell(nn.RNNCellBase):
    """The rate RNN of `jaxrnn.cells.network` as a Flax cell, for use inside other Flax models:

        h_t = (1 - a) h_{t-1} + a · tanh(W_rec h_{t-1} + W_in x_t + b),   output y_t = h_t,

    with the parameters in jaxrnn's math orientation (`W_rec[i, j]` from unit j to unit i): `W_in` (N, n_in), `W_rec`
    (N, N) and, with `use_bias`, `b` (N,). Initialised as jaxrnn's rate RNN (Glorot-uniform W_in, orthogonal W_rec,
    zero b); on the same parameters its outputs are the rate RNN's states (`jaxrnn.forward`). It computes the
    forward pass only; jaxrnn trains the rate RNN with its own hand-written backward pass, not through this class.

    Attributes:
        features: N, the number of units.
        alpha: the leak a = dt / tau, in (0, 1].
        activation: a name of `jaxrnn.cells.network.ACTIVATIONS` (tanh by default).
        use_bias: whether the recurrent layer has a bias b.
    """

    features: int
    alpha: float = 1.0
    activation: str = "tanh"
    use_bias: bool = False

    @nn.compact
    def __call__(self, carry: Array, inputs: Array) -> tuple[Array, Array]:
        """One step: (new h, new h) from h (..., N) and x (..., n_in)."""
        from jaxrnn.cells.network import ACTIVATIONS

        N = self.features
        W_in = self.param("W_in", lambda k, s: _glorot_uniform(k, s), (N, inputs.shape[-1]))
        W_rec = self.param("W_rec", lambda k, s: jax.nn.initializers.orthogonal()(k, s, jnp.float32), (N, N))
        z = carry @ W_rec.T + inputs @ W_in.T
        if self.use_bias:
            b = self.param("b", nn.initializers.zeros_init(), (N,))
            z = z + b.reshape((1,) * (z.ndim - 1) + (N,))  # over any batch axes
        r = ACTIVATIONS[self.activation](z)
        h = r if self.alpha == 1.0 else carry + self.alpha * (r - carry)
        return h, h

    def initialize_carry(self, rng: Array, input_shape: tuple[int, ...]) -> Array:
        """h_0 = 0 of shape (*batch, N) for inputs of shape (*batch, n_in)."""
        del rng
        return jnp.zeros((*input_shape[:-1], self.features), jnp.float32)

    @property
    def num_feature_axes(self) -> int:
        return 1
