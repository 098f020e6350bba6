"""dlkit against Stable-Baselines3 at scale: Atari pixels and MuJoCo physics, side by side.

Three workloads, each with rl-baselines3-zoo's settings on both sides:

- ``ppo_breakout``: PPO on ``ALE/Breakout-v5``, 8 copies (the ``ppo_atari`` recipe);
- ``dqn_breakout``: DQN on ``ALE/Breakout-v5``, 1 copy (the ``dqn_atari`` recipe);
- ``ppo_halfcheetah``: PPO on ``HalfCheetah-v5`` with observation and reward normalisation
  (the ``ppo_mujoco`` recipe; SB3 through ``VecNormalize``).

One source for the settings: dlkit's side is the recipe's ``Config`` defaults, and SB3's
arguments are read from the same ``Config`` object (`sb3_arguments`); the Atari preprocessing of
both sides is read from the defaults of ``dlkit.rl.make_atari_env`` (`atari_preprocessing`).
The differences that remain are listed in ``DIFFERENCES`` (stored with every result).

Two modes:

- throughput (default): env steps per second of ``learn``, updates included, for each runner
  (``sb3``, ``dlkit-tensorflow``, ``dlkit-jax``, ``dlkit-torch``), each in its own process on one
  core with one thread per library, one after the other. The clock starts after a warm-up (the
  first update, where the JAX and TensorFlow programs compile; DQN: 1,000 steps past
  ``learning_starts``, lowered to ``THROUGHPUT_LEARNING_STARTS`` on both sides) and stops at the
  end of ``learn``; wall and process CPU time are both reported, and the ratios dlkit/SB3.
- ``--learning``: each runner trains ``--timesteps`` steps (default 200,000) for every seed,
  then its deterministic policy plays 10 evaluation episodes (the same seeded episodes for every
  runner: ``dlkit.rl.agent.evaluate_vector`` on the recipe's environment; on Atari, whole games
  at their true score through the ``RecordEpisodeStatistics`` records, for SB3's policy too);
  the medians over seeds are compared.

Usage:

    python benchmarks/rl_scale.py --workloads ppo_halfcheetah --save
    python benchmarks/rl_scale.py --workloads ppo_breakout --steps 4096 --runners sb3,dlkit-jax
    python benchmarks/rl_scale.py --learning --workloads ppo_halfcheetah --seeds 0,1,2 \\
        --runners sb3,dlkit-jax --save benchmarks/results/rl_scale_learning_halfcheetah.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

from _common import (
    BACKENDS,
    ResultRecorder,
    add_save_argument,
    child_json,
    one_core_environment,
    pin_library_threads,
    pin_to_one_core,
    pinning,
)

WORKLOADS = ("ppo_breakout", "dqn_breakout", "ppo_halfcheetah")
# The recipe whose Config defaults are each workload's settings.
RECIPES = {
    "ppo_breakout": "ppo_atari",
    "dqn_breakout": "dqn_atari",
    "ppo_halfcheetah": "ppo_mujoco",
}
RUNNERS = ("sb3", *(f"dlkit-{backend}" for backend in BACKENDS))
PEER = "sb3"
# Env steps of each throughput run (default of --steps), warm-up included: two rollouts of
# PPO's 8 x 128 steps on Breakout (the second timed), DQN's learning starts + warm-up + 1,000
# timed steps (250 gradient steps), 40 rollouts of 512 steps on HalfCheetah (39 timed).
THROUGHPUT_STEPS = {"ppo_breakout": 2 * 1024, "dqn_breakout": 4_000, "ppo_halfcheetah": 40 * 512}
# DQN's learning starts in the throughput mode (the zoo's: 100,000), the same on both sides.
THROUGHPUT_LEARNING_STARTS = 2_000
# DQN's timed window starts this many steps past learning_starts (dlkit's off-policy iteration
# reports every 1,000 steps; the first gradient steps compile).
DQN_WARMUP = 1_000
LEARNING_TIMESTEPS = 200_000
EVAL_EPISODES = 10
EVAL_SEED = 10_000
# Targets of issue 21: dlkit's env steps/s over SB3's.
TARGET_FASTEST, TARGET_EVERY = 2.0, 1.0

# What still differs between the two sides at these settings (stored in every result).
DIFFERENCES = [
    "Atari frame stack: SB3's VecFrameStack pads a new episode's stack (after a reset or a "
    "lost life) with zeros, gymnasium's FrameStackObservation (dlkit) with copies of the first "
    "frame.",
    "Atari frame layout: SB3 stacks channels last (84, 84, 4) and transposes inside its policy "
    "(VecTransposeImage); dlkit's environments give (4, 84, 84) uint8.",
    "HalfCheetah networks: dlkit's PPO starts its layers orthogonal; the zoo's SB3 entry sets "
    "ortho_init=False.",
    "Optimiser: each library's Adam (SB3's PPO: eps 1e-5; dlkit: Keras' Adam defaults).",
    "Evaluation: SB3's policy plays dlkit's evaluation environment (the same seeded episodes; "
    "its frame stack pads with copies, as in the second bullet); HalfCheetah observations go "
    "through SB3's frozen VecNormalize statistics.",
]


def atari_preprocessing() -> dict:
    """The Atari preprocessing both sides get: the defaults of ``dlkit.rl.make_atari_env``."""
    import inspect

    from dlkit.rl import make_atari_env

    names = (
        "frame_skip",
        "frame_stack",
        "screen_size",
        "noop_max",
        "terminal_on_life_loss",
        "clip_rewards",
        "fire_on_reset",
        "repeat_action_probability",
        "max_episode_steps",
    )
    parameters = inspect.signature(make_atari_env).parameters
    return {name: parameters[name].default for name in names}


def recipe_config(workload: str, seed: int, timesteps: int, throughput: bool):
    """The recipe's ``Config`` of ``workload`` (its defaults), with this run's budget and seed
    (and, for DQN in the throughput mode, ``THROUGHPUT_LEARNING_STARTS``)."""
    import importlib

    module = importlib.import_module(f"dlkit.recipes.{RECIPES[workload]}")
    overrides = {"total_timesteps": timesteps, "seed": seed, "verbose": 0}
    if workload == "dqn_breakout" and throughput:
        overrides["learning_starts"] = THROUGHPUT_LEARNING_STARTS
    return dataclasses.replace(module.Config(), **overrides)


def _linear(initial: float, anneal: bool):
    """SB3's linear schedule to 0 (dlkit's ``anneal``), or the constant."""
    return (lambda progress_remaining: progress_remaining * initial) if anneal else initial


def sb3_arguments(workload: str, config) -> dict:
    """SB3's constructor arguments of ``workload``, read from the recipe's ``config``.

    PPO: rollouts, minibatch, epochs, γ, λ, coefficients and gradient norm, the learning rate
    and clip range linear to 0 when the recipe anneals (the zoo's ``lin_`` values). DQN: the
    zoo counts its target update in env steps, dlkit in gradient steps (one every
    ``train_frequency`` steps). HalfCheetah: the zoo's policy (ReLU, 256-256 actor and critic,
    log std −2, ``ortho_init=False``).
    """
    if workload == "dqn_breakout":
        return {
            "policy": "CnnPolicy",
            "learning_rate": config.learning_rate,
            "buffer_size": config.buffer_size,
            "learning_starts": config.learning_starts,
            "batch_size": config.batch_size,
            "gamma": config.gamma,
            "train_freq": config.train_frequency,
            "gradient_steps": config.gradient_steps,
            "target_update_interval": config.target_update_interval
            * config.train_frequency
            // config.gradient_steps,
            "exploration_fraction": config.exploration_fraction,
            "exploration_initial_eps": config.exploration_initial_epsilon,
            "exploration_final_eps": config.exploration_final_epsilon,
            "max_grad_norm": config.max_grad_norm,
            "optimize_memory_usage": False,
        }
    arguments = {
        "policy": "CnnPolicy" if workload == "ppo_breakout" else "MlpPolicy",
        "n_steps": config.n_steps,
        "batch_size": config.batch_size,
        "n_epochs": config.epochs,
        "gamma": config.gamma,
        "gae_lambda": config.gae_lambda,
        "learning_rate": _linear(config.learning_rate, config.anneal),
        "clip_range": _linear(config.clip_epsilon, config.anneal),
        "ent_coef": config.entropy_coefficient,
        "vf_coef": config.value_coefficient,
        "max_grad_norm": config.max_grad_norm,
    }
    if workload == "ppo_halfcheetah":
        import torch

        units = list(config.hidden_units)
        arguments["policy_kwargs"] = {
            "log_std_init": config.log_std_init,
            "ortho_init": False,
            "activation_fn": {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[config.activation],
            "net_arch": {"pi": units, "vf": units},
        }
    return arguments


def describe(arguments: dict) -> dict:
    """``arguments`` as JSON: schedules by their initial value, classes by name."""

    def value(item):
        if callable(item):
            return f"linear from {item(1.0)} to 0" if hasattr(item, "__code__") else item.__name__
        if isinstance(item, dict):
            return {key: value(inner) for key, inner in item.items()}
        return item

    return {key: value(item) for key, item in arguments.items()}


def make_sb3_env(workload: str, config, seed: int):
    """SB3's training environment: its ``make_atari_env`` + ``VecFrameStack`` with dlkit's
    preprocessing values, or ``make_vec_env`` + ``VecNormalize`` with the recipe's values."""
    from stable_baselines3.common.env_util import make_atari_env, make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

    if workload == "ppo_halfcheetah":
        env = make_vec_env(config.env_id, n_envs=config.num_envs, seed=seed)
        return VecNormalize(
            env,
            norm_obs=config.normalize_observations,
            norm_reward=config.normalize_rewards,
            clip_obs=config.observation_clip,
            clip_reward=config.reward_clip,
            gamma=config.gamma,
            epsilon=config.normalization_epsilon,
        )
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    atari = atari_preprocessing()
    # frameskip=1 in ALE: the wrapper skips frames (max of the last two), as AtariPreprocessing;
    # sticky actions in ALE on both sides, not SB3's own action repeat.
    env = make_atari_env(
        config.env_id,
        n_envs=config.num_envs,
        seed=seed,
        env_kwargs={
            "frameskip": 1,
            "repeat_action_probability": atari["repeat_action_probability"],
        },
        wrapper_kwargs={
            "noop_max": atari["noop_max"],
            "frame_skip": atari["frame_skip"],
            "screen_size": atari["screen_size"],
            "terminal_on_life_loss": atari["terminal_on_life_loss"],
            "clip_reward": atari["clip_rewards"],
            "action_repeat_probability": 0.0,
        },
    )
    return VecFrameStack(env, n_stack=atari["frame_stack"])


def _warmup(workload: str, config, throughput: bool) -> int:
    """The env step from which the throughput is timed (after the first update)."""
    if not throughput:
        return 0
    if workload == "dqn_breakout":
        return config.learning_starts + DQN_WARMUP
    return config.n_steps * config.num_envs


class _Clock:
    """Wall and CPU time of the whole run and of its part from the warm-up step on."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.mark: tuple[int, float, float] | None = None
        self.start = (time.perf_counter(), time.process_time())

    def tick(self, timesteps: int) -> None:
        if self.mark is None and timesteps >= self.warmup:
            self.mark = (timesteps, time.perf_counter(), time.process_time())

    def result(self, timesteps: int) -> dict:
        wall, cpu = time.perf_counter(), time.process_time()
        result = {
            "timesteps": int(timesteps),
            "seconds": round(wall - self.start[0], 2),
            "cpu_seconds": round(cpu - self.start[1], 2),
            "load_average": [round(value, 2) for value in os.getloadavg()],
        }
        if self.mark is not None and timesteps > self.mark[0]:
            steps = timesteps - self.mark[0]
            result.update(
                timed_from=self.mark[0],
                timed_steps=int(steps),
                timed_seconds=round(wall - self.mark[1], 3),
                timed_cpu_seconds=round(cpu - self.mark[2], 3),
                steps_per_second=round(steps / (wall - self.mark[1]), 1),
                steps_per_cpu_second=round(steps / (cpu - self.mark[2]), 1),
            )
        return result


def _evaluation_env(workload: str, config):
    return config.make_env(EVAL_EPISODES)


def run_dlkit(workload: str, seed: int, timesteps: int, throughput: bool) -> dict:
    import keras

    from dlkit.rl import DQN, PPO, build_q_network
    from dlkit.rl.agent import evaluate_vector

    keras.utils.set_random_seed(seed)
    config = recipe_config(workload, seed, timesteps, throughput)
    env = config.make_env(config.num_envs)
    if workload == "dqn_breakout":
        network = build_q_network(
            env.single_observation_space,
            int(env.single_action_space.n),
            hidden_units=config.hidden_units,
            dueling=config.dueling,
        )
        agent = DQN(network, config=config)
    elif workload == "ppo_halfcheetah":
        agent = PPO.from_env(env, config.hidden_units, config.activation, config=config)
    else:
        agent = PPO.from_env(env, config.hidden_units, config=config)
    clock = _Clock(_warmup(workload, config, throughput))

    class Timing(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            clock.tick(agent.num_timesteps)

    agent.learn(env, timesteps, callbacks=[Timing()], verbose=0)
    result = {
        "runner": f"dlkit-{keras.backend.backend()}",
        "workload": workload,
        "seed": seed,
        "settings": {
            name: value
            for name, value in dataclasses.asdict(config).items()
            if not name.startswith("_")
        },
        "gradient_steps": agent.num_updates,
        **clock.result(agent.num_timesteps),
    }
    if not throughput:
        eval_env = _evaluation_env(workload, config)
        returns = evaluate_vector(
            lambda x: agent.act(x, explore=False), eval_env, EVAL_EPISODES, EVAL_SEED
        )
        result["eval_returns"] = [round(float(value), 1) for value in returns]
        result["eval_mean"] = round(float(statistics.fmean(returns)), 1)
    return result


def run_sb3(workload: str, seed: int, timesteps: int, throughput: bool) -> dict:
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback

    from dlkit.rl.agent import evaluate_vector

    config = recipe_config(workload, seed, timesteps, throughput)
    arguments = sb3_arguments(workload, config)
    env = make_sb3_env(workload, config, seed)
    model_class = DQN if workload == "dqn_breakout" else PPO
    model = model_class(env=env, seed=seed, device="cpu", verbose=0, **arguments)
    clock = _Clock(_warmup(workload, config, throughput))

    class Timing(BaseCallback):
        # Called before each rollout: right after the previous update, as dlkit's
        # on_epoch_end.
        def _on_rollout_start(self) -> None:
            clock.tick(self.num_timesteps)

        def _on_step(self) -> bool:
            return True

    model.learn(timesteps, callback=Timing())
    result = {
        "runner": "sb3",
        "workload": workload,
        "seed": seed,
        "settings": describe(arguments),
        "gradient_steps": _sb3_gradient_steps(model, workload),
        **clock.result(model.num_timesteps),
    }
    if not throughput:
        eval_env = _evaluation_env(workload, config)
        if workload == "ppo_halfcheetah":
            env.training = False  # frozen statistics, as dlkit's evaluation

            def act(x):
                return model.predict(env.normalize_obs(x), deterministic=True)[0]
        else:

            def act(x):
                return model.predict(x, deterministic=True)[0]

        returns = evaluate_vector(act, eval_env, EVAL_EPISODES, EVAL_SEED)
        result["eval_returns"] = [round(float(value), 1) for value in returns]
        result["eval_mean"] = round(float(statistics.fmean(returns)), 1)
    return result


def _sb3_gradient_steps(model, workload: str) -> int:
    """SB3's minibatch gradient steps (its PPO counts epochs in ``_n_updates``)."""
    updates = int(model._n_updates)
    if workload == "dqn_breakout":
        return updates
    return updates * (model.n_steps * model.n_envs // model.batch_size)


def _library(runner: str) -> str:
    return "torch" if runner == PEER else runner.split("-", 1)[1]


def _run_child(runner: str, workload: str, seed: int, timesteps: int, learning: bool) -> dict:
    """One run in a fresh process, pinned by the child itself; its JSON line, or the error."""
    environment = {
        **one_core_environment(),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_BACKEND": _library(runner),
    }
    identity = {"runner": runner, "workload": workload, "seed": seed}
    flags = {"--child": runner, "--workloads": workload, "--seeds": seed, "--steps": timesteps}
    command = [sys.executable, os.path.abspath(__file__)]
    command += [str(item) for pair in flags.items() for item in pair]
    command += ["--learning"] if learning else []
    return child_json(command, environment, identity)


def _ratio(value, reference):
    return None if value is None or not reference else round(value / reference, 2)


def summarise(runs: list[dict], learning: bool) -> dict:
    """Per workload and runner: the median steps/s (wall and CPU) and their ratios to SB3's
    with the targets, or (``learning``) the median evaluation return over seeds."""
    summary: dict[str, dict] = {}
    grouped: dict[str, dict[str, list[dict]]] = {}
    for run in runs:
        if "error" not in run:
            grouped.setdefault(run["workload"], {}).setdefault(run["runner"], []).append(run)
    for workload, by_runner in grouped.items():
        table = {}
        for runner, entries in by_runner.items():
            if learning:
                table[runner] = {
                    "seeds": [run["seed"] for run in entries],
                    "eval_means": [run["eval_mean"] for run in entries],
                    "median_eval_return": round(
                        statistics.median(run["eval_mean"] for run in entries), 1
                    ),
                    "median_steps_per_second": round(
                        statistics.median(run["timesteps"] / run["seconds"] for run in entries), 1
                    ),
                    "median_steps_per_cpu_second": round(
                        statistics.median(run["timesteps"] / run["cpu_seconds"] for run in entries),
                        1,
                    ),
                }
            else:
                timed = [run for run in entries if "steps_per_second" in run]
                table[runner] = {
                    "steps_per_second": statistics.median(run["steps_per_second"] for run in timed)
                    if timed
                    else None,
                    "steps_per_cpu_second": statistics.median(
                        run["steps_per_cpu_second"] for run in timed
                    )
                    if timed
                    else None,
                    "timed_steps": timed[0]["timed_steps"] if timed else None,
                }
        peer = table.get(PEER)
        entry: dict = {"runners": table}
        if peer is not None:
            key = "median_eval_return" if learning else "steps_per_second"
            entry["ratios_to_sb3"] = {
                runner: {
                    "wall": _ratio(row[key], peer[key]) if not learning else None,
                    "cpu": _ratio(row["steps_per_cpu_second"], peer["steps_per_cpu_second"])
                    if not learning
                    else None,
                }
                for runner, row in table.items()
                if runner != PEER and not learning
            }
            dlkit_rows = {runner: row for runner, row in table.items() if runner != PEER}
            if learning:
                entry["targets_met"] = {
                    "median_return_ge_sb3": {
                        runner: row["median_eval_return"] >= peer["median_eval_return"]
                        for runner, row in dlkit_rows.items()
                    }
                }
            elif dlkit_rows:
                targets = {}
                for clock in ("wall", "cpu"):
                    ratios = [entry["ratios_to_sb3"][runner][clock] for runner in dlkit_rows]
                    known = [ratio for ratio in ratios if ratio is not None]
                    targets[clock] = {
                        f"fastest_backend_ge_{TARGET_FASTEST}": bool(known)
                        and max(known) >= TARGET_FASTEST,
                        f"every_backend_ge_{TARGET_EVERY}": len(known) == len(ratios)
                        and min(known) >= TARGET_EVERY,
                    }
                entry["targets_met"] = targets
        summary[workload] = entry
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="Comma-separated.")
    parser.add_argument(
        "--runners", default=",".join(RUNNERS), help=f"Comma-separated: {', '.join(RUNNERS)}."
    )
    parser.add_argument(
        "--seeds", default=None, help="Comma-separated seeds (default: 0; 0,1,2 with --learning)."
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="Env steps per run (default: THROUGHPUT_STEPS per workload; with --learning "
        f"{LEARNING_TIMESTEPS:,}).",
    )
    parser.add_argument(
        "--learning",
        action="store_true",
        help="Train --steps per seed and evaluate (median return) instead of timing.",
    )
    add_save_argument(parser)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workloads = [name for name in args.workloads.split(",") if name]
    runners = [name for name in args.runners.split(",") if name]
    for name in workloads:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; choose from {list(WORKLOADS)}")
    for name in runners:
        if name not in RUNNERS:
            parser.error(f"unknown runner {name!r}; choose from {list(RUNNERS)}")
    seeds = [int(seed) for seed in (args.seeds or ("0,1,2" if args.learning else "0")).split(",")]

    def budget(workload: str) -> int:
        if args.steps is not None:
            return args.steps
        return LEARNING_TIMESTEPS if args.learning else THROUGHPUT_STEPS[workload]

    if args.child:
        # One core, and one thread per library, before any of them is imported.
        pin_to_one_core()
        pin_library_threads(_library(args.child))
        run = run_sb3 if args.child == PEER else run_dlkit
        result = run(workloads[0], seeds[0], budget(workloads[0]), not args.learning)
        print(json.dumps({**result, "pinning": pinning()}))
        return
    name = "rl_scale_learning" if args.learning else "rl_scale"
    recorder = ResultRecorder(
        name,
        [sys.argv[0], *(sys.argv[1:] if argv is None else argv)],
        {
            "mode": "learning" if args.learning else "throughput",
            "workloads": workloads,
            "runners": runners,
            "seeds": seeds,
            "steps": {workload: budget(workload) for workload in workloads},
            "recipes": {workload: RECIPES[workload] for workload in workloads},
            "dqn_learning_starts": None if args.learning else THROUGHPUT_LEARNING_STARTS,
            "dqn_warmup_steps": DQN_WARMUP,
            "eval_episodes": EVAL_EPISODES if args.learning else None,
            "differences": DIFFERENCES,
        },
    )
    recorder.command = recorder.command.replace("rl_scale_learning.py", "rl_scale.py")
    runs = []
    for workload in workloads:
        for seed in seeds:
            for runner in runners:
                run = _run_child(runner, workload, seed, budget(workload), args.learning)
                brief = {key: value for key, value in run.items() if key != "settings"}
                print(json.dumps(brief), file=sys.stderr, flush=True)
                runs.append(run)
    results = {"runs": runs, "summary": summarise(runs, args.learning)}
    print(json.dumps(results["summary"], indent=1))
    if args.save is not None:
        recorder.save(results, args.save or None)


if __name__ == "__main__":
    main()
