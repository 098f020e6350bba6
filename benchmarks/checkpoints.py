"""Seconds per checkpoint of a DQN with a full 100,000-transition replay buffer: the verified
format against the plain one it replaced.

The DQN of ``benchmarks/rl_cartpole.py``'s size (CartPole, two hidden layers of 64) with a
buffer of 100,000 transitions filled with random ones. Two ways of writing and reading the same
arrays, alternating, ``--repeats`` times each, median seconds reported:

- ``plain``: what checkpoints were before the verified format, the agent's arrays written by
  ``numpy.savez`` to a temporary name and ``os.replace``; read back with
  ``numpy.load(allow_pickle=False)``, every array;
- ``verified``: ``Agent.save_checkpoint(path, keep_previous=True)`` (the same ``numpy.savez``
  plus its SHA-256, an integrity record and the previous checkpoint kept), and
  ``dlkit.rl.saving.read_checkpoint_arrays`` (the record checked, then every array read).

Prints one JSON object; the process runs on one core (``_common.pin_backend``). The file sits
in a temporary directory (``--directory`` to measure another disk).

Usage:

    python benchmarks/checkpoints.py --save
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
from _common import ResultRecorder, add_save_argument, run_process

CAPACITY = 100_000


def filled_dqn():
    """A DQN whose buffer holds CAPACITY random CartPole-sized transitions."""
    import gymnasium as gym

    from dlkit.rl import DQN, build_q_network

    agent = DQN(
        build_q_network((4,), 2, hidden_units=(64, 64)),
        buffer_size=CAPACITY,
        learning_starts=10**9,
        seed=0,
    )
    agent.learn(gym.make("CartPole-v1"), 10, verbose=0)  # builds the buffer and optimizer
    buffer, rng = agent.buffer, np.random.default_rng(0)
    buffer.observations[...] = rng.normal(size=buffer.observations.shape)
    buffer.next_observations[...] = rng.normal(size=buffer.next_observations.shape)
    buffer.actions[...] = rng.integers(0, 2, size=buffer.actions.shape)
    buffer.rewards[...] = 1.0
    buffer.size, buffer.position = CAPACITY, 0
    return agent


def plain_save(agent, path: str) -> None:
    """The checkpoint as it was written before the verified format: the agent's arrays to a
    temporary name with ``numpy.savez``, then ``os.replace``."""
    temporary = path + ".partial.npz"
    np.savez(temporary, **agent._checkpoint_arrays())
    os.replace(temporary, path)


def measure(repeats: int, directory: str | None) -> dict:
    import keras

    from dlkit.rl.saving import read_checkpoint_arrays

    agent = filled_dqn()
    with tempfile.TemporaryDirectory(dir=directory) as folder:
        verified_path = os.path.join(folder, "checkpoint.npz")
        plain_path = os.path.join(folder, "plain.npz")
        keys = ("plain_save", "verified_save", "plain_load", "verified_load")
        seconds = {key: [] for key in keys}

        def timed(key, function):
            start = time.perf_counter()
            function()
            seconds[key].append(time.perf_counter() - start)

        def load_plain():
            with np.load(plain_path, allow_pickle=False) as file:
                {name: file[name] for name in file.files}

        for _ in range(repeats):
            timed("plain_save", lambda: plain_save(agent, plain_path))
            timed("verified_save", lambda: agent.save_checkpoint(verified_path, True))
            timed("plain_load", load_plain)
            timed("verified_load", lambda: read_checkpoint_arrays(verified_path))
        size = os.path.getsize(verified_path)
    medians = {key: statistics.median(values) for key, values in seconds.items()}
    return {
        "backend": keras.backend.backend(),
        "buffer_transitions": CAPACITY,
        "checkpoint_bytes": size,
        "repeats": repeats,
        "statistic": "median seconds",
        **{f"{key}_s": round(value, 4) for key, value in medians.items()},
        "save_overhead_ratio": round(medians["verified_save"] / medians["plain_save"], 3),
        "load_overhead_ratio": round(medians["verified_load"] / medians["plain_load"], 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="Runs of each (default 7).")
    parser.add_argument("--directory", default=None, help="Where to write (default: a temp dir).")
    add_save_argument(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("Expected --repeats >= 1.")
    recorder = ResultRecorder("checkpoints", sys.argv, {"repeats": args.repeats})
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    result = run_process(backend, lambda: measure(args.repeats, args.directory))
    print(json.dumps(result))
    if args.save is not None:
        recorder.save(result, args.save or None)


if __name__ == "__main__":
    main()
