import json

import numpy as np
import pytest

from dlkit.recipes import q_learning_frozenlake
from dlkit.rl.tabular import QLearning


def test_tiny_config_solves_the_lake_and_writes_every_artefact(tmp_path):
    config = q_learning_frozenlake.Config(
        total_timesteps=3_000, eval_episodes=2, output_dir=str(tmp_path), verbose=0
    )
    results = q_learning_frozenlake.main(config)
    assert results["eval_mean_return"] == 1.0  # the optimal return of the deterministic 4x4
    assert (results["timesteps"], results["resumed_from_timesteps"]) == (3_000, 0)
    for name in ("q_table.npz", "policy.png", "returns.png", "metrics.json", "checkpoint.npz"):
        assert (tmp_path / name).stat().st_size > 0
    agent = QLearning.load(tmp_path / "q_table.npz")
    assert agent.q_table.shape == (16, 4) and agent.num_episodes == results["episodes"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["total_timesteps"] == 3_000 and metrics["train_seconds"] >= 0


def test_a_second_run_resumes_from_the_checkpoint(tmp_path):
    settings = {"eval_episodes": 1, "output_dir": str(tmp_path), "verbose": 0}
    first = q_learning_frozenlake.main(
        q_learning_frozenlake.Config(total_timesteps=500, map_size="8x8", **settings)
    )
    second = q_learning_frozenlake.main(
        q_learning_frozenlake.Config(total_timesteps=800, map_size="8x8", **settings)
    )
    assert second["resumed_from_timesteps"] == first["timesteps"] == 500
    assert second["timesteps"] == 800 and second["episodes"] >= first["episodes"]
    agent = QLearning.load(tmp_path / "checkpoint.npz")
    assert agent.q_table.shape == (64, 4) and agent.num_timesteps == 800
    # The schedule is the checkpoint's: ε decays over half of the first run's 500 steps.
    assert agent.epsilon_decay_steps == 250
    np.testing.assert_array_equal(agent.q_table, QLearning.load(tmp_path / "q_table.npz").q_table)


@pytest.mark.parametrize(
    "field, value",
    [
        ("map_size", "5x5"),
        ("total_timesteps", 0),
        ("eval_episodes", 0),
        ("exploration_fraction", 0.0),
        ("learning_rate", 0.0),
        ("gamma", 1.5),
    ],
)
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        q_learning_frozenlake.Config(**{field: value})
