"""Solve FrozenLake with tabular ε-greedy Q-learning and draw the greedy policy on the map.

The agent crosses a frozen lake from S to the goal G without falling into a hole H; the only
reward is 1 at the goal. A table Q(s, a) learns from one TD update per step toward
r + γ max_a' Q(s', a') [notes §9.1.1, eq. 9.8], acting ε-greedily with ε decayed linearly
from 1 to ``epsilon_final`` over the first ``exploration_fraction`` of the steps. On the
deterministic 4x4 lake (the default) the greedy policy reaches the goal, the optimal return
1.0, after about 3,000 steps. With ``--is_slippery true`` the agent moves sideways two times
out of three; the best policy then reaches the goal about 74% of the time on 4x4 and needs far
more steps (and a smaller learning rate) to learn.

Artefacts in ``output_dir``: ``q_table.npz`` (the agent: ``QLearning.load``), ``policy.png``
(greedy actions as arrows, state values max_a Q(s, a) as colour), ``returns.png`` (training
returns and their moving average) and ``metrics.json``. A run writes ``checkpoint.npz`` every
``checkpoint_every`` episodes and at the end; if one exists, the next run continues from it
(table, counters, ε schedule and random state) up to ``total_timesteps`` in all.

Run: ``dlkit run q_learning_frozenlake --map_size 8x8 --total_timesteps 100000`` or
``python recipes/q_learning_frozenlake.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym

from dlkit.plotting import plot_episode_returns
from dlkit.recipes._recipe import write_metrics
from dlkit.recipes._tabular import train_or_resume
from dlkit.rl.tabular import QLearning
from dlkit.validation import check_choice, check_int, check_number

MAP_SIZES = ("4x4", "8x8")
# FrozenLake's actions: 0 left, 1 down, 2 right, 3 up.
ARROWS = ("←", "↓", "→", "↑")
# Episodes in the moving average of returns.png.
AVERAGE_WINDOW = 100


@dataclass
class Config:
    map_size: str = "4x4"
    """The lake: 4x4 or 8x8."""
    is_slippery: bool = False
    """Slippery ice: the agent moves in the intended direction only one time in three."""
    total_timesteps: int = 20_000
    """Environment steps of training in all (a resumed run counts the checkpoint's steps)."""
    learning_rate: float = 0.5
    """Step size α of the TD update, in (0, 1] (try 0.05 on slippery ice)."""
    gamma: float = 0.99
    """Discount factor γ."""
    epsilon_final: float = 0.05
    """ε at the end of the decay (it starts at 1)."""
    exploration_fraction: float = 0.5
    """Share of total_timesteps over which ε decays linearly, in (0, 1]."""
    eval_episodes: int = 100
    """Greedy episodes of the final evaluation."""
    checkpoint_every: int = 500
    """Episodes between checkpoints (output_dir/checkpoint.npz)."""
    seed: int = 0
    """Seed of exploration, tie-breaks and the environment's resets."""
    output_dir: str = "runs/q_learning_frozenlake"
    """Folder for the table, figures, metrics and the resumable checkpoint."""
    verbose: int = 1
    """1: a progress line every 100 episodes; 0: silent."""

    def __post_init__(self) -> None:
        check_choice("map_size", self.map_size, MAP_SIZES)
        for name in ("total_timesteps", "eval_episodes", "checkpoint_every"):
            setattr(self, name, check_int(name, getattr(self, name)))
        self.exploration_fraction = check_number(
            "exploration_fraction", self.exploration_fraction, 0, 1, low_open=True
        )
        # learning_rate, gamma and epsilon_final are checked by QLearning itself.
        QLearning(
            1,
            1,
            learning_rate=self.learning_rate,
            gamma=self.gamma,
            epsilon_final=self.epsilon_final,
        )


def plot_policy(agent: QLearning, env, path: Path) -> None:
    """Draws the map with max_a Q(s, a) as colour and the greedy action of each free cell."""
    from matplotlib.figure import Figure

    desc = env.unwrapped.desc.astype(str)  # (rows, columns) of "S", "F", "H", "G"
    rows, columns = desc.shape
    values = agent.q_table.max(axis=1).reshape(rows, columns)
    policy = agent.greedy_policy().reshape(rows, columns)
    figure = Figure(figsize=(0.7 * columns + 1.5, 0.7 * rows + 0.6), dpi=100)
    axes = figure.subplots()
    image = axes.imshow(values, cmap="viridis", vmin=0.0, vmax=max(1e-9, values.max()))
    figure.colorbar(image, ax=axes, label="max_a Q(s, a)")
    for row in range(rows):
        for column in range(columns):
            cell = desc[row, column]
            text = cell if cell in "HG" else ARROWS[policy[row, column]]
            color = "red" if cell == "H" else "white" if values[row, column] < 0.5 else "black"
            axes.text(column, row, text, ha="center", va="center", fontsize=14, color=color)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(f"greedy policy after {agent.num_timesteps} steps")
    figure.savefig(path, bbox_inches="tight")


def main(config: Config) -> dict:
    """Trains (or resumes) the agent, evaluates its greedy policy and writes the artefacts."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    env = gym.make("FrozenLake-v1", map_name=config.map_size, is_slippery=config.is_slippery)
    agent, summary = train_or_resume(QLearning, env, config, output_dir)

    eval_return = agent.evaluate(env, episodes=config.eval_episodes, seed=config.seed)
    plot_policy(agent, env, output_dir / "policy.png")
    plot_episode_returns(agent.episode_returns, output_dir / "returns.png", AVERAGE_WINDOW)
    results = {"eval_mean_return": eval_return, **summary}
    names = ("q_table.npz", "policy.png", "returns.png", "metrics.json", "checkpoint.npz")
    return write_metrics(results, {Path(name).stem: output_dir / name for name in names})


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
