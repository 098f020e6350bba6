"""CartPole-v1 solved by dlkit's DQN and PPO, Stable-Baselines3 and TF-Agents, side by side.

For each algorithm and seed, every runner trains from scratch and is evaluated on one protocol:
a deterministic 10-episode evaluation every ``--eval-interval`` environment steps (default
5,000), on 10 copies of CartPole-v1 reset with seeds 10,000 to 10,009 (the same episodes for
every runner and every evaluation, ``dlkit.rl.agent.evaluate_vector``). The run counts as solved
at the first evaluation whose mean return reaches 475; wall time runs from the start of
training to that evaluation and includes the evaluations. After the first hit each run trains
one more interval and is evaluated again (``return_after_solve``): an agent that collapses
right after solving shows it there.

A grid point is evaluated with the policy the runner acts with at that env step. SB3's
callback runs after every vector step, so its PPO is evaluated between updates, with the
policy of its last rollout's update. dlkit's PPO reports after each update; the policy it then
holds acts unchanged until its next rollout ends, so a grid point before that end is evaluated
right away and counted as that grid point (it saves the runner the wall time of the steps up
to the grid point, at most one rollout of 256 steps, about 35 ms).

``--jax-compilation-cache DIR`` runs dlkit-jax with XLA's persistent compilation cache
(``dlkit.training.enable_compilation_cache``): the first run of a setting compiles (about
0.8 s for PPO, included in its time), later runs load the programs from DIR.

Runners, each in its own process, all pinned to one thread where the library allows it:

- ``sb3``: Stable-Baselines3 (``pip install stable-baselines3``, the ``bench`` extra) with the
  rl-baselines3-zoo CartPole-v1 hyperparameters, PyTorch: the peer of the targets;
- ``sb3-dlkit-settings`` (PPO only): SB3 with dlkit's values of gamma, GAE lambda and learning
  rate (``dlkit_settings``), to show how much of a difference comes from those values;
- ``tf-agents``: TF-Agents 0.19 DQN (DQN only) with the settings of its DQN tutorial
  (``TF_AGENTS_SETTINGS``), TensorFlow with legacy Keras (``TF_USE_LEGACY_KERAS=1``).
  TF-Agents 0.19 does not install next to Keras 3 with its declared dependencies; install it
  into a directory of its own and pass it as ``--tf-agents-path`` (or
  ``DLKIT_TF_AGENTS_PATH``), see benchmarks/README.md. The runner joins the default list only
  when tf_agents imports in its process; otherwise the JSON lists it under ``skipped``. Its runs
  are not reproducible under a fixed seed (parallel tf.data sampling of the replay buffer);
- ``dlkit-<backend>``: dlkit's agents on each Keras backend, with the settings of
  ``dlkit_settings`` (for PPO the ``ppo_cartpole`` recipe's defaults; the same budgets and
  schedules as the peer; three PPO values and the update schedule of DQN are dlkit's own, see
  below).

Prints one JSON object: every run (steps and seconds to solve, the returns), per runner and
algorithm the medians over seeds (TF-Agents' too, for reference), and the ratios of dlkit's
medians to SB3's with the targets: no more env steps than SB3's median, <= 0.5x its wall-clock
on the fastest backend and <= 1.0x on every backend. An unsolved run counts as infinitely slow
in the medians.

Usage:

    python benchmarks/rl_cartpole.py                       # DQN and PPO, 10 seeds, all runners
    python benchmarks/rl_cartpole.py --algorithms ppo --seeds 0,1 --runners sb3,dlkit-jax
    python benchmarks/rl_cartpole.py --algorithms dqn --runners tf-agents --tf-agents-path DIR
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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

SOLVED = 475.0
_CACHE_VARIABLE = "DLKIT_BENCHMARK_JAX_CACHE"  # --jax-compilation-cache, for the runners
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

ALGORITHMS = ("ppo", "dqn")

# dlkit's tuned settings (`dlkit_settings(algorithm, tuned=True)`, the runners
# `dlkit-<backend>-tuned`; the runners `dlkit-<backend>` run the zoo's settings, `zoo_settings`).
# PPO's are the `ppo_cartpole` recipe's defaults: the zoo's networks, rollouts (8 copies x 32
# steps), minibatch, epochs, clip range, schedules and budget, with three values of its own:
# gamma 0.99, GAE lambda 0.95 and an initial learning rate of 3e-3 (the zoo's: 0.98, 0.8, 1e-3),
# chosen on seeds 100-119 with dlkit-jax. The runner `sb3-dlkit-settings` runs SB3's PPO with
# these values too. DQN's keep the zoo's learning rate, batch, buffer, update schedule,
# exploration and budget, with three choices of its own: a 64-64 network instead of 256-256,
# double Q-learning and 3-step targets (SB3 has neither).
DLKIT_SETTINGS = {
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


# The PPO arguments that the benchmark takes from the recipe's configuration.
_PPO_ARGUMENTS = (
    "n_steps",
    "batch_size",
    "gae_lambda",
    "gamma",
    "epochs",
    "entropy_coefficient",
    "learning_rate",
    "clip_epsilon",
    "anneal",
)


def _initial_value(value) -> float:
    """The initial value of a zoo value that may be a linear schedule (``"lin_1e-3"``)."""
    return float(value[4:]) if isinstance(value, str) and value.startswith("lin_") else value


def zoo_settings(algorithm: str) -> dict:
    """The zoo's settings of ``algorithm`` (``SB3_SETTINGS``) in dlkit's terms: the same network,
    update rule and hyperparameters as the peer, the runners ``dlkit-<backend>``.

    DQN: SB3 copies the target network every 10 env steps, which falls between its training
    phases of 128 gradient steps every 256 env steps, so the target is the online network at the
    start of every phase: a hard update every 128 gradient steps in dlkit's terms. Plain (not
    double) Q-learning, 1-step targets, Huber loss and gradient norm 10 are SB3's and dlkit's
    defaults. PPO: the zoo's rollouts, minibatch, epochs, entropy coefficient, γ, λ and the
    linear schedules of the learning rate and clip range (dlkit's ``anneal``); the other
    values (value coefficient 0.5, gradient norm 0.5, normalized advantages, 64-64 networks)
    are the defaults of both libraries.
    """
    zoo = SB3_SETTINGS[algorithm]
    values = zoo["kwargs"]
    if algorithm == "dqn":
        return {
            "num_envs": zoo["n_envs"],
            "total_timesteps": zoo["n_timesteps"],
            "hidden_units": tuple(zoo["policy_kwargs"]["net_arch"]),
            "kwargs": {
                "double": False,
                "n_step": 1,
                "learning_rate": values["learning_rate"],
                "batch_size": values["batch_size"],
                "buffer_size": values["buffer_size"],
                "learning_starts": values["learning_starts"],
                "gamma": values["gamma"],
                "train_frequency": values["train_freq"],
                "gradient_steps": values["gradient_steps"],
                "target_update_interval": values["gradient_steps"],
                "exploration_fraction": values["exploration_fraction"],
                "exploration_final_epsilon": values["exploration_final_eps"],
            },
        }
    return {
        "num_envs": zoo["n_envs"],
        "total_timesteps": zoo["n_timesteps"],
        "hidden_units": (64, 64),
        "kwargs": {
            "n_steps": values["n_steps"],
            "batch_size": values["batch_size"],
            "gae_lambda": values["gae_lambda"],
            "gamma": values["gamma"],
            "epochs": values["n_epochs"],
            "entropy_coefficient": values["ent_coef"],
            "learning_rate": _initial_value(values["learning_rate"]),
            "clip_epsilon": _initial_value(values["clip_range"]),
            "anneal": True,
        },
    }


def dlkit_settings(algorithm: str, tuned: bool = True) -> dict:
    """dlkit's settings of ``algorithm``: with ``tuned=False`` the zoo's (`zoo_settings`);
    otherwise PPO's read from the ``ppo_cartpole`` recipe's defaults (imported only in a
    runner's process, which has chosen its backend) and DQN's from ``DLKIT_SETTINGS``."""
    if not tuned:
        return zoo_settings(algorithm)
    if algorithm != "ppo":
        return DLKIT_SETTINGS[algorithm]
    from dlkit.recipes.ppo_cartpole import Config

    config = Config()
    return {
        "num_envs": config.num_envs,
        "total_timesteps": config.total_timesteps,
        "hidden_units": tuple(config.hidden_units),
        "kwargs": {name: getattr(config, name) for name in _PPO_ARGUMENTS},
    }


# TF-Agents 0.19 DQN with the settings of its DQN tutorial (the agent's defaults where the
# tutorial keeps them: discount 1.0, a target update every step, epsilon 0.1) and a budget of
# 100,000 env steps (the first 100 from a random policy). TF-Agents has no gymnasium support;
# ``run_tf_agents`` wraps CartPole-v1 in a ``PyEnvironment`` whose truncations bootstrap
# (discount 1) and terminations do not.
TF_AGENTS_SETTINGS = {
    "dqn": {
        "num_iterations": 100_000,
        "initial_collect_steps": 100,
        "collect_steps_per_iteration": 1,
        "replay_buffer_max_length": 100_000,
        "batch_size": 64,
        "fc_layer_params": (100, 50),
        "learning_rate": 1e-3,
        "epsilon_greedy": 0.1,
        "gamma": 1.0,
        "n_step_update": 1,
        "target_update_period": 1,
        "target_update_tau": 1.0,
    },
}
TF_AGENTS_NOTES = {
    "ppo": "TF-Agents runs DQN only in this benchmark",
    "reproducibility": (
        "TF-Agents runs are not reproducible under a fixed seed: its replay buffer is sampled "
        "through tf.data with parallel calls"
    ),
}


class _Judge:
    """Evaluates on the fixed grid, records the first solve, and says when to stop."""

    def __init__(self, evaluate, interval: int, threshold: float = SOLVED):
        self.evaluate = evaluate
        self.interval = interval
        self.threshold = threshold
        self.next_eval = interval
        self.evaluations: list[tuple[int, float]] = []
        self.solved_at: int | None = None
        self.solved_seconds: float | None = None
        self.solved_cpu_seconds: float | None = None
        self.return_after_solve: float | None = None
        self.begin()

    def begin(self) -> None:
        """Starts the clocks: wall time and this process's CPU time (all its threads)."""
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()

    def elapsed(self) -> dict:
        """Wall and CPU seconds since `begin`, and the load average of the machine now."""
        return {
            "seconds": round(time.perf_counter() - self.start, 2),
            "cpu_seconds": round(time.process_time() - self.cpu_start, 2),
            "load_average": [round(value, 2) for value in os.getloadavg()],
        }

    def step(self, timesteps: int, unchanged_until: int | None = None) -> bool:
        """Call whenever the policy may have changed; returns True when the run should stop.

        ``unchanged_until``: the env step up to which the current policy acts unchanged (an
        on-policy learner updates only at the end of its next rollout). A grid point up to
        there is evaluated now, with the policy the runner acts with at that step, and counts
        as that grid point. None: ``timesteps`` (the policy may change after every step).
        """
        acting_until = timesteps if unchanged_until is None else unchanged_until
        if acting_until < self.next_eval:
            return False
        grid_point = self.next_eval if acting_until > timesteps else timesteps
        self.next_eval = (grid_point // self.interval + 1) * self.interval
        mean_return = self.evaluate()
        self.evaluations.append((grid_point, round(mean_return, 1)))
        if self.solved_at is not None:
            self.return_after_solve = round(mean_return, 1)
            return True
        if mean_return >= self.threshold:
            self.solved_at = grid_point
            self.solved_seconds = time.perf_counter() - self.start
            self.solved_cpu_seconds = time.process_time() - self.cpu_start
        return False

    def result(self) -> dict:
        return {
            "solved_at": self.solved_at,
            "seconds_to_solve": None
            if self.solved_seconds is None
            else round(self.solved_seconds, 2),
            "cpu_seconds_to_solve": None
            if self.solved_cpu_seconds is None
            else round(self.solved_cpu_seconds, 2),
            "return_after_solve": self.return_after_solve,
            "evaluations": self.evaluations,
        }


def learn_judged(agent, env, total_timesteps: int, judge: _Judge, rollout: int) -> dict:
    """Trains a dlkit agent with ``judge`` stepping after each ``learn`` iteration, until it
    stops the run; returns the elapsed times. ``rollout``: the env steps an on-policy agent's
    policy acts unchanged after an iteration (0 for a policy that may change at any step)."""
    import keras

    class Judging(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if judge.step(agent.num_timesteps, agent.num_timesteps + rollout):
                agent.stop_training = True

    judge.begin()
    agent.learn(env, total_timesteps, callbacks=[Judging()], verbose=0)
    return judge.elapsed()


def learn_judged_sb3(model, total_timesteps: int, judge: _Judge) -> dict:
    """Trains a Stable-Baselines3 model with ``judge`` stepping after every env step, until it
    stops the run; returns the elapsed times."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Judging(BaseCallback):
        def _on_step(self) -> bool:
            return not judge.step(self.num_timesteps)

    judge.begin()
    model.learn(total_timesteps, callback=Judging())
    return judge.elapsed()


def _eval_env(env_id: str = "CartPole-v1", episodes: int = EVAL_EPISODES):
    from dlkit.rl import make_vector_env

    return make_vector_env(env_id, episodes)


def run_dlkit(algorithm: str, seed: int, interval: int, tuned: bool = False) -> dict:
    import keras

    from dlkit.rl import DQN, PPO, build_q_network, make_vector_env
    from dlkit.rl.agent import evaluate_vector

    cache = os.environ.get(_CACHE_VARIABLE) or None
    if cache:
        from dlkit.training import enable_compilation_cache

        cache = enable_compilation_cache(cache)  # None on TensorFlow and PyTorch
    keras.utils.set_random_seed(seed)
    settings = dlkit_settings(algorithm, tuned)
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

    # PPO's policy changes only at the end of each rollout of n_steps x num_envs steps, so
    # it is the policy acting at every step up to the next rollout's end (as SB3's PPO,
    # evaluated between its updates); DQN's iterations end on the grid points.
    rollout = settings["kwargs"]["n_steps"] * settings["num_envs"] if algorithm == "ppo" else 0
    elapsed = learn_judged(agent, env, settings["total_timesteps"], judge, rollout)
    return {
        "runner": f"dlkit-{keras.backend.backend()}" + ("-tuned" if tuned else ""),
        "algorithm": algorithm,
        "seed": seed,
        "settings": "tuned" if tuned else "zoo",
        "values": settings,
        "compilation_cache": cache,
        "timesteps": agent.num_timesteps,
        "gradient_steps": agent.num_updates,
        **elapsed,
        "steps_per_second": round(agent.num_timesteps / elapsed["seconds"], 1),
        **judge.result(),
    }


def _sb3_schedule(value):
    if isinstance(value, str) and value.startswith("lin_"):
        initial = float(value[4:])
        return lambda progress_remaining: progress_remaining * initial
    return value


def _sb3_with_dlkit_settings(algorithm: str) -> dict:
    """The zoo's SB3 settings with dlkit's PPO values of gamma, GAE lambda and learning rate:
    what those values do for SB3, next to what they do for dlkit."""
    if algorithm != "ppo":
        raise ValueError(f"sb3-dlkit-settings runs PPO only. Received: algorithm={algorithm!r}")
    ours = dlkit_settings("ppo", tuned=True)["kwargs"]
    settings = {**SB3_SETTINGS["ppo"], "kwargs": dict(SB3_SETTINGS["ppo"]["kwargs"])}
    settings["kwargs"].update(
        gamma=ours["gamma"],
        gae_lambda=ours["gae_lambda"],
        learning_rate=f"lin_{ours['learning_rate']}",
    )
    return settings


def run_sb3(algorithm: str, seed: int, interval: int, with_dlkit_values: bool = False) -> dict:
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env

    from dlkit.rl.agent import evaluate_vector

    settings = _sb3_with_dlkit_settings(algorithm) if with_dlkit_values else SB3_SETTINGS[algorithm]
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
    elapsed = learn_judged_sb3(model, settings["n_timesteps"], judge)
    return {
        "runner": "sb3-dlkit-settings" if with_dlkit_values else "sb3",
        "algorithm": algorithm,
        "seed": seed,
        "settings": "tuned" if with_dlkit_values else "zoo",
        "timesteps": int(model.num_timesteps),
        **elapsed,
        "steps_per_second": round(model.num_timesteps / elapsed["seconds"], 1),
        **judge.result(),
    }


def run_tf_agents(algorithm: str, seed: int, interval: int) -> dict:
    import gymnasium
    import numpy as np
    import tensorflow as tf
    from tf_agents.agents.dqn import dqn_agent
    from tf_agents.drivers import dynamic_step_driver
    from tf_agents.environments import py_environment, tf_py_environment
    from tf_agents.networks import q_network
    from tf_agents.policies import random_tf_policy
    from tf_agents.replay_buffers import tf_uniform_replay_buffer
    from tf_agents.specs import array_spec
    from tf_agents.trajectories import time_step as ts
    from tf_agents.utils import common

    from dlkit.rl.agent import evaluate_vector

    if algorithm != "dqn":
        raise ValueError(TF_AGENTS_NOTES["ppo"])
    settings = TF_AGENTS_SETTINGS["dqn"]

    class CartPole(py_environment.PyEnvironment):
        """gymnasium's CartPole-v1 as a TF-Agents environment; counts its transitions."""

        def __init__(self, seed: int):
            super().__init__(handle_auto_reset=True)
            self._env = gymnasium.make("CartPole-v1")
            self._seed = seed
            self.transitions = 0
            self._observation_spec = array_spec.ArraySpec((4,), np.float32, "observation")
            self._action_spec = array_spec.BoundedArraySpec((), np.int64, 0, 1, "action")

        def observation_spec(self):
            return self._observation_spec

        def action_spec(self):
            return self._action_spec

        def _reset(self):
            observation, _ = self._env.reset(seed=self._seed)
            self._seed = None
            return ts.restart(np.asarray(observation, np.float32))

        def _step(self, action):
            observation, reward, terminated, truncated, _ = self._env.step(int(action))
            self.transitions += 1
            observation = np.asarray(observation, np.float32)
            if terminated:
                return ts.termination(observation, np.float32(reward))
            if truncated:
                return ts.truncation(observation, np.float32(reward), discount=1.0)
            return ts.transition(observation, np.float32(reward), discount=1.0)

    tf.random.set_seed(seed)
    py_env = CartPole(seed)
    env = tf_py_environment.TFPyEnvironment(py_env)
    network = q_network.QNetwork(
        env.observation_spec(), env.action_spec(), fc_layer_params=settings["fc_layer_params"]
    )
    agent = dqn_agent.DqnAgent(
        env.time_step_spec(),
        env.action_spec(),
        q_network=network,
        optimizer=tf.keras.optimizers.Adam(learning_rate=settings["learning_rate"]),
        epsilon_greedy=settings["epsilon_greedy"],
        gamma=settings["gamma"],
        n_step_update=settings["n_step_update"],
        target_update_period=settings["target_update_period"],
        target_update_tau=settings["target_update_tau"],
        td_errors_loss_fn=common.element_wise_squared_loss,
        train_step_counter=tf.Variable(0, dtype=tf.int64),
    )
    agent.initialize()
    buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        data_spec=agent.collect_data_spec,
        batch_size=env.batch_size,
        max_length=settings["replay_buffer_max_length"],
    )

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32)])
    def greedy(observations):
        q_values, _ = network(observations, training=False)
        return tf.argmax(q_values, axis=-1)

    eval_env = _eval_env()
    judge = _Judge(
        lambda: float(
            sum(
                evaluate_vector(
                    lambda x: greedy(np.asarray(x, np.float32)).numpy(),
                    eval_env,
                    EVAL_EPISODES,
                    EVAL_SEED,
                )
            )
            / EVAL_EPISODES
        ),
        interval,
    )

    # The random initial collection counts towards the budget, the evaluation grid and the wall
    # time, as the peers' learning starts do.
    judge.begin()
    random_policy = random_tf_policy.RandomTFPolicy(env.time_step_spec(), env.action_spec())
    dynamic_step_driver.DynamicStepDriver(
        env,
        random_policy,
        observers=[buffer.add_batch],
        num_steps=settings["initial_collect_steps"],
    ).run()
    dataset = buffer.as_dataset(
        num_parallel_calls=3,
        sample_batch_size=settings["batch_size"],
        num_steps=settings["n_step_update"] + 1,
    ).prefetch(3)
    iterator = iter(dataset)
    collect = common.function(
        dynamic_step_driver.DynamicStepDriver(
            env,
            agent.collect_policy,
            observers=[buffer.add_batch],
            num_steps=settings["collect_steps_per_iteration"],
        ).run
    )
    train = common.function(agent.train)

    time_step = env.current_time_step()
    iterations = 0
    while py_env.transitions < settings["num_iterations"]:
        time_step, _ = collect(time_step)
        experience, _ = next(iterator)
        train(experience)
        iterations += 1
        if judge.step(py_env.transitions):
            break
    elapsed = judge.elapsed()
    return {
        "runner": "tf-agents",
        "algorithm": algorithm,
        "seed": seed,
        "settings": "tutorial",
        "timesteps": py_env.transitions,
        "gradient_steps": iterations,
        **elapsed,
        "steps_per_second": round(py_env.transitions / elapsed["seconds"], 1),
        "note": TF_AGENTS_NOTES["reproducibility"],
        **judge.result(),
    }


def _quartiles(values: list[float | None]) -> list[float | None]:
    """First quartile, median and third quartile (unsolved runs count as infinite), to show
    how far seeds spread: on CartPole one seed may solve in 10,000 steps and the next in 35,000."""
    solved = [value for value in values if value is not None]
    if not solved:
        return [None, None, None]
    # An unsolved run stands for a value above every solved one: a cut that lands on it, or
    # between it and a solved run, is infinite; a cut between solved runs (or on one) is not.
    # (math.inf itself would make the interpolation 0 * inf = nan on a solved run.)
    unsolved = 2 * max(solved) + 1
    ordered = sorted(unsolved if value is None else value for value in values)
    cuts = (
        ordered * 3 if len(ordered) < 2 else statistics.quantiles(ordered, n=4, method="inclusive")
    )
    return [None if value > max(solved) else value for value in cuts]


def _median(values: list[float | None]) -> float | None:
    """The median, unsolved runs (None) counting as infinite; None when it is infinite."""
    return _quartiles(values)[1]


# The peer every ratio is taken against, and, for each runner, the SB3 runner with the same
# settings (equal-settings ratios): the zoo's for dlkit-<backend>, dlkit's PPO values for
# dlkit-<backend>-tuned (SB3 lacks double Q-learning and n-step targets: no DQN peer).
PEER = "sb3"


def _same_settings_peer(runner: str, algorithm: str) -> str | None:
    if runner.endswith("-tuned"):
        return "sb3-dlkit-settings" if algorithm == "ppo" else None
    return PEER if runner.startswith("dlkit-") else None


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return round(value / reference, 3)


def summarise(runs: list[dict]) -> dict:
    """Medians per runner and algorithm, and every runner's ratios to SB3 with the zoo's
    settings (wall and CPU time to solve), with the targets checked for dlkit's runners at the
    zoo's settings (``equal_settings``) and at its tuned ones (``tuned``).

    TF-Agents gets medians like every runner; the targets are against SB3 only.
    """
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
            loads = [run["load_average"][0] for run in entry["runs"] if "load_average" in run]
            table[runner] = {
                "seeds": len(entry["runs"]),
                "solved": sum(run["solved_at"] is not None for run in entry["runs"]),
                "median_steps_to_solve": _median([run["solved_at"] for run in entry["runs"]]),
                "steps_to_solve_quartiles": _quartiles([run["solved_at"] for run in entry["runs"]]),
                "median_seconds_to_solve": _median(
                    [run["seconds_to_solve"] for run in entry["runs"]]
                ),
                "median_cpu_seconds_to_solve": _median(
                    [run.get("cpu_seconds_to_solve") for run in entry["runs"]]
                ),
                "median_steps_per_second": statistics.median(
                    run["steps_per_second"] for run in entry["runs"]
                ),
                # Env steps per second of the process's CPU time: the cost of a step, which
                # other processes on the machine change far less than the wall clock.
                "median_steps_per_cpu_second": round(
                    statistics.median(
                        run["timesteps"] / run["cpu_seconds"] for run in entry["runs"]
                    ),
                    1,
                ),
                "load_average_1min": [min(loads), max(loads)] if loads else None,
            }
        ratios = {}
        for runner, row in table.items():
            if runner == PEER or PEER not in table:
                continue
            peer = table[PEER]
            same = _same_settings_peer(runner, algorithm)
            same_row = table.get(same) if same else None
            steps = row["median_steps_to_solve"]
            ratios[runner] = {
                "wall_ratio": _ratio(
                    row["median_seconds_to_solve"], peer["median_seconds_to_solve"]
                ),
                "cpu_ratio": _ratio(
                    row["median_cpu_seconds_to_solve"], peer["median_cpu_seconds_to_solve"]
                ),
                "steps_within_peer_median": steps is not None
                and peer["median_steps_to_solve"] is not None
                and steps <= peer["median_steps_to_solve"],
                "same_settings_peer": same if same_row else None,
                "same_settings_wall_ratio": _ratio(
                    row["median_seconds_to_solve"],
                    same_row and same_row["median_seconds_to_solve"],
                ),
                "same_settings_cpu_ratio": _ratio(
                    row["median_cpu_seconds_to_solve"],
                    same_row and same_row["median_cpu_seconds_to_solve"],
                ),
            }
        targets = {}
        for group, tuned in (("equal_settings", False), ("tuned", True)):
            rows = {
                runner: row
                for runner, row in ratios.items()
                if runner.startswith("dlkit-") and runner.endswith("-tuned") == tuned
            }
            if not rows:
                continue
            walls = [row["wall_ratio"] for row in rows.values() if row["wall_ratio"] is not None]
            targets[group] = {
                "steps": all(row["steps_within_peer_median"] for row in rows.values()),
                "fastest_backend_wall_ratio_le_0.5": bool(walls) and min(walls) <= 0.5,
                "every_backend_wall_ratio_le_1.0": len(walls) == len(rows) and max(walls) <= 1.0,
            }
        summary[algorithm] = {
            "runners": table,
            "ratios_to_sb3": ratios,
            "targets_met": targets,
        }
    return summary


# The library whose threads each runner's process pins (`_common.pin_library_threads`).
def _runner_library(runner: str) -> str:
    if runner.startswith("sb3"):
        return "torch"
    if runner == "tf-agents":
        return "tensorflow"
    return runner.split("-")[1]


def _child_environment(runner: str, tf_agents_path: str | None) -> dict:
    environment = {**one_core_environment(), "TF_CPP_MIN_LOG_LEVEL": "2"}
    if runner.startswith("sb3"):
        environment["KERAS_BACKEND"] = "torch"
    elif runner == "tf-agents":
        environment["KERAS_BACKEND"] = "tensorflow"
        environment["TF_USE_LEGACY_KERAS"] = "1"
        if tf_agents_path:
            paths = [tf_agents_path, environment.get("PYTHONPATH", "")]
            environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    else:
        environment["KERAS_BACKEND"] = _runner_library(runner)
    return environment


def _tf_agents_missing(tf_agents_path: str | None) -> str | None:
    """Why tf_agents cannot be imported in a runner's process, or None when it can."""
    completed = subprocess.run(
        [sys.executable, "-c", "import tf_agents.agents.dqn.dqn_agent"],
        env=_child_environment("tf-agents", tf_agents_path),
        capture_output=True,
        text=True,
    )
    if completed.returncode == 0:
        return None
    lines = completed.stderr.strip().splitlines()
    return (
        f"tf_agents is not importable ({lines[-1] if lines else 'no output'}); see --tf-agents-path"
    )


def _run_child(
    runner: str, algorithm: str, seed: int, interval: int, tf_agents_path: str | None = None
) -> dict:
    environment = _child_environment(runner, tf_agents_path)
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
    return child_json(
        command, environment, {"runner": runner, "algorithm": algorithm, "seed": seed}
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithms", default="ppo,dqn", help="Comma-separated: ppo, dqn.")
    parser.add_argument(
        "--seeds", default="0,1,2,3,4,5,6,7,8,9", help="Comma-separated integer seeds."
    )
    parser.add_argument(
        "--runners",
        default=None,
        help="Comma-separated: sb3, sb3-dlkit-settings, tf-agents, dlkit-tensorflow, dlkit-jax, "
        "dlkit-torch. Default: all of them, tf-agents only when it can be imported.",
    )
    parser.add_argument(
        "--tf-agents-path",
        default=os.environ.get("DLKIT_TF_AGENTS_PATH"),
        help="A directory prepended to PYTHONPATH in the tf-agents runner's process (where "
        "tf-agents and its pinned dependencies are installed with pip --target). Default: "
        "$DLKIT_TF_AGENTS_PATH.",
    )
    parser.add_argument("--eval-interval", type=int, default=5_000)
    parser.add_argument(
        "--jax-compilation-cache",
        metavar="DIR",
        default=None,
        help="Run dlkit-jax with XLA's persistent compilation cache in DIR "
        "(dlkit.training.enable_compilation_cache): the first run of a setting compiles and "
        "writes its programs, later runs (later seeds) load them. Default: no cache, every "
        "run compiles.",
    )
    add_save_argument(parser)
    parser.add_argument(
        "--summarise",
        metavar="FILE",
        help="Recompute the summary of the runs stored in FILE (a --save result) with this "
        "script's summarise, rewrite FILE and exit; no run.",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    algorithms = [name for name in args.algorithms.split(",") if name]
    for name in algorithms:
        if name not in ALGORITHMS:
            parser.error(f"unknown algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    seeds = [int(seed) for seed in args.seeds.split(",") if seed]
    if args.jax_compilation_cache:
        os.environ[_CACHE_VARIABLE] = os.path.abspath(args.jax_compilation_cache)
    if args.summarise:
        with open(args.summarise) as file:
            record = json.load(file)
        record["results"]["summary"] = summarise(record["results"]["runs"])
        record["summary_command"] = f"python benchmarks/rl_cartpole.py --summarise {args.summarise}"
        with open(args.summarise, "w") as file:
            json.dump(record, file, indent=1)
            file.write("\n")
        return
    if args.child:
        # One core, and one thread per library, before any of them is imported.
        pin_to_one_core()
        pin_library_threads(_runner_library(args.child))
        run = {
            "sb3": run_sb3,
            "sb3-dlkit-settings": lambda *arguments: run_sb3(*arguments, with_dlkit_values=True),
            "tf-agents": run_tf_agents,
        }.get(
            args.child,
            lambda *arguments: run_dlkit(*arguments, tuned=args.child.endswith("-tuned")),
        )
        result = run(algorithms[0], seeds[0], args.eval_interval)
        print(json.dumps({**result, "pinning": pinning()}))
        return
    recorder = ResultRecorder(
        "rl_cartpole",
        [sys.argv[0], *(sys.argv[1:] if argv is None else argv)],
        {
            "algorithms": algorithms,
            "seeds": seeds,
            "eval_interval": args.eval_interval,
            "eval_episodes": EVAL_EPISODES,
            "solved": SOLVED,
            "sb3": {name: SB3_SETTINGS[name] for name in algorithms},
            "dlkit_zoo": {name: zoo_settings(name) for name in algorithms},
            "dlkit_tuned": {name: DLKIT_SETTINGS[name] for name in algorithms if name != "ppo"},
        },
    )
    if args.runners is None:
        runners = [
            "sb3",
            "sb3-dlkit-settings",
            "tf-agents",
            *(f"dlkit-{backend}" for backend in BACKENDS),
            *(f"dlkit-{backend}-tuned" for backend in BACKENDS),
        ]
    else:
        runners = [name for name in args.runners.split(",") if name]
    skipped = []
    if "tf-agents" in runners:
        reason = _tf_agents_missing(args.tf_agents_path)
        if reason:
            runners.remove("tf-agents")
            skipped.append({"runner": "tf-agents", "reason": reason})
        elif "ppo" in algorithms:
            skipped.append(
                {"runner": "tf-agents", "algorithm": "ppo", "reason": TF_AGENTS_NOTES["ppo"]}
            )
    if "sb3-dlkit-settings" in runners and "dqn" in algorithms:
        skipped.append(
            {
                "runner": "sb3-dlkit-settings",
                "algorithm": "dqn",
                "reason": "dlkit's tuned DQN settings use double Q-learning and n-step "
                "targets, which SB3's DQN lacks",
            }
        )
    runs = []
    for algorithm in algorithms:
        for seed in seeds:
            for runner in runners:
                if runner == "tf-agents" and algorithm not in TF_AGENTS_SETTINGS:
                    continue
                if runner == "sb3-dlkit-settings" and algorithm != "ppo":
                    continue
                run = _run_child(runner, algorithm, seed, args.eval_interval, args.tf_agents_path)
                print(json.dumps(run), file=sys.stderr, flush=True)
                runs.append(run)
    results = {"runs": runs, "skipped": skipped, "summary": summarise(runs)}
    print(json.dumps(results, indent=1))
    if args.save is not None:
        recorder.save(results, args.save or None)


if __name__ == "__main__":
    main()
