"""Forward + backward time of dlkit's layers against their Keras built-in counterparts.

Each case wraps one layer in a functional model and times ``train_on_batch`` (one compiled
forward pass, loss, backward pass and SGD update) after warm-up, for the dlkit layer and for the
Keras layer with the same configuration, on the active backend. Prints one JSON object per
backend with the per-case milliseconds and the ratio dlkit / Keras (target <= 1.2).

Usage::

    python benchmarks/layers.py                 # the backend of KERAS_BACKEND (or tensorflow)
    python benchmarks/layers.py --backend jax
    python benchmarks/layers.py --all           # each backend in its own process, a JSON list
"""

from __future__ import annotations

import time

from _common import steps_benchmark_main

TARGET_RATIO = 1.2


def cases():
    """(name, dlkit layer factory, Keras layer factory, input shapes, call kwargs)."""
    import keras

    from dlkit import layers

    return [
        (
            "DilatedConv2D vs Conv2D(dilation_rate=2)",
            lambda: layers.DilatedConv2D(32, 3, dilation_rate=2, padding="same"),
            lambda: keras.layers.Conv2D(32, 3, dilation_rate=2, padding="same"),
            [(16, 32, 32, 16)],
        ),
        (
            "TransposedConv2D vs Conv2DTranspose(strides=2)",
            lambda: layers.TransposedConv2D(32, 4, strides=2, padding="same"),
            lambda: keras.layers.Conv2DTranspose(32, 4, strides=2, padding="same"),
            [(16, 16, 16, 32)],
        ),
        (
            "LSTM vs keras LSTM (return_sequences)",
            lambda: layers.LSTM(64, return_sequences=True),
            lambda: keras.layers.LSTM(64, return_sequences=True),
            [(32, 40, 32)],
        ),
        (
            "MultiHeadAttention vs keras MultiHeadAttention (self-attention)",
            lambda: layers.MultiHeadAttention(num_heads=4, key_dim=32),
            lambda: keras.layers.MultiHeadAttention(num_heads=4, key_dim=32),
            [(16, 64, 128), (16, 64, 128)],
        ),
        (
            "NoisyDense (training noise) vs Dense",
            lambda: layers.NoisyDense(256, seed=0),
            lambda: keras.layers.Dense(256),
            [(256, 256)],
        ),
    ]


def time_layer(make_layer, input_shapes, steps: int, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` milliseconds per ``train_on_batch`` of a model holding the layer:
    wall clock and process CPU time (each the least over the repeats)."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    inputs = [keras.Input(shape[1:]) for shape in input_shapes]
    outputs = make_layer()(*inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    data = [rng.standard_normal(shape).astype("float32") for shape in input_shapes]
    target = np.zeros(tuple(keras.ops.shape(model(data))), "float32")
    for _ in range(3):  # compile and warm up
        model.train_on_batch(data, target)
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            model.train_on_batch(data, target)
        best = min(best, (time.perf_counter() - start) / steps)
        best_cpu = min(best_cpu, (time.process_time() - cpu) / steps)
    return 1000 * best, 1000 * best_cpu


def run(steps: int, repeats: int) -> dict:
    import keras

    results = []
    for name, make_dlkit, make_keras, input_shapes in cases():
        dlkit_ms, dlkit_cpu_ms = time_layer(make_dlkit, input_shapes, steps, repeats)
        keras_ms, keras_cpu_ms = time_layer(make_keras, input_shapes, steps, repeats)
        ratio = dlkit_ms / keras_ms
        results.append(
            {
                "case": name,
                "dlkit_ms": round(dlkit_ms, 3),
                "keras_ms": round(keras_ms, 3),
                "ratio": round(ratio, 3),
                "meets_target": ratio <= TARGET_RATIO,
                # Process CPU time per step: far less changed by other processes.
                "dlkit_cpu_ms": round(dlkit_cpu_ms, 3),
                "keras_cpu_ms": round(keras_cpu_ms, 3),
                "cpu_ratio": round(dlkit_cpu_ms / keras_cpu_ms, 3),
            }
        )
    return {
        "backend": keras.backend.backend(),
        "measure": "ms per train_on_batch (forward + backward + SGD step), best of repeats; "
        "wall clock and process CPU time",
        "target_ratio": TARGET_RATIO,
        "cases": results,
    }


if __name__ == "__main__":
    steps_benchmark_main(__file__, __doc__.splitlines()[0], run)
