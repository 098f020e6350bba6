"""Memory and sampling time of Atari-sized replay: `FrameReplayBuffer` against full stacks.

Fills a `FrameReplayBuffer` of 100,000 transitions with 84×84×4 uint8 stacks built the way
gymnasium's `FrameStackObservation` builds them (synthetic noise frames, one environment,
episodes of 100 to 1,000 agent steps drawn uniformly, each starting with the reset frame
repeated four times) and reports:

- the bytes of its arrays (`nbytes`) and the growth of the process's resident memory (RSS)
  while filling, per transition and extrapolated linearly to 1,000,000 transitions (target:
  ≤ 8 GiB), next to the bytes of a 1,000,000-transition buffer as allocated;
- the time of `sample(32)` (observations and next observations rebuilt), the median over
  5,000 calls of wall and of CPU time (target: ≤ 100 µs);
- the same for today's `ReplayBuffer` holding full stacks (uint8), the comparison row, filled
  to its capacity of 10,000 transitions (56 KiB each: 0.5 GiB), extrapolated to 1,000,000.

Usage::

    python benchmarks/replay_memory.py            # prints one JSON object
    python benchmarks/replay_memory.py --save     # and stores it in benchmarks/results/

The process runs on one core (``_common.pin_to_one_core``); no backend is involved.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from _common import ResultRecorder, add_save_argument, run_on_one_core

from dlkit.rl.buffers import ReplayBuffer
from dlkit.rl.frame_buffer import FrameReplayBuffer

CAPACITY = 100_000
REFERENCE_CAPACITY = 10_000  # full stacks: 56 KiB per transition, 0.5 GiB when full
TARGET_CAPACITY = 1_000_000
SHAPE = (4, 84, 84)
BATCH_SIZE = 32
SAMPLE_CALLS = 5_000
EPISODE_LENGTHS = (100, 1_000)  # agent steps, drawn uniformly
TARGET_GIB = 8.0
TARGET_SAMPLE_US = 100.0
GIB = 2**30


def resident_bytes() -> int:
    """The process's resident set size (VmRSS of /proc/self/status)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def fill(buffer, num_steps: int, seed: int = 0) -> float:
    """Adds `num_steps` transitions of stacked noise frames; returns the seconds taken."""
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, (1024, *SHAPE[1:]), dtype=np.uint8)
    stack = np.repeat(pool[:1], SHAPE[0], axis=0)
    remaining = int(rng.integers(*EPISODE_LENGTHS, endpoint=True))
    start = time.perf_counter()
    for step in range(num_steps):
        next_stack = np.concatenate([stack[1:], pool[rng.integers(len(pool))][None]])
        remaining -= 1
        buffer.add(stack, int(step % 4), 0.0, next_stack, remaining == 0, False)
        if remaining == 0:  # the next episode: its reset frame repeated (padding_type="reset")
            stack = np.repeat(pool[rng.integers(len(pool))][None], SHAPE[0], axis=0)
            remaining = int(rng.integers(*EPISODE_LENGTHS, endpoint=True))
        else:
            stack = next_stack
    return time.perf_counter() - start


def sample_times(buffer) -> dict:
    """Median wall and CPU microseconds of `sample(BATCH_SIZE)` over SAMPLE_CALLS calls."""
    for _ in range(100):
        buffer.sample(BATCH_SIZE)
    wall, cpu = np.empty(SAMPLE_CALLS), np.empty(SAMPLE_CALLS)
    for call in range(SAMPLE_CALLS):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        buffer.sample(BATCH_SIZE)
        wall[call] = time.perf_counter() - wall_start
        cpu[call] = time.process_time() - cpu_start
    return {
        "sample_median_us": round(float(np.median(wall)) * 1e6, 1),
        "sample_median_cpu_us": round(float(np.median(cpu)) * 1e6, 1),
        "sample_p90_us": round(float(np.percentile(wall, 90)) * 1e6, 1),
    }


def array_bytes(buffer: ReplayBuffer) -> int:
    return sum(value.nbytes for value in vars(buffer).values() if isinstance(value, np.ndarray))


def measure_frames() -> dict:
    before = resident_bytes()
    buffer = FrameReplayBuffer(CAPACITY, SHAPE, seed=0)
    seconds = fill(buffer, CAPACITY + CAPACITY // 10)  # full, and wrapped around
    rss = resident_bytes() - before
    per_transition = buffer.nbytes / CAPACITY
    allocated = FrameReplayBuffer(TARGET_CAPACITY, SHAPE).nbytes  # zeros: not resident
    return {
        "transitions": len(buffer),
        "frames_written": buffer.num_frames,
        "frame_capacity": buffer.frame_capacity,
        "grew": buffer.frame_capacity != FrameReplayBuffer(CAPACITY, SHAPE).frame_capacity,
        "nbytes": buffer.nbytes,
        "rss_growth_bytes": rss,
        "nbytes_per_transition": round(per_transition, 1),
        "rss_per_transition": round(rss / CAPACITY, 1),
        "extrapolated_1m_gib": round(per_transition * TARGET_CAPACITY / GIB, 2),
        "extrapolated_1m_rss_gib": round(rss / CAPACITY * TARGET_CAPACITY / GIB, 2),
        "allocated_1m_gib": round(allocated / GIB, 2),
        "add_per_s": round((CAPACITY + CAPACITY // 10) / seconds),
        **sample_times(buffer),
    }


def measure_full_stacks() -> dict:
    before = resident_bytes()
    buffer = ReplayBuffer(REFERENCE_CAPACITY, SHAPE, observation_dtype="uint8", seed=0)
    seconds = fill(buffer, REFERENCE_CAPACITY + REFERENCE_CAPACITY // 10)
    rss = resident_bytes() - before
    per_transition = array_bytes(buffer) / REFERENCE_CAPACITY
    return {
        "transitions": len(buffer),
        "nbytes": array_bytes(buffer),
        "rss_growth_bytes": rss,
        "nbytes_per_transition": round(per_transition, 1),
        "rss_per_transition": round(rss / REFERENCE_CAPACITY, 1),
        "extrapolated_1m_gib": round(per_transition * TARGET_CAPACITY / GIB, 2),
        "extrapolated_1m_rss_gib": round(rss / REFERENCE_CAPACITY * TARGET_CAPACITY / GIB, 2),
        "add_per_s": round((REFERENCE_CAPACITY + REFERENCE_CAPACITY // 10) / seconds),
        **sample_times(buffer),
    }


def main() -> dict:
    frames = measure_frames()
    full = measure_full_stacks()
    return {
        "benchmark": "replay_memory",
        "capacity": CAPACITY,
        "target_capacity": TARGET_CAPACITY,
        "observation_shape": list(SHAPE),
        "batch_size": BATCH_SIZE,
        "episode_lengths": list(EPISODE_LENGTHS),
        "FrameReplayBuffer": frames,
        "ReplayBuffer": full,
        "memory_ratio": round(full["nbytes_per_transition"] / frames["nbytes_per_transition"], 2),
        "targets": {"memory_1m_gib": TARGET_GIB, "sample_us": TARGET_SAMPLE_US},
        "targets_met": {
            "memory": max(frames["extrapolated_1m_gib"], frames["extrapolated_1m_rss_gib"])
            <= TARGET_GIB,
            "sample": frames["sample_median_us"] <= TARGET_SAMPLE_US,
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_save_argument(parser)
    arguments = parser.parse_args()
    recorder = ResultRecorder(
        "replay_memory",
        sys.argv,
        {
            "capacity": CAPACITY,
            "observation_shape": list(SHAPE),
            "batch_size": BATCH_SIZE,
            "sample_calls": SAMPLE_CALLS,
            "episode_lengths": list(EPISODE_LENGTHS),
            "reference_capacity": REFERENCE_CAPACITY,
        },
    )
    results = run_on_one_core(main)
    print(json.dumps(results, indent=1))
    if arguments.save is not None:
        recorder.save(results, arguments.save or None)
