"""The deep-RL recipes solve their tasks with their default settings, on every backend.

Each gate runs a recipe's ``main`` with its defaults (and one seed): the CartPole recipes must
reach an evaluation mean of 475 (the environment's registered threshold) within their
``total_timesteps``, where ``stop_at_solved`` ends a passing run; PPO and TRPO must bring
Pendulum's final evaluation to at least ``PENDULUM_BAR`` within their recipes' budgets. Every
DQN variant (``dqn_cartpole.VARIANTS``) solves on one backend, rotated so that each backend
carries some; the default configuration solves on all three. The seeds were chosen by
measurement over several seeds each (docs/pages/recipes.md lists the steps to solve per seed
and backend).
"""

import keras
import pytest

from dlkit.recipes import (
    a2c_cartpole,
    a3c_cartpole,
    dqn_cartpole,
    ppo_pendulum,
    reinforce_cartpole,
    trpo_cartpole,
    trpo_pendulum,
)

pytestmark = pytest.mark.slow

# The mean return Pendulum's final evaluation must reach (a random policy: about -1,200).
PENDULUM_BAR = -250.0
# The seed of every gate.
SEED = 0
# The backend each DQN variant is held on; the default runs on every backend.
VARIANT_BACKENDS = {
    "plain": "jax",
    "double": "tensorflow",
    "n_step": "torch",
    "prioritized": "jax",
    "dueling": "torch",
    "noisy": "jax",
    "c51": "torch",
}


def run_recipe(module, tmp_path, **overrides):
    """Runs `module` with its defaults but for `overrides`, silently and without export."""
    settings = {"seed": SEED, "export": "none", "verbose": 0, **overrides}
    config = module.Config(**settings, output_dir=str(tmp_path))
    return config, module.main(config)


def assert_solved(config, results):
    assert results["solve_threshold"] == 475.0
    solved_at = results["solved_at_timesteps"]
    assert solved_at is not None, results["evaluations"]
    assert solved_at <= config.total_timesteps
    assert results["stopped_when_solved"] and results["timesteps"] == solved_at


def test_variant_table_covers_every_variant_and_rotates_over_the_backends():
    assert set(VARIANT_BACKENDS) == set(dqn_cartpole.VARIANTS) - {"default"}
    assert set(VARIANT_BACKENDS.values()) == {"tensorflow", "jax", "torch"}


def test_dqn_default_solves_cartpole(tmp_path):
    assert_solved(*run_recipe(dqn_cartpole, tmp_path))


@pytest.mark.parametrize("variant", sorted(VARIANT_BACKENDS))
def test_dqn_variant_solves_cartpole(variant, tmp_path):
    backend = VARIANT_BACKENDS[variant]
    if keras.backend.backend() != backend:
        pytest.skip(f"the {variant} variant is held on the {backend} backend")
    assert_solved(*run_recipe(dqn_cartpole, tmp_path, variant=variant))


@pytest.mark.parametrize(
    "module",
    [reinforce_cartpole, a2c_cartpole, trpo_cartpole],
    ids=lambda m: m.__name__,
)
def test_policy_gradient_solves_cartpole(module, tmp_path):
    assert_solved(*run_recipe(module, tmp_path))


@pytest.mark.parametrize("module", [ppo_pendulum, trpo_pendulum], ids=lambda m: m.__name__)
def test_gaussian_policy_balances_the_pendulum(module, tmp_path):
    config, results = run_recipe(module, tmp_path)
    assert results["timesteps"] >= config.total_timesteps
    assert results["eval_mean_return"] >= PENDULUM_BAR, results["evaluations"]


def test_a3c_solves_cartpole_in_one_of_two_runs(tmp_path):
    """A3C's worker threads interleave as the scheduler runs them, so a seed fixes the initial
    weights and the random streams but not the run: measured, 13 of 15 default runs solved
    within the budget (benchmarks/results/rl_policy_gradients_a3c.json), and a run of the
    suite under load can land among the others. The gate asks one of two seeded runs to solve;
    a broken A3C fails both."""
    failures = []
    for seed in (SEED, SEED + 1):
        config, results = run_recipe(a3c_cartpole, tmp_path / f"seed{seed}", seed=seed)
        if results["solved_at_timesteps"] is not None:
            assert_solved(config, results)
            return
        failures.append(results["evaluations"])
    pytest.fail(f"a3c_cartpole solved in neither of two runs: {failures}")
