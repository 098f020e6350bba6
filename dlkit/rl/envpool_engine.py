"""envpool as a dlkit vector environment: C++ threads, dlkit's same-step autoreset contract.

envpool [Weng et al., NeurIPS 2022] steps many copies of an environment in a C++ thread pool
and hands back batched NumPy arrays, without one Python call per copy. Its gymnasium interface
(envpool 1.2) differs from dlkit's contract (`dlkit.rl.envs`) in three ways this module hides:

- **Autoreset.** envpool resets in `NEXT_STEP` mode: the step after an episode ended ignores
  its actions, resets the finished copies and returns their first observation with reward 0.
  `EnvPoolVectorEnv` issues that reset step at once, for the finished copies only (envpool's
  `step(actions, env_id)`), so a finished copy returns its next episode's first observation in
  the same step and its episode's true last observation in `info["final_obs"]` (mask
  `info["_final_obs"]`), as gymnasium's `AutoresetMode.SAME_STEP` does [notes §9.1.1].
  For Atari with `episodic_life`, that reset step continues the game after a lost life,
  where envpool's explicit `reset` would start a new game.
- **Seeds.** envpool fixes its seeds when the pool is built (copy i gets `seed + i`) and
  ignores `reset(seed=...)`; here `reset(seed=...)` rebuilds the pool with those seeds (an int
  seeds copy i with `seed + i`, a list seeds each copy), so seeded runs repeat.
- **Episode statistics.** `info["episode"]` (mask `info["_episode"]`, keys "r", "l", "t") holds
  each finished episode's return, length and seconds, as gymnasium's `RecordEpisodeStatistics`
  reports them. For Atari an episode there is a whole game and "r" its true score (envpool's
  unclipped `info["reward"]`), while the step rewards may be clipped and an episode may end
  at each lost life for learning.

`num_threads` (an envpool option, passed through `make_vector_env(..., engine="envpool",
num_threads=...)`) sets the size of its thread pool; envpool's default, 0, uses one thread per
copy up to the number of cores.
"""

from __future__ import annotations

import time

import gymnasium
import numpy as np

from dlkit.validation import check_int, check_type

__all__ = ["EnvPoolVectorEnv", "envpool_task_id", "make_envpool_atari", "make_envpool_env"]

INSTALL_HINT = 'pip install "dlkit[envpool]"'


def import_envpool():
    """Imports envpool, or raises an ImportError naming the extra that installs it."""
    try:
        import envpool
    except ImportError as error:
        raise ImportError(
            'engine="envpool" needs the envpool package, which is not installed. '
            f"Install it with: {INSTALL_HINT}"
        ) from error
    return envpool


def envpool_task_id(env_id: str) -> str:
    """envpool's id for a gymnasium id: `"ALE/Breakout-v5"` is envpool's `"Breakout-v5"`.

    Raises:
        ValueError: if envpool provides no such environment.
    """
    envpool = import_envpool()
    check_type("env_id", env_id, str, "a string")
    task_id = env_id[len("ALE/") :] if env_id.startswith("ALE/") else env_id
    if task_id not in envpool.list_all_envs():
        raise ValueError(
            f"Expected `env_id` to be an environment envpool provides; `envpool.list_all_envs()` "
            f"lists them (Atari ids as 'ALE/Breakout-v5' or 'Breakout-v5'), or use "
            f'engine="gymnasium". Received: env_id={env_id!r}'
        )
    return task_id


class EnvPoolVectorEnv(gymnasium.vector.VectorEnv):
    """An envpool environment as a gymnasium `VectorEnv` in same-step autoreset mode.

    Args:
        task_id: envpool's environment id (`envpool_task_id`).
        num_envs: the number of copies (an integer >= 1).
        seed: the seed of copy 0 (copy i gets `seed + i`) until `reset(seed=...)` reseeds;
            None for a fresh one.
        **options: envpool options (`envpool.make_spec(task_id).config` lists them), such as
            `num_threads` or Atari's `episodic_life`.
    """

    def __init__(self, task_id: str, num_envs: int, seed: int | None = None, **options):
        self._envpool = import_envpool()
        if options.get("batch_size", num_envs) != num_envs:
            raise ValueError(
                "Expected `batch_size` to be left out: dlkit steps every copy together "
                "(envpool's synchronous mode). Received: "
                f"batch_size={options['batch_size']!r}"
            )
        self._task_id = task_id
        self.num_envs = check_int("num_envs", num_envs)
        self._options = options
        self._atari = _is_atari(self._envpool, task_id)
        self._episodic_life = bool(self._atari and options.get("episodic_life", False))
        self._seeds = self._seed_list(seed)
        self._pool = self._make_pool(self._seeds)
        self._fresh = True
        self._env_ids = np.arange(self.num_envs, dtype=np.int32)
        self.single_observation_space = self._pool.observation_space
        self.single_action_space = _float32_box(self._pool.action_space)
        self.observation_space = gymnasium.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self.action_space = gymnasium.vector.utils.batch_space(
            self.single_action_space, self.num_envs
        )
        # episode_statistics: info["episode"] scores whole episodes (whole games on Atari).
        self.metadata = {
            "render_modes": [],
            "autoreset_mode": gymnasium.vector.AutoresetMode.SAME_STEP,
            "episode_statistics": True,
        }
        self.spec = None
        self.render_mode = None
        self._clear_statistics()

    def _seed_list(self, seed) -> list[int]:
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        if isinstance(seed, (list, tuple, np.ndarray)):
            if len(seed) != self.num_envs:
                raise ValueError(
                    f"Expected `seed` to hold one seed per copy ({self.num_envs}). "
                    f"Received: seed={list(seed)!r}"
                )
            return [int(value) for value in seed]
        seed = check_int("seed", seed, minimum=0)
        return [seed + index for index in range(self.num_envs)]

    def _make_pool(self, seeds: list[int]):
        return self._envpool.make_gymnasium(
            self._task_id, num_envs=self.num_envs, env_seed=seeds, **self._options
        )

    def _clear_statistics(self) -> None:
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, dtype=int)
        self._starts = np.full(self.num_envs, time.perf_counter())

    @staticmethod
    def _in_order(result, info):
        """envpool's batch sorted by copy. A synchronous pool answers in the order the actions
        were sent, ascending copy ids here; the check costs little and guards that."""
        order = np.asarray(info["env_id"])
        if np.all(order[1:] > order[:-1]):
            return result, info
        permutation = np.argsort(order)
        return (
            [value[permutation] for value in result],
            {key: value[permutation] for key, value in info.items() if _per_copy(value)},
        )

    @staticmethod
    def _clean(info: dict) -> dict:
        return {key: value for key, value in info.items() if key not in ("players", "env_id")}

    def reset(self, *, seed=None, options=None):
        """Resets every copy; `seed` (an int or one per copy) rebuilds the pool with those seeds."""
        if options:
            raise ValueError(
                "Expected `options` to be None: envpool resets every copy at once. "
                f"Received: options={options!r}"
            )
        if seed is not None:
            seeds = self._seed_list(seed)
            if seeds != self._seeds or not self._fresh:
                self._pool.close()
                self._pool = self._make_pool(seeds)
                self._seeds = seeds
        observations, info = self._pool.reset()
        (observations,), info = self._in_order([observations], info)
        self._fresh = False
        self._clear_statistics()
        return observations, self._clean(info)

    def step(self, actions):
        actions = np.asarray(actions, dtype=self._pool.action_space.dtype)
        result = self._pool.step(actions, self._env_ids)
        (observations, rewards, terminated, truncated), info = self._in_order(result[:4], result[4])
        info = self._clean(info)
        true_rewards = info["reward"] if self._atari else rewards
        self._returns += true_rewards
        self._lengths += 1
        finished = terminated | truncated
        if finished.any():
            indices = np.flatnonzero(finished)
            final = np.empty(self.num_envs, dtype=object)
            final_info = np.empty(self.num_envs, dtype=object)
            for index in indices:
                final[index] = observations[index].copy()
                final_info[index] = {
                    key: value[index] for key, value in info.items() if _per_copy(value)
                }
            # envpool's reset step: the finished copies ignore their actions and restart.
            restarted = self._pool.step(actions[indices], indices.astype(np.int32))
            (first,), restart_info = self._in_order(restarted[:1], restarted[4])
            if self._episodic_life:
                ended = truncated | (np.asarray(info["terminated"]) != 0)
            else:
                ended = finished
            observations = np.array(observations, copy=True)
            observations[indices] = first
            for key, value in self._clean(restart_info).items():
                if not _per_copy(value):
                    continue
                info[key] = np.array(info[key], copy=True)
                info[key][indices] = value
            info["final_obs"] = final
            info["_final_obs"] = finished
            info["final_info"] = final_info
            info["_final_info"] = finished
            if ended.any():
                now = time.perf_counter()
                info["episode"] = {
                    "r": np.where(ended, self._returns, 0.0),
                    "l": np.where(ended, self._lengths, 0),
                    "t": np.where(ended, np.round(now - self._starts, 6), 0.0),
                }
                info["_episode"] = ended
                self._returns[ended] = 0.0
                self._lengths[ended] = 0
                self._starts[ended] = now
        return observations, rewards, terminated, truncated, info

    def close_extras(self, **kwargs):
        self._pool.close()

    def __repr__(self) -> str:
        return f"EnvPoolVectorEnv({self._task_id!r}, num_envs={self.num_envs})"


def _is_atari(envpool, task_id: str) -> bool:
    """Whether envpool's `task_id` is an Atari game (its options include `episodic_life`)."""
    return hasattr(envpool.make_spec(task_id).config, "episodic_life")


def _float32_box(space):
    """gymnasium's continuous action spaces are float32 where envpool's MuJoCo ones are float64;
    the agents act in gymnasium's (the actions are cast back in `step`)."""
    if isinstance(space, gymnasium.spaces.Box) and space.dtype == np.float64:
        return gymnasium.spaces.Box(space.low, space.high, space.shape, np.float32)
    return space


def _per_copy(value) -> bool:
    return isinstance(value, np.ndarray) and value.ndim > 0


def make_envpool_env(env_id: str, num_envs: int = 1, seed: int | None = None, **options):
    """Makes `num_envs` copies of `env_id` as one envpool vector environment (`EnvPoolVectorEnv`).

    `make_vector_env(env_id, num_envs, engine="envpool", **options)` calls this.

    Args:
        env_id: an environment envpool provides (`envpool.list_all_envs()`); gymnasium's Atari
            ids (`"ALE/Breakout-v5"`) are accepted.
        num_envs: the number of copies stepped together (an integer >= 1). Defaults to 1.
        seed: the seed of copy 0 (copy i gets `seed + i`); None for a fresh one. `reset(seed=)`
            reseeds. Defaults to None.
        **options: envpool options, such as `num_threads` (its thread pool; 0, the default,
            one thread per copy up to the number of cores) or `max_episode_steps`.

    Returns:
        An `EnvPoolVectorEnv`, a `gymnasium.vector.VectorEnv` in same-step autoreset mode.

    Raises:
        ImportError: if envpool is not installed (the message names the extra).
        ValueError: if envpool provides no environment `env_id`.

    Reference:
        Weng et al., "EnvPool: A Highly Parallel Reinforcement Learning Environment Execution
        Engine", NeurIPS 2022.

    Example:

        >>> env = make_envpool_env("CartPole-v1", num_envs=4, num_threads=1)
        >>> observations, _ = env.reset(seed=0)
        >>> observations.shape
        (4, 4)
    """
    task_id = envpool_task_id(env_id)
    return EnvPoolVectorEnv(task_id, num_envs, seed=seed, **options)


def make_envpool_atari(
    env_id: str = "ALE/Breakout-v5", num_envs: int = 1, *, seed: int | None = None, **settings
):
    """Atari with the standard preprocessing, stepped by envpool [Mnih et al., Nature 2015].

    The preprocessing settings are `dlkit.rl.make_atari_env`'s, with the same defaults
    (`dlkit.rl.atari.PREPROCESSING`), mapped to envpool's Atari options: `frame_skip`
    (actions repeated, the last two frames max-pooled), `frame_stack` → `stack_num`,
    `screen_size` → `img_height`/`img_width` (grayscale, area resize), `noop_max`,
    `terminal_on_life_loss` → `episodic_life`, `clip_rewards` → `reward_clip`
    (sign of the reward), `fire_on_reset` → `use_fire_reset`, `repeat_action_probability`
    (sticky actions) and `max_episode_steps` (agent steps; None: envpool's 27,000, the
    108,000 frames of ALE v5). Observations are uint8 frame stacks, channels first:
    (frame_stack, screen_size, screen_size). The step rewards are clipped for learning, an
    episode may end at each lost life, and `info["episode"]` reports whole games with their
    true scores.

    Args:
        env_id: an Atari id, gymnasium's (`"ALE/Breakout-v5"`) or envpool's (`"Breakout-v5"`).
            Defaults to `"ALE/Breakout-v5"`.
        num_envs: the number of copies (an integer >= 1). Defaults to 1.
        seed: the seed of copy 0 (copy i gets `seed + i`); None for a fresh one.
        **settings: the preprocessing settings of `make_atari_env` (`frame_skip`,
            `frame_stack`, `screen_size`, `noop_max`, `terminal_on_life_loss`, `clip_rewards`,
            `fire_on_reset`, `repeat_action_probability`, `max_episode_steps`; None for
            envpool's limit), and further envpool options such as `num_threads`.

    Returns:
        An `EnvPoolVectorEnv` in same-step autoreset mode.

    Raises:
        ImportError: if envpool is not installed.
        ValueError: if `env_id` is no Atari game envpool provides, or an argument is invalid.

    Example:

        >>> env = make_envpool_atari("ALE/Breakout-v5", num_envs=2, seed=0, num_threads=1)
        >>> observations, _ = env.reset(seed=0)
        >>> observations.shape
        (2, 4, 84, 84)

    Reference:
        Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015;
        Machado et al., "Revisiting the Arcade Learning Environment", JAIR 2018 (sticky
        actions); Weng et al., "EnvPool: A Highly Parallel Reinforcement Learning Environment
        Execution Engine", NeurIPS 2022.
    """
    task_id = envpool_task_id(env_id)
    if not _is_atari(import_envpool(), task_id):
        raise ValueError(
            f"Expected `env_id` to be an Atari game such as 'ALE/Breakout-v5'. "
            f"Received: env_id={env_id!r}"
        )
    from dlkit.rl.atari import PREPROCESSING, preprocessing_settings

    options = {key: value for key, value in settings.items() if key not in PREPROCESSING}
    chosen = preprocessing_settings(
        **{key: value for key, value in settings.items() if key in PREPROCESSING}
    )
    settings = {
        "frame_skip": chosen["frame_skip"],
        "stack_num": chosen["frame_stack"],
        "img_height": chosen["screen_size"],
        "img_width": chosen["screen_size"],
        "noop_max": chosen["noop_max"],
        "episodic_life": chosen["terminal_on_life_loss"],
        "reward_clip": chosen["clip_rewards"],
        "use_fire_reset": chosen["fire_on_reset"],
        "repeat_action_probability": chosen["repeat_action_probability"],
        "gray_scale": True,
    }
    if chosen["max_episode_steps"] is not None:
        settings["max_episode_steps"] = chosen["max_episode_steps"]
    return EnvPoolVectorEnv(task_id, num_envs, seed=seed, **settings, **options)
