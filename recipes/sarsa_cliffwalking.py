"""Walk the cliff with tabular SARSA or Q-learning and draw the greedy path each one learns.

CliffWalking is a 4x12 grid: start bottom left, goal bottom right, the cells between them a
cliff. Each step costs 1; a step into the cliff costs 100 and sends the agent back to the
start. The shortest path runs along the cliff edge (13 steps, return −13). SARSA [notes
§9.1.3, eq. 9.19] learns the value of the ε-greedy policy it follows, random steps included;
next to the edge those random steps sometimes fall, so SARSA learns to keep away from it and
its greedy path takes the top row (17 steps, return −17), even after ε has decayed to 0.
Q-learning [notes §9.1.1] learns the values of the greedy policy whatever it does while
exploring, so its greedy path is the optimal one along the edge (``--algorithm q_learning``).
While ε is large, the episodes Q-learning plays along the edge fall more often, so its
training returns are the lower of the two.

CliffWalking-v1 has no time limit: the recipe cuts episodes at ``max_episode_steps`` (a
truncation, through which the target still bootstraps).

Artefacts in ``output_dir``: ``q_table.npz`` (the agent: ``SARSA.load`` or
``QLearning.load``), ``path.png`` (state values max_a Q(s, a) as colour, the cliff, the greedy
action of each cell and the greedy path from the start), ``returns.png`` (training returns
and their moving average) and ``metrics.json``. A run writes ``checkpoint.npz`` every
``checkpoint_every`` episodes and at the end; if one exists, the next run continues from it
up to ``total_timesteps`` in all.

Run: ``dlkit run sarsa_cliffwalking --algorithm q_learning`` or
``python recipes/sarsa_cliffwalking.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from dlkit.plotting import plot_episode_returns
from dlkit.recipes._recipe import write_metrics
from dlkit.recipes._tabular import train_or_resume
from dlkit.rl.tabular import SARSA, QLearning
from dlkit.validation import check_choice, check_int, check_number

ALGORITHMS = {"sarsa": SARSA, "q_learning": QLearning}
SHAPE = (4, 12)
START, GOAL = (3, 0), (3, 11)
# CliffWalking's actions: 0 up, 1 right, 2 down, 3 left.
ARROWS = ("↑", "→", "↓", "←")
# Episodes in the moving average of returns.png.
AVERAGE_WINDOW = 50


@dataclass
class Config:
    algorithm: str = "sarsa"
    """sarsa (on-policy, the safe path) or q_learning (off-policy, the edge)."""
    expected: bool = False
    """With sarsa: the Expected SARSA target (the mean over the ε-greedy policy)."""
    total_timesteps: int = 20_000
    """Environment steps of training in all (a resumed run counts the checkpoint's steps)."""
    learning_rate: float = 0.5
    """Step size α of the TD update, in (0, 1]."""
    gamma: float = 0.99
    """Discount factor γ."""
    epsilon_final: float = 0.0
    """ε at the end of the decay (it starts at 1)."""
    exploration_fraction: float = 0.5
    """Share of total_timesteps over which ε decays linearly, in (0, 1]."""
    max_episode_steps: int = 500
    """Steps after which an episode is truncated (the environment has no limit of its own)."""
    checkpoint_every: int = 200
    """Episodes between checkpoints (output_dir/checkpoint.npz)."""
    seed: int = 0
    """Seed of exploration, tie-breaks and the environment's resets."""
    output_dir: str = "runs/sarsa_cliffwalking"
    """Folder for the table, figures, metrics and the resumable checkpoint."""
    verbose: int = 1
    """1: a progress line every 100 episodes; 0: silent."""

    def __post_init__(self) -> None:
        check_choice("algorithm", self.algorithm, tuple(ALGORITHMS))
        if self.expected and self.algorithm != "sarsa":
            raise ValueError(
                "Expected `expected` to be False unless algorithm='sarsa'. "
                f"Received: expected={self.expected}, algorithm={self.algorithm!r}"
            )
        for name in ("total_timesteps", "max_episode_steps", "checkpoint_every"):
            setattr(self, name, check_int(name, getattr(self, name)))
        self.exploration_fraction = check_number(
            "exploration_fraction", self.exploration_fraction, 0, 1, low_open=True
        )
        # learning_rate, gamma and epsilon_final are checked by the agent itself.
        QLearning(
            1,
            1,
            learning_rate=self.learning_rate,
            gamma=self.gamma,
            epsilon_final=self.epsilon_final,
        )


def greedy_path(agent, env, max_steps: int) -> tuple[list[int], float]:
    """The states the greedy policy visits from the start, and the return it collects."""
    state, _ = env.reset(seed=0)
    states, episode_return = [state], 0.0
    for _ in range(max_steps):
        state, reward, terminated, truncated, _ = env.step(agent.act(state, explore=False))
        states.append(state)
        episode_return += float(reward)
        if terminated or truncated:
            break
    return states, episode_return


def plot_path(agent, states: list[int], path: Path) -> None:
    """Draws max_a Q(s, a), the cliff, each cell's greedy action and the greedy path."""
    from matplotlib.figure import Figure

    rows, columns = SHAPE
    values = agent.q_table.max(axis=1).reshape(rows, columns)
    policy = agent.greedy_policy().reshape(rows, columns)
    cliff = np.zeros(SHAPE, bool)
    cliff[3, 1:-1] = True
    figure = Figure(figsize=(0.6 * columns + 1.5, 0.6 * rows + 0.8), dpi=100)
    axes = figure.subplots()
    image = axes.imshow(np.ma.masked_where(cliff, values), cmap="viridis")
    figure.colorbar(image, ax=axes, label="max_a Q(s, a)", shrink=0.8)
    axes.imshow(np.ma.masked_where(~cliff, np.ones(SHAPE)), cmap="Reds", vmin=0, vmax=1.5)
    for row in range(rows):
        for column in range(columns):
            if cliff[row, column] or (row, column) == GOAL:
                continue
            arrow = ARROWS[policy[row, column]]
            axes.text(column, row, arrow, ha="center", va="center", fontsize=9, color="white")
    path_rows, path_columns = np.unravel_index(np.asarray(states), SHAPE)
    axes.plot(path_columns, path_rows, "-o", color="orange", markersize=3, linewidth=2)
    axes.text(*START[::-1], "S", ha="left", va="bottom", fontsize=9, color="orange")
    axes.text(*GOAL[::-1], "G", ha="center", va="center", fontsize=12, color="white")
    axes.set_xticks([])
    axes.set_yticks([])
    name = type(agent).__name__
    axes.set_title(f"{name}: greedy path of {len(states) - 1} steps")
    figure.savefig(path, bbox_inches="tight")


def main(config: Config) -> dict:
    """Trains (or resumes) the agent, follows its greedy path and writes the artefacts."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    env = gym.make("CliffWalking-v1", max_episode_steps=config.max_episode_steps)
    agent_class = ALGORITHMS[config.algorithm]
    extra = {"expected": config.expected} if agent_class is SARSA else {}
    agent, summary = train_or_resume(agent_class, env, config, output_dir, **extra)

    states, path_return = greedy_path(agent, env, config.max_episode_steps)
    plot_path(agent, states, output_dir / "path.png")
    # Early random-walk episodes cost thousands; the interesting part is near 0.
    plot_episode_returns(
        agent.episode_returns, output_dir / "returns.png", AVERAGE_WINDOW, lowest=-500.0
    )
    rows = np.unravel_index(np.asarray(states), SHAPE)[0]
    results = {
        "algorithm": config.algorithm,
        "greedy_return": path_return,
        "greedy_path_steps": len(states) - 1,
        "greedy_path_top_row": int(rows.min()),
        "reaches_goal": bool(states[-1] == np.ravel_multi_index(GOAL, SHAPE)),
        **summary,
    }
    names = ("q_table.npz", "path.png", "returns.png", "metrics.json", "checkpoint.npz")
    return write_metrics(results, {Path(name).stem: output_dir / name for name in names})


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
