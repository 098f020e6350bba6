"""Raw environment steps per second of the vector-env engines, random actions, no agent.

gymnasium's `SyncVectorEnv` and `AsyncVectorEnv` (through `dlkit.rl.make_vector_env`) against
envpool (`make_vector_env(..., engine="envpool")`, `dlkit.rl.envpool_engine`) on Breakout with
the Atari preprocessing (8 copies), HalfCheetah-v5 (1 and 8 copies) and CartPole-v1 (8
copies). Each measured process is pinned to one core (`_common.pin_to_one_core`;
AsyncVectorEnv's workers inherit the core, envpool runs one thread); with 8 copies a second
process on 2 cores measures envpool with 2 threads against AsyncVectorEnv's workers spread over
both (and SyncVectorEnv, which uses one). "envpool-raw" is envpool's own gymnasium interface
(`NEXT_STEP` autoreset) without dlkit's same-step adapter, to show what the adapter costs.

The engines of a workload run in one process per number of cores, their timed runs
alternating (`--repeats` rounds of `--seconds` each after a warm-up), so that other jobs slow
them alike; an engine's figure is its fastest run (other jobs only ever slow a run down).
Steps count every copy's step. CPU time is that of the process and, for AsyncVectorEnv, of
its worker processes.

    python benchmarks/vector_envs.py --save         # every configuration, stored
    python benchmarks/vector_envs.py --only CartPole-v1 --seconds 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (
    CORE_VARIABLE,
    ResultRecorder,
    add_save_argument,
    one_core_environment,
    pin_to_one_core,
)

ENGINES = ("gymnasium-sync", "gymnasium-async", "envpool", "envpool-raw")
# The sessions: (environment, copies, cores, engines). The engines of a session run in one
# process, their timed runs alternating, so that other jobs slow them alike. One core: every
# engine; two cores (8 copies): envpool with 2 threads against AsyncVectorEnv's workers spread
# over both, and SyncVectorEnv (one core is all it can use) as the reference.
WORKLOADS = [("Breakout-v5", 8), ("HalfCheetah-v5", 1), ("HalfCheetah-v5", 8), ("CartPole-v1", 8)]
SESSIONS = [
    (env_id, num_envs, cores, engines)
    for env_id, num_envs in WORKLOADS
    for cores, engines in [
        (1, ENGINES),
        *([(2, ("gymnasium-sync", "gymnasium-async", "envpool"))] if num_envs > 1 else []),
    ]
]
ATARI = {"frame_skip": 4, "frame_stack": 4, "screen_size": 84, "noop_max": 30}


def _pillow_cv2():
    """A stand-in for the one opencv call AtariPreprocessing makes, `cv2.resize(frame, (w, h),
    interpolation=cv2.INTER_AREA)`, through Pillow's box filter (area averaging), installed as
    the module `cv2` when opencv is missing, so that gymnasium's own wrapper runs unchanged."""
    import types

    import numpy as np
    from PIL import Image

    module = types.ModuleType("cv2")
    module.INTER_AREA = 3

    def resize(frame, size, interpolation=None):
        return np.asarray(Image.fromarray(frame).resize(tuple(size), Image.BOX))

    module.resize = resize
    return module


def gymnasium_atari_factory(env_id: str):
    """One Breakout copy with gymnasium's Atari preprocessing: returns (factory, description)."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    skip, stack, size, noops = (ATARI[key] for key in ATARI)
    pipeline = "ALE v5 frameskip=1, AtariPreprocessing(frame_skip=4, noop_max=30, 84), "
    pipeline += "FrameStackObservation(4)"
    try:
        import cv2  # noqa: F401  AtariPreprocessing resizes with opencv
    except ImportError:
        sys.modules["cv2"] = _pillow_cv2()
        pipeline += "; opencv missing: its resize through Pillow's box filter"

    def make():
        env = gym.make(env_id, frameskip=1)
        env = gym.wrappers.AtariPreprocessing(
            env, frame_skip=skip, noop_max=noops, screen_size=size
        )
        return gym.wrappers.FrameStackObservation(env, stack)

    return make, pipeline


def make_env(env_id: str, num_envs: int, engine: str, cores: int):
    """The vector environment of one configuration, and a description of its pipeline."""
    import gymnasium as gym

    from dlkit.rl import make_vector_env
    from dlkit.rl.envpool_engine import envpool_task_id, make_envpool_atari

    atari = env_id == "Breakout-v5"
    if engine.startswith("gymnasium"):
        asynchronous = engine == "gymnasium-async"
        if atari:
            factory, pipeline = gymnasium_atari_factory("ALE/Breakout-v5")
            vector = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
            mode = gym.vector.AutoresetMode.SAME_STEP
            return vector([factory] * num_envs, autoreset_mode=mode), pipeline
        return make_vector_env(env_id, num_envs, asynchronous=asynchronous), "gymnasium.make"
    if engine == "envpool-raw":
        import envpool

        options = {"episodic_life": True, "reward_clip": True} if atari else {}
        if atari:
            options.update(repeat_action_probability=0.25, stack_num=4, noop_max=30)
        env = envpool.make_gymnasium(
            envpool_task_id(env_id), num_envs=num_envs, num_threads=cores, **options
        )
        return env, "envpool.make_gymnasium (NEXT_STEP autoreset, no dlkit adapter)"
    if atari:
        return make_envpool_atari(
            env_id, num_envs, num_threads=cores
        ), "make_envpool_atari defaults"
    return make_vector_env(env_id, num_envs, engine="envpool", num_threads=cores), "envpool"


def _children_cpu_seconds(env) -> float:
    """utime + stime of AsyncVectorEnv's worker processes, from /proc."""
    total = 0.0
    for process in getattr(env, "processes", []) or []:
        try:
            with open(f"/proc/{process.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def _prepare(env_id: str, num_envs: int, engine: str, cores: int) -> dict:
    """One engine's environment, reset and warmed up, with 256 random batched actions."""
    import numpy as np

    env, pipeline = make_env(env_id, num_envs, engine, cores)
    if engine == "envpool-raw":  # envpool's own spaces are a single copy's
        import gymnasium as gym

        space = gym.vector.utils.batch_space(env.action_space, num_envs)
        space.seed(0)
        actions = [space.sample().astype(env.action_space.dtype) for _ in range(256)]
        observations, _ = env.reset()
    else:
        env.action_space.seed(0)
        actions = [env.action_space.sample() for _ in range(256)]
        observations, _ = env.reset(seed=0)
    for step in range(50):  # warm-up
        env.step(actions[step % len(actions)])
    return {
        "env": env,
        "actions": actions,
        "pipeline": pipeline,
        "observation_shape": list(np.shape(observations)[1:]),
    }


def _timed_run(env, actions, num_envs: int, seconds: float) -> dict:
    steps = 0
    wall, cpu = time.perf_counter(), time.process_time()
    children = _children_cpu_seconds(env)
    while time.perf_counter() - wall < seconds:
        for action in actions[:64]:
            env.step(action)
        steps += 64 * num_envs
    elapsed = time.perf_counter() - wall
    used = time.process_time() - cpu + _children_cpu_seconds(env) - children
    return {
        "steps": steps,
        "wall_s": round(elapsed, 3),
        "steps_per_s": round(steps / elapsed, 1),
        "cpu_s": round(used, 3),
        "cpu_us_per_step": round(1e6 * used / steps, 2),
    }


def measure(env_id: str, num_envs: int, cores: int, engines, seconds: float, repeats: int):
    """Steps per second (every copy's step counted) of random actions for each engine: the
    fastest of `repeats` timed runs, the engines' runs alternating."""
    prepared = {engine: _prepare(env_id, num_envs, engine, cores) for engine in engines}
    runs = {engine: [] for engine in engines}
    for _ in range(repeats):
        for engine in engines:
            entry = prepared[engine]
            runs[engine].append(_timed_run(entry["env"], entry["actions"], num_envs, seconds))
    results = []
    for engine in engines:
        prepared[engine]["env"].close()
        best = max(runs[engine], key=lambda run: run["steps_per_s"])
        results.append(
            {
                "env_id": env_id,
                "num_envs": num_envs,
                "engine": engine,
                "cores": cores,
                "pipeline": prepared[engine]["pipeline"],
                "steps_per_s": best["steps_per_s"],
                "cpu_us_per_step": min(run["cpu_us_per_step"] for run in runs[engine]),
                "observation_shape": prepared[engine]["observation_shape"],
                "runs": runs[engine],
            }
        )
    return results


def child(session: dict) -> None:
    """Measures one session in this process, pinned to its core(s); prints one JSON list."""
    pin_to_one_core()
    if session["cores"] > 1:
        first = int(os.environ[CORE_VARIABLE])
        others = [core for core in range(os.cpu_count()) if core != first]
        os.sched_setaffinity(0, {first, *others[: session["cores"] - 1]})
    results = measure(**session)
    for result in results:
        result["affinity"] = sorted(os.sched_getaffinity(0))
    print(json.dumps(results))


def run_session(session: dict) -> list[dict]:
    completed = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", json.dumps(session)],
        env={**one_core_environment(), "PYTHONWARNINGS": "ignore", "KERAS_BACKEND": "jax"},
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        return [{**session, "error": completed.stderr.strip().splitlines()[-10:]}]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def speedups(results: list[dict]) -> list[dict]:
    """envpool's steps per second over the fastest gymnasium engine's of the same session."""
    rows = []
    for envpool in results:
        if envpool["engine"] != "envpool" or "error" in envpool:
            continue
        session = (envpool["env_id"], envpool["num_envs"], envpool["cores"])
        fastest = max(
            (
                r
                for r in results
                if (r["env_id"], r["num_envs"], r["cores"]) == session
                and r["engine"].startswith("gymnasium")
                and "error" not in r
            ),
            key=lambda r: r["steps_per_s"],
        )
        rows.append(
            {
                "env_id": envpool["env_id"],
                "num_envs": envpool["num_envs"],
                "cores": envpool["cores"],
                "over": fastest["engine"],
                "speedup": round(envpool["steps_per_s"] / fastest["steps_per_s"], 2),
            }
        )
    return rows


def simulator_versions() -> dict:
    """The versions of the engines and simulators measured (not in `_common.VERSIONED`)."""
    import importlib.metadata

    versions = {}
    for name in ("envpool", "ale-py", "mujoco", "pillow", "opencv-python"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per run")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds")
    parser.add_argument("--only", help="measure only this environment id")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    add_save_argument(parser)
    arguments = parser.parse_args()
    if arguments.child:
        child(json.loads(arguments.child))
        return
    settings = {
        "seconds": arguments.seconds,
        "repeats": arguments.repeats,
        "simulator_versions": simulator_versions(),
    }
    recorder = ResultRecorder("vector_envs", sys.argv, settings)
    results = []
    for env_id, num_envs, cores, engines in SESSIONS:
        if arguments.only and env_id != arguments.only:
            continue
        session = dict(
            env_id=env_id,
            num_envs=num_envs,
            cores=cores,
            engines=list(engines),
            seconds=arguments.seconds,
            repeats=arguments.repeats,
        )
        results += run_session(session)
        print(json.dumps(results[-1]), file=sys.stderr)
    output = {"configurations": results, "envpool_speedup": speedups(results)}
    print(json.dumps(output, indent=1))
    if arguments.save is not None:
        recorder.save(output, arguments.save or None)


if __name__ == "__main__":
    main()
