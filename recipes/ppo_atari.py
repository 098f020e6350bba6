"""Play an Atari game from its pixels with PPO: one convolutional torso for actor and critic.

PPO [notes §9.2.3] on stacked frames of the Arcade Learning Environment
(`dlkit.rl.make_atari_env`: the last 4 grayscale 84×84 frames, 4 emulator frames per action,
no-ops after a reset, sticky actions, a lost life ends the learning episode, rewards clipped to
their sign for learning). Actor and critic share one Nature-DQN torso (`dlkit.rl.nature_cnn`,
on the raw uint8 frames), as the PPO baselines on Atari do: its gradient sums the policy, value
and entropy terms. The defaults are rl-baselines3-zoo's Atari PPO settings (8 copies × 128
steps, 4 epochs of 256-transition minibatches, Adam 2.5e-4 and a clip range of 0.1, both
decaying linearly to 0, value coefficient 0.5, entropy coefficient 0.01), with a shorter run:
the zoo trains 10 million steps. The returns logged and evaluated are whole games at their
true scores.

Artefacts in ``output_dir``: ``agent.keras`` (the whole agent: ``keras.saving.load_model``),
``returns.png`` (the score of every training game and their moving average),
``evaluations.png`` (evaluation scores over the steps), ``policy_export`` (the deterministic
policy, raw uint8 frames → actions, as a SavedModel or ONNX file, checked against the agent)
and ``metrics.json``. A run writes ``checkpoint.npz`` every ``checkpoint_interval`` steps and
at the end; the next run continues from it up to ``total_timesteps`` in all.

Run: ``dlkit run ppo_atari --env_id ALE/Pong-v5 --engine envpool`` or
``python recipes/ppo_atari.py``; needs the ``atari`` extra (``pip install "dlkit[atari]"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from dlkit.recipes._deep_rl import AtariRunConfig, run
from dlkit.rl import PPO, PPOConfig


@dataclass
class Config(AtariRunConfig, PPOConfig):
    """The run's settings (`AtariRunConfig`) and PPO's hyperparameters (`dlkit.rl.PPOConfig`)
    with rl-baselines3-zoo's Atari values."""

    num_envs: int = 8
    total_timesteps: int = 1_000_000
    n_steps: int = 128
    batch_size: int = 256
    epochs: int = 4
    learning_rate: float = 2.5e-4
    clip_epsilon: float = 0.1
    anneal: bool = True
    value_coefficient: float = 0.5
    entropy_coefficient: float = 0.01
    output_dir: str = "runs/ppo_atari"


def main(config: Config) -> dict:
    """Trains (or resumes) PPO, evaluates its deterministic policy and writes the artefacts."""
    return run(config, lambda env: PPO.from_env(env, config.hidden_units, config=config))


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
