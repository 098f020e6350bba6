"""PPO with rl-baselines3-zoo's CartPole settings solves CartPole-v1 on every backend within a
fixed budget of environment steps.

"Solved" is the protocol of benchmarks/rl_cartpole.py: a deterministic 10-episode evaluation
every 5,000 steps reaches a mean return of 475 (the episodes end at 500); the run stops at the
first evaluation that solves. The recipes' own settings, DQN's included, are held by
tests/recipes/test_deep_rl_quality.py.
"""

import keras
import pytest

from dlkit.rl import PPO, make_vector_env

SOLVED = 475.0


class StopWhenSolved(keras.callbacks.Callback):
    """Stops at the first solving evaluation, or once `limit` steps are done."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit

    def on_epoch_end(self, epoch, logs=None):
        if logs.get("eval_return", 0.0) >= SOLVED or logs["timesteps"] >= self.limit:
            self.model.stop_training = True


def solve(agent, env, budget, limit):
    """Learns with the schedules of a `budget`-step run, for at most `limit` steps."""
    agent.learn(
        env,
        budget,
        callbacks=[StopWhenSolved(limit)],
        eval_env=make_vector_env("CartPole-v1", 10),
        eval_interval=5_000,
        verbose=0,
    )
    return agent.evaluations


@pytest.mark.slow
def test_ppo_solves_cartpole_within_30k_steps():
    keras.utils.set_random_seed(0)
    env = make_vector_env("CartPole-v1", 8)
    agent = PPO.from_env(
        env,
        n_steps=32,
        batch_size=256,
        epochs=20,
        gae_lambda=0.8,
        gamma=0.98,
        learning_rate=1e-3,
        anneal=True,
        seed=0,
    )
    # The schedules anneal over the benchmark's 100k-step budget; the test stops at 30k.
    evaluations = solve(agent, env, 100_000, limit=30_000)
    assert evaluations[-1][1] >= SOLVED, evaluations
