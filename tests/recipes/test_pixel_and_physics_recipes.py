"""The Atari and MuJoCo recipes: tiny runs on the real simulators, resumed, exported."""

import json
import re

import keras
import numpy as np
import pytest

from dlkit.export import verify

pytest.importorskip("ale_py", reason="needs the atari extra (ale-py)")
pytest.importorskip("mujoco", reason="needs the mujoco extra (gymnasium[mujoco])")

from dlkit.recipes import _deep_rl, dqn_atari, ppo_atari, ppo_mujoco
from dlkit.rl import DQN, PPO

# Tiny settings per recipe: iterations end on multiples of 64 steps, so that the runs stop
# exactly at 128 and 256 steps; Atari games are cut at 40 agent steps.
TINY = {
    "dqn_atari": (
        dqn_atari,
        {
            "learning_starts": 32,
            "buffer_size": 512,
            "batch_size": 8,
            "target_update_interval": 8,
            "max_episode_steps": 40,
        },
    ),
    "ppo_atari": (
        ppo_atari,
        {"num_envs": 2, "n_steps": 32, "batch_size": 32, "epochs": 1, "max_episode_steps": 40},
    ),
    "ppo_mujoco": (
        ppo_mujoco,
        {"n_steps": 64, "batch_size": 32, "epochs": 1, "hidden_units": (16,)},
    ),
}
COMMON = {"eval_interval": 128, "eval_episodes": 1, "checkpoint_interval": 128, "verbose": 0}


def tiny_config(name, output_dir, **overrides):
    module, settings = TINY[name]
    return module.Config(
        **{**settings, **COMMON, "export": "none", **overrides}, output_dir=str(output_dir)
    )


# The recipes whose second tiny run exports its policy (PPO on frames exports as DQN does).
EXPORTED = ("dqn_atari", "ppo_mujoco")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_run_on_the_simulator_resumes_exports_and_reports_the_saved_agents_score(
    name, tmp_path
):
    module = TINY[name][0]
    first = module.main(tiny_config(name, tmp_path, total_timesteps=128))
    assert (first["timesteps"], first["resumed_from_timesteps"]) == (128, 0)
    export = "saved_model" if name in EXPORTED else "none"
    config = tiny_config(name, tmp_path, total_timesteps=256, export=export)
    second = module.main(config)
    assert (second["resumed_from_timesteps"], second["timesteps"]) == (128, 256)
    assert [t for t, _ in second["evaluations"]] == [128, 256]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["backend"] == keras.backend.backend()
    assert metrics["config"]["env_id"] == module.Config().env_id

    agent = keras.saving.load_model(tmp_path / "agent.keras")
    eval_env = config.make_env(config.eval_episodes)
    observations, _ = eval_env.reset(seed=0)
    if name == "ppo_mujoco":
        assert observations.shape == (1, 17) and isinstance(agent, PPO) and not agent.discrete
        # The normalisation statistics came with the agent: 256 observations, 17 features.
        layer = agent.observation_normalization
        assert layer is not None
        assert np.all(np.abs(keras.ops.convert_to_numpy(layer.mean)) > 0)
    else:
        assert observations.shape == (1, 4, 84, 84) and observations.dtype == np.uint8
        assert isinstance(agent, DQN if name == "dqn_atari" else PPO)
        assert agent.policy_model().input.dtype == "uint8"
        # Whole games cut at 40 steps, not lives: each copy finished some, none was longer.
        with np.load(tmp_path / "checkpoint.npz") as state:
            lengths = state["episode_lengths"]
        assert len(lengths) >= config.num_envs and len(lengths) == second["episodes"]
        assert lengths.max() == 40
    # The reported final evaluation is the saved agent's: the same episodes give the same score.
    replayed = agent.evaluate(eval_env, config.eval_episodes, seed=config.seed)
    assert replayed == pytest.approx(second["eval_mean_return"], rel=1e-5)

    if name in EXPORTED:
        # The export takes raw observations (uint8 frames; unnormalised vectors).
        assert second["export_parity_observations"] == _deep_rl.PARITY_STEPS
        assert second["export_max_difference"] <= 1e-4
        raw = _deep_rl.policy_observations(agent, config.make_env(2), steps=4, seed=5)
        if name == "dqn_atari":
            assert raw.dtype == np.uint8
        else:
            assert np.abs(raw).max() > 1.0  # standardised inputs would be mostly below 1
        expected = agent.act(raw, explore=False)
        assert verify(tmp_path / "policy_export", raw, expected, atol=1e-4) <= 1e-4


@pytest.mark.parametrize(
    "module, field, value",
    [
        (dqn_atari, "env_id", "ALE/NoSuchGame-v5"),
        (ppo_atari, "engine", "sdl"),
        (ppo_atari, "max_episode_steps", 0),
        (ppo_mujoco, "activation", "gelu"),
        (ppo_mujoco, "engine", "brax"),
    ],
)
def test_bad_config_values_are_rejected(module, field, value):
    with pytest.raises(ValueError, match=re.escape(f"{field}={value!r}")):
        module.Config(**{field: value})


def test_defaults_are_the_zoo_settings():
    dqn = dqn_atari.Config()
    # The zoo copies the target every 1,000 environment steps: 250 gradient steps of DQN.
    assert dqn.target_update_interval * dqn.train_frequency == dqn_atari.ZOO_TARGET_UPDATE_STEPS
    assert (dqn.learning_rate, dqn.batch_size, dqn.buffer_size) == (1e-4, 32, 100_000)
    ppo = ppo_atari.Config()
    assert (ppo.num_envs, ppo.n_steps, ppo.epochs, ppo.batch_size) == (8, 128, 4, 256)
    assert ppo.anneal and ppo.hidden_units == () and ppo.env_id == "ALE/Breakout-v5"
    cheetah = ppo_mujoco.Config()
    assert cheetah.normalize_observations and cheetah.normalize_rewards
    assert (cheetah.n_steps, cheetah.epochs, cheetah.gamma) == (512, 20, 0.98)
