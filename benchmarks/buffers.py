"""Add and sample throughput of dlkit's replay buffers (pure NumPy, no backend involved).

Capacity 100,000, CartPole-sized observations (4 float32), discrete actions, batch 64. Measures,
in transitions per second:

- `add` of one transition per call (one environment) and of one step of 8 parallel environments
  per call (`num_envs=8`), into a buffer that is already full, so every write overwrites;
- `sample(64)` (transitions drawn per second = 64 × calls per second);
- for the prioritized buffer, also `update_priorities` of 64 sampled indices;
- as a reference, the common tutorial buffer: a `collections.deque` of tuples with
  `random.sample` and `np.stack` of the drawn fields.

Usage::

    python benchmarks/buffers.py            # prints one JSON object
    python benchmarks/buffers.py --save     # and stores it in benchmarks/results/buffers.json

The process runs on one core (``_common.pin_to_one_core``; NumPy's thread pools start at
import, before it, but the affinity binds them to that core too).
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import random
import sys
import time

import numpy as np
from _common import ResultRecorder, add_save_argument, run_on_one_core

from dlkit.rl.buffers import PrioritizedReplayBuffer, ReplayBuffer

CAPACITY = 100_000
BATCH_SIZE = 64
OBSERVATION_SHAPE = (4,)


def rate(function, num_items_per_call: int, min_seconds: float = 1.0) -> float:
    """Calls `function` repeatedly for about `min_seconds`; returns items per second."""
    function()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds:
        for _ in range(100):
            function()
        calls += 100
    return calls * num_items_per_call / elapsed


def fill(buffer) -> None:
    rng = np.random.default_rng(0)
    num_envs = buffer.num_envs
    observations = rng.normal(size=(CAPACITY // num_envs + 1, num_envs, *OBSERVATION_SHAPE))
    for step in range(CAPACITY // num_envs + 1):
        buffer.add(
            observations[step],
            np.zeros(num_envs, np.int64),
            np.ones(num_envs),
            observations[step],
            np.zeros(num_envs, bool),
            np.zeros(num_envs, bool),
        )


def measure(buffer_class) -> dict:
    results = {}
    single = buffer_class(CAPACITY, OBSERVATION_SHAPE, seed=0)
    fill(single)
    observation = np.zeros(OBSERVATION_SHAPE, np.float32)
    results["add_one_env_per_s"] = rate(
        lambda: single.add(observation, 1, 1.0, observation, False, False), 1
    )
    vector = buffer_class(CAPACITY, OBSERVATION_SHAPE, num_envs=8, seed=0)
    fill(vector)
    observations = np.zeros((8, *OBSERVATION_SHAPE), np.float32)
    no = np.zeros(8, bool)
    actions, rewards = np.zeros(8, np.int64), np.ones(8)
    results["add_8_envs_per_s"] = rate(
        lambda: vector.add(observations, actions, rewards, observations, no, no), 8
    )
    results["sample_64_per_s"] = rate(lambda: single.sample(BATCH_SIZE), BATCH_SIZE)
    if buffer_class is PrioritizedReplayBuffer:
        rng = np.random.default_rng(0)
        indices = rng.integers(0, CAPACITY, BATCH_SIZE)
        td_errors = rng.normal(size=BATCH_SIZE)
        results["update_priorities_64_per_s"] = rate(
            lambda: single.update_priorities(indices, td_errors), BATCH_SIZE
        )
    return {name: round(value) for name, value in results.items()}


def measure_deque() -> dict:
    """The tutorial buffer: a deque of (s, a, r, s', done) tuples."""
    memory = collections.deque(maxlen=CAPACITY)
    observation = np.zeros(OBSERVATION_SHAPE, np.float32)
    for _ in range(CAPACITY):
        memory.append((observation, 1, 1.0, observation, False))
    random.seed(0)

    def sample():
        batch = random.sample(memory, BATCH_SIZE)
        return [np.stack(field) for field in zip(*batch)]

    return {
        "add_one_env_per_s": round(
            rate(lambda: memory.append((observation, 1, 1.0, observation, False)), 1)
        ),
        "sample_64_per_s": round(rate(sample, BATCH_SIZE)),
    }


def main() -> dict:
    return {
        "benchmark": "buffers",
        "capacity": CAPACITY,
        "batch_size": BATCH_SIZE,
        "observation_shape": list(OBSERVATION_SHAPE),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "unit": "transitions per second",
        "ReplayBuffer": measure(ReplayBuffer),
        "PrioritizedReplayBuffer": measure(PrioritizedReplayBuffer),
        "deque_reference": measure_deque(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_save_argument(parser)
    arguments = parser.parse_args()
    recorder = ResultRecorder("buffers", sys.argv, {"capacity": CAPACITY, "batch_size": BATCH_SIZE})
    results = run_on_one_core(main)
    print(json.dumps(results))
    if arguments.save is not None:
        recorder.save(results, arguments.save or None)
