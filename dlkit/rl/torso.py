"""The Nature-DQN convolutional torso for stacked uint8 frames (`nature_cnn`), shared by the
network builders.

Atari observations reach the agents as uint8 stacks of grayscale frames, channels first,
(frame_stack, height, width), as gymnasium's `AtariPreprocessing` + `FrameStackObservation`
(and envpool) produce them. The torso takes them raw: it scales by 1/255 and moves the frame
axis last inside the network, so a replay buffer stores bytes, not floats, and an exported
policy takes the frames an emulator gives [notes §9.1.2].
"""

from __future__ import annotations

import math

import keras
import numpy as np

from dlkit.layers.noisy_dense import NoisyDense
from dlkit.validation import check_int

__all__ = [
    "IMAGE_DTYPE",
    "MIN_IMAGE_SIZE",
    "check_image_observations",
    "is_image_space",
    "nature_cnn",
    "observation_features",
]

# The dtype of image observations, end to end: environment, buffers and the network's input.
IMAGE_DTYPE = "uint8"
# The Nature convolutions (filters, kernel size, stride), without padding.
NATURE_CONVOLUTIONS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
# The smallest height and width the three unpadded convolutions accept.
MIN_IMAGE_SIZE = 36


def is_image_space(observation) -> bool:
    """Whether `observation` (a shape or a gymnasium space) is meant for the image torso:
    of rank 3 or more, or a uint8 space of rank 2 (one unstacked frame)."""
    shape = tuple(getattr(observation, "shape", observation) or ())
    dtype = getattr(observation, "dtype", None)
    return len(shape) >= 3 or (
        len(shape) == 2 and dtype is not None and np.dtype(dtype) == np.uint8
    )


def check_image_observations(observation, name: str = "observation_space") -> tuple[int, ...]:
    """Checks a shape (or a gymnasium Box space) of stacked frames; returns the shape.

    Raises:
        ValueError: for a rank other than 3, frames smaller than `MIN_IMAGE_SIZE`, or a Box
            whose dtype is not uint8; the message names the fix.
    """
    shape = tuple(int(size) for size in (getattr(observation, "shape", observation) or ()))
    dtype = getattr(observation, "dtype", None)
    if len(shape) != 3:
        raise ValueError(
            f"Expected `{name}` of images to be stacked grayscale frames of rank 3, "
            "(frame_stack, height, width) channels first: wrap the environment in "
            "gymnasium's AtariPreprocessing and FrameStackObservation (dlkit.rl.make_atari_env "
            f"does). Received: {name}={observation!r} of rank {len(shape)}"
        )
    if dtype is not None and np.dtype(dtype) != np.dtype(IMAGE_DTYPE):
        raise ValueError(
            f"Expected `{name}` of images to hold raw uint8 frames (the network scales them "
            "by 1/255 itself): use AtariPreprocessing(scale_obs=False), the default of "
            f"dlkit.rl.make_atari_env. Received: {name}={observation!r} of dtype "
            f"{np.dtype(dtype).name}"
        )
    if min(shape[1:]) < MIN_IMAGE_SIZE:
        raise ValueError(
            f"Expected `{name}` frames of at least {MIN_IMAGE_SIZE}×{MIN_IMAGE_SIZE} pixels for "
            "the Nature convolutions (84×84 is customary: screen_size=84). "
            f"Received: {name}={observation!r}"
        )
    return shape


def nature_cnn(
    observation_shape: tuple[int, ...],
    units: int = 512,
    noisy: bool = False,
    name: str = "nature_cnn",
) -> keras.Model:
    """The convolutional torso of Nature DQN, from raw uint8 frame stacks to features.

    Three ReLU convolutions (32 filters 8×8 stride 4, 64 4×4 stride 2, 64 3×3 stride 1,
    no padding) and a dense ReLU layer of `units`, on frames scaled to [0, 1] and moved to
    channels last (the layout every backend's CPU convolution supports). The kernels start
    orthogonal with gain √2, as in the PPO and DQN baselines.

    Equation:

        x = permute(frames / 255)        # (B, C, H, W) uint8 → (B, H, W, C) float
        h = ReLU(W_d · flatten(conv₃(conv₂(conv₁(x)))) + b_d)     [notes §9.1.2]

    Args:
        observation_shape: (frame_stack, height, width), height and width >= 36.
        units: the width of the dense layer. Defaults to 512.
        noisy: make the dense layer a `NoisyDense` (Rainbow's noisy nets). Defaults to False.
        name: the model's name. Defaults to `"nature_cnn"`.

    Returns:
        A functional `keras.Model` from uint8 (B, frame_stack, height, width) to float
        features (B, units), to be called inside a Q-network, actor or critic.

    Example:

        >>> torso = nature_cnn((4, 84, 84))
        >>> torso.output.shape
        (None, 512)

    Reference:
        Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015.
    """
    shape = check_image_observations(observation_shape, "observation_shape")
    units = check_int("units", units)
    frames = keras.Input(shape, dtype=IMAGE_DTYPE, name="frames")
    x = keras.layers.Rescaling(1.0 / 255.0, name="scale")(frames)
    x = keras.layers.Permute((2, 3, 1), name="channels_last")(x)  # (B, H, W, C)
    for index, (filters, kernel_size, strides) in enumerate(NATURE_CONVOLUTIONS):
        x = keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            activation="relu",
            data_format="channels_last",
            kernel_initializer=keras.initializers.Orthogonal(math.sqrt(2.0)),
            name=f"conv_{index}",
        )(x)
    x = keras.layers.Flatten(name="flatten")(x)  # (B, h · w · 64)
    if noisy:
        x = NoisyDense(units, activation="relu", name="dense")(x)
    else:
        x = keras.layers.Dense(
            units,
            activation="relu",
            kernel_initializer=keras.initializers.Orthogonal(math.sqrt(2.0)),
            name="dense",
        )(x)
    return keras.Model(frames, x, name=name)


def observation_features(observation, noisy: bool = False, torso: keras.Model | None = None):
    """The input of a network builder and its first features: `(inputs, features)`.

    Images (`is_image_space`) get a uint8 input and the Nature torso (`torso` when given, to
    share one between networks); vectors a float32 input, flattened when of rank > 1.

    Args:
        observation: a shape, or a gymnasium observation space.
        noisy: a noisy dense layer in a new torso. Defaults to False.
        torso: an existing `nature_cnn` to call instead of a new one. Defaults to None.

    Returns:
        `(inputs, features)`: a `keras.Input` and the tensor built on it.
    """
    if is_image_space(observation):
        shape = check_image_observations(observation, _argument_name(observation))
        inputs = keras.Input(shape, dtype=IMAGE_DTYPE, name="observations")
        torso = torso if torso is not None else nature_cnn(shape, noisy=noisy)
        return inputs, torso(inputs)
    shape = tuple(int(size) for size in getattr(observation, "shape", observation))
    inputs = keras.Input(shape, name="observations")
    return inputs, keras.layers.Flatten()(inputs) if len(shape) > 1 else inputs


def _argument_name(observation) -> str:
    return "observation_space" if hasattr(observation, "shape") else "observation_shape"
