"""Tests of Atari pixels: make_atari_env's wrappers on the real ALE Breakout, the Nature torso,
uint8 frames end to end through the agents, and true game scores in logs and evaluation."""

import sys

import gymnasium as gym
import keras
import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")  # gymnasium's AtariPreprocessing resizes with OpenCV

from dlkit.rl import (
    DQN,
    PPO,
    build_actor_critic,
    build_q_network,
    make_atari_env,
    nature_cnn,
)
from dlkit.rl.agent import evaluate_vector
from dlkit.rl.torso import MIN_IMAGE_SIZE
from dlkit.training.gradients import value_and_grad

GAME = "ALE/Breakout-v5"
SCORING_GAME = "ALE/SpaceInvaders-v5"
FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
# Deterministic copies for the semantics tests: no sticky actions, no random no-ops.
DETERMINISTIC = dict(repeat_action_probability=0.0, noop_max=0)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def frames(batch=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, *FRAMES.shape), dtype=np.uint8)


class EpisodeSpy(gym.vector.VectorWrapper):
    """Keeps every step's rewards, ends and whole-game records of a one-copy vector env."""

    def __init__(self, env):
        super().__init__(env)
        self.rewards, self.ended, self.records = [], [], []

    def step(self, actions):
        observations, rewards, terminated, truncated, infos = self.env.step(actions)
        self.rewards.append(float(rewards[0]))
        self.ended.append(bool(terminated[0] or truncated[0]))
        final = infos.get("final_info", {})
        if "episode" in final and final["_episode"][0]:
            self.records.append((float(final["episode"]["r"][0]), int(final["episode"]["l"][0])))
        return observations, rewards, terminated, truncated, infos


def play_one_game(clip_rewards, seed=0):
    """Random actions (seeded) on one Space Invaders copy (3 lives, aliens worth 5 to 30
    points) until its first whole game ends."""
    env = EpisodeSpy(make_atari_env(SCORING_GAME, clip_rewards=clip_rewards, **DETERMINISTIC))
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    while not env.records:
        env.step(rng.integers(env.single_action_space.n, size=1))
    return env


# ---------------------------------------------------------------------------- wrappers


def test_observations_are_uint8_frame_stacks_channels_first():
    env = make_atari_env(GAME, num_envs=2, frame_stack=3, screen_size=42)
    observations, _ = env.reset(seed=0)
    assert env.single_observation_space == gym.spaces.Box(0, 255, (3, 42, 42), np.uint8)
    assert observations.shape == (2, 3, 42, 42) and observations.dtype == np.uint8
    observations, *_ = env.step(np.array([1, 1]))
    assert observations.dtype == np.uint8 and observations.max() > 0
    assert env.metadata["episode_statistics"] is True


def test_life_loss_ends_the_learning_episode_but_the_game_and_its_true_score_go_on():
    clipped = play_one_game(clip_rewards=True)
    true = play_one_game(clip_rewards=False)
    # The same deterministic game: the learning rewards are the signs of the true ones.
    assert len(clipped.rewards) == len(true.rewards)
    np.testing.assert_array_equal(clipped.rewards, np.sign(true.rewards))
    assert max(true.rewards) > 1
    # Three lives, three learning episodes, one game recorded at its true (unclipped) score.
    assert sum(true.ended) == 3 and true.ended[-1]
    score, length = true.records[0]
    assert clipped.records[0] == true.records[0]
    assert score == sum(true.rewards) > sum(clipped.rewards)
    # Its length counts the hidden steps: FIRE and 2 after every reset, a no-op after a
    # lost life.
    assert length == len(true.rewards) + 2 + 2 * 3


@pytest.mark.parametrize("fire_on_reset", [True, False])
def test_fire_on_reset_launches_the_ball(fire_on_reset):
    env = make_atari_env(GAME, fire_on_reset=fire_on_reset, **DETERMINISTIC)
    env.reset(seed=0)
    lost = 0
    for _ in range(150):  # NOOP only: without FIRE the ball never comes
        _, _, terminated, _, _ = env.step(np.zeros(1, np.int64))
        lost += int(terminated[0])
    assert (lost > 0) == fire_on_reset


def test_evaluation_scores_whole_games_not_lives():
    env = EpisodeSpy(make_atari_env(GAME, **DETERMINISTIC))
    rng = np.random.default_rng(0)
    returns = evaluate_vector(lambda x: rng.integers(4, size=len(x)), env, episodes=2)
    assert returns == [record[0] for record in env.records[:2]]
    assert sum(env.ended) >= 10  # each game ended five learning episodes


# ---------------------------------------------------------------------------- the torso


def test_nature_torso_shapes_and_raw_frame_scaling():
    keras.utils.set_random_seed(0)
    torso = nature_cnn(FRAMES.shape)
    assert torso.input.dtype == "uint8"
    shapes = [tuple(torso.get_layer(f"conv_{i}").output.shape[1:]) for i in range(3)]
    assert shapes == [(20, 20, 32), (9, 9, 64), (7, 7, 64)]  # channels last inside
    assert torso.output.shape == (None, 512)
    x = frames(1)
    # The same layers from the permutation on, given float frames x / 255.
    scaled = keras.ops.convert_to_tensor(x.astype("float32") / 255.0)
    h = scaled
    for name in ("channels_last", "conv_0", "conv_1", "conv_2", "flatten", "dense"):
        h = torso.get_layer(name)(h)
    np.testing.assert_allclose(numpy(torso(x)), numpy(h), rtol=1e-5, atol=1e-5)
    permuted = keras.Model(torso.input, torso.get_layer("channels_last").output)
    np.testing.assert_allclose(numpy(permuted(x)), x.transpose(0, 2, 3, 1) / 255.0, atol=1e-7)


@pytest.mark.parametrize(
    "options, output_shape",
    [
        (dict(), (4,)),
        (dict(dueling=True), (4,)),
        (dict(noisy=True), (4,)),
        (dict(num_atoms=11), (4, 11)),
    ],
)
def test_q_network_options_on_frames(options, output_shape):
    network = build_q_network(FRAMES, 4, **options)
    assert network.input.dtype == "uint8"
    assert tuple(network.output.shape[1:]) == output_shape
    assert network.get_layer("nature_cnn").output.shape == (None, 512)
    assert numpy(network(frames())).shape == (2, *output_shape)


def test_shared_torso_is_held_once_and_gets_both_gradients():
    keras.utils.set_random_seed(0)
    actor, critic = build_actor_critic(FRAMES, gym.spaces.Discrete(4))
    separate = build_actor_critic(FRAMES, gym.spaces.Discrete(4), share_torso=False)
    torso = actor.get_layer("nature_cnn")
    assert torso is critic.get_layer("nature_cnn")
    agent = PPO(actor, critic, gym.spaces.Discrete(4), n_steps=8, batch_size=8)
    separate_agent = PPO(*separate, gym.spaces.Discrete(4), n_steps=8, batch_size=8)
    count = lambda model: sum(int(np.prod(v.shape)) for v in model.trainable_variables)  # noqa: E731
    assert count(separate_agent) - count(agent) == count(torso)
    x = frames(1)
    losses = {
        "actor": lambda: keras.ops.sum(keras.ops.square(actor(x))),
        "critic": lambda: keras.ops.sum(critic(x)),
    }
    losses["both"] = lambda: losses["actor"]() + losses["critic"]()
    grads = {
        name: [numpy(g) for g in value_and_grad(fn, torso.trainable_variables)[1]]
        for name, fn in losses.items()
    }
    for both, from_actor, from_critic in zip(grads["both"], grads["actor"], grads["critic"]):
        np.testing.assert_allclose(both, from_actor + from_critic, rtol=1e-4, atol=1e-6)
    assert all(np.abs(g).max() > 0 for g in grads["actor"] + grads["critic"])


# ---------------------------------------------------------------------------- agents


def test_true_scores_are_recorded_where_the_env_records_episodes():
    def cartpole(record):
        env = gym.make("CartPole-v1")
        env = gym.wrappers.RecordEpisodeStatistics(env) if record else env
        return gym.wrappers.TransformReward(env, lambda reward: 0.0)  # a learning reward

    for record in (True, False):
        env = gym.vector.SyncVectorEnv(
            [lambda record=record: cartpole(record)] * 2,
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
        agent = DQN(build_q_network((4,), 2, hidden_units=(8,)), learning_starts=1000, seed=0)
        agent.learn(env, total_timesteps=200, verbose=0)
        assert agent.num_episodes == len(agent.episode_returns) > 2
        expected = agent.episode_lengths if record else [0] * agent.num_episodes
        np.testing.assert_array_equal(agent.episode_returns, expected)
        returns = evaluate_vector(lambda x: np.zeros(len(x), np.int64), env, episodes=2)
        # Pushing left, a pole falls in 8 steps or more: the true score, not the 0 rewards.
        assert min(returns) >= 8 if record else returns == [0.0, 0.0]


def test_dqn_learns_on_breakout_with_uint8_replay():
    env = make_atari_env(GAME, num_envs=2)
    keras.utils.set_random_seed(0)
    agent = DQN(
        build_q_network(env.single_observation_space, 4, dueling=True),
        buffer_size=300,
        learning_starts=64,
        batch_size=8,
        train_frequency=8,
        target_update_interval=10,
        frame_replay=False,  # full stacks, uint8 (the default stores each frame once)
        seed=0,
    )
    agent.learn(env, total_timesteps=200, verbose=0)
    assert agent.num_timesteps == 200 and agent.num_updates > 10
    assert agent.buffer.observations.dtype == np.uint8
    assert agent.buffer.next_observations.dtype == np.uint8
    assert agent.buffer.observations.nbytes == 300 * 4 * 84 * 84  # a byte per pixel
    assert agent.buffer.observations[:200].max() > 0
    observation = agent.buffer.observations[0]
    assert agent.act(observation) == int(agent.q_values(observation[None]).argmax())
    with pytest.raises(ValueError, match=r"raw uint8 frames.*float32"):
        agent.act(observation.astype("float32") / 255.0)


def test_ppo_learns_on_breakout_with_a_shared_torso(tmp_path):
    env = make_atari_env(GAME, num_envs=2)
    keras.utils.set_random_seed(0)
    agent = PPO.from_env(env, n_steps=16, batch_size=16, epochs=1, seed=0)
    torso_before = agent.actor.get_layer("nature_cnn").get_weights()[0].copy()
    agent.learn(env, total_timesteps=128, verbose=0)
    assert agent.num_timesteps == 128 and agent.rollout.observations.dtype == np.uint8
    assert np.abs(agent.actor.get_layer("nature_cnn").get_weights()[0] - torso_before).max() > 0

    path = str(tmp_path / "agent.keras")
    agent.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.actor.get_layer("nature_cnn") is loaded.critic.get_layer("nature_cnn")
    assert len(loaded.trainable_variables) == len(agent.trainable_variables)
    x = frames()
    np.testing.assert_allclose(loaded.value(x), agent.value(x), rtol=1e-5, atol=1e-6)
    policy = agent.policy_model()
    assert policy.input.dtype == "uint8"
    np.testing.assert_array_equal(numpy(policy(x)), agent.act(x))


def test_dqn_keras_file_round_trip_on_frames(tmp_path):
    keras.utils.set_random_seed(0)
    agent = DQN(build_q_network(FRAMES, 4, num_atoms=5), batch_size=4)
    path = str(tmp_path / "agent.keras")
    agent.save(path)
    loaded = keras.models.load_model(path)
    x = frames()
    np.testing.assert_allclose(loaded.q_values(x), agent.q_values(x), rtol=1e-5, atol=1e-6)
    assert loaded.q_network.input.dtype == "uint8"


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="exported in process")
def test_pixel_policy_exports_and_takes_raw_frames(tmp_path):
    from dlkit.export import export, verify

    keras.utils.set_random_seed(0)
    agent = DQN(build_q_network(FRAMES, 4))
    x = frames(3)
    expected = agent.act(x).astype("int32")
    assert verify(export(agent.policy_model(), tmp_path / "policy"), x, expected, atol=0) == 0
    pytest.importorskip("tf2onnx")
    # The greedy action is built without TensorFlow's argmax, whose Bitcast tf2onnx cannot
    # convert: the whole policy, frames to actions, goes to ONNX.
    onnx_path = export(agent.policy_model(), tmp_path / "policy.onnx", format="onnx")
    assert verify(onnx_path, x, expected, atol=0) == 0


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "space, match",
    [
        (gym.spaces.Box(0.0, 1.0, (4, 84, 84), np.float32), r"uint8 frames.*dtype float32"),
        (gym.spaces.Box(0, 255, (84, 84), np.uint8), r"rank 3.*rank 2"),
        (gym.spaces.Box(0, 255, (4, 84, 84, 1), np.uint8), r"rank 3.*rank 4"),
        (gym.spaces.Box(0, 255, (4, 20, 20), np.uint8), rf"at least {MIN_IMAGE_SIZE}"),
    ],
)
def test_image_spaces_the_torso_cannot_take_are_rejected(space, match):
    with pytest.raises(ValueError, match=r"Expected `observation_space`.*" + match):
        build_q_network(space, 4)
    with pytest.raises(ValueError, match=match):
        build_actor_critic(space, gym.spaces.Discrete(4))


def test_float_frames_env_is_rejected_by_a_uint8_network():
    float_frames = gym.spaces.Box(0.0, 1.0, FRAMES.shape, np.float32)

    class FloatFrames(gym.Env):
        observation_space, action_space = float_frames, gym.spaces.Discrete(4)

    agent = DQN(build_q_network(FRAMES, 4), seed=0)
    with pytest.raises(ValueError, match=r"raw uint8 frames.*observation_space=Box.*float32"):
        agent.learn(FloatFrames(), total_timesteps=10, verbose=0)


def test_unknown_atari_ids_and_engines_are_rejected(monkeypatch):
    with pytest.raises(ValueError, match=r"`env_id`.*startswith\('ALE/'\).*env_id='ALE/Nope-v5'"):
        make_atari_env("ALE/Nope-v5")
    with pytest.raises(ValueError, match=r"Atari game.*env_id='CartPole-v1'"):
        make_atari_env("CartPole-v1")
    with pytest.raises(ValueError, match=r"`engine`.*Received: engine='gym'"):
        make_atari_env(GAME, engine="gym")
    monkeypatch.setitem(sys.modules, "envpool", None)  # envpool not installed
    with pytest.raises(ImportError, match=r'pip install "dlkit\[envpool\]"'):
        make_atari_env(GAME, engine="envpool")
    monkeypatch.setitem(sys.modules, "ale_py", None)
    with pytest.raises(ImportError, match=r'pip install "dlkit\[atari\]"'):
        make_atari_env(GAME)


def test_preprocessing_settings_fill_the_defaults_and_check_each_value():
    from dlkit.rl.atari import PREPROCESSING, preprocessing_settings

    assert preprocessing_settings() == PREPROCESSING
    assert preprocessing_settings(frame_stack=2)["frame_stack"] == 2
    with pytest.raises(ValueError, match=r"noop_max=-1"):
        preprocessing_settings(noop_max=-1)
    with pytest.raises(ValueError, match=r"repeat_action_probability=1.5"):
        preprocessing_settings(repeat_action_probability=1.5)
    with pytest.raises(TypeError, match=r"Received: frameskip"):
        preprocessing_settings(frameskip=4)
