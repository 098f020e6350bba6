"""TRPO against sb3-contrib's TRPO, and A3C against A2C, under the protocol of rl_cartpole.py.

Every run trains from scratch in its own process and is judged by ``rl_cartpole._Judge``: a
deterministic evaluation every ``--eval-interval`` environment steps (default 5,000) on fixed
episodes (copies reset with seeds 10,000, 10,001, ...); a run counts as solved at the first
evaluation whose mean return reaches the task's threshold, and its wall and CPU time run from
the start of training to that evaluation, evaluations included. The medians and quartiles
count an unsolved run as infinitely slow.

Tasks (``TASKS``): CartPole-v1 (threshold 475, 10 evaluation episodes) and Pendulum-v1 (no
registered threshold: -200, over 20 episodes, as the swing-up is then held from almost every
start).

``--algorithms trpo``, on CartPole-v1 and Pendulum-v1, each runner pinned to one core and one
thread:

- ``sb3-contrib``: sb3-contrib's TRPO (the ``bench`` extra) with rl-baselines3-zoo's settings
  (``ZOO_TRPO``), except that Pendulum runs without gSDE (state-dependent exploration, which
  dlkit does not have): the peer of the targets, with the same settings as dlkit;
- ``sb3-contrib-sde`` (Pendulum only): the zoo's Pendulum entry as it is, with gSDE (a tuned
  variant, a second row);
- ``dlkit-<backend>``: `dlkit.rl.TRPO` with the defaults of the ``trpo_cartpole`` and
  ``trpo_pendulum`` recipes, which are the zoo's settings.

``--algorithms a3c``, on CartPole-v1: ``dlkit-<backend>-a3c`` (the ``a3c_cartpole`` recipe's
defaults: 2 worker threads) against ``dlkit-<backend>-a2c`` (the ``a2c_cartpole`` recipe's
defaults) with the same budget of env steps. These runners may use two cores (the question is
whether asynchrony pays on this 2-core machine), both pinned to the same two, one thread per
library.

Targets (``summary.targets_met``): TRPO, on each task, no more env steps than sb3-contrib's
median on every backend, wall-clock to solve <= 0.5x sb3-contrib's on the fastest backend and
<= 1.0x on every backend; A3C, less wall-clock to solve than A2C on the same backend.

Usage:

    python benchmarks/rl_policy_gradients.py                          # both, 10 seeds
    python benchmarks/rl_policy_gradients.py --algorithms trpo --seeds 0,1,2 --save
    python benchmarks/rl_policy_gradients.py --algorithms a3c --runners dlkit-jax-a3c,dlkit-jax-a2c
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from _common import (
    BACKENDS,
    CORE_VARIABLE,
    ResultRecorder,
    add_save_argument,
    child_json,
    one_core_environment,
    pin_library_threads,
    pin_to_one_core,
    pinning,
)
from rl_cartpole import (
    EVAL_SEED,
    _Judge,
    _median,
    _quartiles,
    _ratio,
    learn_judged,
    learn_judged_sb3,
)

# Threshold and evaluation episodes of each task.
TASKS = {
    "CartPole-v1": {"threshold": 475.0, "eval_episodes": 10},
    "Pendulum-v1": {"threshold": -200.0, "eval_episodes": 20},
}
ALGORITHMS = {"trpo": ("CartPole-v1", "Pendulum-v1"), "a3c": ("CartPole-v1",)}

# rl-baselines3-zoo's TRPO entries (hyperparams/trpo.yml); the others are sb3-contrib's
# defaults, which are TRPOConfig's.
ZOO_TRPO = {
    "CartPole-v1": {
        "n_envs": 2,
        "n_timesteps": 100_000,
        "kwargs": {
            "n_steps": 512,
            "batch_size": 512,
            "cg_damping": 1e-3,
            "gae_lambda": 0.98,
            "gamma": 0.99,
            "learning_rate": 1e-3,
            "n_critic_updates": 20,
        },
    },
    "Pendulum-v1": {
        "n_envs": 2,
        "n_timesteps": 100_000,
        "kwargs": {"n_steps": 1024, "gamma": 0.9, "n_critic_updates": 15},
        "sde": {"use_sde": True, "sde_sample_freq": 4},
    },
}
# sb3-contrib's TRPO argument for each TRPOConfig field the recipes set.
_SB3_NAMES = {
    "n_steps": "n_steps",
    "batch_size": "batch_size",
    "cg_damping": "cg_damping",
    "gae_lambda": "gae_lambda",
    "gamma": "gamma",
    "learning_rate": "learning_rate",
    "critic_epochs": "n_critic_updates",
    "max_kl": "target_kl",
    "cg_iterations": "cg_max_steps",
    "line_search_shrink": "line_search_shrinking_factor",
    "line_search_iterations": "line_search_max_iter",
    "normalize_advantages": "normalize_advantage",
}


def _recipe(algorithm: str, env_id: str):
    """The recipe module whose defaults a dlkit runner uses."""
    import importlib

    name = {
        ("trpo", "CartPole-v1"): "trpo_cartpole",
        ("trpo", "Pendulum-v1"): "trpo_pendulum",
        ("a3c", "CartPole-v1"): "a3c_cartpole",
        ("a2c", "CartPole-v1"): "a2c_cartpole",
    }[(algorithm, env_id)]
    return importlib.import_module(f"dlkit.recipes.{name}")


def check_zoo_settings(config, env_id: str) -> None:
    """Raises unless a TRPO recipe's ``config`` has the settings sb3-contrib runs with: the
    zoo's where it sets them, sb3-contrib's defaults elsewhere (compare like with like)."""
    import inspect

    from sb3_contrib import TRPO

    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(TRPO.__init__).parameters.items()
    }
    zoo = ZOO_TRPO[env_id]
    expected = {**defaults, **zoo["kwargs"]}
    differences = {
        ours: (getattr(config, ours), expected[theirs])
        for ours, theirs in _SB3_NAMES.items()
        if getattr(config, ours) != expected[theirs]
    }
    if config.num_envs != zoo["n_envs"] or config.total_timesteps != zoo["n_timesteps"]:
        differences["num_envs, total_timesteps"] = (
            (config.num_envs, config.total_timesteps),
            (zoo["n_envs"], zoo["n_timesteps"]),
        )
    if tuple(config.hidden_units) != (64, 64):  # sb3's MlpPolicy: 64-64 tanh, per network
        differences["hidden_units"] = (config.hidden_units, (64, 64))
    if differences:
        raise ValueError(f"The {env_id} TRPO recipe differs from the zoo's: {differences}")


def _evaluation(act, env_id: str):
    from dlkit.rl import make_vector_env
    from dlkit.rl.agent import evaluate_vector

    episodes = TASKS[env_id]["eval_episodes"]
    env = make_vector_env(env_id, episodes)
    return lambda: sum(evaluate_vector(act, env, episodes, EVAL_SEED)) / episodes


def run_dlkit(runner: str, env_id: str, seed: int, interval: int) -> dict:
    import keras

    import dlkit.rl

    backend, algorithm = keras.backend.backend(), runner.split("-")[-1]
    algorithm = "trpo" if algorithm == backend else algorithm
    config = _recipe(algorithm, env_id).Config(seed=seed)
    if algorithm == "trpo":
        check_zoo_settings(config, env_id)
    agent_class = getattr(dlkit.rl, algorithm.upper())
    keras.utils.set_random_seed(seed)
    env = config.make_env(config.num_envs)
    agent = agent_class.from_env(env, config.hidden_units, config=config)
    judge = _Judge(
        _evaluation(lambda x: agent.act(x, explore=False), env_id),
        interval,
        TASKS[env_id]["threshold"],
    )
    # TRPO and A2C change their policy only at the end of each rollout; A3C's workers change
    # it all the time.
    rollout = 0 if algorithm == "a3c" else config.n_steps * config.num_envs
    elapsed = learn_judged(agent, env, config.total_timesteps, judge, rollout)
    return {
        "runner": runner,
        "algorithm": algorithm,
        "env_id": env_id,
        "seed": seed,
        "timesteps": agent.num_timesteps,
        "gradient_steps": agent.num_updates,
        **elapsed,
        "steps_per_second": round(agent.num_timesteps / elapsed["seconds"], 1),
        **judge.result(),
    }


def sb3_contrib_settings(env_id: str, sde: bool = False) -> dict:
    """The zoo's TRPO settings for ``env_id``, with gSDE only when ``sde``."""
    zoo = ZOO_TRPO[env_id]
    kwargs = dict(zoo["kwargs"])
    if sde:
        kwargs.update(zoo["sde"])
    return {"n_envs": zoo["n_envs"], "n_timesteps": zoo["n_timesteps"], "kwargs": kwargs}


def run_sb3_contrib(runner: str, env_id: str, seed: int, interval: int) -> dict:
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env

    settings = sb3_contrib_settings(env_id, sde=runner == "sb3-contrib-sde")
    env = make_vec_env(env_id, n_envs=settings["n_envs"], seed=seed)
    model = TRPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **settings["kwargs"])
    judge = _Judge(
        _evaluation(lambda x: model.predict(x, deterministic=True)[0], env_id),
        interval,
        TASKS[env_id]["threshold"],
    )

    elapsed = learn_judged_sb3(model, settings["n_timesteps"], judge)
    return {
        "runner": runner,
        "algorithm": "trpo",
        "env_id": env_id,
        "seed": seed,
        "settings": settings,
        "timesteps": int(model.num_timesteps),
        **elapsed,
        "steps_per_second": round(model.num_timesteps / elapsed["seconds"], 1),
        **judge.result(),
    }


def default_runners(algorithm: str, env_id: str) -> list[str]:
    if algorithm == "trpo":
        peers = ["sb3-contrib"] + (["sb3-contrib-sde"] if "sde" in ZOO_TRPO[env_id] else [])
        return peers + [f"dlkit-{backend}" for backend in BACKENDS]
    return [f"dlkit-{backend}-{name}" for backend in BACKENDS for name in ("a2c", "a3c")]


def _row(runs: list[dict]) -> dict:
    return {
        "seeds": len(runs),
        "solved": sum(run["solved_at"] is not None for run in runs),
        "median_steps_to_solve": _median([run["solved_at"] for run in runs]),
        "steps_to_solve_quartiles": _quartiles([run["solved_at"] for run in runs]),
        "median_seconds_to_solve": _median([run["seconds_to_solve"] for run in runs]),
        "seconds_to_solve_quartiles": _quartiles([run["seconds_to_solve"] for run in runs]),
        "median_cpu_seconds_to_solve": _median([run["cpu_seconds_to_solve"] for run in runs]),
    }


def summarise(runs: list[dict]) -> dict:
    """Per algorithm and task: each runner's medians, the ratios and the targets."""
    groups: dict = {}
    for run in runs:
        if "error" not in run:
            key = f"{run['algorithm'] if run['algorithm'] != 'a2c' else 'a3c'}/{run['env_id']}"
            groups.setdefault(key, {}).setdefault(run["runner"], []).append(run)
    summary = {}
    for key, by_runner in groups.items():
        table = {runner: _row(runs) for runner, runs in by_runner.items()}
        entry: dict = {"runners": table}
        if key.startswith("trpo/") and "sb3-contrib" in table:
            peer = table["sb3-contrib"]
            ratios = {
                runner: {
                    "wall_ratio": _ratio(
                        row["median_seconds_to_solve"], peer["median_seconds_to_solve"]
                    ),
                    "cpu_ratio": _ratio(
                        row["median_cpu_seconds_to_solve"], peer["median_cpu_seconds_to_solve"]
                    ),
                    "steps_within_peer_median": row["median_steps_to_solve"] is not None
                    and peer["median_steps_to_solve"] is not None
                    and row["median_steps_to_solve"] <= peer["median_steps_to_solve"],
                }
                for runner, row in table.items()
                if runner.startswith("dlkit-")
            }
            walls = [row["wall_ratio"] for row in ratios.values()]
            entry["ratios_to_sb3_contrib"] = ratios
            entry["targets_met"] = {
                "steps": bool(ratios)
                and all(r["steps_within_peer_median"] for r in ratios.values()),
                "fastest_backend_wall_ratio_le_0.5": any(w is not None and w <= 0.5 for w in walls),
                "every_backend_wall_ratio_le_1.0": bool(walls)
                and all(w is not None and w <= 1.0 for w in walls),
            }
        if key.startswith("a3c/"):
            comparisons = {}
            for backend in BACKENDS:
                a3c, a2c = table.get(f"dlkit-{backend}-a3c"), table.get(f"dlkit-{backend}-a2c")
                if a3c and a2c:
                    comparisons[backend] = {
                        "a3c_to_a2c_wall_ratio": _ratio(
                            a3c["median_seconds_to_solve"], a2c["median_seconds_to_solve"]
                        ),
                        "a3c_to_a2c_steps_ratio": _ratio(
                            a3c["median_steps_to_solve"], a2c["median_steps_to_solve"]
                        ),
                    }
            entry["a3c_against_a2c"] = comparisons
            entry["targets_met"] = {
                backend: row["a3c_to_a2c_wall_ratio"] is not None
                and row["a3c_to_a2c_wall_ratio"] < 1.0
                for backend, row in comparisons.items()
            }
        summary[key] = entry
    return summary


def _library(runner: str) -> str:
    return "torch" if runner.startswith("sb3") else runner.split("-")[1]


def _two_cores(runner: str) -> bool:
    """A3C and its A2C reference may use two cores (see the module docstring)."""
    return runner.endswith(("-a3c", "-a2c"))


def _child_environment(runner: str) -> dict:
    environment = {**one_core_environment(), "TF_CPP_MIN_LOG_LEVEL": "2"}
    environment["KERAS_BACKEND"] = _library(runner)
    return environment


def _run_child(runner: str, env_id: str, seed: int, interval: int) -> dict:
    command = [sys.executable, __file__, "--child", runner, "--env-id", env_id]
    command += ["--seeds", str(seed), "--eval-interval", str(interval)]
    identity = {"runner": runner, "env_id": env_id, "seed": seed}
    return child_json(command, _child_environment(runner), identity)


def _pin(runner: str) -> None:
    """One thread per library; one core, or the two lowest for the A3C comparison."""
    pin_to_one_core()
    if _two_cores(runner):
        cores = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))[:2]
        os.sched_setaffinity(0, set(cores))
        os.environ[CORE_VARIABLE] = ",".join(map(str, cores))
    pin_library_threads(_library(runner))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithms", default="trpo,a3c", help="Comma-separated: trpo, a3c.")
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9", help="Comma-separated seeds.")
    parser.add_argument(
        "--runners", default=None, help="Comma-separated runner names; default: all (docstring)."
    )
    parser.add_argument("--tasks", default=None, help="Comma-separated env ids; default: all.")
    parser.add_argument("--eval-interval", type=int, default=5_000)
    parser.add_argument("--env-id", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    add_save_argument(parser)
    args = parser.parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",") if seed]
    if args.child:
        _pin(args.child)
        run = run_sb3_contrib if args.child.startswith("sb3") else run_dlkit
        result = run(args.child, args.env_id, seeds[0], args.eval_interval)
        # The affinity the run had: one core, or two for the A3C comparison.
        placement = {**pinning(), "affinity": sorted(os.sched_getaffinity(0))}
        print(json.dumps({**result, "pinning": placement}))
        return
    algorithms = [name for name in args.algorithms.split(",") if name]
    for name in algorithms:
        if name not in ALGORITHMS:
            parser.error(f"unknown algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    tasks = None if args.tasks is None else set(args.tasks.split(","))
    recorder = ResultRecorder(
        "rl_policy_gradients",
        [sys.argv[0], *(sys.argv[1:] if argv is None else argv)],
        {
            "algorithms": algorithms,
            "seeds": seeds,
            "eval_interval": args.eval_interval,
            "tasks": TASKS,
            "zoo_trpo": ZOO_TRPO,
        },
    )
    runs = []
    for algorithm in algorithms:
        for env_id in ALGORITHMS[algorithm]:
            if tasks is not None and env_id not in tasks:
                continue
            runners = default_runners(algorithm, env_id)
            if args.runners is not None:
                runners = [name for name in args.runners.split(",") if name in runners]
            for seed in seeds:
                for runner in runners:
                    run = _run_child(runner, env_id, seed, args.eval_interval)
                    print(json.dumps(run), file=sys.stderr, flush=True)
                    runs.append(run)
    results = {"runs": runs, "summary": summarise(runs)}
    print(json.dumps(results, indent=1))
    if args.save is not None:
        recorder.save(results, args.save or None)


if __name__ == "__main__":
    main()
