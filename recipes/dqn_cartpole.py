"""Balance CartPole with a deep Q-network and any of its Rainbow improvements.

DQN [notes §9.1.2] learns Q(s, a) from transitions replayed out of a buffer, against a target
network copied every ``target_update_interval`` gradient steps, and acts ε-greedily with ε
decayed linearly over the first ``exploration_fraction`` of the run. Flags switch on the
improvements one by one: ``double`` Q-learning targets, a ``dueling`` head (eq. 9.15),
``prioritized`` replay (eqs. 9.12-9.14), ``noisy`` layers instead of ε-greedy (eq. 9.16), the
``c51`` distributional head on ``num_atoms`` atoms in [v_min, v_max] (eqs. 9.17-9.18; a
discounted CartPole return stays below 1 / (1 − γ) = 100) and ``n_step`` returns. The defaults
are the tuned CartPole settings of rl-baselines3-zoo (few, large training phases: 128 gradient
steps every 256 environment steps) with a smaller network, and double 3-step targets on by
default (`--double false --n_step 1` for the plain DQN of the notes): with them, dlkit's DQN
solves CartPole in fewer steps than Stable-Baselines3's DQN with the zoo settings (the
"tuned settings" rows of the DQN table that ``rl_cartpole.py`` stores in benchmarks/results/ and
benchmarks/README.md shows, next to dlkit at the zoo's own settings). The greedy policy's
evaluations swing widely within one run (see ``evaluations.png``), so by default the run ends at
the first evaluation that solves the task (``stop_at_solved``).

``--variant NAME`` switches on one option of DQN with the settings it needs to solve CartPole
(`VARIANTS` holds them; a flag given with a value other than its default wins over the
variant's): ``plain`` is the one-step DQN of the notes with the zoo's 256-256 network,
``double`` the same with double Q-learning targets, ``n_step`` the default without double
Q-learning, and ``prioritized``, ``dueling``, ``noisy`` (on a longer run) and ``c51`` add
their option to the default. tests/recipes/test_deep_rl_quality.py holds each variant (on one
backend each) and the default (on every backend) to solving CartPole within its
``total_timesteps``.

Artefacts in ``output_dir``: ``agent.keras`` (the whole agent: ``keras.saving.load_model``),
``returns.png`` (training returns and their moving average), ``evaluations.png`` (evaluation
returns over the steps), ``policy_export`` (the greedy policy, observations → actions, as a
SavedModel or ONNX file, checked against the agent) and ``metrics.json``. A run writes
``checkpoint.npz`` (replay buffer included) every ``checkpoint_interval`` steps and at the end;
the next run continues from it up to ``total_timesteps`` in all.

Run: ``dlkit run dqn_cartpole --variant noisy``, ``dlkit run dqn_cartpole --dueling true`` or
``python recipes/dqn_cartpole.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from dlkit.recipes._deep_rl import RunConfig, run
from dlkit.rl import DQN, DQNConfig, build_q_network
from dlkit.validation import check_choice, check_int

# The fields each `--variant` sets: one option of DQN with the settings it needs to solve
# CartPole-v1 within its `total_timesteps` (measured by tests/recipes/test_deep_rl_quality.py).
VARIANTS: dict[str, dict] = {
    "default": {},
    "plain": {"double": False, "n_step": 1, "hidden_units": (256, 256)},
    "double": {"n_step": 1, "hidden_units": (256, 256)},
    "n_step": {"double": False},
    "prioritized": {"prioritized": True},
    "dueling": {"dueling": True},
    "noisy": {"noisy": True, "total_timesteps": 100_000},
    "c51": {"c51": True},
}


@dataclass
class Config(RunConfig, DQNConfig):
    """The run's settings (`RunConfig`), DQN's hyperparameters (`dlkit.rl.DQNConfig`) with
    the defaults of this recipe, and the options of the Q-network."""

    total_timesteps: int = 50_000
    learning_rate: float = 2.3e-3
    train_frequency: int = 256
    gradient_steps: int = 128
    target_update_interval: int = 128
    exploration_fraction: float = 0.16
    exploration_final_epsilon: float = 0.04
    double: bool = True
    n_step: int = 3
    output_dir: str = "runs/dqn_cartpole"
    variant: str = "default"
    """Named settings of one option of DQN (`VARIANTS`): default, plain, double, n_step,
    prioritized, dueling, noisy or c51; they replace the fields left at their defaults."""
    dueling: bool = False
    """Dueling head: Q = V + A − mean A (not with c51)."""
    noisy: bool = False
    """Noisy layers explore instead of ε-greedy."""
    c51: bool = False
    """Distributional C51 head: a categorical return distribution per action."""
    num_atoms: int = 51
    """Atoms of the C51 distribution."""
    v_min: float = 0.0
    """Lowest atom of the C51 distribution."""
    v_max: float = 100.0
    """Highest atom of the C51 distribution."""

    def __post_init__(self) -> None:
        self.variant = check_choice("variant", self.variant, VARIANTS)
        defaults = {field.name: field.default for field in fields(self)}
        for name, value in VARIANTS[self.variant].items():
            if getattr(self, name) == defaults[name]:
                setattr(self, name, value)
        super().__post_init__()
        self.num_atoms = check_int("num_atoms", self.num_atoms)
        if self.dueling and self.c51:
            raise ValueError(
                "Expected at most one of `dueling` and `c51` (no distributional dueling head). "
                f"Received: dueling={self.dueling}, c51={self.c51}"
            )
        if self.c51 and not self.v_min < self.v_max:
            raise ValueError(
                f"Expected `v_min` < `v_max`. Received: v_min={self.v_min}, v_max={self.v_max}"
            )


def main(config: Config) -> dict:
    """Trains (or resumes) the DQN, evaluates its greedy policy and writes the artefacts."""

    def build_agent(env):
        q_network = build_q_network(
            env.single_observation_space.shape,
            int(env.single_action_space.n),
            hidden_units=config.hidden_units,
            dueling=config.dueling,
            noisy=config.noisy,
            num_atoms=config.num_atoms if config.c51 else None,
            v_min=config.v_min,
            v_max=config.v_max,
        )
        return DQN(q_network, config=config)

    return run(config, build_agent)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
