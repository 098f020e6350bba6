"""Tests of dlkit.rl.DQN and build_q_network: targets, losses, Rainbow options, saving, learning."""

import dataclasses

import gymnasium as gym
import keras
import numpy as np
import pytest

from dlkit.layers.q_heads import DuelingHead
from dlkit.rl import DQN, DQNConfig, ReplayBuffer, build_q_network, categorical_projection

BATCH = 8


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def make_agent(network=None, **kwargs):
    keras.utils.set_random_seed(0)
    if network is None:
        network = build_q_network((4,), 2, hidden_units=(16,))
    options = dict(batch_size=BATCH, learning_starts=16, seed=0)
    options.update(kwargs)
    return DQN(network, **options)


def perturb_target(agent, scale=0.5, seed=1):
    """Moves the target network's weights away from the online network's."""
    rng = np.random.default_rng(seed)
    agent.target_network.set_weights(
        [w + rng.normal(0.0, scale, w.shape).astype(w.dtype) for w in agent.q_network.get_weights()]
    )


def hand_batch(num_actions=2, seed=0, reward_scale=3.0):
    """A batch of transitions with large rewards (both Huber regimes), terminals and n-step."""
    rng = np.random.default_rng(seed)
    observations = rng.normal(size=(BATCH, 4)).astype("float32")
    batch = {
        "actions": rng.integers(num_actions, size=BATCH).astype("int32"),
        "rewards": (reward_scale * rng.normal(size=BATCH)).astype("float32"),
        "dones": np.array([0, 1, 0, 0, 1, 0, 0, 0], "float32"),
        "discounts": np.array([0.99, 0.99, 0.729, 0.99, 0.9, 0.729, 0.99, 0.5], "float32"),
        "next_observations": rng.normal(size=(BATCH, 4)).astype("float32"),
        "weights": rng.uniform(0.2, 1.0, BATCH).astype("float32"),
    }
    return observations, batch


def huber(errors):
    absolute = np.abs(errors)
    return np.where(absolute <= 1.0, 0.5 * errors**2, absolute - 0.5)


def td_errors(agent, observations, batch, double):
    """NumPy TD errors δ = target − Q(s, a) of a plain (non-distributional) agent."""
    q = numpy(agent.q_network(observations)).astype(np.float64)
    target_next = numpy(agent.target_network(batch["next_observations"])).astype(np.float64)
    if double:
        online_next = numpy(agent.q_network(batch["next_observations"]))
        next_values = target_next[np.arange(BATCH), online_next.argmax(axis=1)]
    else:
        next_values = target_next.max(axis=1)
    targets = batch["rewards"] + batch["discounts"] * (1 - batch["dones"]) * next_values
    return targets - q[np.arange(BATCH), batch["actions"]]


# ---------------------------------------------------------------------------- target network


def test_target_network_starts_as_an_independent_copy():
    agent = make_agent()
    online, target = agent.q_network.get_weights(), agent.target_network.get_weights()
    assert len(online) == len(target) == 4
    for a, b in zip(online, target):
        np.testing.assert_array_equal(a, b)
    assert not agent.target_network.trainable
    assert all(w.trainable for w in agent.q_network.weights)
    # Separate variables: changing the online network leaves the target alone.
    agent.q_network.set_weights([w + 1.0 for w in online])
    for a, b in zip(target, agent.target_network.get_weights()):
        np.testing.assert_array_equal(a, b)


def filled_agent(**kwargs):
    """An agent whose buffer holds 40 CartPole transitions, before any gradient step."""
    agent = make_agent(learning_starts=10_000, **kwargs)
    agent.learn(gym.make("CartPole-v1"), total_timesteps=40, verbose=0)
    assert len(agent.buffer) == 40 and agent.num_updates == 0
    return agent


def test_hard_update_copies_every_interval_and_not_between():
    agent = filled_agent(learning_rate=1e-2, target_update_interval=3, tau=1.0)
    initial = agent.q_network.get_weights()
    after = {}  # step -> online weights after that gradient step
    for step in range(1, 8):
        agent._gradient_step()
        after[step] = agent.q_network.get_weights()
        # The copy follows gradient steps 3 and 6, and takes the weights they produced.
        copied = initial if step < 3 else after[3] if step < 6 else after[6]
        for target, expected, online in zip(
            agent.target_network.get_weights(), copied, after[step]
        ):
            np.testing.assert_array_equal(target, expected)
            if step not in (3, 6):
                assert np.abs(online - target).max() > 1e-4  # the online network moved on
    assert agent.num_updates == 7
    for a, b in zip(after[3], initial):
        assert np.abs(a - b).max() > 1e-4  # so that the first copy is visible


def test_polyak_update_moves_target_by_tau_towards_the_online_weights():
    agent = filled_agent(learning_rate=1e-2, target_update_interval=1, tau=0.5)
    perturb_target(agent)
    for _ in range(2):
        online_before = agent.q_network.get_weights()
        target_before = agent.target_network.get_weights()
        agent._gradient_step()
        online_after = agent.q_network.get_weights()
        for new, old, theta, theta_old in zip(
            agent.target_network.get_weights(), target_before, online_after, online_before
        ):
            # θ⁻ ← θ⁻ + τ (θ − θ⁻) with θ the weights this gradient step produced.
            np.testing.assert_allclose(new, old + 0.5 * (theta - old), rtol=0, atol=1e-6)
            assert np.abs(new - old).max() > 0.05
            assert np.abs(theta - theta_old).max() > 1e-4


@pytest.mark.parametrize("interval", [18, 500])
def test_learn_takes_the_expected_gradient_steps_and_updates_target_on_interval(interval):
    agent = make_agent(
        learning_starts=32, train_frequency=4, gradient_steps=2, target_update_interval=interval
    )
    initial = agent.q_network.get_weights()
    agent.learn(gym.make("CartPole-v1"), total_timesteps=64, verbose=0)
    # Phases at t = 32, 36, ..., 64: 9 phases of 2 gradient steps.
    assert agent.num_timesteps == 64 and agent.num_updates == 18
    final = agent.q_network.get_weights()
    copied = final if interval == 18 else initial
    for target, expected, a, b in zip(agent.target_network.get_weights(), copied, initial, final):
        np.testing.assert_array_equal(target, expected)
        assert np.abs(a - b).max() > 1e-5


# ---------------------------------------------------------------------------- TD loss


@pytest.mark.parametrize("prioritized", [False, True])
@pytest.mark.parametrize("loss", ["huber", "mse"])
@pytest.mark.parametrize("double", [False, True])
def test_td_loss_matches_numpy(loss, double, prioritized):
    agent = make_agent(loss=loss, double=double, prioritized=prioritized)
    perturb_target(agent, scale=1.0)
    observations, batch = hand_batch()
    deltas = td_errors(agent, observations, batch, double)
    other = td_errors(agent, observations, batch, not double)
    assert np.abs(deltas - other).max() > 1e-2  # double Q-learning changes some targets
    assert np.abs(deltas).max() > 1.0 and np.abs(deltas).min() < 1.0  # both Huber regimes
    per_sample = huber(deltas) if loss == "huber" else 0.5 * deltas**2
    expected = np.mean(batch["weights"] * per_sample)

    value = agent.compute_loss(x=observations, y=batch, y_pred=agent.q_network(observations))
    np.testing.assert_allclose(float(numpy(value)), expected, rtol=1e-5, atol=1e-6)
    if prioritized:  # |δ| is kept for the priorities
        np.testing.assert_allclose(numpy(agent._td_errors), np.abs(deltas), rtol=1e-5, atol=1e-5)
    # The importance weights enter linearly.
    unweighted = dict(batch, weights=np.ones(BATCH, "float32"))
    value = agent.compute_loss(x=observations, y=unweighted, y_pred=agent.q_network(observations))
    np.testing.assert_allclose(float(numpy(value)), per_sample.mean(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- prioritized


def test_prioritized_gradient_step_updates_sampled_priorities_and_weights_the_loss():
    agent = filled_agent(prioritized=True, alpha=0.6, beta=0.4)
    buffer = agent.buffer
    assert buffer.alpha == 0.6 and buffer.epsilon == 1e-6
    rng = np.random.default_rng(3)
    buffer.update_priorities(np.arange(40), rng.uniform(0.1, 5.0, 40))  # unequal priorities
    perturb_target(agent)

    seen = {}
    sample = buffer.sample

    def recording_sample(batch_size):
        batch = sample(batch_size)
        seen["batch"] = batch
        as_targets = dict(batch, actions=batch["actions"].astype("int32"))
        seen["deltas"] = td_errors(agent, batch["observations"], as_targets, double=False)
        return batch

    buffer.sample = recording_sample
    loss = agent._gradient_step()
    batch, deltas = seen["batch"], seen["deltas"]
    weights = batch["weights"]
    assert weights.max() == 1.0 and weights.min() < 0.9  # non-uniform IS weights
    np.testing.assert_allclose(loss, np.mean(weights * huber(deltas)), rtol=1e-5, atol=1e-6)
    assert abs(loss - np.mean(huber(deltas))) > 1e-3  # so the weights mattered
    np.testing.assert_allclose(numpy(agent._td_errors), np.abs(deltas), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        buffer.tree.values(batch["indices"]),
        (np.abs(deltas) + 1e-6) ** 0.6,
        rtol=1e-4,
    )
    # β anneals to 1 over the run's gradient steps (none left here, so one step).
    assert buffer.beta_steps == 1 and buffer.current_beta == 1.0


# ---------------------------------------------------------------------------- dueling


def test_dueling_network_combines_value_and_mean_centred_advantages():
    keras.utils.set_random_seed(0)
    network = build_q_network((4,), 3, hidden_units=(16,), dueling=True)
    head = next(layer for layer in network.layers if isinstance(layer, DuelingHead))
    features_model = keras.Model(network.inputs[0], network.get_layer("hidden_0").output)
    observations = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    features = features_model(observations)
    value = numpy(head.value_dense(features))  # (5, 1)
    advantage = numpy(head.advantage_dense(features))  # (5, 3)
    q = numpy(network(observations))
    assert q.shape == (5, 3)
    np.testing.assert_allclose(q, value + advantage - advantage.mean(1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(q.mean(axis=1), value[:, 0], atol=1e-5)
    assert np.abs(advantage.mean(axis=1)).max() > 1e-3  # the centring is not a no-op

    agent = DQN(network, batch_size=BATCH)
    assert agent.dueling and not agent.noisy and not agent.distributional
    assert agent.num_actions == 3
    assert not make_agent().dueling


# ---------------------------------------------------------------------------- noisy


def test_noisy_network_explores_by_weight_noise_and_acts_greedily_without():
    keras.utils.set_random_seed(0)
    network = build_q_network((4,), 2, hidden_units=(16,), noisy=True)
    agent = DQN(network, batch_size=BATCH, exploration_initial_epsilon=1.0, seed=0)
    assert agent.noisy and agent.epsilon == 0.0
    observations = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")

    greedy = agent.act(observations, explore=False)
    np.testing.assert_array_equal(agent.act(observations, explore=False), greedy)
    mean_q = numpy(network(observations, training=False))
    np.testing.assert_array_equal(greedy, mean_q.argmax(axis=1))
    np.testing.assert_allclose(agent.q_values(observations), mean_q, atol=1e-5)

    noisy_call = agent._compiled(agent.q_network, training=True)
    first, second = noisy_call(observations), noisy_call(observations)
    assert np.abs(first - mean_q).max() > 1e-3
    assert np.abs(first - second).max() > 1e-3  # new noise on every call
    explored = [agent.act(observations, explore=True) for _ in range(5)]
    assert any((actions != greedy).any() for actions in explored)


# ---------------------------------------------------------------------------- C51


def numpy_projection(probabilities, rewards, dones, discounts, support):
    """Bellemare et al. 2017, Algorithm 1, one atom at a time."""
    v_min, v_max = support[0], support[-1]
    delta = support[1] - support[0]
    target = np.zeros_like(probabilities, dtype=np.float64)
    for i in range(len(rewards)):
        for j, z in enumerate(support):
            shifted = np.clip(rewards[i] + discounts[i] * (1 - dones[i]) * z, v_min, v_max)
            b = (shifted - v_min) / delta
            low, high = int(np.floor(b)), int(np.ceil(b))
            if low == high:
                target[i, low] += probabilities[i, j]
            else:
                target[i, low] += probabilities[i, j] * (high - b)
                target[i, high] += probabilities[i, j] * (b - low)
    return target


@pytest.mark.parametrize("double", [False, True])
def test_c51_loss_is_cross_entropy_to_the_projected_target(double):
    keras.utils.set_random_seed(0)
    network = build_q_network((4,), 2, hidden_units=(16,), num_atoms=11, v_min=0, v_max=10)
    agent = DQN(network, gamma=0.9, batch_size=BATCH, double=double, prioritized=True, seed=0)
    assert agent.distributional and agent.num_actions == 2
    support = np.linspace(0.0, 10.0, 11)
    np.testing.assert_allclose(agent._support, support, atol=1e-6)
    perturb_target(agent, scale=1.0)
    observations, batch = hand_batch(reward_scale=1.0)
    batch["rewards"] = np.abs(batch["rewards"]) + 0.3  # between the atoms, some clipped at v_max

    target_next = numpy(agent.target_network(batch["next_observations"])).astype(np.float64)
    online_next = numpy(agent.q_network(batch["next_observations"])).astype(np.float64)
    target_greedy = (target_next * support).sum(-1).argmax(axis=1)
    online_greedy = (online_next * support).sum(-1).argmax(axis=1)
    assert (target_greedy != online_greedy).any()  # double Q-learning picks other actions
    greedy = online_greedy if double else target_greedy
    next_probabilities = target_next[np.arange(BATCH), greedy]  # (B, N)
    projected = numpy_projection(
        next_probabilities, batch["rewards"], batch["dones"], batch["discounts"], support
    )
    np.testing.assert_allclose(projected.sum(axis=1), 1.0, atol=1e-6)
    library = categorical_projection(
        next_probabilities.astype("float32"),
        batch["rewards"],
        batch["dones"],
        batch["discounts"],
        support.astype("float32"),
    )
    np.testing.assert_allclose(numpy(library), projected, atol=1e-5)

    predicted = numpy(agent.q_network(observations)).astype(np.float64)
    chosen = predicted[np.arange(BATCH), batch["actions"]]  # (B, N)
    cross_entropy = -(projected * np.log(np.clip(chosen, 1e-6, 1.0))).sum(axis=1)
    expected = np.mean(batch["weights"] * cross_entropy)
    value = agent.compute_loss(x=observations, y=batch, y_pred=agent.q_network(observations))
    np.testing.assert_allclose(float(numpy(value)), expected, rtol=1e-5)
    np.testing.assert_allclose(numpy(agent._td_errors), cross_entropy, rtol=1e-5)


def test_c51_q_values_are_expectations_and_act_takes_their_argmax():
    keras.utils.set_random_seed(0)
    network = build_q_network((4,), 3, hidden_units=(16,), num_atoms=11, v_min=0, v_max=10)
    agent = DQN(network, batch_size=BATCH, seed=0)
    observations = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    probabilities = numpy(network(observations))
    assert probabilities.shape == (32, 3, 11)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    expected_q = (probabilities * np.linspace(0, 10, 11)).sum(-1)
    np.testing.assert_allclose(agent.q_values(observations), expected_q, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(agent.act(observations), expected_q.argmax(axis=1))
    assert agent.act(observations[0]) == int(expected_q[0].argmax())
    # The standalone policy ends in the same expected-value argmax.
    policy = agent.policy_model()
    np.testing.assert_array_equal(numpy(policy(observations)), expected_q.argmax(axis=1))


# ---------------------------------------------------------------------------- n-step, ε


def test_n_step_buffer_stores_discounted_returns_and_gamma_to_the_n():
    agent = make_agent(n_step=3, gamma=0.9, learning_starts=10_000)
    agent.learn(gym.make("CartPole-v1"), total_timesteps=200, verbose=0)
    lengths = agent.episode_lengths
    assert len(lengths) >= 3
    discounts, rewards, dones = [], [], []
    for length in lengths:  # CartPole episodes end by termination, reward 1 per step
        for t in range(length):
            m = min(3, length - t)
            discounts.append(0.9**m)
            rewards.append(sum(0.9**k for k in range(m)))
            dones.append(float(length - t <= 3))
    stored = sum(lengths)
    buffer = agent.buffer
    # Every finished step is stored except the last n − 1 = 2 steps of the running episode.
    assert len(buffer) == 200 - 2
    np.testing.assert_allclose(buffer.discounts[:stored], discounts, rtol=1e-6)
    np.testing.assert_allclose(buffer.rewards[:stored], rewards, rtol=1e-6)
    np.testing.assert_array_equal(buffer.dones[:stored], dones)
    running = buffer.discounts[stored : len(buffer)]
    np.testing.assert_allclose(running, 0.729, rtol=1e-6)  # mid-episode: γ³
    assert np.isclose(buffer.discounts[: len(buffer)], 0.729).mean() > 0.7


def test_epsilon_decays_linearly_over_the_exploration_fraction():
    agent = make_agent(
        exploration_fraction=0.5,
        exploration_initial_epsilon=1.0,
        exploration_final_epsilon=0.1,
        learning_starts=10_000,
    )
    assert agent.epsilon == 1.0
    seen = {}
    actions = agent._actions

    def recording_actions(observations, explore=False):
        seen[agent.num_timesteps] = agent.epsilon
        return actions(observations, explore)

    agent._actions = recording_actions
    history = keras.callbacks.History()
    agent.learn(gym.make("CartPole-v1"), total_timesteps=400, callbacks=[history], verbose=0)
    assert sorted(seen) == list(range(400))
    np.testing.assert_allclose(seen[0], 1.0)
    np.testing.assert_allclose(seen[50], 1.0 - 0.9 * 50 / 200)
    np.testing.assert_allclose(seen[100], 0.55)
    np.testing.assert_allclose(seen[200], 0.1)
    np.testing.assert_allclose(seen[399], 0.1)
    steps = np.arange(400)
    np.testing.assert_allclose(
        [seen[t] for t in steps], 1.0 - 0.9 * np.minimum(1.0, steps / 200), atol=1e-12
    )
    np.testing.assert_allclose(history.history["epsilon"][-1], 0.1)
    # A new run starts its own schedule.
    seen.clear()
    agent.learn(gym.make("CartPole-v1"), total_timesteps=100, verbose=0)
    np.testing.assert_allclose(seen[400], 1.0)
    np.testing.assert_allclose(seen[450], 0.1)


# ---------------------------------------------------------------------------- saving


NETWORKS = {
    "plain": dict(),
    "dueling": dict(dueling=True),
    "noisy": dict(noisy=True),
    "c51": dict(num_atoms=11, v_min=0.0, v_max=10.0),
}


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_keras_file_round_trip_and_policy_model(kind, tmp_path):
    keras.utils.set_random_seed(0)
    network = build_q_network((4,), 2, hidden_units=(16,), **NETWORKS[kind])
    agent = DQN(network, batch_size=BATCH, learning_starts=16, gamma=0.95, tau=0.5, seed=0)
    agent.learn(gym.make("CartPole-v1"), total_timesteps=32, verbose=0)
    assert agent.num_updates > 0
    observations = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    q_values = agent.q_values(observations)

    path = str(tmp_path / "agent.keras")
    agent.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, DQN)
    config, loaded_config = agent.get_config(), loaded.get_config()
    for key in ("gamma", "tau", "batch_size", "learning_starts", "loss", "seed", "n_step"):
        assert loaded_config[key] == config[key]
    assert (loaded.dueling, loaded.noisy, loaded.distributional) == (
        agent.dueling,
        agent.noisy,
        agent.distributional,
    )
    np.testing.assert_allclose(loaded.q_values(observations), q_values, atol=1e-6)
    for a, b in zip(loaded.target_network.get_weights(), agent.target_network.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-7)

    policy = agent.policy_model()
    np.testing.assert_array_equal(numpy(policy(observations)), agent.act(observations))
    np.testing.assert_array_equal(agent.act(observations), q_values.argmax(axis=1))


@pytest.mark.slow
def test_policy_exports_to_saved_model(tmp_path):
    pytest.importorskip("tensorflow")
    from dlkit.export import export, verify

    agent = make_agent()
    agent.learn(gym.make("CartPole-v1"), total_timesteps=32, verbose=0)
    observations = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    expected = agent.act(observations).astype("int32")
    path = export(agent.policy_model(), tmp_path / "policy")
    assert verify(path, observations, expected, atol=0) == 0


# ---------------------------------------------------------------------------- bad input


def test_continuous_action_space_is_rejected():
    agent = make_agent(network=build_q_network((3,), 2, hidden_units=(16,)))
    with pytest.raises(ValueError, match=r"discrete action space.*Received: action_space=Box"):
        agent.learn(gym.make("Pendulum-v1"), total_timesteps=10, verbose=0)


def test_wrong_number_of_actions_is_rejected():
    agent = make_agent(network=build_q_network((4,), 3, hidden_units=(16,)))
    with pytest.raises(
        ValueError, match=r"Expected 3 actions.*Received: action_space=Discrete\(2\)"
    ):
        agent.learn(gym.make("CartPole-v1"), total_timesteps=10, verbose=0)


def test_observations_not_fitting_the_network_are_rejected():
    agent = make_agent(network=build_q_network((4,), 3, hidden_units=(16,)))
    with pytest.raises(
        ValueError, match=r"input shape is \(4,\)\. Received: observation_space=Box"
    ):
        agent.learn(gym.make("MountainCar-v0"), total_timesteps=10, verbose=0)
    with pytest.raises(ValueError, match=r"Received: observations\.shape=\(2, 2\)"):
        agent.act(np.zeros((2, 2), "float32"))


@pytest.mark.parametrize(
    "arguments, pattern",
    [
        (dict(gamma=1.5), r"Received: gamma=1\.5"),
        (dict(tau=0), r"`tau` to be a number in \(0, 1\.0\]\. Received: tau=0"),
        (dict(tau=1.5), r"Received: tau=1\.5"),
        (dict(batch_size=0), r"Received: batch_size=0"),
        (dict(loss="l1"), r"one of \('huber', 'mse'\)\. Received: loss='l1'"),
        (dict(learning_rate=-1.0), r"Received: learning_rate=-1\.0"),
        (dict(exploration_fraction=2.0), r"Received: exploration_fraction=2\.0"),
        (dict(n_step=0), r"Received: n_step=0"),
    ],
    ids=[
        "gamma",
        "tau_zero",
        "tau_above_one",
        "batch_size",
        "loss",
        "learning_rate",
        "exploration_fraction",
        "n_step",
    ],
)
def test_bad_arguments_are_rejected(arguments, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_agent(**arguments)


def test_bad_networks_are_rejected():
    with pytest.raises(TypeError, match=r"keras\.Model\. Received: q_network="):
        DQN(keras.layers.Dense(2))
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"built model.*Received: q_network="):
        DQN(unbuilt)
    with pytest.raises(
        ValueError, match=r"dueling.*num_atoms.*Received: dueling=True, num_atoms=11"
    ):
        build_q_network((4,), 2, dueling=True, num_atoms=11)
    with pytest.raises(ValueError, match=r"Received: num_actions=0"):
        build_q_network((4,), 0)


def test_sampling_before_a_batch_is_held_is_rejected():
    buffer = ReplayBuffer(100, observation_shape=(4,), seed=0)
    for _ in range(3):
        buffer.add(np.zeros(4), 0, 1.0, np.zeros(4), False, False)
    with pytest.raises(ValueError, match=r"at least batch_size.*batch_size=8 with len\(buffer\)=3"):
        buffer.sample(8)

    agent = make_agent(batch_size=32, learning_starts=0)
    agent.learn(gym.make("CartPole-v1"), total_timesteps=20, verbose=0)
    assert len(agent.buffer) == 20 and agent.num_updates == 0  # waits for a full batch
    with pytest.raises(ValueError, match=r"Received: batch_size=32 with len\(buffer\)=20"):
        agent._gradient_step()


def test_config_and_keyword_arguments_build_the_same_agent():
    network = build_q_network((4,), 2, hidden_units=(16,))
    config = DQNConfig(gamma=0.9, batch_size=8, seed=3)
    agent = DQN(network, config=config)
    assert agent.config == config and agent.config is not config
    assert (agent.gamma, agent.batch_size, agent.seed, agent.loss_name) == (0.9, 8, 3, "huber")
    assert DQN(network, gamma=0.9, batch_size=8, seed=3).config == config
    # A keyword argument overrides the config's field; the config itself is left as it was.
    assert DQN(network, config=config, gamma=0.5).gamma == 0.5 and config.gamma == 0.9
    config_keys = {key: value for key, value in agent.get_config().items() if key in
                   dataclasses.asdict(config)}  # fmt: skip
    assert config_keys == dataclasses.asdict(config)
    assert DQN.from_config(agent.get_config()).config == config


def test_config_of_a_subclass_gives_only_the_agent_fields():
    @dataclasses.dataclass
    class Recipe(DQNConfig):
        hidden: int = 4

    agent = DQN(build_q_network((4,), 2, hidden_units=(16,)), config=Recipe(tau=0.5))
    assert type(agent.config) is DQNConfig and agent.config.tau == 0.5


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match=r"`gamma`.*Received: gamma=1\.5"):
        DQNConfig(gamma=1.5)
    with pytest.raises(TypeError, match=r"`config` to be a DQNConfig.*Received: config="):
        DQN(build_q_network((4,), 2, hidden_units=(16,)), config={"gamma": 0.9})
    with pytest.raises(TypeError, match=r"`seed` to be an int or None.*Received: seed=True"):
        DQNConfig(seed=True)
