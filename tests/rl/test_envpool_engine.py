"""The envpool engine keeps dlkit's vector-environment contract, checked against gymnasium."""

import sys

import gymnasium as gym
import numpy as np
import pytest

from dlkit.rl import PPO, make_vector_env
from dlkit.rl.envs import ENGINES

envpool = pytest.importorskip(
    "envpool", reason='envpool is not installed (pip install "dlkit[envpool]")'
)

from dlkit.rl.envpool_engine import INSTALL_HINT, make_envpool_atari  # noqa: E402

SAME_STEP = gym.vector.AutoresetMode.SAME_STEP


def envpool_cartpole(num_envs, seed=0, **options):
    return make_vector_env(
        "CartPole-v1", num_envs, engine="envpool", num_threads=1, seed=seed, **options
    )


def play(env, steps, seed=0, actions_seed=0):
    """Observations, rewards, terminations, truncations and episodes of `steps` random steps."""
    rng = np.random.default_rng(actions_seed)
    observations, _ = env.reset(seed=seed)
    trajectory = [observations]
    for _ in range(steps):
        actions = rng.integers(env.single_action_space.n, size=env.num_envs)
        observations, rewards, terminated, truncated, _infos = env.step(actions)
        trajectory += [observations, rewards, terminated, truncated]
    return trajectory


@pytest.mark.parametrize("max_episode_steps, num_threads", [(500, 1), (12, 2)])
def test_cartpole_steps_in_lockstep_with_gymnasium_sync_vector_env(max_episode_steps, num_threads):
    """Same starts and actions: the same observations, rewards, ends, final observations and
    episode statistics as gymnasium's SyncVectorEnv + RecordEpisodeStatistics (SAME_STEP).

    envpool draws its starts with another generator than gymnasium; each gymnasium copy is
    put in envpool's start state at every (re)start, then both step on their own. With
    max_episode_steps=12 most episodes end by truncation.
    """
    num_envs = 4
    pool = make_vector_env(
        "CartPole-v1",
        num_envs,
        engine="envpool",
        num_threads=num_threads,
        max_episode_steps=max_episode_steps,
    )
    reference = gym.wrappers.vector.RecordEpisodeStatistics(
        make_vector_env("CartPole-v1", num_envs, max_episode_steps=max_episode_steps)
    )
    copies = [copy.unwrapped for copy in reference.env.envs]
    observations, _ = pool.reset(seed=0)
    reference.reset(seed=0)
    for copy, start in zip(copies, observations):
        copy.state = start.astype(np.float64)
    rng = np.random.default_rng(0)
    ended = {"terminated": 0, "truncated": 0}
    for _ in range(300):
        actions = rng.integers(2, size=num_envs)
        observations, rewards, terminated, truncated, infos = pool.step(actions)
        expected, expected_rewards, expected_terminated, expected_truncated, expected_infos = (
            reference.step(actions)
        )
        np.testing.assert_array_equal(truncated, expected_truncated)
        # envpool reports an episode that ends and hits the time limit in the same step as
        # truncated only (its terminated is done & ~truncated); gymnasium sets both.
        np.testing.assert_array_equal(terminated, expected_terminated & ~expected_truncated)
        np.testing.assert_array_equal(rewards, expected_rewards)
        ended["terminated"] += int(terminated.sum())
        ended["truncated"] += int(truncated.sum())
        finished = terminated | truncated
        assert ("final_obs" in infos) == ("final_obs" in expected_infos) == finished.any()
        if finished.any():
            np.testing.assert_array_equal(infos["_final_obs"], expected_infos["_final_obs"])
            for index in np.flatnonzero(finished):
                np.testing.assert_allclose(
                    infos["final_obs"][index], expected_infos["final_obs"][index], atol=1e-4
                )
            np.testing.assert_array_equal(infos["_episode"], expected_infos["_episode"])
            for key in ("r", "l"):
                np.testing.assert_array_equal(infos["episode"][key], expected_infos["episode"][key])
            # The finished copies start their next episode in this very step.
            for index in np.flatnonzero(finished):
                assert not np.allclose(observations[index], infos["final_obs"][index])
                copies[index].state = observations[index].astype(np.float64)
                expected[index] = observations[index]
        np.testing.assert_allclose(observations, expected, atol=1e-4)
    assert ended["terminated"] > 5
    if max_episode_steps == 12:
        assert ended["truncated"] > 10


def test_spaces_and_metadata_match_gymnasium():
    pool = envpool_cartpole(3)
    reference = make_vector_env("CartPole-v1", 3)
    assert pool.metadata["autoreset_mode"] == SAME_STEP
    assert pool.metadata["episode_statistics"]  # the agents score from info["episode"]
    assert pool.num_envs == 3
    assert pool.single_action_space == reference.single_action_space
    assert pool.action_space == reference.action_space
    assert pool.single_observation_space.shape == reference.single_observation_space.shape
    assert pool.observation_space.shape == (3, 4)


def test_seeds_repeat_runs_and_copy_i_gets_seed_plus_i():
    first = play(envpool_cartpole(3), 40, seed=7)
    again = play(envpool_cartpole(3, seed=123), 40, seed=7)  # reset(seed=) reseeds the pool
    listed = play(envpool_cartpole(3), 40, seed=[7, 8, 9])
    other = play(envpool_cartpole(3), 40, seed=8)
    for a, b, c in zip(first, again, listed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    # Copy 1 of seed 7 starts where copy 0 of seed 8 does; copy 0 differs.
    np.testing.assert_array_equal(first[0][1], other[0][0])
    assert not np.array_equal(first[0][0], other[0][0])


def test_halfcheetah_spaces_match_gymnasium():
    pytest.importorskip("mujoco", reason='mujoco is not installed (pip install "dlkit[mujoco]")')
    pool = make_vector_env("HalfCheetah-v5", 2, engine="envpool", num_threads=1)
    reference = gym.make("HalfCheetah-v5")
    assert pool.single_observation_space.shape == reference.observation_space.shape
    assert pool.single_observation_space.dtype == reference.observation_space.dtype
    assert pool.single_action_space == reference.action_space  # float32, as gymnasium's
    observations, _ = pool.reset(seed=0)
    observations, rewards, *_ = pool.step(pool.action_space.sample())
    assert observations.shape == (2, 17) and rewards.shape == (2,)


def test_breakout_observations_are_gymnasium_atari_preprocessing_frame_stacks():
    """The layout of gymnasium's AtariPreprocessing + FrameStackObservation(4): uint8 stacks
    of four 84×84 grayscale frames, channels first, and ALE v5's minimal action set."""
    pool = make_envpool_atari("ALE/Breakout-v5", 2, seed=0, num_threads=1)
    assert pool.single_observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert pool.single_action_space == gym.spaces.Discrete(4)
    observations, _ = pool.reset(seed=0)
    assert observations.shape == (2, 4, 84, 84) and observations.dtype == np.uint8
    assert observations.std() > 0  # a frame, not a blank screen
    pool = make_envpool_atari("ALE/Breakout-v5", 1, frame_stack=2, screen_size=64)
    assert pool.single_observation_space.shape == (2, 64, 64)


def test_breakout_repeats_under_a_seed():
    """Sticky actions and no-op starts draw from the seeds: a seed replays the same frames."""
    first, again, other = (
        play(make_envpool_atari("ALE/Breakout-v5", 2, seed=seed, num_threads=1), 60, seed=seed)
        for seed in (3, 3, 4)
    )
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def test_breakout_episodes_are_whole_games_with_true_scores():
    """Learning episodes end at each lost life with clipped rewards; `info["episode"]` reports
    a whole game (Breakout's 5 lives) with its unclipped score, as gymnasium's
    RecordEpisodeStatistics placed before the life and clipping wrappers does."""
    pool = make_envpool_atari("ALE/Breakout-v5", 2, seed=0, num_threads=1)
    pool.reset(seed=0)
    rng = np.random.default_rng(0)
    lives_lost = np.zeros(2, int)
    clipped = np.zeros(2)
    score = np.zeros(2)
    length = np.zeros(2, int)
    games = []
    while len(games) < 3:
        _observations, rewards, terminated, truncated, infos = pool.step(rng.integers(4, size=2))
        finished = terminated | truncated
        # The game's own reward of this step: the finished copies' is in their final info.
        raw = np.array(infos["reward"], copy=True)
        for index in np.flatnonzero(finished):
            raw[index] = infos["final_info"][index]["reward"]
        np.testing.assert_array_equal(rewards, np.sign(raw))
        clipped += rewards
        score += raw
        length += 1
        lives_lost += terminated
        if "episode" in infos:
            for index in np.flatnonzero(infos["_episode"]):
                assert lives_lost[index] == 5
                assert infos["episode"]["r"][index] == score[index]
                assert infos["episode"]["l"][index] == length[index]
                games.append(score[index])
                lives_lost[index] = score[index] = length[index] = 0
    assert sum(games) > 0


def test_breakout_without_life_loss_or_clipping_reports_each_game():
    pool = make_envpool_atari(
        "Breakout-v5",
        1,
        seed=0,
        terminal_on_life_loss=False,
        clip_rewards=False,
        num_threads=1,
    )
    pool.reset(seed=0)
    total, steps = 0.0, 0
    while True:
        _, rewards, terminated, truncated, infos = pool.step(pool.action_space.sample())
        total += float(rewards[0])
        steps += 1
        if terminated[0] or truncated[0]:
            break
    assert infos["_episode"][0] and infos["episode"]["r"][0] == total
    assert infos["episode"]["l"][0] == steps and infos["lives"][0] == 5


def test_ppo_trains_on_envpool_cartpole_through_the_same_contract():
    """PPO's loop on envpool counts steps and episodes as on gymnasium: returns are lengths
    on CartPole and finished plus running episodes hold every step."""
    env = envpool_cartpole(3)
    agent = PPO.from_env(env, hidden_units=(8,), n_steps=20, batch_size=20, epochs=1, seed=0)
    agent.learn(env, 600, verbose=0)
    assert agent.num_timesteps == 600
    assert agent.num_updates == 600 // 60 * 3
    assert agent.num_episodes > 10
    np.testing.assert_array_equal(agent.episode_returns, agent.episode_lengths)
    assert sum(agent.episode_lengths) + int(agent._episode_length.sum()) == 600


def test_ppo_trains_on_envpool_breakout_through_the_same_contract():
    env = make_envpool_atari("ALE/Breakout-v5", 2, seed=0, num_threads=1)
    try:
        agent = PPO.from_env(env, hidden_units=(8,), n_steps=16, batch_size=32, epochs=1, seed=0)
    except (ValueError, TypeError) as error:
        pytest.skip(f"image observations need the convolutional torso (issue 21): {error}")
    agent.learn(env, 96, verbose=0)
    assert agent.num_timesteps == 96
    assert agent.num_updates == 96 // 32


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match=r"`engine`.*Received: engine='ray'"):
        make_vector_env("CartPole-v1", 2, engine="ray")
    assert ENGINES == ("gymnasium", "envpool")


def test_env_id_envpool_lacks_is_refused():
    with pytest.raises(ValueError, match=r"envpool.list_all_envs.*env_id='FrozenLake8x8-v9'"):
        make_vector_env("FrozenLake8x8-v9", 2, engine="envpool")
    with pytest.raises(ValueError, match=r"Atari game.*env_id='CartPole-v1'"):
        make_envpool_atari("CartPole-v1", 2)


def test_asynchronous_envpool_is_refused_with_num_threads_as_the_fix():
    with pytest.raises(ValueError, match=r"`asynchronous`.*num_threads"):
        make_vector_env("CartPole-v1", 2, asynchronous=True, engine="envpool")
    with pytest.raises(ValueError, match=r"`batch_size`.*Received: batch_size=1"):
        make_vector_env("CartPole-v1", 2, engine="envpool", batch_size=1)


def test_missing_envpool_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "envpool", None)  # import envpool raises ImportError
    with pytest.raises(ImportError, match=INSTALL_HINT.replace("[", r"\[").replace("]", r"\]")):
        make_vector_env("CartPole-v1", 2, engine="envpool")
    assert INSTALL_HINT == 'pip install "dlkit[envpool]"'
