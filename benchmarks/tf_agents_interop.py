"""dlkit policies run by TF-Agents: exported with `export_tf_agents_policy`, loaded by TF-Agents.

For a DQN on CartPole-v1 (discrete actions) and a PPO on Pendulum-v1 (Box actions), each
trained for ``--timesteps`` steps on the chosen Keras backend, this exports the deterministic
policy with `dlkit.export.export_tf_agents_policy`, then, in a Python where tf-agents is
installed (``--tf-agents-python``, or ``$DLKIT_TF_AGENTS_PYTHON``, or this one), loads it with
TF-Agents' own `SavedModelPyTFEagerPolicy(path, load_specs_from_pbtxt=True)` and

- compares its actions with dlkit's `act(observations, explore=False)` on ``--observations``
  observations visited by a random policy (one `policy.action(time_step)` per observation, the
  unbatched py-policy call);
- checks `get_train_step()` against the agent's `num_updates`;
- plays one episode with TF-Agents' `PyDriver` in a `PyEnvironment` wrapping the gymnasium
  environment (reset with ``--seed``), and reports its return next to the return of the same
  episode played by dlkit.

tf-agents is not a dependency of dlkit (it pins legacy Keras 2 and gym 0.23): give it its own
virtual environment, made as docs/pages/deploy-and-scale.md shows. Where none is found, the JSON
says ``"installed": false`` and why, and nothing is loaded.

Prints one JSON object (``--all``: a JSON list, one object per backend, each in its own
process):

    {"backend", "tf_agents": {"installed", "python", "versions" | "reason"},
     "policies": [{"agent", "env", "action_space", "loaded", "num_observations",
                   "matching_actions", "max_abs_difference", "train_step", "train_step_matches",
                   "episode_return_tf_agents", "episode_return_dlkit", "episode_length"}]}

Usage:

    python benchmarks/tf_agents_interop.py --all --tf-agents-python /tmp/tfa-venv/bin/python
    KERAS_BACKEND=jax python benchmarks/tf_agents_interop.py --timesteps 5000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from _common import (
    BACKENDS,
    ResultRecorder,
    add_save_argument,
    one_core_environment,
    run_in_subprocess,
)

PYTHON_VARIABLE = "DLKIT_TF_AGENTS_PYTHON"
# (agent, environment id, action space) of each policy exported.
WORKLOADS = (("DQN", "CartPole-v1", "discrete"), ("PPO", "Pendulum-v1", "box"))


# ---------------------------------------------------------------------------- dlkit side


def train_and_export(agent_name: str, env_id: str, args, directory: str) -> dict:
    """Trains, exports, and stores the observations and dlkit's actions for the loader."""
    import gymnasium as gym
    import keras

    from dlkit.export import export_tf_agents_policy
    from dlkit.rl import DQN, PPO, build_q_network

    keras.utils.set_random_seed(args.seed)
    env = gym.make(env_id)
    if agent_name == "DQN":
        network = build_q_network(env.observation_space.shape, int(env.action_space.n), (64, 64))
        agent = DQN(network, learning_starts=min(500, args.timesteps // 2), seed=args.seed)
    else:
        agent = PPO.from_env(env, seed=args.seed)
    agent.learn(env, total_timesteps=args.timesteps, verbose=0)
    path = os.path.join(directory, agent_name)
    export_tf_agents_policy(agent, path)

    rng = np.random.default_rng(args.seed)
    observations, (observation, _) = [], env.reset(seed=args.seed)
    while len(observations) < args.observations:
        observations.append(observation)
        observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated or rng.random() < 0.02:
            observation, _ = env.reset()
    observations = np.asarray(observations, np.float32)
    np.savez(
        os.path.join(path, "parity.npz"),
        observations=observations,
        actions=agent.act(observations, explore=False),
    )
    return {
        "path": path,
        "train_step": agent.num_updates,
        "episode_return_dlkit": play_episode(lambda x: agent.act(x, explore=False), env, args),
    }


def play_episode(act, env, args) -> float:
    observation, _ = env.reset(seed=args.seed)
    total, done = 0.0, False
    while not done:
        observation, reward, terminated, truncated, _ = env.step(act(observation))
        total, done = total + float(reward), terminated or truncated
    return total


def find_tf_agents_python(requested: str | None) -> tuple[str | None, str]:
    """A Python that imports tf_agents, or None and why not."""
    candidates = [requested or os.environ.get(PYTHON_VARIABLE), sys.executable]
    for python in [c for c in candidates if c]:
        probe = subprocess.run(
            [python, "-c", "import tf_agents"],
            env=tf_agents_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            return python, ""
        if python != sys.executable:
            return None, f"{python} cannot import tf_agents: {probe.stderr.strip()[-300:]}"
    return None, (
        f"tf-agents is not installed here: pass --tf-agents-python or set {PYTHON_VARIABLE} "
        "to the Python of a virtual environment that has it (docs/pages/deploy-and-scale.md)"
    )


def tf_agents_environment() -> dict:
    # TF-Agents 0.19 builds on tf.keras 2: legacy Keras instead of Keras 3.
    return {**one_core_environment(), "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def run(args) -> dict:
    python, reason = find_tf_agents_python(args.tf_agents_python)
    result = {"backend": args.backend, "tf_agents": {"installed": python is not None}}
    if python is None:
        result["tf_agents"]["reason"] = reason
        return result
    result["tf_agents"]["python"] = python
    result["policies"] = []
    with tempfile.TemporaryDirectory() as directory:
        for agent_name, env_id, kind in WORKLOADS:
            exported = train_and_export(agent_name, env_id, args, directory)
            request = {"path": exported["path"], "env_id": env_id, "seed": args.seed}
            completed = subprocess.run(
                [python, __file__, "--loader", json.dumps(request)],
                env=tf_agents_environment(),
                capture_output=True,
                text=True,
                check=False,
            )
            entry = {"agent": agent_name, "env": env_id, "action_space": kind}
            if completed.returncode != 0:
                entry.update(loaded=False, error=completed.stderr.strip().splitlines()[-20:])
            else:
                loaded = json.loads(completed.stdout.strip().splitlines()[-1])
                result["tf_agents"]["versions"] = loaded.pop("versions")
                entry.update(loaded)
                entry["train_step_matches"] = loaded["train_step"] == exported["train_step"]
                entry["episode_return_dlkit"] = exported["episode_return_dlkit"]
            result["policies"].append(entry)
    return result


# ---------------------------------------------------------------------------- TF-Agents side
# Runs in the tf-agents environment: no dlkit, no Keras 3.


def load_with_tf_agents(request: dict) -> dict:
    import importlib.metadata

    import gymnasium as gym
    from tf_agents.drivers import py_driver
    from tf_agents.environments import py_environment
    from tf_agents.policies import py_tf_eager_policy
    from tf_agents.specs import array_spec
    from tf_agents.trajectories import time_step as ts

    class GymnasiumEnvironment(py_environment.PyEnvironment):
        """A gymnasium environment as a TF-Agents PyEnvironment (TF-Agents reads gym 0.23)."""

        def __init__(self, env_id: str, seed: int):
            super().__init__()
            self._env, self._seed = gym.make(env_id), seed
            space = self._env.action_space
            if isinstance(space, gym.spaces.Discrete):
                self._action_spec = array_spec.BoundedArraySpec(
                    (), np.int32, 0, int(space.n) - 1, "action"
                )
            else:
                self._action_spec = array_spec.BoundedArraySpec(
                    space.shape, np.float32, space.low, space.high, "action"
                )
            shape = self._env.observation_space.shape
            self._observation_spec = array_spec.ArraySpec(shape, np.float32, "observation")

        def action_spec(self):
            return self._action_spec

        def observation_spec(self):
            return self._observation_spec

        def _reset(self):
            observation, _ = self._env.reset(seed=self._seed)
            return ts.restart(observation.astype(np.float32))

        def _step(self, action):
            observation, reward, terminated, truncated, _ = self._env.step(action)
            observation, reward = observation.astype(np.float32), np.float32(reward)
            if terminated:
                return ts.termination(observation, reward)
            if truncated:
                return ts.truncation(observation, reward)
            return ts.transition(observation, reward)

    policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        request["path"], load_specs_from_pbtxt=True
    )
    parity = np.load(os.path.join(request["path"], "parity.npz"))
    actions = np.stack(
        [
            policy.action(ts.transition(observation, np.float32(0.0))).action
            for observation in parity["observations"]
        ]
    )
    expected = parity["actions"].astype(actions.dtype).reshape(actions.shape)
    matching = np.all(np.abs(actions - expected).reshape(len(actions), -1) <= 1e-5, axis=1)

    env = GymnasiumEnvironment(request["env_id"], request["seed"])
    rewards = []

    def record(trajectory):  # the driver's last trajectory is the boundary to a new episode
        if not trajectory.is_boundary():
            rewards.append(trajectory.reward)

    driver = py_driver.PyDriver(env, policy, observers=[record], max_episodes=1)
    driver.run(env.reset())
    return {
        "loaded": True,
        "num_observations": len(actions),
        "matching_actions": int(matching.sum()),
        "max_abs_difference": float(np.max(np.abs(actions - expected))),
        "train_step": int(policy.get_train_step()),
        "episode_return_tf_agents": float(np.sum(rewards)),
        "episode_length": len(rewards),
        "versions": {
            name: importlib.metadata.version(name)
            for name in ("tf-agents", "tensorflow", "tf-keras", "tensorflow-probability")
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, help="default: $KERAS_BACKEND or tensorflow")
    parser.add_argument(
        "--tf-agents-python",
        default=None,
        help=f"Python of an environment with tf-agents (default: ${PYTHON_VARIABLE}, then this "
        "one).",
    )
    parser.add_argument("--timesteps", type=int, default=2000, help="Training steps per agent.")
    parser.add_argument(
        "--observations", type=int, default=500, help="Observations compared (default 500)."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all", action="store_true", help="Every backend in turn.")
    parser.add_argument("--loader", help=argparse.SUPPRESS)  # the TF-Agents side's request
    add_save_argument(parser)
    args = parser.parse_args(argv)
    if args.loader:
        print(json.dumps(load_with_tf_agents(json.loads(args.loader))))
        return
    args.backend = args.backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    if os.environ.get("KERAS_BACKEND", args.backend) != args.backend:
        parser.error("Set KERAS_BACKEND to --backend (Keras reads it at import).")
    os.environ["KERAS_BACKEND"] = args.backend  # before dlkit imports Keras
    recorder = ResultRecorder(
        "tf_agents_interop",
        sys.argv,
        {"timesteps": args.timesteps, "observations": args.observations, "seed": args.seed},
    )
    if args.all:
        arguments = [f"--timesteps={args.timesteps}", f"--observations={args.observations}"]
        arguments += [f"--seed={args.seed}"]
        if args.tf_agents_python:
            arguments.append(f"--tf-agents-python={args.tf_agents_python}")
        result = [run_in_subprocess(__file__, backend, arguments) for backend in BACKENDS]
        print(json.dumps(result, indent=2))
    else:
        result = run(args)
        print(json.dumps(result))  # one line: the parent of --all reads the last one
    if args.save is not None:
        recorder.save(result, args.save or None)


if __name__ == "__main__":
    main()
