"""Tests of dlkit.rl.TRPO: the trust region, the line search, the critic, resume, learning."""

import gymnasium as gym
import keras
import numpy as np
import pytest
from test_agent_loop import (
    Snapshot,
    assert_restored,
    check_checkpoint_file,
    learn_until_crash,
    snapshot,
)

from dlkit.rl import TRPO, TRPOConfig, make_vector_env

DISCRETE = dict(env_id="CartPole-v1", n_steps=128)
GAUSSIAN = dict(env_id="Pendulum-v1", n_steps=128)


def make_agent(env_id, **kwargs):
    # One critic pass per rollout: a single compiled critic step on JAX keeps the tests short.
    kwargs.setdefault("critic_epochs", 1)
    keras.utils.set_random_seed(0)
    env = make_vector_env(env_id, num_envs=2)
    return TRPO.from_env(env, hidden_units=(16,), seed=0, **kwargs), env


def policy_weights(agent):
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in agent._policy_variables()]


def numpy_kl(agent, batch, old_outputs, old_log_std):
    """mean KL(π_new ‖ π_old) in float64 NumPy, from the actor's outputs after the step."""
    new_outputs = np.asarray(agent._compiled(agent.actor)(batch), np.float64)
    old_outputs = np.asarray(old_outputs, np.float64)
    if agent.discrete:

        def log_softmax(x):
            x = x - x.max(axis=-1, keepdims=True)
            return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))

        log_p, log_q = log_softmax(new_outputs), log_softmax(old_outputs)
        return float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)))
    log_std = np.asarray(keras.ops.convert_to_numpy(agent.log_std.value), np.float64)
    per_dimension = (
        old_log_std
        - log_std
        + (np.exp(2 * log_std) + (new_outputs - old_outputs) ** 2) / (2 * np.exp(2 * old_log_std))
        - 0.5
    )
    return float(np.mean(per_dimension.sum(axis=-1)))


class StepAudit(keras.callbacks.Callback):
    """Before each iteration: the policy's outputs on a fixed batch; after it, the KL between
    the policies before and after the iteration's step, measured from scratch."""

    def __init__(self, batch):
        super().__init__()
        self.batch = batch
        self.steps = []

    def on_epoch_begin(self, epoch, logs=None):
        agent = self.model
        if self.batch is None:
            return
        self.old_outputs = agent._compiled(agent.actor)(self.batch)
        self.old_log_std = (
            None
            if agent.log_std is None
            else np.asarray(keras.ops.convert_to_numpy(agent.log_std.value), np.float64)
        )
        self.old_weights = policy_weights(agent)

    def on_epoch_end(self, epoch, logs=None):
        agent = self.model
        step = dict(agent.last_policy_step)
        step["measured_kl"] = numpy_kl(agent, self.batch, self.old_outputs, self.old_log_std)
        step["moved"] = any(
            not np.array_equal(a, b) for a, b in zip(self.old_weights, policy_weights(agent))
        )
        self.steps.append(step)


@pytest.mark.parametrize("setting", [DISCRETE, GAUSSIAN], ids=["discrete", "gaussian"])
def test_every_accepted_step_stays_inside_the_trust_region(setting):
    settings = dict(setting)
    agent, env = make_agent(settings.pop("env_id"), max_kl=0.005, **settings)
    # The KL is measured on the states of each step's own rollout, as the constraint reads.
    audit = StepAudit(None)
    audit.set_model(agent)
    policy_step = agent._policy_step

    def audited(observations, *rest):
        audit.batch = observations
        audit.on_epoch_begin(0)
        return policy_step(observations, *rest)

    agent._policy_step = audited
    agent.learn(env, 6 * 2 * settings["n_steps"], callbacks=[audit], verbose=0)
    steps = audit.steps
    assert len(steps) == 6
    accepted = [step for step in steps if step["accepted"]]
    assert len(accepted) >= 4  # the line search usually succeeds
    for step in steps:
        # The critic's Adam steps never move the policy: it moved iff the step was accepted.
        assert step["moved"] == step["accepted"]
        if step["accepted"]:
            assert step["measured_kl"] <= agent.max_kl * (1 + 1e-4)
            assert step["measured_kl"] == pytest.approx(step["kl"], rel=1e-3, abs=1e-7)
            assert step["surrogate_gain"] > 0
        else:
            assert step["measured_kl"] == 0.0
    # The steps use the trust region rather than crawling: the largest reaches half of δ.
    assert max(step["measured_kl"] for step in accepted) > 0.5 * agent.max_kl


def test_zero_advantages_reject_the_step_and_leave_the_policy_unchanged():
    agent, env = make_agent("CartPole-v1", n_steps=64)
    agent.learn(env, 128, verbose=0)
    before = policy_weights(agent)
    batch = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    actions = np.random.default_rng(1).integers(0, 2, 64)
    log_probs = np.log(np.full(64, 0.5, "float32"))
    result = agent._policy_step(batch, actions, log_probs, np.zeros(64, "float32"))
    assert not result["accepted"] and result["trials"] == agent.line_search_iterations
    for old, new in zip(before, policy_weights(agent)):
        np.testing.assert_array_equal(old, new)


class KLBlind(TRPO):
    """A TRPO whose every line-search trial sees a KL far beyond δ."""

    def _surrogate_and_kl(self, *batch):
        surrogate, kl = super()._surrogate_and_kl(*batch)
        return surrogate, kl + 1.0


def test_a_line_search_that_finds_no_step_restores_the_policy_exactly():
    keras.utils.set_random_seed(0)
    env = make_vector_env("Pendulum-v1", num_envs=2)
    agent = KLBlind.from_env(
        env, hidden_units=(16,), n_steps=64, line_search_iterations=3, critic_epochs=1, seed=0
    )
    before = policy_weights(agent)
    audit = StepAudit(np.zeros((1, 3), "float32"))
    agent.learn(env, 256, callbacks=[audit], verbose=0)
    assert [step["trials"] for step in audit.steps] == [3, 3]
    assert not any(step["accepted"] or step["moved"] for step in audit.steps)
    for old, new in zip(before, policy_weights(agent)):
        np.testing.assert_array_equal(old, new)
    # The critic learned meanwhile.
    assert agent.num_updates > 0


def test_conjugate_gradient_solves_the_damped_fisher_system():
    # On the step's batch, β s solves (F + λI) s = g: F (β s) + λ β s = β g.
    agent, env = make_agent("CartPole-v1", n_steps=64, cg_iterations=40)
    agent.learn(env, 128, verbose=0)
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(128, 4)).astype("float32")
    actions = rng.integers(0, 2, 128)
    old_outputs = agent._compiled(agent.actor)(batch)
    shifted = old_outputs - old_outputs.max(axis=-1, keepdims=True)
    log_probs = (shifted - np.log(np.exp(shifted).sum(-1, keepdims=True)))[np.arange(128), actions]
    advantages = rng.normal(size=128).astype("float32")
    inputs = (batch, actions, log_probs.astype("float32"), advantages, old_outputs, np.zeros(1))
    direction, _ = agent._compiled_policy_functions()
    _, step, _ = (keras.ops.convert_to_numpy(value) for value in direction(*inputs))

    from dlkit.training import hessian_vector_product, value_and_grad

    variables = agent._policy_variables()
    _, gradients, _ = value_and_grad(lambda: agent._surrogate_and_kl(*inputs)[0], variables)
    g = np.concatenate([np.ravel(keras.ops.convert_to_numpy(x)) for x in gradients])
    product = keras.ops.convert_to_numpy(
        hessian_vector_product(lambda: agent._surrogate_and_kl(*inputs)[1], variables, step)
    )
    damped = product + agent.cg_damping * step
    beta = float(np.dot(damped, g) / np.dot(g, g))
    assert beta > 0
    np.testing.assert_allclose(damped, beta * g, atol=2e-3 * np.abs(beta * g).max())
    # β is the largest step of the quadratic KL model: ½ sᵀ(F + λI)s = δ.
    assert 0.5 * np.dot(step, damped) == pytest.approx(agent.max_kl, rel=1e-3)


def test_trpo_resumes_its_checkpoint_exactly(tmp_path):
    env = gym.make("CartPole-v1")

    def build():
        keras.utils.set_random_seed(0)
        return TRPO.from_env(
            env, hidden_units=(8,), n_steps=50, batch_size=25, critic_epochs=2, seed=0
        )

    first = build()
    learn_until_crash(first, env, 400, 200, tmp_path, 100)
    recorded = snapshot(first)
    check_checkpoint_file(tmp_path / "checkpoint.npz", recorded, "TRPO")
    second = build()
    spy = Snapshot()
    second.learn(env, 400, callbacks=[spy], checkpoint_dir=tmp_path, verbose=0)
    assert_restored(spy.state, recorded, num_envs=1)
    assert second.num_timesteps == 400


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_keras_round_trip(env_id, tmp_path):
    agent, env = make_agent(env_id, n_steps=64, max_kl=0.02, cg_damping=0.05)
    agent.learn(env, 128, verbose=0)
    path = str(tmp_path / "trpo.keras")
    agent.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, TRPO) and loaded.config == agent.config
    batch = np.random.default_rng(0).normal(size=(16, *agent._observation_shape)).astype("f4")
    np.testing.assert_allclose(loaded.act(batch), agent.act(batch), atol=1e-6)
    np.testing.assert_allclose(loaded.value(batch), agent.value(batch), atol=1e-6)
    policy = agent.policy_model()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(policy(batch)), agent.act(batch), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "argument, value",
    [("max_kl", 0.0), ("max_kl", -0.01), ("cg_iterations", 0), ("cg_damping", -0.1),
     ("line_search_shrink", 1.0), ("line_search_iterations", 0), ("critic_epochs", 0)],
)  # fmt: skip
def test_rejects_bad_hyperparameters(argument, value):
    with pytest.raises(ValueError, match=rf"`{argument}`.*Received: {argument}={value}"):
        TRPOConfig(**{argument: value})
