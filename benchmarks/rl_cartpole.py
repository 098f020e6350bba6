"""CartPole-v1 solved by dlkit's DQN and PPO and by Stable-Baselines3, side by side.

For each algorithm and seed, every runner trains from scratch and is evaluated on one protocol:
a deterministic 10-episode evaluation every ``--eval-interval`` environment steps (default
5,000), on 10 copies of CartPole-v1 reset with seeds 10,000 to 10,009 (the same episodes for
every runner and every evaluation, ``dlkit.rl.agent.evaluate_vector``). The run counts as solved
at the first evaluation whose mean return reaches 475; wall time runs from the start of
training to that evaluation and includes the evaluations. After the first hit each run trains
one more interval and is evaluated again (``return_after_solve``): an agent that collapses
right after solving shows it there.

Runners, each in its own process, all pinned to one thread where the library allows it:

- ``sb3``: Stable-Baselines3 (``pip install stable-baselines3``, the ``bench`` extra) with the
  rl-baselines3-zoo CartPole-v1 hyperparameters, PyTorch;
- ``dlkit-<backend>``: dlkit's agents on each Keras backend, with the settings of
  ``DLKIT_SETTINGS`` (the same budgets and schedules as the peer; the update schedule of DQN is
  dlkit's own, see below).

Prints one JSON object: every run (steps and seconds to solve, the returns), per runner and
algorithm the medians over seeds, and the ratios of dlkit's medians to SB3's with the targets:
no more env steps than SB3's median, <= 0.5x its wall-clock on the fastest backend and <= 1.0x
on every backend. An unsolved run counts as infinitely slow in the medians.

Usage:

    python benchmarks/rl_cartpole.py                       # DQN and PPO, 5 seeds, all runners
    python benchmarks/rl_cartpole.py --algorithms ppo --seeds 0,1 --runners sb3,dlkit-jax
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

from _common import BACKENDS

SOLVED = 475.0
EVAL_EPISODES = 10
EVAL_SEED = 10_000

# rl-baselines3-zoo hyperparameters for CartPole-v1 (n_timesteps is each run's budget; the
# linear schedules and the exploration fraction are relative to it).
SB3_SETTINGS = {
    "ppo": {
        "n_envs": 8,
        "n_timesteps": 100_000,
        "policy_kwargs": {},
        "kwargs": {
            "n_steps": 32,
            "batch_size": 256,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "n_epochs": 20,
            "ent_coef": 0.0,
            "learning_rate": "lin_1e-3",
            "clip_range": "lin_0.2",
        },
    },
    "dqn": {
        "n_envs": 1,
        "n_timesteps": 50_000,
        "policy_kwargs": {"net_arch": [256, 256]},
        "kwargs": {
            "learning_rate": 2.3e-3,
            "batch_size": 64,
            "buffer_size": 100_000,
            "learning_starts": 1000,
            "gamma": 0.99,
            "target_update_interval": 10,
            "train_freq": 256,
            "gradient_steps": 128,
            "exploration_fraction": 0.16,
            "exploration_final_eps": 0.04,
        },
    },
}

# dlkit's settings. PPO mirrors the zoo's. DQN keeps the zoo's learning rate, batch, buffer,
# update schedule, exploration and budget; the peer copies the target network before each
# training phase (every 10 env steps, i.e. between phases of 128 gradient steps), which dlkit
# expresses as a hard update every 128 gradient steps. It differs in three choices of its own:
# a 64-64 network instead of 256-256, double Q-learning and 3-step targets (SB3 has neither).
DLKIT_SETTINGS = {
    "ppo": {
        "num_envs": 8,
        "total_timesteps": 100_000,
        "hidden_units": (64, 64),
        "kwargs": {
            "n_steps": 32,
            "batch_size": 256,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "epochs": 20,
            "entropy_coefficient": 0.0,
            "learning_rate": 1e-3,
            "clip_epsilon": 0.2,
            "anneal": True,
        },
    },
    "dqn": {
        "num_envs": 1,
        "total_timesteps": 50_000,
        "hidden_units": (64, 64),
        "kwargs": {
            "double": True,
            "n_step": 3,
            "learning_rate": 2.3e-3,
            "batch_size": 64,
            "buffer_size": 100_000,
            "learning_starts": 1000,
            "gamma": 0.99,
            "train_frequency": 256,
            "gradient_steps": 128,
            "target_update_interval": 128,
            "exploration_fraction": 0.16,
            "exploration_final_epsilon": 0.04,
        },
    },
}


class _Judge:
    """Evaluates on the fixed grid, records the first solve, and says when to stop."""

    def __init__(self, evaluate, interval: int):
        self.evaluate = evaluate
        self.interval = interval
        self.next_eval = interval
        self.evaluations: list[tuple[int, float]] = []
        self.solved_at: int | None = None
        self.solved_seconds: float | None = None
        self.return_after_solve: float | None = None
        self.start = time.perf_counter()

    def step(self, timesteps: int) -> bool:
        """Call after each environment step; returns True when the run should stop."""
        if timesteps < self.next_eval:
            return False
        self.next_eval = (timesteps // self.interval + 1) * self.interval
        mean_return = self.evaluate()
        self.evaluations.append((timesteps, round(mean_return, 1)))
        if self.solved_at is not None:
            self.return_after_solve = round(mean_return, 1)
            return True
        if mean_return >= SOLVED:
            self.solved_at = timesteps
            self.solved_seconds = time.perf_counter() - self.start
        return False

    def result(self) -> dict:
        return {
            "solved_at": self.solved_at,
            "seconds_to_solve": None
            if self.solved_seconds is None
            else round(self.solved_seconds, 2),
            "return_after_solve": self.return_after_solve,
            "evaluations": self.evaluations,
        }


def _eval_env():
    from dlkit.rl import make_vector_env

    return make_vector_env("CartPole-v1", EVAL_EPISODES)


def run_dlkit(algorithm: str, seed: int, interval: int) -> dict:
    import keras

    from dlkit.rl import DQN, PPO, build_q_network, make_vector_env
    from dlkit.rl.agent import evaluate_vector

    keras.utils.set_random_seed(seed)
    settings = DLKIT_SETTINGS[algorithm]
    env = make_vector_env("CartPole-v1", settings["num_envs"])
    eval_env = _eval_env()
    if algorithm == "ppo":
        agent = PPO.from_env(
            env, hidden_units=settings["hidden_units"], seed=seed, **settings["kwargs"]
        )
    else:
        network = build_q_network((4,), 2, hidden_units=settings["hidden_units"])
        agent = DQN(network, seed=seed, **settings["kwargs"])

    judge = _Judge(
        lambda: float(
            sum(
                evaluate_vector(
                    lambda x: agent.act(x, explore=False), eval_env, EVAL_EPISODES, EVAL_SEED
                )
            )
            / EVAL_EPISODES
        ),
        interval,
    )

    class Judging(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if judge.step(agent.num_timesteps):
                agent.stop_training = True

    judge.start = time.perf_counter()
    agent.learn(env, settings["total_timesteps"], callbacks=[Judging()], verbose=0)
    seconds = time.perf_counter() - judge.start
    return {
        "runner": f"dlkit-{keras.backend.backend()}",
        "algorithm": algorithm,
        "seed": seed,
        "timesteps": agent.num_timesteps,
        "gradient_steps": agent.num_updates,
        "seconds": round(seconds, 2),
        "steps_per_second": round(agent.num_timesteps / seconds, 1),
        **judge.result(),
    }


def _sb3_schedule(value):
    if isinstance(value, str) and value.startswith("lin_"):
        initial = float(value[4:])
        return lambda progress_remaining: progress_remaining * initial
    return value


def run_sb3(algorithm: str, seed: int, interval: int) -> dict:
    import torch
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    from dlkit.rl.agent import evaluate_vector

    torch.set_num_threads(1)
    settings = SB3_SETTINGS[algorithm]
    env = make_vec_env("CartPole-v1", n_envs=settings["n_envs"], seed=seed)
    kwargs = {key: _sb3_schedule(value) for key, value in settings["kwargs"].items()}
    model_class = PPO if algorithm == "ppo" else DQN
    model = model_class(
        "MlpPolicy",
        env,
        seed=seed,
        device="cpu",
        policy_kwargs=settings["policy_kwargs"],
        verbose=0,
        **kwargs,
    )
    eval_env = _eval_env()

    def evaluate():
        returns = evaluate_vector(
            lambda x: model.predict(x, deterministic=True)[0], eval_env, EVAL_EPISODES, EVAL_SEED
        )
        return sum(returns) / EVAL_EPISODES

    judge = _Judge(evaluate, interval)

    class Judging(BaseCallback):
        def _on_step(self) -> bool:
            return not judge.step(self.num_timesteps)

    judge.start = time.perf_counter()
    model.learn(settings["n_timesteps"], callback=Judging())
    seconds = time.perf_counter() - judge.start
    return {
        "runner": "sb3",
        "algorithm": algorithm,
        "seed": seed,
        "timesteps": int(model.num_timesteps),
        "seconds": round(seconds, 2),
        "steps_per_second": round(model.num_timesteps / seconds, 1),
        **judge.result(),
    }


def _median(values: list[float | None]) -> float | None:
    finite = [math.inf if value is None else value for value in values]
    median = statistics.median(finite)
    return None if math.isinf(median) else median


def summarise(runs: list[dict]) -> dict:
    """Medians per runner and algorithm, and dlkit's ratios to SB3 against the targets."""
    medians: dict[str, dict[str, dict]] = {}
    for run in runs:
        if "error" in run:
            continue
        entry = medians.setdefault(run["algorithm"], {}).setdefault(run["runner"], {"runs": []})
        entry["runs"].append(run)
    summary: dict[str, dict] = {}
    for algorithm, by_runner in medians.items():
        table = {}
        for runner, entry in by_runner.items():
            table[runner] = {
                "seeds": len(entry["runs"]),
                "solved": sum(run["solved_at"] is not None for run in entry["runs"]),
                "median_steps_to_solve": _median([run["solved_at"] for run in entry["runs"]]),
                "median_seconds_to_solve": _median(
                    [run["seconds_to_solve"] for run in entry["runs"]]
                ),
                "median_steps_per_second": statistics.median(
                    run["steps_per_second"] for run in entry["runs"]
                ),
            }
        peer = table.get("sb3")
        ratios = {}
        if peer and peer["median_seconds_to_solve"]:
            for runner, row in table.items():
                if runner == "sb3":
                    continue
                seconds = row["median_seconds_to_solve"]
                steps = row["median_steps_to_solve"]
                ratios[runner] = {
                    "wall_ratio": None
                    if seconds is None
                    else round(seconds / peer["median_seconds_to_solve"], 3),
                    "steps_within_peer_median": steps is not None
                    and steps <= peer["median_steps_to_solve"],
                }
            walls = [row["wall_ratio"] for row in ratios.values() if row["wall_ratio"] is not None]
            targets = {
                "steps": bool(ratios)
                and all(row["steps_within_peer_median"] for row in ratios.values()),
                "fastest_backend_wall_ratio_le_0.5": bool(walls) and min(walls) <= 0.5,
                "every_backend_wall_ratio_le_1.0": len(walls) == len(ratios)
                and bool(walls)
                and max(walls) <= 1.0,
            }
        else:
            targets = {}
        summary[algorithm] = {"runners": table, "ratios_to_sb3": ratios, "targets_met": targets}
    return summary


def _run_child(runner: str, algorithm: str, seed: int, interval: int) -> dict:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1"}
    environment["KERAS_BACKEND"] = runner.split("-", 1)[1] if runner != "sb3" else "torch"
    command = [
        sys.executable,
        __file__,
        "--child",
        runner,
        "--algorithms",
        algorithm,
        "--seeds",
        str(seed),
        "--eval-interval",
        str(interval),
    ]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        return {
            "runner": runner,
            "algorithm": algorithm,
            "seed": seed,
            "error": completed.stderr.strip().splitlines()[-10:],
        }
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithms", default="ppo,dqn", help="Comma-separated: ppo, dqn.")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="Comma-separated integer seeds.")
    parser.add_argument(
        "--runners",
        default="sb3," + ",".join(f"dlkit-{backend}" for backend in BACKENDS),
        help="Comma-separated: sb3, dlkit-tensorflow, dlkit-jax, dlkit-torch.",
    )
    parser.add_argument("--eval-interval", type=int, default=5_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    algorithms = [name for name in args.algorithms.split(",") if name]
    for name in algorithms:
        if name not in DLKIT_SETTINGS:
            parser.error(f"unknown algorithm {name!r}; choose from {sorted(DLKIT_SETTINGS)}")
    seeds = [int(seed) for seed in args.seeds.split(",") if seed]
    if args.child:
        run = run_sb3 if args.child == "sb3" else run_dlkit
        print(json.dumps(run(algorithms[0], seeds[0], args.eval_interval)))
        return
    runners = [name for name in args.runners.split(",") if name]
    runs = []
    for algorithm in algorithms:
        for seed in seeds:
            for runner in runners:
                run = _run_child(runner, algorithm, seed, args.eval_interval)
                print(json.dumps(run), file=sys.stderr, flush=True)
                runs.append(run)
    print(json.dumps({"runs": runs, "summary": summarise(runs)}, indent=1))


if __name__ == "__main__":
    main()
