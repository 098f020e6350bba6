"""Running normalisation of observations and rewards, as Stable-Baselines3's `VecNormalize`.

An agent built with `normalize_observations=True` standardises every observation by running
statistics of the observations its environments returned during `learn`; with
`normalize_rewards=True` it divides the rewards it learns from by the running standard
deviation of a discounted return. Both keep the inputs of the networks and the scale of the
value targets near unit size whatever the units of the environment (joint angles and velocities
of a MuJoCo robot, rewards in the hundreds), the condition gradient descent trains best in
[notes §3.1, §9.2.3].

The statistics are NumPy float64 (`RunningMeanStd`), updated with the parallel form of Welford's
algorithm (Chan et al.), so that updating chunk by chunk gives the mean and variance of all the
data seen. `ObservationNormalization` is the same standardisation as a Keras layer in
`keras.ops`, holding the statistics as non-trainable weights: the agent keeps it in sync and puts
it in front of its exported policy, which then takes raw observations.

Equation:

    observations:  x̂ = clip((x − μ) / sqrt(σ² + ε), −clip_x, clip_x)
    rewards:       R_t = γ R_{t−1} + r_t  (R = 0 after an episode ends)
                   r̂_t = clip(r_t / sqrt(Var[R] + ε), −clip_r, clip_r)
    statistics:    δ = μ_b − μ,  n' = n + n_b,  μ' = μ + δ n_b / n',
                   σ'² = (σ² n + σ_b² n_b + δ² n n_b / n') / n'

Reference:
    Chan, Golub and LeVeque, "Updating formulae and a pairwise algorithm for computing sample
    variances", 1979; Raffin et al., "Stable-Baselines3", JMLR 2021 (`VecNormalize`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from dlkit.validation import check_non_negative, check_positive, check_shape

__all__ = ["ObservationNormalization", "RewardScaler", "RunningMeanStd", "standardize"]

# The prior count of fresh statistics (mean 0, variance 1), as SB3's: it keeps the first
# update's division finite and weighs next to nothing against real data.
PRIOR_COUNT = 1e-4
# The defaults of `AgentConfig` and `ObservationNormalization` (SB3's).
EPSILON = 1e-8
CLIP = 10.0


def standardize(x, mean, variance, epsilon: float, clip: float) -> np.ndarray:
    """clip((x − mean) / sqrt(variance + epsilon), −clip, clip) in NumPy, as float32."""
    x = np.asarray(x, np.float64)
    scaled = (x - mean) / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    return np.clip(scaled, -clip, clip).astype(np.float32)


class RunningMeanStd:
    """The running mean and variance of a stream of arrays, updated batch by batch.

    Args:
        shape: the shape of one sample, `()` for scalars.
        count: the prior count of the initial mean 0 and variance 1. Defaults to `PRIOR_COUNT`;
            0 gives the exact statistics of the data.

    Example:

        >>> statistics = RunningMeanStd((2,), count=0)
        >>> statistics.update(np.array([[0.0, 1.0], [2.0, 3.0]]))
        >>> statistics.mean.tolist(), statistics.var.tolist()
        ([1.0, 2.0], [1.0, 1.0])
    """

    def __init__(self, shape: tuple[int, ...] = (), count: float = PRIOR_COUNT):
        self.shape = tuple(check_shape("shape", shape)) if shape else ()
        self.mean = np.zeros(self.shape, np.float64)
        self.var = np.ones(self.shape, np.float64)
        self.count = float(check_non_negative("count", count))

    def update(self, batch) -> None:
        """Adds a batch (B, *shape) to the statistics."""
        batch = np.asarray(batch, np.float64).reshape(-1, *self.shape)
        self.update_from_moments(batch.mean(axis=0), batch.var(axis=0), len(batch))

    def update_from_moments(self, batch_mean, batch_var, batch_count: int) -> None:
        """Merges the moments of a batch of `batch_count` samples (the module's equation)."""
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        squares = self.var * self.count + batch_var * batch_count
        self.var = (squares + np.square(delta) * self.count * batch_count / total) / total
        self.count = total

    def state(self) -> dict[str, np.ndarray]:
        """The statistics as arrays for a `.npz` file."""
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": np.float64(self.count)}

    def restore(self, state, name: str, path) -> None:
        """Restores what `state` wrote; `name` and `path` name them in the error.

        Raises:
            ValueError: if a statistic is not finite (a run that diverged, a corrupted file),
                or has another shape; the statistics are then left as they were.
        """
        for key in ("mean", "var", "count"):
            value = np.asarray(state[key], np.float64)
            expected = () if key == "count" else self.shape
            if value.shape != expected:
                raise ValueError(
                    f"Expected the statistic {name}/{key} of shape {expected}. "
                    f"Received: path={str(path)!r} holding shape {value.shape}"
                )
            if not np.all(np.isfinite(value)):
                raise ValueError(
                    f"Expected finite normalisation statistics. Received: {name}/{key}="
                    f"{value.tolist()} in path={str(path)!r}. Resume from an earlier checkpoint "
                    "or start the run afresh (a NaN here usually means the run diverged)."
                )
        self.mean = np.asarray(state["mean"], np.float64).copy()
        self.var = np.asarray(state["var"], np.float64).copy()
        self.count = float(state["count"])


class RewardScaler:
    """Scales rewards by the running standard deviation of each copy's discounted return.

    Args:
        num_envs: the number of environment copies.
        gamma: the discount γ of the running returns.
        epsilon: ε under the square root.
        clip: the bound of the scaled rewards, > 0.

    Example:

        >>> scaler = RewardScaler(num_envs=1, gamma=0.9, epsilon=1e-8, clip=10.0)
        >>> scaler.scale(np.array([2.0]), np.array([False])).shape
        (1,)
    """

    def __init__(self, num_envs: int, gamma: float, epsilon: float, clip: float):
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.clip = float(clip)
        self.statistics = RunningMeanStd(())
        self.returns = np.zeros(num_envs, np.float64)

    def reset(self, num_envs: int) -> None:
        """Starts every copy's discounted return at 0 (the environments were reset)."""
        self.returns = np.zeros(num_envs, np.float64)

    def scale(self, rewards, dones) -> np.ndarray:
        """Updates the statistics with this step's returns; returns the scaled rewards (B,)."""
        rewards = np.asarray(rewards, np.float64)
        self.returns = self.gamma * self.returns + rewards
        self.statistics.update(self.returns)
        scaled = standardize(rewards, 0.0, self.statistics.var, self.epsilon, self.clip)
        self.returns[np.asarray(dones, bool)] = 0.0
        return scaled


@keras.saving.register_keras_serializable(package="dlkit")
class ObservationNormalization(keras.layers.Layer):
    """Standardises observations by running statistics held as non-trainable weights.

    The weights `mean` and `variance` are set from outside (an agent copies its running
    statistics into them); the layer never changes them, so a model that starts with it
    (an exported policy) takes raw observations.

    Equation:

        x̂ = clip((x − mean) / sqrt(variance + epsilon), −clip, clip)

    Args:
        epsilon: ε under the square root, > 0. Defaults to `EPSILON` (1e-8).
        clip: the bound of the standardised values, > 0. Defaults to `CLIP` (10).
        **kwargs: other `keras.layers.Layer` arguments.

    Call arguments:
        x: observations (B, *shape), any real dtype.

    Returns:
        The standardised observations, float (B, *shape).

    Example:

        >>> layer = ObservationNormalization()
        >>> tuple(layer(np.zeros((2, 3))).shape)
        (2, 3)
    """

    def __init__(self, epsilon: float = EPSILON, clip: float = CLIP, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = check_positive("epsilon", epsilon)
        self.clip = check_positive("clip", clip)

    def build(self, input_shape):
        shape = tuple(input_shape[1:])
        self.mean = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="mean")
        self.variance = self.add_weight(
            shape=shape, initializer="ones", trainable=False, name="variance"
        )

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        scaled = (x - self.mean) / ops.sqrt(self.variance + self.epsilon)
        return ops.clip(scaled, -self.clip, self.clip)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def set_statistics(self, statistics: RunningMeanStd) -> None:
        """Copies the running statistics into the weights."""
        self.mean.assign(statistics.mean.astype(self.variable_dtype))
        self.variance.assign(statistics.var.astype(self.variable_dtype))

    def standardize(self, x) -> np.ndarray:
        """The layer's output in NumPy, from the weights' current values."""
        mean = ops.convert_to_numpy(self.mean.value)
        variance = ops.convert_to_numpy(self.variance.value)
        return standardize(x, mean, variance, self.epsilon, self.clip)

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon, "clip": self.clip})
        return config
