"""A3C's actor-learners as threads or processes: the costs that chose threads, as JSON.

Measures, on the active Keras backend (``KERAS_BACKEND``) and CartPole-v1 with the
``a3c_cartpole`` recipe's networks:

- ``process_start_seconds``: a fresh Python process that imports keras and dlkit.rl (what a
  worker process pays before its first step), median of ``--repeats``;
- ``transfer_round_trip_ms``: one update's traffic for a worker process, the shared parameters
  sent to it and a gradient of the same size sent back through a ``multiprocessing.Pipe``,
  median over 200 round trips (a thread reads the parameters in place);
- ``steps_per_second``: `A3C.learn` throughput with 1 and with 2 worker threads over
  ``--steps`` environment steps, after a warm-up run (compilation excluded).

Run: ``KERAS_BACKEND=jax OMP_NUM_THREADS=1 python benchmarks/a3c_workers.py``. Timings depend on
the machine's load; run it alone.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time


def process_start_seconds(repeats: int) -> float:
    code = "import keras, dlkit.rl"
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _echo(connection) -> None:
    while True:
        arrays = connection.recv()
        if arrays is None:
            return
        connection.send(arrays)  # a gradient has the parameters' shapes


def transfer_round_trip_ms(arrays, trips: int = 200) -> float:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_echo, args=(child,))
    process.start()
    parent.send(arrays)
    parent.recv()
    times = []
    for _ in range(trips):
        start = time.perf_counter()
        parent.send(arrays)
        parent.recv()
        times.append(time.perf_counter() - start)
    parent.send(None)
    process.join()
    return 1e3 * statistics.median(times)


def steps_per_second(num_workers: int, steps: int) -> float:
    from dlkit.recipes import a3c_cartpole
    from dlkit.rl import A3C, make_vector_env

    config = a3c_cartpole.Config(num_envs=num_workers, num_workers=num_workers, seed=0)
    env = make_vector_env("CartPole-v1", num_envs=num_workers)
    agent = A3C.from_env(env, config.hidden_units, config=config)
    agent.learn(env, 1_000, verbose=0)  # compiles
    start = time.perf_counter()
    agent.learn(env, steps, verbose=0)
    return steps / (time.perf_counter() - start)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import keras
    import numpy as np

    from dlkit.recipes import a3c_cartpole
    from dlkit.rl import A3C, make_vector_env

    config = a3c_cartpole.Config()
    agent = A3C.from_env(make_vector_env("CartPole-v1", 2), config.hidden_units, config=config)
    arrays = [np.asarray(keras.ops.convert_to_numpy(v.value)) for v in agent.trainable_variables]
    results = {
        "backend": keras.backend.backend(),
        "parameters": int(sum(array.size for array in arrays)),
        "process_start_seconds": round(process_start_seconds(args.repeats), 2),
        "transfer_round_trip_ms": round(transfer_round_trip_ms(arrays), 3),
        "steps_per_second": {
            str(workers): round(steps_per_second(workers, args.steps)) for workers in (1, 2)
        },
    }
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
