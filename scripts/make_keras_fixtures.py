"""Generate the small Keras 3 fixture files of tests/data/ (run by hand; tests never need Keras).

Needs the optional extra: `pip install -e .[keras]` (Keras 3 with the JAX backend, no TensorFlow). Run from the
repository root:

    KERAS_BACKEND=jax python scripts/make_keras_fixtures.py [--out tests/data]

Writes, for each supported model, `<name>.h5` (Keras 3 legacy HDF5, `model.save("x.h5")`), `<name>.keras` (the zip
archive) and `<name>.npz` with `inputs` (B, T, n_in) and Keras' own predicted `outputs` (B, T, n_out), float32.
Also writes unsupported models (`lstm`, `stacked`, `relu`) in both formats for the error tests.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

N, N_IN, T, BATCH = 6, 2, 15, 3

#: name -> (use_bias, n_out, recurrent initializer, functional API with custom layer names, compiled)
SUPPORTED = {
    "rnn_bias_out2": (True, 2, "orthogonal", False, True),
    "rnn_nobias_out1": (False, 1, "orthogonal", False, False),
    "rnn_named_out3": (True, 3, keras.initializers.RandomNormal(stddev=1 / np.sqrt(N)), True, True),
}


def _randomize(model: keras.Model, rng: np.random.Generator) -> None:
    """Give every weight (biases too) a non-trivial value, so that a mixed-up array would show."""
    for layer in model.layers:
        layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])


def _supported(use_bias: bool, n_out: int, rec_init, functional: bool) -> keras.Model:
    rnn_kw = dict(return_sequences=True, use_bias=use_bias, recurrent_initializer=rec_init)
    if functional:
        x = keras.Input((None, N_IN))
        h = keras.layers.SimpleRNN(N, name="rnn", **rnn_kw)(x)
        return keras.Model(x, keras.layers.Dense(n_out, name="readout")(h))
    return keras.Sequential([keras.Input((None, N_IN)), keras.layers.SimpleRNN(N, **rnn_kw), keras.layers.Dense(n_out)])


def _unsupported() -> dict[str, keras.Model]:
    seq = lambda *layers: keras.Sequential([keras.Input((None, N_IN)), *layers])  # noqa: E731
    return {
        "lstm": seq(keras.layers.LSTM(N, return_sequences=True), keras.layers.Dense(1)),
        "stacked": seq(
            keras.layers.SimpleRNN(N, return_sequences=True),
            keras.layers.SimpleRNN(N, return_sequences=True),
            keras.layers.Dense(1),
        ),
        "relu": seq(keras.layers.SimpleRNN(N, activation="relu", return_sequences=True), keras.layers.Dense(1)),
    }


def _save(model: keras.Model, out: Path, name: str) -> None:
    model.save(out / f"{name}.keras")  # first: after a legacy .h5 save, Keras 3.15 drops the optimizer from .keras
    model.save(out / f"{name}.h5")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/data"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, (use_bias, n_out, rec_init, functional, compile_) in SUPPORTED.items():
        model = _supported(use_bias, n_out, rec_init, functional)
        if compile_:  # the optimizer in training_config (.h5) and compile_config (.keras), as the originals have
            model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-4), loss="mse")
        _randomize(model, rng)
        inputs = rng.normal(0, 1, (BATCH, T, N_IN)).astype(np.float32)
        outputs = np.asarray(model.predict(inputs, verbose=0), np.float32)
        _save(model, args.out, name)
        np.savez(args.out / f"{name}.npz", inputs=inputs, outputs=outputs)
    for name, model in _unsupported().items():
        _save(model, args.out, name)
    print(f"wrote fixtures of Keras {keras.__version__} ({keras.backend.backend()} backend) to {args.out}")


if __name__ == "__main__":
    main()
