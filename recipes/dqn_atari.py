"""Play an Atari game from its pixels with DQN: the Nature network on stacked frames.

DQN [notes §9.1.2] as Mnih et al. trained it on the Arcade Learning Environment: each
observation is the last 4 grayscale 84×84 frames of the game (`dlkit.rl.make_atari_env`: 4
emulator frames per action, up to 30 no-ops after a reset, sticky actions, a lost life ends the
learning episode, rewards clipped to their sign for learning), the Q-network is the Nature-DQN
torso (three convolutions and 512 units, `dlkit.rl.nature_cnn`) taking the raw uint8 frames,
and replay stores each frame once (`dlkit.rl.FrameReplayBuffer`: a 100,000-transition buffer
of 84×84×4 stacks takes 0.76 GB instead of 5.6, by benchmarks/replay_memory.py). The defaults
are rl-baselines3-zoo's Atari DQN settings (Adam 1e-4, batch 32, 100,000 transitions, learning
from step 100,000, a gradient step every 4 steps, the target network copied every 1,000 steps,
ε from 1 to 0.01 over the first tenth of the run), with a shorter run: the zoo trains 10
million steps, which takes days on a CPU. The returns logged and evaluated are whole games at
their true scores.

Artefacts in ``output_dir``: ``agent.keras`` (the whole agent: ``keras.saving.load_model``),
``returns.png`` (the score of every training game and their moving average),
``evaluations.png`` (evaluation scores over the steps), ``policy_export`` (the greedy policy,
raw uint8 frames → actions, as a SavedModel or ONNX file, checked against the agent) and
``metrics.json``. A run writes ``checkpoint.npz`` (replay buffer included) every
``checkpoint_interval`` steps and at the end; the next run continues from it up to
``total_timesteps`` in all.

Run: ``dlkit run dqn_atari --env_id ALE/Pong-v5`` or ``python recipes/dqn_atari.py``; needs
the ``atari`` extra (``pip install "dlkit[atari]"``, the ROMs come with it).
"""

from __future__ import annotations

from dataclasses import dataclass

from dlkit.recipes._deep_rl import AtariRunConfig, run
from dlkit.rl import DQN, DQNConfig, build_q_network

# rl-baselines3-zoo counts its target update interval in environment steps (1,000); DQN counts
# gradient steps, one every `train_frequency` environment steps.
ZOO_TARGET_UPDATE_STEPS = 1_000


@dataclass
class Config(AtariRunConfig, DQNConfig):
    """The run's settings (`AtariRunConfig`) and DQN's hyperparameters (`dlkit.rl.DQNConfig`)
    with rl-baselines3-zoo's Atari values."""

    total_timesteps: int = 1_000_000
    learning_rate: float = 1e-4
    buffer_size: int = 100_000
    batch_size: int = 32
    learning_starts: int = 100_000
    train_frequency: int = 4
    gradient_steps: int = 1
    target_update_interval: int = ZOO_TARGET_UPDATE_STEPS // 4
    exploration_fraction: float = 0.1
    exploration_final_epsilon: float = 0.01
    output_dir: str = "runs/dqn_atari"
    dueling: bool = False
    """Dueling head: Q = V + A − mean A."""


def main(config: Config) -> dict:
    """Trains (or resumes) the DQN, evaluates its greedy policy and writes the artefacts."""

    def build_agent(env):
        q_network = build_q_network(
            env.single_observation_space,
            int(env.single_action_space.n),
            hidden_units=config.hidden_units,
            dueling=config.dueling,
        )
        return DQN(q_network, config=config)

    return run(config, build_agent)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
