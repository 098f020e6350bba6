"""Shared by the tabular recipes: training an agent that resumes from its checkpoint."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np


def train_or_resume(agent_class, env, config, output_dir: Path, **agent_arguments):
    """Trains an agent of `agent_class` on `env` up to ``config.total_timesteps`` in all.

    A run continues from ``output_dir/checkpoint.npz`` when it exists (its settings, the ε
    schedule included, win over the config's); the checkpoint is rewritten every
    ``config.checkpoint_every`` episodes and at the end, and the table is saved as
    ``output_dir/q_table.npz``. Returns the agent and a summary of the run.
    """
    checkpoint = output_dir / "checkpoint.npz"
    if checkpoint.exists():
        agent = agent_class.load(checkpoint)
    else:
        agent = agent_class.from_env(
            env,
            learning_rate=config.learning_rate,
            gamma=config.gamma,
            epsilon=1.0,
            epsilon_final=config.epsilon_final,
            epsilon_decay_steps=max(1, int(config.exploration_fraction * config.total_timesteps)),
            seed=config.seed,
            **agent_arguments,
        )
    resumed_from = agent.num_timesteps

    def save_checkpoint(agent) -> None:
        if agent.num_episodes % config.checkpoint_every == 0:
            agent.save(checkpoint)

    start = time.perf_counter()
    remaining = config.total_timesteps - agent.num_timesteps
    if remaining > 0:
        agent.learn(env, remaining, verbose=config.verbose, callback=save_checkpoint)
    train_seconds = time.perf_counter() - start
    agent.save(checkpoint)
    agent.save(output_dir / "q_table.npz")
    summary = {
        "timesteps": agent.num_timesteps,
        "episodes": agent.num_episodes,
        "resumed_from_timesteps": resumed_from,
        "train_seconds": round(train_seconds, 3),
        "final_epsilon": round(agent.current_epsilon, 4),
        "train_mean_return_last_100": float(np.mean(agent.episode_returns[-100:] or [0.0])),
        "config": asdict(config),
    }
    return agent, summary
