import json

import pytest

from dlkit.recipes import sarsa_cliffwalking
from dlkit.rl.tabular import SARSA, QLearning


@pytest.mark.parametrize(
    "algorithm, expected_return, top_row", [("sarsa", -17.0, 0), ("q_learning", -13.0, 2)]
)
def test_each_algorithm_learns_its_own_path(tmp_path, algorithm, expected_return, top_row):
    config = sarsa_cliffwalking.Config(
        algorithm=algorithm, total_timesteps=10_000, output_dir=str(tmp_path), verbose=0
    )
    results = sarsa_cliffwalking.main(config)
    # SARSA keeps to the top row (its values include exploring falls); Q-learning the edge.
    assert results["greedy_return"] == expected_return and results["reaches_goal"]
    assert results["greedy_path_top_row"] == top_row
    for name in ("q_table.npz", "path.png", "returns.png", "metrics.json", "checkpoint.npz"):
        assert (tmp_path / name).stat().st_size > 0
    agent_class = SARSA if algorithm == "sarsa" else QLearning
    assert agent_class.load(tmp_path / "q_table.npz").num_timesteps == 10_000
    assert json.loads((tmp_path / "metrics.json").read_text())["algorithm"] == algorithm


def test_a_second_run_resumes_from_the_checkpoint(tmp_path):
    settings = {"output_dir": str(tmp_path), "verbose": 0, "expected": True}
    first = sarsa_cliffwalking.main(sarsa_cliffwalking.Config(total_timesteps=300, **settings))
    second = sarsa_cliffwalking.main(sarsa_cliffwalking.Config(total_timesteps=600, **settings))
    assert second["resumed_from_timesteps"] == first["timesteps"] == 300
    agent = SARSA.load(tmp_path / "checkpoint.npz")
    assert agent.expected and agent.num_timesteps == 600


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"algorithm": "dqn"}, "algorithm"),
        ({"algorithm": "q_learning", "expected": True}, "expected"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
        ({"exploration_fraction": 1.5}, "exploration_fraction"),
        ({"epsilon_final": -0.1}, "epsilon_final"),
    ],
)
def test_bad_config_values_are_rejected(fields, message):
    with pytest.raises(ValueError, match=message):
        sarsa_cliffwalking.Config(**fields)
