"""Latency of one action: a 2×64 MLP on a single observation, per Keras backend.

An RL agent evaluates its network once per environment step, so the time of one call on one
observation bounds how fast it can act. This measures, in microseconds per call, numpy in and
numpy out:

- ``compiled``: ``dlkit.training.compile_inference(model)(x)``, the way dlkit's agents act;
- ``eager_call``: ``keras.ops.convert_to_numpy(model(x))``, an eager Keras call;
- ``predict``: ``model.predict(x, verbose=0)``, for context.

Network: input 4 → Dense(64, relu) → Dense(64, relu) → Dense(2) (CartPole-sized), one
observation of shape (1, 4), float32. Each way is warmed up (tracing, compilation), then timed
over ``--repeats`` runs of N calls; the median per-call time of the runs is reported (wall
clock; for the compiled call also process CPU time, which other processes competing for the
cores barely change). Every backend runs on one core with one thread (``_common.pin_backend``).

Prints one JSON object (``--all``: a JSON list, one object per backend, each measured in its
own process):

    {"backend", "device", "compiled_us", "eager_call_us", "predict_us", "target_us",
     "meets_target", "compiled_cpu_us"}

``meets_target`` compares ``compiled_us`` with ``target_us``.

Usage:

    python benchmarks/acting_latency.py --all
    KERAS_BACKEND=jax python benchmarks/acting_latency.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from _common import add_backend_arguments, add_save_argument, run_per_backend

# Microseconds per single-observation action that compile_inference must stay under.
TARGET_US = {"tensorflow": 400.0, "jax": 100.0, "torch": 400.0}


def per_call_us(
    function: Callable[[], object], num_calls: int, repeats: int
) -> tuple[float, float]:
    """Wall-clock and process CPU time per call in µs, each the median over ``repeats`` runs of
    ``num_calls`` calls."""
    for _ in range(max(3, num_calls // 10)):  # warm-up: tracing, compilation, caches
        function()
    wall_runs, cpu_runs = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(num_calls):
            function()
        wall_runs.append((time.perf_counter() - wall) / num_calls * 1e6)
        cpu_runs.append((time.process_time() - cpu) / num_calls * 1e6)
    return statistics.median(wall_runs), statistics.median(cpu_runs)


def benchmark(backend: str, num_calls: int, repeats: int, seed: int = 0) -> dict:
    """Measures one backend in this process; KERAS_BACKEND must already be ``backend``."""
    import keras

    from dlkit.training import compile_inference, list_devices

    if keras.backend.backend() != backend:
        raise ValueError(
            f"Expected KERAS_BACKEND={backend!r} before keras is imported. "
            f"Received: keras backend {keras.backend.backend()!r}"
        )
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(2),
        ]
    )
    observation = np.random.default_rng(seed).standard_normal((1, 4)).astype("float32")
    act = compile_inference(model)

    compiled_us, compiled_cpu_us = per_call_us(lambda: act(observation), num_calls, repeats)
    eager_call_us, _ = per_call_us(
        lambda: keras.ops.convert_to_numpy(model(observation)), max(1, num_calls // 10), repeats
    )
    # model.predict builds a data adapter per call: tens of milliseconds on TensorFlow.
    predict_us, _ = per_call_us(
        lambda: model.predict(observation, verbose=0), max(1, num_calls // 100), repeats
    )
    devices = list_devices()
    return {
        "backend": backend,
        "device": next((d for d in devices if not d.startswith("cpu")), devices[0]),
        "compiled_us": round(compiled_us, 1),
        "eager_call_us": round(eager_call_us, 1),
        "predict_us": round(predict_us, 1),
        "target_us": TARGET_US[backend],
        "meets_target": compiled_us <= TARGET_US[backend],
        # Process CPU time per compiled call: barely changed by other processes competing for
        # the cores, unlike the wall-clock times above.
        "compiled_cpu_us": round(compiled_cpu_us, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend_arguments(parser)
    parser.add_argument(
        "--num-calls",
        type=int,
        default=2000,
        help="Calls per timed run of the compiled function; eager calls use a tenth, predict a "
        "hundredth (default 2000).",
    )
    parser.add_argument(
        "--repeats", type=int, default=7, help="Timed runs; the median counts (default 7)."
    )
    add_save_argument(parser)
    args = parser.parse_args(argv)
    if args.num_calls < 1 or args.repeats < 1:
        parser.error("Expected --num-calls >= 1 and --repeats >= 1.")
    arguments = [f"--num-calls={args.num_calls}", f"--repeats={args.repeats}"]
    run_per_backend(
        __file__,
        args,
        arguments,
        {"num_calls": args.num_calls, "repeats": args.repeats},
        lambda: benchmark(args.backend, args.num_calls, args.repeats),
    )


if __name__ == "__main__":
    main()
