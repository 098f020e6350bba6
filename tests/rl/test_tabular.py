"""Tests of dlkit.rl.tabular: Q-learning, SARSA and greedy evaluation."""

import gymnasium as gym
import numpy as np
import pytest

from dlkit.rl.tabular import SARSA, QLearning, evaluate

AGENTS = [QLearning, SARSA]


class OneStepEnv(gym.Env):
    """State 0 → state 1 in one step, reward 1, ending by termination or by truncation."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(1)

    def __init__(self, terminated):
        self.terminated = terminated

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 1, 1.0, self.terminated, not self.terminated, {}


class AlwaysAction:
    """Any object with `act(observation, explore=False)` can be evaluated."""

    def __init__(self, action):
        self.action = action

    def act(self, observation, explore=True):
        return self.action


# ---------------------------------------------------------------------------- TD updates


def test_q_learning_update_moves_toward_the_max_target():
    agent = QLearning(3, 2, learning_rate=0.5, gamma=0.9, seed=0)
    agent.q_table[:] = [[0.5, -1.0], [1.0, 3.0], [7.0, 7.0]]
    td_error = agent.update(0, 0, reward=2.0, next_state=1, terminated=False, next_action=0)
    target = 2.0 + 0.9 * max(1.0, 3.0)  # notes eq. 9.8: r + γ max_a' Q(s', a')
    assert td_error == pytest.approx(target - 0.5)
    assert agent.q_table[0, 0] == pytest.approx(0.5 + 0.5 * (target - 0.5))
    assert agent.q_table[0, 1] == -1.0 and agent.q_table[1].tolist() == [1.0, 3.0]


def test_sarsa_update_uses_the_next_action_taken():
    agent = SARSA(3, 2, learning_rate=0.5, gamma=0.9, seed=0)
    agent.q_table[:] = [[0.5, -1.0], [1.0, 3.0], [7.0, 7.0]]
    td_error = agent.update(0, 0, reward=2.0, next_state=1, terminated=False, next_action=0)
    target = 2.0 + 0.9 * 1.0  # notes eq. 9.19 with γ: r + γ Q(s', a'), a' = 0 not the best
    assert td_error == pytest.approx(target - 0.5)
    assert agent.q_table[0, 0] == pytest.approx(0.5 + 0.5 * (target - 0.5))
    with pytest.raises(ValueError, match="next_action"):
        agent.update(0, 0, 1.0, 1, terminated=False)


def test_expected_sarsa_averages_over_the_epsilon_greedy_policy():
    agent = SARSA(2, 3, learning_rate=1.0, gamma=1.0, epsilon=0.3, expected=True, seed=0)
    agent.q_table[1] = [1.0, 4.0, 4.0]
    agent.update(0, 0, reward=0.0, next_state=1, terminated=False)
    probabilities = np.array([0.1, 0.1 + 0.35, 0.1 + 0.35])  # ε/3 each, 1 − ε split over ties
    assert agent.q_table[0, 0] == pytest.approx(probabilities @ [1.0, 4.0, 4.0])


@pytest.mark.parametrize("agent_class", AGENTS)
def test_terminated_transitions_do_not_bootstrap(agent_class):
    agent = agent_class(2, 2, learning_rate=1.0, gamma=0.5, seed=0)
    agent.q_table[1] = [10.0, 10.0]
    assert agent.update(0, 1, reward=1.0, next_state=1, terminated=True) == 1.0
    assert agent.q_table[0, 1] == 1.0


@pytest.mark.parametrize("agent_class", AGENTS)
@pytest.mark.parametrize("terminated, expected_value", [(True, 1.0), (False, 1.0 + 0.5 * 4.0)])
def test_learn_bootstraps_through_truncation_only(agent_class, terminated, expected_value):
    env = OneStepEnv(terminated)
    agent = agent_class.from_env(env, learning_rate=1.0, gamma=0.5, seed=0)
    agent.q_table[1] = 4.0  # the value of the state a time limit stopped in
    agent.learn(env, total_timesteps=1)
    assert agent.q_table[0, 0] == expected_value
    assert (agent.num_timesteps, agent.num_episodes, agent.episode_returns) == (1, 1, [1.0])


# ---------------------------------------------------------------------------- exploration


def test_epsilon_decays_linearly_with_environment_steps():
    agent = QLearning(1, 2, epsilon=1.0, epsilon_final=0.1, epsilon_decay_steps=100)
    values = []
    for steps in (0, 25, 50, 100, 1_000):
        agent.num_timesteps = steps
        values.append(agent.current_epsilon)
    np.testing.assert_allclose(values, [1.0, 0.775, 0.55, 0.1, 0.1])


def test_greedy_ties_are_broken_uniformly_at_random():
    agent = QLearning(1, 4, epsilon=0.0, epsilon_final=0.0, seed=0)
    agent.q_table[0] = [0.0, 2.0, 2.0, 2.0]
    counts = np.bincount([agent.act(0) for _ in range(3_000)], minlength=4)
    assert counts[0] == 0
    np.testing.assert_allclose(counts[1:] / 3_000, 1 / 3, atol=0.03)
    # Greedy evaluation is deterministic (lowest index) and leaves the generator alone.
    state = agent._rng.bit_generator.state
    assert agent.act(0, explore=False) == 1 and agent.greedy_policy().tolist() == [1]
    assert agent._rng.bit_generator.state == state


def test_exploring_steps_are_uniform_over_all_actions():
    agent = QLearning(1, 4, epsilon=1.0, seed=1)
    agent.q_table[0] = [5.0, 0.0, 0.0, 0.0]
    counts = np.bincount([agent.act(0) for _ in range(4_000)], minlength=4)
    np.testing.assert_allclose(counts / 4_000, 0.25, atol=0.03)


# ---------------------------------------------------------------------------- learning


def test_q_learning_solves_deterministic_frozen_lake():
    env = gym.make("FrozenLake-v1", is_slippery=False)
    agent = QLearning.from_env(env, learning_rate=0.5, epsilon_decay_steps=2_000, seed=0)
    agent.learn(env, total_timesteps=3_000)
    assert agent.evaluate(env, episodes=3) == 1.0  # the optimal return
    assert agent.current_epsilon == pytest.approx(0.05)


def _top_row_of_greedy_path(agent, env):
    state, _ = env.reset(seed=0)
    rows = [state // 12]
    for _ in range(100):
        state, _, terminated, _, _ = env.step(agent.act(state, explore=False))
        rows.append(state // 12)
        if terminated:
            break
    return min(rows)


def test_cliff_walking_q_learning_walks_the_edge_and_sarsa_the_safe_path():
    env = gym.make("CliffWalking-v1", max_episode_steps=500)
    settings = {"learning_rate": 0.5, "epsilon_final": 0.0, "epsilon_decay_steps": 5_000}
    q_learning = QLearning.from_env(env, seed=0, **settings).learn(env, 10_000)
    sarsa = SARSA.from_env(env, seed=0, **settings).learn(env, 10_000)
    # Q-learning: the optimal 13-step path along the cliff edge (row 2 of 0..3).
    assert q_learning.evaluate(env, episodes=1) == -13.0
    assert _top_row_of_greedy_path(q_learning, env) == 2
    # SARSA learned the values of its exploring policy, which falls off the edge now and
    # then: it keeps to the top row, 17 steps, even once ε has decayed to 0.
    assert sarsa.evaluate(env, episodes=1) == -17.0
    assert _top_row_of_greedy_path(sarsa, env) == 0


@pytest.mark.slow
def test_q_learning_earns_a_positive_return_on_taxi():
    env = gym.make("Taxi-v4")
    agent = QLearning.from_env(env, learning_rate=0.5, epsilon_decay_steps=25_000, seed=0)
    agent.learn(env, total_timesteps=50_000)
    assert agent.evaluate(env, episodes=20) > 0.0


# ---------------------------------------------------------------------------- evaluation, loop


def test_evaluate_accepts_any_agent_and_caps_endless_episodes():
    env = gym.make("CliffWalking-v1")  # no time limit
    assert evaluate(AlwaysAction(0), env, episodes=2, max_episode_steps=30) == -30.0
    frozen_lake = gym.make("FrozenLake-v1", is_slippery=False)
    assert evaluate(AlwaysAction(1), frozen_lake, episodes=1) == 0.0  # down into a hole


def test_progress_lines_and_callback_stop(capsys):
    env = gym.make("FrozenLake-v1", is_slippery=False)
    agent = QLearning.from_env(env, seed=0)
    agent.learn(env, 2_000, verbose=1, log_interval=5, callback=lambda a: a.num_episodes < 10)
    assert agent.num_episodes == 10
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("episode 10 | steps ")
    assert "epsilon" in lines[1] and lines[1].endswith("steps/s")


@pytest.mark.parametrize("agent_class", AGENTS)
def test_save_and_load_resume_learning_identically(tmp_path, agent_class):
    env = gym.make("FrozenLake-v1", is_slippery=True)  # stochastic: env seeds must match too
    settings = {"learning_rate": 0.3, "epsilon_decay_steps": 2_000, "seed": 3}
    reference = agent_class.from_env(env, **settings).learn(env, 1_000)
    reference.learn(env, 1_000)
    first_half = agent_class.from_env(env, **settings).learn(env, 1_000)
    path = first_half.save(tmp_path / "agent")
    assert path.endswith("agent.npz")
    resumed = agent_class.load(path)
    assert resumed.num_timesteps == 1_000
    assert resumed.current_epsilon == first_half.current_epsilon
    resumed.learn(env, 1_000)
    np.testing.assert_array_equal(resumed.q_table, reference.q_table)
    assert resumed.episode_returns == reference.episode_returns
    assert (resumed.num_timesteps, resumed.num_episodes) == (2_000, reference.num_episodes)
    other_class = SARSA if agent_class is QLearning else QLearning
    with pytest.raises(ValueError, match=f"saved by {other_class.__name__}"):
        other_class.load(path)


def test_sarsa_save_keeps_the_expected_flag(tmp_path):
    agent = SARSA(4, 2, expected=True, seed=None)
    assert SARSA.load(agent.save(tmp_path / "expected.npz")).expected is True


# ---------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "name, value",
    [
        ("num_states", 0),
        ("num_actions", 0),
        ("learning_rate", 0.0),
        ("learning_rate", 1.5),
        ("gamma", -0.1),
        ("gamma", 1.01),
        ("epsilon", 1.2),
        ("epsilon_final", -0.5),
        ("epsilon_decay_steps", 0),
        ("seed", 1.5),
    ],
)
@pytest.mark.parametrize("agent_class", AGENTS)
def test_bad_arguments_are_rejected(agent_class, name, value):
    arguments = {"num_states": 4, "num_actions": 2, name: value}
    with pytest.raises(ValueError, match=rf"Expected `{name}`.*Received: {name}={value}"):
        agent_class(**arguments)


def test_bad_environments_states_and_budgets_are_rejected():
    with pytest.raises(ValueError, match=r"Received: env\.observation_space=Box"):
        QLearning.from_env(gym.make("CartPole-v1"))
    env = gym.make("FrozenLake-v1")
    agent = QLearning.from_env(env)
    with pytest.raises(ValueError, match="Received: total_timesteps=0"):
        agent.learn(env, total_timesteps=0)
    with pytest.raises(ValueError, match="Received: state=16"):
        agent.act(16)
    with pytest.raises(ValueError, match="Received: action=4"):
        agent.update(0, 4, 0.0, 1, terminated=False)
    with pytest.raises(ValueError, match="Received: expected=1"):
        SARSA(4, 2, expected=1)
