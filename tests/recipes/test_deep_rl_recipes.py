import json
import re

import keras
import numpy as np
import pytest

from dlkit.config import parse_overrides
from dlkit.export import verify
from dlkit.recipes import (
    _deep_rl,
    a2c_cartpole,
    a3c_cartpole,
    dqn_cartpole,
    ppo_cartpole,
    ppo_pendulum,
    reinforce_cartpole,
    trpo_cartpole,
    trpo_pendulum,
)
from dlkit.rl import DQN, PPO, TRPO, make_vector_env

# Tiny settings per recipe: every iteration ends on a multiple of 50 steps where it can, so that
# the runs stop exactly at 200 and 400 steps.
TINY = {
    "dqn_cartpole": (
        dqn_cartpole,
        {
            "hidden_units": (16,),
            "learning_starts": 50,
            "train_frequency": 25,
            "gradient_steps": 2,
            "batch_size": 16,
            "target_update_interval": 4,
            "stop_at_solved": False,
        },
    ),
    "reinforce_cartpole": (
        reinforce_cartpole,
        {"num_envs": 2, "hidden_units": (16,), "episodes_per_update": 4, "stop_at_solved": False},
    ),
    "a2c_cartpole": (
        a2c_cartpole,
        {"num_envs": 2, "n_steps": 25, "hidden_units": (16,), "stop_at_solved": False},
    ),
    "a3c_cartpole": (
        a3c_cartpole,
        {
            "num_envs": 2,
            "num_workers": 2,
            "n_steps": 25,
            "hidden_units": (16,),
            "stop_at_solved": False,
        },
    ),
    "ppo_cartpole": (
        ppo_cartpole,
        {
            "num_envs": 2,
            "n_steps": 25,
            "batch_size": 25,
            "epochs": 2,
            "hidden_units": (16,),
            "stop_at_solved": False,
        },
    ),
    "ppo_pendulum": (  # one copy: its 200-step episodes end at 200 and 400 steps
        ppo_pendulum,
        {"num_envs": 1, "n_steps": 50, "batch_size": 25, "epochs": 2, "hidden_units": (16,)},
    ),
    "trpo_cartpole": (
        trpo_cartpole,
        {
            "num_envs": 2,
            "n_steps": 25,
            "batch_size": 50,
            "critic_epochs": 2,
            "hidden_units": (16,),
            "stop_at_solved": False,
        },
    ),
    "trpo_pendulum": (  # one copy: its 200-step episodes end at 200 and 400 steps
        trpo_pendulum,
        {"num_envs": 1, "n_steps": 50, "batch_size": 50, "critic_epochs": 2, "hidden_units": (16,)},
    ),
}
# The recipes of Gaussian policies on Pendulum-v1, which has no registered threshold.
PENDULUM = ("ppo_pendulum", "trpo_pendulum")
COMMON = {"eval_interval": 100, "eval_episodes": 2, "checkpoint_interval": 100, "verbose": 0}
ARTEFACTS = ("agent.keras", "returns.png", "evaluations.png", "metrics.json", "checkpoint.npz")


def tiny_config(name, output_dir, **overrides):
    module, settings = TINY[name]
    return module.Config(
        **{**settings, **COMMON, "export": "none", **overrides}, output_dir=str(output_dir)
    )


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_run_writes_every_artefact_and_a_second_run_resumes(name, tmp_path):
    module = TINY[name][0]
    first = module.main(tiny_config(name, tmp_path, total_timesteps=200))
    assert (first["timesteps"], first["resumed_from_timesteps"]) == (200, 0)
    for artefact in ARTEFACTS:
        assert (tmp_path / artefact).stat().st_size > 0
    assert not (tmp_path / "policy_export").exists()  # export="none"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["backend"] == keras.backend.backend()
    assert isinstance(metrics["eval_mean_return"], float)
    assert isinstance(metrics["train_seconds"], float) and metrics["train_seconds"] > 0
    assert metrics["steps_per_second"] > 0 and metrics["episodes"] >= 1
    assert metrics["config"]["total_timesteps"] == 200
    if name in PENDULUM:  # no registered threshold
        assert metrics["solve_threshold"] is None and metrics["solved_at_timesteps"] is None
    else:
        assert metrics["solve_threshold"] == 475.0
    first_evaluations = [t for t, _ in metrics["evaluations"]]
    assert first_evaluations and first_evaluations[-1] <= 200

    second = module.main(tiny_config(name, tmp_path, total_timesteps=400))
    assert (second["resumed_from_timesteps"], second["timesteps"]) == (200, 400)
    assert second["episodes"] > first["episodes"]
    # The evaluations of the first run are kept, and the second run adds its own.
    evaluations = [t for t, _ in second["evaluations"]]
    assert evaluations[: len(first_evaluations)] == first_evaluations
    assert len(evaluations) > len(first_evaluations) and evaluations[-1] <= 400
    assert _deep_rl.checkpoint_counters(tmp_path / "checkpoint.npz")["num_timesteps"] == 400

    agent = keras.saving.load_model(tmp_path / "agent.keras")
    # The reported final evaluation is the saved agent's: the same episodes give the same mean.
    config = tiny_config(name, tmp_path, total_timesteps=400)
    eval_env = make_vector_env(config.env_id, config.eval_episodes)
    replayed = agent.evaluate(eval_env, config.eval_episodes, seed=config.seed)
    assert replayed == pytest.approx(second["eval_mean_return"], rel=1e-5)
    observations = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 3 if name in PENDULUM else 4))
    actions = agent.act(observations.astype("float32"))
    if name in PENDULUM:
        assert actions.shape == (8, 1) and np.all(np.abs(actions) <= 2.0)
    else:
        assert actions.shape == (8,) and set(actions.tolist()) <= {0, 1}


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    make_vector_env = _deep_rl.make_vector_env

    def interrupted_after_60_steps(env_id, num_envs, **options):
        env = make_vector_env(env_id, num_envs, **options)
        if num_envs == 2:  # the training copies, not the evaluation's
            step, calls = env.step, []

            def step_then_interrupt(actions):
                calls.append(1)
                if len(calls) > 60:  # 120 timesteps: after the checkpoint at 100
                    raise KeyboardInterrupt
                return step(actions)

            env.step = step_then_interrupt
        return env

    monkeypatch.setattr(_deep_rl, "make_vector_env", interrupted_after_60_steps)
    config = tiny_config("a2c_cartpole", tmp_path, total_timesteps=200, eval_episodes=3)
    with pytest.raises(KeyboardInterrupt):
        a2c_cartpole.main(config)
    assert _deep_rl.checkpoint_counters(tmp_path / "checkpoint.npz")["num_timesteps"] == 100
    assert not (tmp_path / "metrics.json").exists()

    monkeypatch.setattr(_deep_rl, "make_vector_env", make_vector_env)
    results = a2c_cartpole.main(config)
    assert (results["resumed_from_timesteps"], results["timesteps"]) == (100, 200)
    assert [t for t, _ in results["evaluations"]] == [100, 200]


def test_a_run_of_the_checkpoint_length_trains_no_further(tmp_path):
    first = a2c_cartpole.main(tiny_config("a2c_cartpole", tmp_path, total_timesteps=200))
    again = a2c_cartpole.main(tiny_config("a2c_cartpole", tmp_path, total_timesteps=200))
    assert (again["resumed_from_timesteps"], again["timesteps"]) == (200, 200)
    assert again["episodes"] == first["episodes"]
    assert again["evaluations"] == first["evaluations"]


def test_stop_at_solved_ends_the_run_at_the_first_evaluation_reaching_the_threshold(
    tmp_path, monkeypatch
):
    # Any CartPole episode returns at least 8, so a threshold of 1 is met by the first evaluation.
    monkeypatch.setattr(_deep_rl, "solve_threshold", lambda env_id: 1.0)
    config = tiny_config("ppo_cartpole", tmp_path, total_timesteps=1_000, stop_at_solved=True)
    results = ppo_cartpole.main(config)
    assert results["stopped_when_solved"] is True
    assert results["timesteps"] == results["solved_at_timesteps"] == 100
    assert [t for t, _ in results["evaluations"]] == [100]


def test_dqn_flags_reach_the_agent(tmp_path):
    flags = {"double": True, "prioritized": True, "noisy": True, "c51": True, "n_step": 3}
    config = tiny_config("dqn_cartpole", tmp_path, total_timesteps=100, num_atoms=11, **flags)
    results = dqn_cartpole.main(config)
    assert results["timesteps"] == 100
    agent = keras.saving.load_model(tmp_path / "agent.keras")
    assert isinstance(agent, DQN)
    assert (agent.double, agent.prioritized, agent.noisy, agent.distributional) == (True,) * 4
    assert agent.n_step == 3 and agent.q_network.output.shape == (None, 2, 11)
    assert agent.epsilon == 0.0  # noisy layers explore instead


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, agent_class", [("ppo_pendulum", PPO), ("trpo_pendulum", TRPO)], ids=["ppo", "trpo"]
)
def test_exported_pendulum_policy_acts_as_the_agent(name, agent_class, tmp_path):
    module = TINY[name][0]
    config = tiny_config(name, tmp_path, total_timesteps=100, export="saved_model")
    results = module.main(config)
    assert (tmp_path / "policy_export" / "saved_model.pb").is_file()
    assert results["files"]["policy_export"] == str(tmp_path / "policy_export")
    assert results["export_parity_observations"] == 16 * 2
    assert 0.0 <= results["export_max_difference"] <= 1e-4
    # Independently: the saved agent's deterministic torques on fresh observations.
    agent = keras.saving.load_model(tmp_path / "agent.keras")
    assert isinstance(agent, agent_class) and not agent.discrete
    rng = np.random.default_rng(1)
    angles = rng.uniform(-np.pi, np.pi, 32)
    observations = np.stack([np.cos(angles), np.sin(angles), rng.uniform(-8, 8, 32)], axis=1)
    observations = observations.astype("float32")
    expected = agent.act(observations, explore=False)
    assert verify(tmp_path / "policy_export", observations, expected, atol=1e-4) <= 1e-4


def test_a_dqn_variant_sets_the_fields_left_at_their_defaults():
    plain = dqn_cartpole.Config(variant="plain")
    assert (plain.double, plain.n_step, plain.hidden_units) == (False, 1, (256, 256))
    assert dqn_cartpole.Config(variant="noisy").total_timesteps == 100_000
    # A field given another value than its default wins over the variant's.
    config = parse_overrides(dqn_cartpole.Config, ["--variant", "plain", "--n_step", "5"])
    assert (config.double, config.n_step, config.variant) == (False, 5, "plain")
    for name, fields in dqn_cartpole.VARIANTS.items():
        config = dqn_cartpole.Config(variant=name)
        assert {field: getattr(config, field) for field in fields} == fields


def test_overrides_from_the_command_line_fill_the_config():
    config = parse_overrides(
        dqn_cartpole.Config, ["--hidden_units", "32,32", "--c51", "true", "--export", "onnx"]
    )
    assert config.hidden_units == (32, 32) and config.c51 is True and config.export == "onnx"
    assert ppo_cartpole.Config().output_dir == "runs/ppo_cartpole"


@pytest.mark.parametrize(
    "module, field, value",
    [
        (ppo_cartpole, "total_timesteps", 0),
        (a2c_cartpole, "num_envs", 0),
        (reinforce_cartpole, "export", "tflite"),
        (ppo_pendulum, "env_id", "NoSuchEnv-v0"),
        (ppo_cartpole, "gae_lambda", 1.5),
        (a2c_cartpole, "hidden_units", ()),
        (a3c_cartpole, "num_workers", 0),
        (a3c_cartpole, "num_envs", 3),
        (reinforce_cartpole, "episodes_per_update", 0),
        (dqn_cartpole, "loss", "l1"),
        (dqn_cartpole, "exploration_final_epsilon", -0.1),
        (dqn_cartpole, "eval_episodes", 0),
        (dqn_cartpole, "variant", "rainbow"),
        (trpo_cartpole, "max_kl", 0.0),
        (trpo_pendulum, "cg_iterations", 0),
    ],
)
def test_bad_config_values_are_rejected(module, field, value):
    with pytest.raises(ValueError, match=re.escape(f"{field}={value!r}")):
        module.Config(**{field: value})


def test_dueling_and_c51_together_are_rejected():
    with pytest.raises(ValueError, match=r"dueling=True, c51=True"):
        dqn_cartpole.Config(dueling=True, c51=True)


def test_recipe_configs_extend_the_agent_configs_and_keep_every_field_doc():
    from dlkit.config import config_fields, format_help
    from dlkit.rl import (
        A2CConfig,
        A3CConfig,
        DQNConfig,
        PPOConfig,
        REINFORCEConfig,
        TRPOConfig,
    )

    for module, agent_config in [
        (dqn_cartpole, DQNConfig),
        (reinforce_cartpole, REINFORCEConfig),
        (a2c_cartpole, A2CConfig),
        (a3c_cartpole, A3CConfig),
        (ppo_cartpole, PPOConfig),
        (ppo_pendulum, PPOConfig),
        (trpo_cartpole, TRPOConfig),
        (trpo_pendulum, TRPOConfig),
    ]:
        assert issubclass(module.Config, agent_config)
        assert issubclass(module.Config, _deep_rl.RunConfig)
        undocumented = [info.name for info in config_fields(module.Config) if not info.doc]
        assert not undocumented, (module.__name__, undocumented)
    assert issubclass(ppo_pendulum.Config, ppo_cartpole.Config)
    pendulum = ppo_pendulum.Config()
    assert (pendulum.env_id, pendulum.gamma, pendulum.gae_lambda) == ("Pendulum-v1", 0.9, 0.95)
    text = format_help("ppo_cartpole", "PPO.", ppo_cartpole.Config)
    assert "--gamma FLOAT  (default: 0.99)" in text and "The discount factor γ" in text
    assert "--n_steps INT  (default: 32)" in text and "Steps per copy per rollout." in text
    assert "--env_id STR  (default: 'CartPole-v1')" in text


def test_agents_take_the_recipe_config_itself():
    import gymnasium as gym

    config = ppo_cartpole.Config(n_steps=16, gamma=0.95, seed=3)
    agent = PPO.from_env(gym.make("CartPole-v1"), (8,), config=config)
    assert (agent.n_steps, agent.gamma, agent.seed, agent.anneal) == (16, 0.95, 3, True)
    assert not hasattr(agent.config, "env_id")
