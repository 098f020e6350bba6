"""Tests of dlkit.rl.buffers: replay (uniform, prioritized, n-step), sum tree and rollouts."""

import numpy as np
import pytest

from dlkit.rl import PrioritizedReplayBuffer, ReplayBuffer, RolloutBuffer, SumTree


def fill(buffer, num_steps, start=0):
    """Adds `num_steps` steps whose observation encodes (step, environment)."""
    num_envs = buffer.num_envs
    for step in range(start, start + num_steps):
        ids = step * 10 + np.arange(num_envs)
        observations = np.repeat(ids[:, None], buffer.observation_shape[0], axis=1)
        buffer.add(
            observations,
            ids % 3,
            ids.astype(float),
            observations + 0.5,
            np.zeros(num_envs, bool),
            np.zeros(num_envs, bool),
        )


# ---------------------------------------------------------------------------- ReplayBuffer


def test_circular_overwrite():
    buffer = ReplayBuffer(5, observation_shape=(2,), seed=0)
    for step in range(7):
        buffer.add(np.full(2, step), step, step, np.full(2, step + 1), False, False)
    assert len(buffer) == 5 and buffer.is_full and buffer.capacity == 5
    assert buffer.position == 2
    np.testing.assert_array_equal(buffer.observations[:, 0], [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.actions, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.next_observations[:, 0], [6, 7, 3, 4, 5])


def test_batch_add_from_vector_envs_wraps_around():
    buffer = ReplayBuffer(7, observation_shape=(3,), num_envs=3, seed=0)
    fill(buffer, 2)
    assert len(buffer) == 6 and not buffer.is_full
    fill(buffer, 1, start=2)  # rows 6, 0, 1
    assert len(buffer) == 7 and buffer.position == 2
    np.testing.assert_array_equal(buffer.observations[:, 0], [21, 22, 2, 10, 11, 12, 20])
    np.testing.assert_array_equal(buffer.rewards, [21, 22, 2, 10, 11, 12, 20])


def test_sample_is_uniform_without_replacement_and_terminated_only_is_done():
    buffer = ReplayBuffer(10, observation_shape=(1,), seed=0)
    for step in range(10):
        buffer.add([step], 0, 0.0, [step], terminated=step == 3, truncated=step == 5)
    batch = buffer.sample(10)
    assert sorted(batch["indices"]) == list(range(10))
    assert set(batch) == {
        "observations",
        "actions",
        "rewards",
        "next_observations",
        "dones",
        "discounts",
        "indices",
    }
    by_index = dict(zip(batch["indices"], batch["dones"]))
    assert by_index[3] == 1.0 and by_index[5] == 0.0 and sum(batch["dones"]) == 1.0
    np.testing.assert_allclose(batch["discounts"], 0.99)
    counts = np.zeros(10)
    for _ in range(2000):
        counts[buffer.sample(3)["indices"]] += 1
    np.testing.assert_allclose(counts / counts.sum(), 0.1, atol=0.01)


def test_n_step_returns_with_terminal_and_truncation_in_window():
    gamma = 0.5
    buffer = ReplayBuffer(20, observation_shape=(1,), num_envs=2, n_step=3, gamma=gamma, seed=0)
    rewards = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    for step in range(6):
        observations = np.array([[10 * step], [100 + 10 * step]], dtype=float)
        buffer.add(
            observations,
            np.array([step, step]),
            np.array([rewards[step], rewards[step]]),
            observations + 5,
            terminated=np.array([step == 1, False]),  # env 0 terminates after step 1
            truncated=np.array([False, step == 2]),  # env 1 is truncated after step 2
        )
    # Starts 0..3 are complete (3 steps seen); rows alternate env 0, env 1.
    assert len(buffer) == 8
    # (start, reward, next_observation, done, discount), hand-computed with γ = 0.5.
    expected_env_0 = [
        (0, 1 + 0.5 * 2, 15, 1.0, 0.25),  # steps 0, 1; terminal at 1
        (10, 2, 15, 1.0, 0.5),  # step 1 only
        (20, 4 + 0.5 * 8 + 0.25 * 16, 45, 0.0, 0.125),
        (30, 8 + 0.5 * 16 + 0.25 * 32, 55, 0.0, 0.125),
    ]
    expected_env_1 = [
        (100, 1 + 0.5 * 2 + 0.25 * 4, 125, 0.0, 0.125),  # truncation at step 2: bootstraps
        (110, 2 + 0.5 * 4, 125, 0.0, 0.25),
        (120, 4, 125, 0.0, 0.5),
        (130, 8 + 0.5 * 16 + 0.25 * 32, 155, 0.0, 0.125),
    ]
    for env, expected in enumerate([expected_env_0, expected_env_1]):
        rows = slice(env, 8, 2)
        observation, reward, next_observation, done, discount = map(np.array, zip(*expected))
        np.testing.assert_array_equal(buffer.observations[rows, 0], observation)
        np.testing.assert_allclose(buffer.rewards[rows], reward)
        np.testing.assert_array_equal(buffer.next_observations[rows, 0], next_observation)
        np.testing.assert_array_equal(buffer.dones[rows], done)
        np.testing.assert_allclose(buffer.discounts[rows], discount)
        np.testing.assert_array_equal(buffer.actions[rows], [0, 1, 2, 3])


def test_n_step_single_env_matches_brute_force():
    rng = np.random.default_rng(1)
    gamma, n, length = 0.9, 4, 40
    rewards = rng.normal(size=length)
    terminated = rng.random(length) < 0.1
    truncated = rng.random(length) < 0.1
    buffer = ReplayBuffer(100, observation_shape=(1,), n_step=n, gamma=gamma, seed=0)
    for t in range(length):
        buffer.add([t], 0, rewards[t], [t + 1], terminated[t], truncated[t])
    assert len(buffer) == length - n + 1
    for t in range(length - n + 1):
        total, m = 0.0, 0
        for k in range(n):
            total += gamma**k * rewards[t + k]
            m = k + 1
            if terminated[t + k] or truncated[t + k]:
                break
        assert buffer.observations[t, 0] == t
        assert buffer.rewards[t] == pytest.approx(total, rel=1e-5)
        assert buffer.next_observations[t, 0] == t + m
        assert buffer.dones[t] == float(terminated[t + m - 1])
        assert buffer.discounts[t] == pytest.approx(gamma**m)


# ------------------------------------------------------------------------------- SumTree


@pytest.mark.parametrize("capacity", [1, 5, 8, 13])
def test_sum_tree_totals_and_find_after_updates(capacity):
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity)
    values = np.zeros(capacity)
    for step in range(60):
        size = [1, 3, capacity][step % 3]  # one leaf, a few leaves, a batch of nearby leaves
        indices = rng.integers(0, capacity, size=size)
        new_values = rng.random(len(indices)) * 10
        tree.update(indices, new_values)
        values[indices] = new_values  # fancy assignment: the last repeated index wins too
        assert tree.total == pytest.approx(values.sum(), rel=1e-12)
        # Every internal node equals the sum of its children.
        internal = np.arange(1, tree.num_leaves)
        np.testing.assert_array_equal(  # exactly: parents are recomputed, not shifted
            tree.nodes[internal], tree.nodes[2 * internal] + tree.nodes[2 * internal + 1]
        )
    np.testing.assert_array_equal(tree.values(np.arange(capacity)), values)
    targets = rng.random(1000) * values.sum()
    expected = np.searchsorted(np.cumsum(values), targets, side="right")
    np.testing.assert_array_equal(tree.find(targets), expected)


def test_sum_tree_rejects_bad_updates():
    tree = SumTree(4)
    with pytest.raises(ValueError, match=r"Received: indices=\[4\]"):
        tree.update(np.array([4]), np.array([1.0]))
    with pytest.raises(ValueError, match=r"Received: values=\[-1\.\]"):
        tree.update(np.array([0]), np.array([-1.0]))
    with pytest.raises(ValueError, match=r"Received: values=\[ 1\. nan\]"):
        tree.update(np.array([0, 1]), np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"values\.shape=\(1,\)"):
        tree.update(np.array([0, 1]), np.array([1.0]))
    assert tree.total == 0.0


def test_continuous_actions_and_uint8_observations():
    buffer = ReplayBuffer(
        8, (2, 2), action_shape=(3,), observation_dtype="uint8", action_dtype="float32", seed=0
    )
    for step in range(4):
        observation = np.full((2, 2), step, np.uint8)
        buffer.add(observation, np.full(3, step / 10), step, observation + 1, False, False)
    batch = buffer.sample(4)
    assert batch["observations"].shape == (4, 2, 2) and batch["observations"].dtype == np.uint8
    assert batch["actions"].shape == (4, 3) and batch["actions"].dtype == np.float32
    np.testing.assert_allclose(batch["actions"][:, 0], batch["rewards"] / 10)


def test_alpha_zero_is_uniform_with_unit_weights():
    buffer = make_prioritized(np.array([0.1, 5.0, 1.0, 2.0]), alpha=0.0)
    np.testing.assert_allclose(buffer.tree.values(np.arange(4)), 1.0)
    np.testing.assert_allclose(buffer.sample(4)["weights"], 1.0)


# ----------------------------------------------------------------- PrioritizedReplayBuffer


def make_prioritized(td_errors, alpha=0.7, **kwargs):
    buffer = PrioritizedReplayBuffer(
        len(td_errors), observation_shape=(1,), alpha=alpha, seed=0, **kwargs
    )
    for step in range(len(td_errors)):
        buffer.add([step], 0, 0.0, [step], False, False)
    buffer.update_priorities(np.arange(len(td_errors)), td_errors)
    return buffer


def test_prioritized_sampling_frequencies_match_p_alpha():
    td_errors = np.array([0.1, 0.5, 1.0, 2.0, 3.0, 0.0, 4.0, 1.5])
    alpha = 0.7
    buffer = make_prioritized(td_errors, alpha=alpha)
    priorities = (np.abs(td_errors) + 1e-6) ** alpha
    expected = priorities / priorities.sum()
    counts = np.zeros(len(td_errors))
    num_draws = 0
    for _ in range(2000):
        indices = buffer.sample(8)["indices"]
        counts += np.bincount(indices, minlength=len(td_errors))
        num_draws += len(indices)
    expected_counts = expected * num_draws
    chi_square = np.sum((counts - expected_counts) ** 2 / expected_counts)
    assert chi_square < 30.0  # 7 degrees of freedom: p ≈ 1e-4 for a correct sampler
    np.testing.assert_allclose(counts / num_draws, expected, atol=0.005)


def test_importance_weights_match_formula():
    td_errors = np.array([0.2, 1.0, 3.0, 0.5, 2.0])
    alpha = 0.6
    buffer = make_prioritized(td_errors, alpha=alpha)
    probabilities = (np.abs(td_errors) + 1e-6) ** alpha
    probabilities /= probabilities.sum()
    for beta in (0.0, 0.4, 1.0):
        batch = buffer.sample(4, beta=beta)
        weights = (len(td_errors) * probabilities[batch["indices"]]) ** (-beta)
        np.testing.assert_allclose(batch["weights"], weights / weights.max(), rtol=1e-6)
        assert batch["weights"].dtype == np.float32
    assert buffer.num_samples == 0  # an explicit beta does not advance the schedule


def test_beta_annealing():
    buffer = make_prioritized(np.array([1.0, 2.0, 4.0]), beta=0.4, beta_final=1.0, beta_steps=4)
    probabilities = (np.array([1.0, 2.0, 4.0]) + 1e-6) ** 0.7
    probabilities /= probabilities.sum()
    betas = []
    for _ in range(6):
        beta = buffer.current_beta
        betas.append(beta)
        batch = buffer.sample(3)
        weights = (3 * probabilities[batch["indices"]]) ** (-beta)
        np.testing.assert_allclose(batch["weights"], weights / weights.max(), rtol=1e-6)
    np.testing.assert_allclose(betas, [0.4, 0.55, 0.7, 0.85, 1.0, 1.0])
    assert buffer.num_samples == 6


def test_priority_updates_and_max_priority_for_new_transitions():
    buffer = PrioritizedReplayBuffer(4, observation_shape=(1,), alpha=0.5, epsilon=0.01, seed=0)
    buffer.add([0], 0, 0.0, [0], False, False)
    buffer.add([1], 0, 0.0, [1], False, False)
    np.testing.assert_allclose(buffer.tree.values([0, 1]), [1.0, 1.0])  # initial max priority
    buffer.update_priorities(np.array([0, 1]), np.array([-8.99, 0.0]))
    np.testing.assert_allclose(buffer.tree.values([0, 1]), [3.0, 0.1])
    assert buffer.max_priority == pytest.approx(9.0)
    buffer.add([2], 0, 0.0, [2], False, False)  # gets the largest priority so far
    assert buffer.tree.values([2])[0] == pytest.approx(3.0)
    assert buffer.tree.total == pytest.approx(6.1)
    buffer.update_priorities(np.array([2]), np.array([0.99]))
    assert buffer.tree.total == pytest.approx(4.1)
    assert buffer.max_priority == pytest.approx(9.0)  # the maximum never decreases


def test_prioritized_overwrite_and_n_step():
    buffer = PrioritizedReplayBuffer(
        4, observation_shape=(1,), num_envs=2, n_step=2, gamma=0.5, alpha=1.0, seed=0
    )
    fill(buffer, 4)  # 3 complete starts × 2 envs = 6 transitions into capacity 4
    assert len(buffer) == 4
    np.testing.assert_array_equal(buffer.observations[:, 0], [20, 21, 10, 11])
    np.testing.assert_allclose(buffer.rewards, [20 + 15, 21 + 15.5, 10 + 10, 11 + 10.5])
    assert buffer.tree.total == pytest.approx(4.0)
    assert set(buffer.sample(4)) >= {"weights", "indices", "discounts"}


# ----------------------------------------------------------------------------- save/load


@pytest.mark.parametrize("buffer_class", [ReplayBuffer, PrioritizedReplayBuffer])
def test_save_load_round_trip_continues_sampling(tmp_path, buffer_class):
    buffer = buffer_class(
        20,
        observation_shape=(3,),
        num_envs=2,
        n_step=3,
        gamma=0.9,
        observation_dtype="uint8",
        seed=7,
    )
    fill(buffer, 8)
    buffer.sample(4)
    if buffer_class is PrioritizedReplayBuffer:
        batch = buffer.sample(5)
        buffer.update_priorities(batch["indices"], np.arange(5.0))
    path = buffer.save(tmp_path / "replay")
    assert path.endswith(".npz")
    restored = buffer_class.load(path)
    assert len(restored) == len(buffer) and restored.position == buffer.position
    for name in ("capacity", "observation_shape", "num_envs", "n_step", "gamma"):
        assert getattr(restored, name) == getattr(buffer, name)
    assert restored.observations.dtype == np.uint8
    # Pending n-step windows survive: both buffers store the same next transitions.
    fill(buffer, 5, start=8)
    fill(restored, 5, start=8)
    for _ in range(3):
        expected, actual = buffer.sample(6), restored.sample(6)
        assert expected.keys() == actual.keys()
        for name in expected:
            np.testing.assert_array_equal(actual[name], expected[name])
    if buffer_class is PrioritizedReplayBuffer:
        np.testing.assert_array_equal(restored.tree.nodes, buffer.tree.nodes)
        assert restored.num_samples == buffer.num_samples
        assert restored.max_priority == buffer.max_priority


def test_load_rejects_other_buffer_class(tmp_path):
    path = ReplayBuffer(4, observation_shape=(1,)).save(tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="Received: saved class=ReplayBuffer"):
        PrioritizedReplayBuffer.load(path)


# --------------------------------------------------------------------------- RolloutBuffer


def reference_gae(rewards, terminated, truncated, values, last_values, gamma, lam, boot):
    """Straightforward loops over environments and steps; `boot` = V(final obs) at truncation."""
    num_steps, num_envs = rewards.shape
    advantages = np.zeros((num_steps, num_envs))
    for env in range(num_envs):
        running = 0.0
        for t in reversed(range(num_steps)):
            reward = rewards[t, env]
            if terminated[t, env]:
                delta = reward - values[t, env]
                running = delta
            elif truncated[t, env]:
                delta = reward + gamma * boot[t, env] - values[t, env]
                running = delta
            else:
                next_value = values[t + 1, env] if t + 1 < num_steps else last_values[env]
                delta = reward + gamma * next_value - values[t, env]
                running = delta + gamma * lam * running
            advantages[t, env] = running
    return advantages, advantages + values


def test_gae_matches_reference_with_terminated_and_truncated():
    rng = np.random.default_rng(3)
    num_steps, num_envs, gamma, lam = 12, 3, 0.97, 0.9
    rewards = rng.normal(size=(num_steps, num_envs))
    values = rng.normal(size=(num_steps, num_envs))
    terminated = rng.random((num_steps, num_envs)) < 0.15
    truncated = (rng.random((num_steps, num_envs)) < 0.15) & ~terminated
    truncated[-1, 0] = True  # truncated on the very last step too
    terminated[-1, 0] = False
    boot = rng.normal(size=(num_steps, num_envs))
    last_values = rng.normal(size=num_envs)
    rollout = RolloutBuffer(num_steps, num_envs, (2,), gamma=gamma, gae_lambda=lam, seed=0)
    for t in range(num_steps):
        rollout.add(
            rng.normal(size=(num_envs, 2)),
            rng.integers(0, 2, num_envs),
            rewards[t],
            terminated[t],
            truncated[t],
            values[t],
            np.zeros(num_envs),
            truncation_values=boot[t],
        )
    assert rollout.is_full and len(rollout) == num_steps * num_envs
    advantages, returns = rollout.compute_returns_and_advantages(last_values)
    expected_advantages, expected_returns = reference_gae(
        rewards, terminated, truncated, values, last_values, gamma, lam, boot
    )
    np.testing.assert_allclose(advantages, expected_advantages, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(returns, expected_returns, rtol=1e-5, atol=1e-5)
    # Passing last_dones that agree with the last step changes nothing.
    again, _ = rollout.compute_returns_and_advantages(
        last_values, last_dones=terminated[-1] | truncated[-1]
    )
    np.testing.assert_allclose(again, expected_advantages, rtol=1e-5, atol=1e-5)


def test_gae_special_cases_of_lambda():
    rng = np.random.default_rng(4)
    rewards, values = rng.normal(size=(5, 1)), rng.normal(size=(5, 1))
    last_values = rng.normal(size=1)
    results = {}
    for lam in (0.0, 1.0):
        rollout = RolloutBuffer(5, 1, (1,), gamma=0.9, gae_lambda=lam)
        for t in range(5):
            no = np.zeros(1, bool)
            rollout.add(np.zeros((1, 1)), np.zeros(1), rewards[t], no, no, values[t], np.zeros(1))
        results[lam] = rollout.compute_returns_and_advantages(last_values)[0].copy()
    next_values = np.concatenate([values[1:], last_values[None]])
    np.testing.assert_allclose(results[0.0], rewards + 0.9 * next_values - values, rtol=1e-5)
    discounted = [
        sum(0.9**k * rewards[t + k, 0] for k in range(5 - t)) + 0.9 ** (5 - t) * last_values[0]
        for t in range(5)
    ]
    np.testing.assert_allclose(results[1.0][:, 0], np.array(discounted) - values[:, 0], rtol=1e-5)


def filled_rollout(num_steps=6, num_envs=4, seed=0):
    rollout = RolloutBuffer(num_steps, num_envs, observation_shape=(1,), seed=seed)
    for t in range(num_steps):
        ids = t * num_envs + np.arange(num_envs)
        no = np.zeros(num_envs, bool)
        rollout.add(ids[:, None], ids, np.ones(num_envs), no, no, ids, -ids)
    rollout.compute_returns_and_advantages(np.zeros(num_envs))
    return rollout


def test_minibatches_cover_each_transition_once_per_epoch():
    rollout = filled_rollout()
    for _ in range(3):
        batches = list(rollout.minibatches(5))
        assert [len(batch["advantages"]) for batch in batches] == [5, 5, 5, 5, 4]
        ids = np.concatenate([batch["observations"][:, 0] for batch in batches])
        assert sorted(ids) == list(range(24))
        for batch in batches:  # the fields of a row belong to the same transition
            np.testing.assert_array_equal(batch["actions"], batch["observations"][:, 0])
            np.testing.assert_array_equal(batch["log_probs"], -batch["values"])
    first = [batch["actions"] for batch in rollout.minibatches(8, seed=3)]
    second = [batch["actions"] for batch in rollout.minibatches(8, seed=3)]
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(second))
    assert set(first[0]) != set(range(8))  # shuffled, not in storage order (seeded)


def test_rollout_reset():
    rollout = filled_rollout()
    rollout.reset()
    assert len(rollout) == 0 and not rollout.is_full and not rollout.truncated.any()
    with pytest.raises(ValueError, match="Received: has_advantages=False"):
        rollout.minibatches(4)


# ------------------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: ReplayBuffer(0, (4,)), "Received: capacity=0"),
        (lambda: ReplayBuffer(-3, (4,)), "Received: capacity=-3"),
        (lambda: ReplayBuffer(2.5, (4,)), "Received: capacity=2.5"),
        (lambda: ReplayBuffer(10, (4,), gamma=1.5), "Received: gamma=1.5"),
        (lambda: ReplayBuffer(10, (4,), gamma=-0.1), r"Received: gamma=-0\.1"),
        (lambda: ReplayBuffer(10, (4,), n_step=0), "Received: n_step=0"),
        (lambda: ReplayBuffer(10, (4,), num_envs=0), "Received: num_envs=0"),
        (lambda: ReplayBuffer(2, (4,), num_envs=3), "Received: num_envs=3, capacity=2"),
        (lambda: ReplayBuffer(10, "four"), "Received: observation_shape='four'"),
        (lambda: PrioritizedReplayBuffer(10, (4,), alpha=-1), "Received: alpha=-1"),
        (lambda: PrioritizedReplayBuffer(10, (4,), beta=1.2), r"Received: beta=1\.2"),
        (lambda: PrioritizedReplayBuffer(10, (4,), beta=-0.5), r"Received: beta=-0\.5"),
        (lambda: PrioritizedReplayBuffer(10, (4,), beta_final=2), "Received: beta_final=2"),
        (lambda: PrioritizedReplayBuffer(10, (4,), beta_steps=0), "Received: beta_steps=0"),
        (lambda: PrioritizedReplayBuffer(10, (4,), epsilon=0), "Received: epsilon=0"),
        (lambda: PrioritizedReplayBuffer(0, (4,)), "Received: capacity=0"),
        (lambda: RolloutBuffer(0, 2, (4,)), "Received: num_steps=0"),
        (lambda: RolloutBuffer(4, 0, (4,)), "Received: num_envs=0"),
        (lambda: RolloutBuffer(4, 2, (4,), gamma=2.0), r"Received: gamma=2\.0"),
        (lambda: RolloutBuffer(4, 2, (4,), gae_lambda=1.1), r"Received: gae_lambda=1\.1"),
        (lambda: RolloutBuffer(4, 2, (4,), gae_lambda=-1), "Received: gae_lambda=-1"),
        (lambda: SumTree(0), "Received: capacity=0"),
    ],
)
def test_bad_constructor_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_bad_add_and_sample_arguments():
    buffer = ReplayBuffer(10, (4,), seed=0)
    with pytest.raises(ValueError, match=r"Received: observation\.shape=\(3,\)"):
        buffer.add(np.zeros(3), 0, 0.0, np.zeros(3), False, False)
    with pytest.raises(ValueError, match=r"Received: next_observation\.shape=\(5,\)"):
        buffer.add(np.zeros(4), 0, 0.0, np.zeros(5), False, False)
    with pytest.raises(ValueError, match=r"Received: action\.shape=\(2,\)"):
        buffer.add(np.zeros(4), [0, 1], 0.0, np.zeros(4), False, False)
    with pytest.raises(ValueError, match=r"Received: reward\.shape=\(2,\)"):
        buffer.add(np.zeros(4), 0, [0.0, 1.0], np.zeros(4), False, False)
    vector_buffer = ReplayBuffer(10, (4,), num_envs=2)
    with pytest.raises(ValueError, match=r"Received: observation\.shape=\(4,\)"):
        vector_buffer.add(np.zeros(4), 0, 0.0, np.zeros(4), False, False)
    with pytest.raises(ValueError, match=r"Received: observation\.shape=\(3, 4\)"):
        vector_buffer.add(np.zeros((3, 4)), np.zeros(3), np.zeros(3), np.zeros((3, 4)), 0, 0)
    buffer.add(np.zeros(4), 0, 0.0, np.zeros(4), False, False)
    with pytest.raises(ValueError, match=r"Received: batch_size=2 with len\(buffer\)=1"):
        buffer.sample(2)
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        buffer.sample(0)
    with pytest.raises(ValueError, match="Received: batch_size=-1"):
        buffer.sample(-1)


def test_bad_prioritized_arguments():
    buffer = make_prioritized(np.ones(4))
    with pytest.raises(ValueError, match=r"Received: batch_size=5 with len\(buffer\)=4"):
        buffer.sample(5)
    with pytest.raises(ValueError, match=r"Received: beta=1\.5"):
        buffer.sample(2, beta=1.5)
    with pytest.raises(ValueError, match=r"Received: indices=\[0 4\]"):
        buffer.update_priorities(np.array([0, 4]), np.ones(2))
    with pytest.raises(ValueError, match=r"td_errors\.shape=\(3,\)"):
        buffer.update_priorities(np.array([0, 1]), np.ones(3))
    with pytest.raises(ValueError, match=r"Received: td_errors=\[nan\]"):
        buffer.update_priorities(np.array([0]), np.array([np.nan]))
    empty = PrioritizedReplayBuffer(4, (1,))
    with pytest.raises(ValueError, match=r"Received: batch_size=1 with len\(buffer\)=0"):
        empty.sample(1)


def test_bad_rollout_arguments():
    rollout = RolloutBuffer(2, 3, (4,))
    no = np.zeros(3, bool)
    with pytest.raises(ValueError, match=r"Received: observations\.shape=\(3, 5\)"):
        rollout.add(np.zeros((3, 5)), np.zeros(3), np.zeros(3), no, no, np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"Received: actions\.shape=\(2,\)"):
        rollout.add(np.zeros((3, 4)), np.zeros(2), np.zeros(3), no, no, np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"Received: values\.shape=\(4,\)"):
        rollout.add(np.zeros((3, 4)), np.zeros(3), np.zeros(3), no, no, np.zeros(4), np.zeros(3))
    with pytest.raises(ValueError, match="Received: 0 steps"):
        rollout.compute_returns_and_advantages(np.zeros(3))
    for _ in range(2):
        rollout.add(np.zeros((3, 4)), np.zeros(3), np.zeros(3), no, no, np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="Received: add number 3"):
        rollout.add(np.zeros((3, 4)), np.zeros(3), np.zeros(3), no, no, np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"Received: last_values\.shape=\(2,\)"):
        rollout.compute_returns_and_advantages(np.zeros(2))
    rollout.compute_returns_and_advantages(np.zeros(3))
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        rollout.minibatches(0)


def test_truncate_episodes_stops_n_step_returns_at_a_reset():
    buffer = ReplayBuffer(10, observation_shape=(1,), n_step=3, gamma=0.5, seed=0)
    for step in range(2):  # two steps of an episode that a reset then interrupts
        buffer.add(np.array([step]), 0, 1.0, np.array([step + 1]), False, False)
    assert len(buffer) == 0
    buffer.truncate_episodes()
    buffer.add(np.array([10]), 0, 4.0, np.array([11]), False, False)  # the new episode
    # Both interrupted steps are emitted without the new episode's reward, bootstrapping
    # from the last stored next observation.
    assert len(buffer) == 1
    assert buffer.rewards[0] == pytest.approx(1.0 + 0.5 * 1.0)
    assert buffer.discounts[0] == pytest.approx(0.25)
    assert buffer.next_observations[0, 0] == 2.0
    assert buffer.dones[0] == 0.0


@pytest.mark.parametrize("buffer_class", [ReplayBuffer, PrioritizedReplayBuffer])
def test_state_and_restore_continue_sampling(buffer_class):
    buffer = buffer_class(16, (2,), num_envs=2, n_step=3, seed=5)
    for step in range(7):
        buffer.add(
            np.full((2, 2), step),
            np.array([0, 1]),
            np.ones(2),
            np.full((2, 2), step + 1),
            np.array([False, step == 3]),
            np.zeros(2, bool),
        )
    buffer.sample(4)
    copy = buffer_class(16, (2,), num_envs=2, n_step=3, seed=99)
    copy.restore(buffer.state())
    assert "rng_state" in buffer.state()
    expected, restored = buffer.sample(4), copy.sample(4)
    for key in expected:
        np.testing.assert_array_equal(restored[key], expected[key])


def test_rollout_state_and_restore_continue_shuffling():
    rollout = RolloutBuffer(num_steps=4, num_envs=2, observation_shape=(3,), seed=1)
    for step in range(4):
        rollout.add(
            np.full((2, 3), step), np.zeros(2), np.ones(2), np.zeros(2, bool),
            np.zeros(2, bool), values=np.zeros(2), log_probs=np.zeros(2),
        )  # fmt: skip
    rollout.compute_returns_and_advantages(np.zeros(2))
    copy = RolloutBuffer(num_steps=4, num_envs=2, observation_shape=(3,), seed=2)
    copy.restore(rollout.state())
    for expected, restored in zip(rollout.minibatches(3), copy.minibatches(3)):
        for key in expected:
            np.testing.assert_array_equal(restored[key], expected[key])
