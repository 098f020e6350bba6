"""Gymnasium environments as the deep agents step them: vectorised, same-step autoreset.

Deep agents step `num_envs` copies of an environment at once (`gymnasium.vector`), one batched
network call per step for all of them. They need the vector environment to reset a finished
copy in the same step that ends its episode and to report the episode's true last observation
in `info["final_obs"]` (gymnasium's `AutoresetMode.SAME_STEP`): a truncated episode bootstraps
from that observation [notes §9.1.1; Pardo et al., ICML 2018]. `make_vector_env` builds such an
environment, stepped by gymnasium (`engine="gymnasium"`, in this process or in worker
processes) or by envpool's C++ thread pool (`engine="envpool"`, `dlkit.rl.envpool_engine`);
`as_vector_env` accepts what a user passes to `learn`.
"""

from __future__ import annotations

import numpy as np

from dlkit.validation import check_choice, check_int, check_type

__all__ = ["ENGINES", "as_vector_env", "make_vector_env"]

# The engines that step a vector environment: gymnasium's vectors, or envpool's C++ threads.
ENGINES = ("gymnasium", "envpool")


def _autoreset_mode():
    from gymnasium.vector import AutoresetMode

    return AutoresetMode.SAME_STEP


def make_vector_env(
    env_id: str,
    num_envs: int = 1,
    asynchronous: bool = False,
    engine: str = "gymnasium",
    **make_kwargs,
):
    """Makes `num_envs` copies of an environment as one vector environment.

    Both engines keep the same contract, so `learn` takes either: same-step autoreset with
    `info["final_obs"]`, the single and batched spaces, seeding by `reset(seed=...)`.

    Args:
        env_id: a registered environment id, such as `"CartPole-v1"`.
        num_envs: the number of copies stepped together (an integer >= 1). Defaults to 1.
        asynchronous: step the copies in worker processes (`AsyncVectorEnv`) instead of in this
            process (`SyncVectorEnv`). Worth it only when one step is slow (physics
            simulators); classic-control steps are faster in process. gymnasium engine
            only: envpool steps its copies in its own threads (`num_threads=`). Defaults to
            False.
        engine: `"gymnasium"` (its `SyncVectorEnv`/`AsyncVectorEnv`) or `"envpool"` (the
            `envpool` extra, `dlkit.rl.envpool_engine.make_envpool_env`: C++ threads, no
            Python call per copy; `env_id` must be one of `envpool.list_all_envs()`).
            Defaults to `"gymnasium"`.
        **make_kwargs: passed to `gymnasium.make` for every copy, or with envpool to
            `envpool.make_gymnasium` (such as `num_threads`, `max_episode_steps`, `seed`).

    Returns:
        A `gymnasium.vector.VectorEnv` in same-step autoreset mode.

    Raises:
        ValueError: if `engine` is unknown, `asynchronous=True` is asked of envpool, or
            envpool provides no `env_id`.
        ImportError: if `engine="envpool"` and envpool is not installed (the message names
            the extra, `pip install "dlkit[envpool]"`).

    Example:

        >>> env = make_vector_env("CartPole-v1", num_envs=4)
        >>> observations, _ = env.reset(seed=0)
        >>> observations.shape
        (4, 4)
    """
    import gymnasium as gym

    check_type("env_id", env_id, str, "a string")
    num_envs = check_int("num_envs", num_envs)
    check_choice("engine", engine, ENGINES)
    if engine == "envpool":
        if asynchronous:
            raise ValueError(
                "Expected `asynchronous` to be False with engine='envpool': envpool steps its "
                "copies in its own C++ threads; set their number with num_threads=N. "
                f"Received: asynchronous={asynchronous!r}"
            )
        from dlkit.rl.envpool_engine import make_envpool_env

        return make_envpool_env(env_id, num_envs, **make_kwargs)
    factories = [lambda: gym.make(env_id, **make_kwargs) for _ in range(num_envs)]
    vector_class = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
    return vector_class(factories, autoreset_mode=_autoreset_mode())


def as_vector_env(env, name: str = "env"):
    """Returns `env` as a same-step-autoreset vector environment.

    A single `gymnasium.Env` is wrapped in a one-copy `SyncVectorEnv`; a vector environment is
    returned unchanged after checking its autoreset mode.

    Args:
        env: a `gymnasium.Env` or `gymnasium.vector.VectorEnv`.
        name: the argument name used in error messages. Defaults to `"env"`.

    Returns:
        A `gymnasium.vector.VectorEnv`.

    Raises:
        TypeError: if `env` is neither.
        ValueError: if the vector environment resets in another mode than same-step.
    """
    import gymnasium as gym

    if isinstance(env, gym.vector.VectorEnv):
        mode = env.metadata.get("autoreset_mode")
        if mode != _autoreset_mode():
            raise ValueError(
                f"Expected `{name}` to reset finished episodes in the same step "
                "(gymnasium.vector.AutoresetMode.SAME_STEP), so that truncated episodes can "
                "bootstrap from info['final_obs']; build it with "
                "dlkit.rl.make_vector_env or autoreset_mode=AutoresetMode.SAME_STEP. "
                f"Received: {name} with autoreset_mode={mode!r}"
            )
        return env
    if isinstance(env, gym.Env):
        return gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=_autoreset_mode())
    raise TypeError(
        f"Expected `{name}` to be a gymnasium.Env or gymnasium.vector.VectorEnv. "
        f"Received: {name}={env!r}"
    )


def final_observations(next_observations: np.ndarray, infos: dict) -> np.ndarray:
    """The observations each copy really reached: `final_obs` where an episode just ended.

    In same-step autoreset mode a finished copy returns the first observation of its next
    episode; its episode's last observation is in `infos["final_obs"]`.
    """
    if "final_obs" not in infos:
        return next_observations
    reached = np.array(next_observations, copy=True)
    for index in np.flatnonzero(infos["_final_obs"]):
        reached[index] = infos["final_obs"][index]
    return reached


def failing_env_index(env, error: BaseException) -> int | None:
    """The index of the copy of a `SyncVectorEnv` whose `step` raised `error`, if found."""
    copies = getattr(env, "envs", None)
    if not copies:
        return None
    unwrapped = [copy.unwrapped for copy in copies]
    traceback = error.__traceback__
    index = None
    while traceback is not None:
        owner = traceback.tb_frame.f_locals.get("self")
        for position, (copy, bare) in enumerate(zip(copies, unwrapped)):
            if owner is copy or owner is bare:
                index = position
        traceback = traceback.tb_next
    return index


def episode_statistics(infos: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The episodes a `RecordEpisodeStatistics` wrapper reported this step, if any.

    Returns `(ended, returns, lengths)`, a boolean mask over the copies and the recorded return
    and length of each (valid where `ended`), from `infos["episode"]` (mask
    `infos["_episode"]`); a same-step-autoreset `SyncVectorEnv` nests the last step's infos of
    a finished copy in `infos["final_info"]`, read as well. None when the step reported none.
    """
    final_info = infos.get("final_info")
    for source in (infos, final_info if isinstance(final_info, dict) else {}):
        if "episode" in source:
            episode = source["episode"]
            ended = np.asarray(source.get("_episode", np.ones(len(episode["r"]), bool)), bool)
            return ended, np.asarray(episode["r"], np.float64), np.asarray(episode["l"], np.int64)
    return None


def records_episode_statistics(env) -> bool:
    """Whether a vector environment reports whole episodes in `infos["episode"]`.

    True when its metadata says so (`metadata["episode_statistics"]`, which
    `dlkit.rl.make_atari_env` sets), or when the first copy of a `SyncVectorEnv` is wrapped in
    gymnasium's `RecordEpisodeStatistics`. An environment that ends episodes more often than it
    records them (an Atari life loss) must say so, so that returns are counted per record.
    """
    from gymnasium.wrappers import RecordEpisodeStatistics

    if env.metadata.get("episode_statistics"):
        return True
    copy = (getattr(env, "envs", None) or [None])[0]
    while copy is not None:
        if isinstance(copy, RecordEpisodeStatistics):
            return True
        copy = getattr(copy, "env", None)
    return False
