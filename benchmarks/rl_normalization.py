"""What running normalisation (`normalize_observations`, `normalize_rewards`) does to learning.

For each workload and seed the script trains one agent from scratch with and without the
agent's normalisation (``--settings``: ``on`` both switches, ``observations`` only
``normalize_observations``, ``off`` neither) and evaluates its deterministic policy before
training (the untrained policy) and at the end, on the same episodes (`Agent.evaluate`, seeds
10,000 on). Workloads:

- ``halfcheetah_ppo``, ``halfcheetah_a2c``: PPO and A2C with a Gaussian policy on MuJoCo's
  HalfCheetah-v5 (the ``mujoco`` extra), settings ``HALFCHEETAH`` (those of the slow tests in
  tests/rl/test_normalization.py);
- ``pendulum``: the ``ppo_pendulum`` recipe's defaults (its own budget unless ``--timesteps``),
  the final evaluation of the recipe's quality gate (50 episodes).

It prints one JSON object: per workload, setting and seed the returns, the steps, and the wall
and process CPU seconds of training (on a shared machine the CPU time is the steadier figure).

    KERAS_BACKEND=jax python benchmarks/rl_normalization.py --workload halfcheetah_ppo \\
        --seeds 0 1 2 --save
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from _common import BACKENDS, ResultRecorder, add_save_argument, pin_backend

# Short-run settings of the HalfCheetah workloads, read by the slow tests too: small rollouts so
# that a budget of tens of thousands of steps holds many updates.
HALFCHEETAH = {
    "ppo": dict(
        hidden_units=(64, 64),
        n_steps=512,
        batch_size=64,
        epochs=10,
        learning_rate=3e-4,
        gamma=0.99,
        gae_lambda=0.95,
        clip_epsilon=0.2,
    ),
    "a2c": dict(hidden_units=(64, 64), n_steps=8, learning_rate=7e-4, gamma=0.99, gae_lambda=0.9),
}
# Environment copies per agent kind.
HALFCHEETAH_NUM_ENVS = {"ppo": 1, "a2c": 4}
HALFCHEETAH_ENV = "HalfCheetah-v5"
HALFCHEETAH_TIMESTEPS = 30_000
NORMALIZATION = {
    "on": dict(normalize_observations=True, normalize_rewards=True),
    "observations": dict(normalize_observations=True),
    "off": {},
}


def halfcheetah_agent(kind: str, env, seed: int, **overrides):
    """The PPO or A2C agent of the HalfCheetah workloads, with `overrides` on its settings."""
    from dlkit.rl import A2C, PPO

    settings = {**HALFCHEETAH[kind], **overrides}
    hidden_units = settings.pop("hidden_units")
    cls = PPO if kind == "ppo" else A2C
    return cls.from_env(env, hidden_units=hidden_units, seed=seed, **settings)


def run_halfcheetah(kind: str, seed: int, setting: str, timesteps: int, episodes: int) -> dict:
    import keras
    import numpy as np

    from dlkit.rl import make_vector_env

    keras.utils.set_random_seed(seed)
    env = make_vector_env(HALFCHEETAH_ENV, HALFCHEETAH_NUM_ENVS[kind])
    eval_env = make_vector_env(HALFCHEETAH_ENV, episodes)
    agent = halfcheetah_agent(kind, env, seed, **NORMALIZATION[setting])
    untrained = agent.evaluate(eval_env, episodes, seed=10_000)
    wall, cpu = time.perf_counter(), time.process_time()
    agent.learn(env, timesteps, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # NaN where the run finished no episode.
    returns = np.array(agent.episode_returns or [np.nan])
    return {
        "untrained_return": round(untrained, 1),
        "final_return": round(agent.evaluate(eval_env, episodes, seed=10_000), 1),
        "training_return_first": round(float(returns[0]), 1),
        "training_return_last_5": round(float(returns[-5:].mean()), 1),
        "timesteps": agent.num_timesteps,
        "train_wall_s": round(wall, 1),
        "train_cpu_s": round(cpu, 1),
    }


def run_pendulum(seed: int, setting: str, timesteps: int | None, directory: str) -> dict:
    from dlkit.recipes import ppo_pendulum

    overrides = {} if timesteps is None else {"total_timesteps": timesteps}
    config = ppo_pendulum.Config(
        seed=seed,
        export="none",
        verbose=0,
        output_dir=os.path.join(directory, f"{setting}_{seed}"),
        **NORMALIZATION[setting],
        **overrides,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    results = ppo_pendulum.main(config)
    return {
        "final_return": round(results["eval_mean_return"], 1),
        "evaluations": results["evaluations"],
        "timesteps": results["timesteps"],
        "train_wall_s": round(time.perf_counter() - wall, 1),
        "train_cpu_s": round(time.process_time() - cpu, 1),
    }


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS)
    parser.add_argument(
        "--workload",
        choices=("halfcheetah_ppo", "halfcheetah_a2c", "pendulum"),
        default="halfcheetah_ppo",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", choices=sorted(NORMALIZATION), default=["on"])
    parser.add_argument(
        "--timesteps",
        type=int,
        default=None,
        help=f"training steps (HalfCheetah: {HALFCHEETAH_TIMESTEPS}; pendulum: the recipe's)",
    )
    parser.add_argument("--episodes", type=int, default=3, help="HalfCheetah evaluation episodes")
    add_save_argument(parser)
    arguments = parser.parse_args()
    backend = arguments.backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    recorder = ResultRecorder("rl_normalization", sys.argv, {**vars(arguments), "backend": backend})
    pinning = pin_backend(backend)
    results: dict = {"backend": backend, "workload": arguments.workload, "pinning": pinning}
    working_directory = os.getcwd()
    with tempfile.TemporaryDirectory() as directory:
        # MuJoCo writes its warnings to MUJOCO_LOG.TXT in the working directory.
        os.chdir(directory)
        for setting in arguments.settings:
            for seed in arguments.seeds:
                if arguments.workload == "pendulum":
                    run = run_pendulum(seed, setting, arguments.timesteps, directory)
                else:
                    kind = arguments.workload.split("_")[1]
                    timesteps = arguments.timesteps or HALFCHEETAH_TIMESTEPS
                    run = run_halfcheetah(kind, seed, setting, timesteps, arguments.episodes)
                results.setdefault(setting, {})[str(seed)] = run
                print(json.dumps({"setting": setting, "seed": seed, **run}), file=sys.stderr)
        os.chdir(working_directory)
    print(json.dumps(results))
    if arguments.save is not None:
        name = f"rl_normalization_{arguments.workload}.json"
        default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", name)
        recorder.save(results, arguments.save or default)


if __name__ == "__main__":
    main()
