"""Atari 2600 games as the deep agents learn them: the customary preprocessing in one call.

`make_atari_env` builds the preprocessing of the DQN and PPO baselines [Mnih et al., Nature
2015; Machado et al., JAIR 2018] from gymnasium's own wrappers where they exist
(`AtariPreprocessing`: no-op starts, frame skipping with a max over the last two frames,
grayscale 84×84; `FrameStackObservation`) and the small wrappers of this module where they do
not (`EpisodicLife`, `FireOnReset`), with rewards clipped to their sign for learning. A
`RecordEpisodeStatistics` sits inside the life and reward wrappers, so `info["episode"]`
reports whole games at their true score: what `learn` logs and `evaluate` returns [notes
§9.1.2].
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from dlkit.rl.envs import ENGINES, _autoreset_mode
from dlkit.validation import check_choice, check_int, check_type, check_unit_interval

__all__ = [
    "PREPROCESSING",
    "EpisodicLife",
    "FireOnReset",
    "check_atari_id",
    "make_atari_env",
    "preprocessing_settings",
]

_INSTALL_ATARI = 'pip install "dlkit[atari]"'


class EpisodicLife(gym.Wrapper):
    """Ends the learning episode at each lost life; resets the game only when it is over.

    A lost life is a terminal state for the value targets, which speeds up learning in games
    with several lives [Mnih et al., Nature 2015]. `reset` after a lost life takes one no-op
    step instead of resetting, so the game, its score and its remaining lives go on; the
    true game ends (and resets) when the wrapped environment terminates or truncates. A
    `RecordEpisodeStatistics` wrapped inside this one therefore records whole games.

    Args:
        env: an ALE environment (or one wrapping it), whose `unwrapped.ale.lives()` counts lives.

    Example:

        >>> env = EpisodicLife(gym.make("ALE/Breakout-v5"))  # doctest: +SKIP
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = bool(terminated or truncated)
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return observation, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if self.game_over:
            observation, info = self.env.reset(**kwargs)
        else:
            # A no-op step from the state the life was lost in: the game goes on.
            observation, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                observation, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        self.game_over = False
        return observation, info


class FireOnReset(gym.Wrapper):
    """Presses FIRE (action 1), then action 2, after each reset, for games that wait for it.

    Breakout and similar games do nothing until FIRE launches the ball: without it an agent
    may spend its first exploring steps in a frozen game. Placed outside `EpisodicLife`, it
    fires again after every lost life. The two actions are those of the Stable-Baselines3
    wrapper, for comparable runs.

    Args:
        env: an ALE environment whose action meanings have FIRE at index 1.

    Raises:
        ValueError: if the game has no FIRE action at index 1.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()
        if len(meanings) < 3 or meanings[1] != "FIRE":
            raise ValueError(
                "Expected a game with FIRE as action 1 (and at least 3 actions). "
                f"Received: env with action meanings {meanings}"
            )

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        for action in (1, 2):
            observation, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                observation, info = self.env.reset(**kwargs)
        return observation, info


def check_atari_id(env_id: str):
    """The gymnasium spec of `env_id`, an Atari game registered by ale-py."""
    try:
        import ale_py
    except ImportError as error:
        raise ImportError(
            f"make_atari_env needs the Atari emulator ale-py and its ROMs: {_INSTALL_ATARI}."
        ) from error
    gym.register_envs(ale_py)
    spec = gym.registry.get(env_id)
    if spec is None or "ale_py" not in str(spec.entry_point):
        raise ValueError(
            "Expected `env_id` to be an Atari game registered by ale-py, such as "
            "'ALE/Breakout-v5'; list them with `[i for i in gymnasium.registry if "
            "i.startswith('ALE/')]` after `import ale_py` (the `atari` extra: "
            f"{_INSTALL_ATARI}). Received: env_id={env_id!r}"
        )
    return spec


def _make_game(env_id, settings, make_kwargs):
    """One preprocessed game (a factory of the vector environment)."""
    from gymnasium.wrappers import (
        AtariPreprocessing,
        FrameStackObservation,
        RecordEpisodeStatistics,
        TimeLimit,
        TransformReward,
    )

    # frameskip=1: AtariPreprocessing skips frames itself, taking the max of the last two.
    env = gym.make(
        env_id,
        frameskip=1,
        repeat_action_probability=settings["repeat_action_probability"],
        **make_kwargs,
    )
    env = AtariPreprocessing(
        env,
        noop_max=settings["noop_max"],
        frame_skip=settings["frame_skip"],
        screen_size=settings["screen_size"],
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    if settings["max_episode_steps"] is not None:
        env = TimeLimit(env, settings["max_episode_steps"])  # agent steps, not frames
    # Inside the life and reward wrappers: it records whole games at their true score.
    env = RecordEpisodeStatistics(env)
    if settings["terminal_on_life_loss"]:
        env = EpisodicLife(env)
    if settings["fire_on_reset"] and "FIRE" in env.unwrapped.get_action_meanings():
        env = FireOnReset(env)
    if settings["clip_rewards"]:
        env = TransformReward(env, np.sign)
    return FrameStackObservation(env, settings["frame_stack"])


# The customary Atari preprocessing (Mnih et al. 2015, with Machado et al.'s sticky actions):
# the defaults of `make_atari_env` on either engine.
PREPROCESSING = {
    "frame_skip": 4,
    "frame_stack": 4,
    "screen_size": 84,
    "noop_max": 30,
    "terminal_on_life_loss": True,
    "clip_rewards": True,
    "fire_on_reset": True,
    "repeat_action_probability": 0.25,
    "max_episode_steps": None,
}


def preprocessing_settings(**settings) -> dict:
    """`PREPROCESSING` with `settings` in place of its defaults, each checked.

    Raises:
        ValueError: for a setting out of its range, naming it and the received value.
        TypeError: for a name that is no preprocessing setting.
    """
    unknown = sorted(set(settings) - set(PREPROCESSING))
    if unknown:
        raise TypeError(
            f"Expected Atari preprocessing settings among {sorted(PREPROCESSING)}. "
            f"Received: {', '.join(unknown)}"
        )
    values = {**PREPROCESSING, **settings}
    limit = values["max_episode_steps"]
    return {
        "frame_skip": check_int("frame_skip", values["frame_skip"]),
        "frame_stack": check_int("frame_stack", values["frame_stack"]),
        "screen_size": check_int("screen_size", values["screen_size"]),
        "noop_max": check_int("noop_max", values["noop_max"], minimum=0),
        "terminal_on_life_loss": bool(values["terminal_on_life_loss"]),
        "clip_rewards": bool(values["clip_rewards"]),
        "fire_on_reset": bool(values["fire_on_reset"]),
        "repeat_action_probability": check_unit_interval(
            "repeat_action_probability", values["repeat_action_probability"]
        ),
        "max_episode_steps": None if limit is None else check_int("max_episode_steps", limit),
    }


def make_atari_env(
    env_id: str = "ALE/Breakout-v5",
    num_envs: int = 1,
    *,
    frame_skip: int = PREPROCESSING["frame_skip"],
    frame_stack: int = PREPROCESSING["frame_stack"],
    screen_size: int = PREPROCESSING["screen_size"],
    noop_max: int = PREPROCESSING["noop_max"],
    terminal_on_life_loss: bool = PREPROCESSING["terminal_on_life_loss"],
    clip_rewards: bool = PREPROCESSING["clip_rewards"],
    fire_on_reset: bool = PREPROCESSING["fire_on_reset"],
    repeat_action_probability: float = PREPROCESSING["repeat_action_probability"],
    max_episode_steps: int | None = PREPROCESSING["max_episode_steps"],
    asynchronous: bool = False,
    engine: str = "gymnasium",
    **make_kwargs,
):
    """`num_envs` copies of an Atari game with the customary preprocessing, as one vector env.

    Each copy is, from the emulator outwards: `gym.make(env_id, frameskip=1)` with sticky
    actions; gymnasium's `AtariPreprocessing` (up to `noop_max` no-ops after a reset, the
    action repeated `frame_skip` times with the max of the last two frames, grayscale
    `screen_size`²); a `TimeLimit` of `max_episode_steps` agent steps if given;
    `RecordEpisodeStatistics`, which reports each whole game at its true score in
    `info["episode"]`; `EpisodicLife` (`terminal_on_life_loss`); `FireOnReset` (`fire_on_reset`,
    for games with a FIRE action); rewards clipped to their sign (`clip_rewards`, for learning
    only); and gymnasium's `FrameStackObservation` of `frame_stack` frames. Observations are
    uint8 (frame_stack, screen_size, screen_size), channels first, what
    `dlkit.rl.build_q_network` and `dlkit.rl.build_actor_critic` take.

    Learning episodes end at each lost life and see clipped rewards; the returns the agents
    log and `evaluate` reports are the records of whole games, their true scores. An
    evaluation environment is made the same way (its clipped rewards and lives are not what
    is scored).

    Args:
        env_id: an Atari id registered by ale-py. Defaults to `"ALE/Breakout-v5"`.
        num_envs: the number of copies (an integer >= 1). Defaults to 1.
        frame_skip: emulator frames per agent step. Defaults to 4.
        frame_stack: frames per observation. Defaults to 4.
        screen_size: the side of the square grayscale frame. Defaults to 84.
        noop_max: at most this many no-op actions after a reset (0 for none). Defaults to 30.
        terminal_on_life_loss: end the learning episode at each lost life. Defaults to True.
        clip_rewards: learn from the sign of each reward. Defaults to True.
        fire_on_reset: press FIRE after each reset in games that have it. Defaults to True.
        repeat_action_probability: the probability that the emulator repeats the previous
            action (sticky actions, Machado et al. 2018). Defaults to 0.25.
        max_episode_steps: the longest game in agent steps; None for ALE's own limit (108,000
            frames). Defaults to None.
        asynchronous: step the copies in worker processes (gymnasium engine only). Defaults
            to False.
        engine: `"gymnasium"` (gymnasium's vector environments) or `"envpool"` (the `envpool`
            extra, `dlkit.rl.envpool_engine.make_envpool_atari`). Defaults to `"gymnasium"`.
        **make_kwargs: further arguments of `gym.make` (gymnasium) or envpool options.

    Returns:
        A `gymnasium.vector.VectorEnv` in same-step autoreset mode, with
        `metadata["episode_statistics"] = True`.

    Raises:
        ImportError: if ale-py (the `atari` extra) or, for `engine="envpool"`, envpool is not
            installed; the message names the extra.
        ValueError: for an id that is no registered Atari game, an unknown `engine`, or an
            invalid argument.

    Example:

        >>> env = make_atari_env("ALE/Breakout-v5", num_envs=2)
        >>> observations, _ = env.reset(seed=0)
        >>> observations.shape, observations.dtype
        ((2, 4, 84, 84), dtype('uint8'))

    Reference:
        Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015;
        Machado et al., "Revisiting the Arcade Learning Environment", JAIR 2018.
    """
    check_type("env_id", env_id, str, "a string")
    num_envs = check_int("num_envs", num_envs)
    check_choice("engine", engine, ENGINES)
    settings = preprocessing_settings(
        frame_skip=frame_skip,
        frame_stack=frame_stack,
        screen_size=screen_size,
        noop_max=noop_max,
        terminal_on_life_loss=terminal_on_life_loss,
        clip_rewards=clip_rewards,
        fire_on_reset=fire_on_reset,
        repeat_action_probability=repeat_action_probability,
        max_episode_steps=max_episode_steps,
    )
    if engine == "envpool":
        env = _make_envpool_atari()(env_id, num_envs, **settings, **make_kwargs)
    else:
        check_atari_id(env_id)
        factories = [lambda: _make_game(env_id, settings, make_kwargs) for _ in range(num_envs)]
        vector_class = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
        env = vector_class(factories, autoreset_mode=_autoreset_mode())
    # A copy of the metadata (gymnasium may share the emulator class's dict): it tells the
    # agents to score whole games by their records, not the learning episodes.
    env.metadata = {**env.metadata, "episode_statistics": True}
    return env


def _make_envpool_atari():
    """`dlkit.rl.envpool_engine.make_envpool_atari`, whose first call raises ImportError naming
    the `envpool` extra when envpool is missing."""
    from dlkit.rl.envpool_engine import make_envpool_atari

    return make_envpool_atari
