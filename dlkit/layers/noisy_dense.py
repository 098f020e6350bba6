"""Dense layer with learned parametric noise on its weights, for exploration [notes eq. 9.16]."""

from __future__ import annotations

import math

import keras
from keras import ops

from dlkit.validation import check_int, check_non_negative

__all__ = ["NoisyDense"]

# Initial noise scales of Fortunato et al. 2018, §3.2.
_FACTORISED_SIGMA_0 = 0.5
_INDEPENDENT_SIGMA_0 = 0.017


@keras.saving.register_keras_serializable(package="dlkit")
class NoisyDense(keras.layers.Layer):
    """Dense layer whose weights carry learned Gaussian noise: a noisy network layer.

    A drop-in replacement for `keras.layers.Dense` in a Q-network. Next to the usual kernel and
    bias (the means, μ_W and μ_b) it learns a noise scale for every weight (σ_W and σ_b). On
    every training call it draws fresh standard-normal noise ε and uses μ + σ ⊙ ε. Because σ is
    learned, the network decides by gradient descent how much randomness to keep, and where in
    the state space; this replaces ε-greedy exploration.

    Noise, as in the paper:

    - factorised (default): ε_W = f(ε_in) f(ε_out)ᵀ and ε_b = f(ε_out) with f(x) = sign(x)·√|x|
      and ε_in ~ N(0, I_p), ε_out ~ N(0, I_q), only p + q draws per call. Initially
      μ ~ U[−1/√p, 1/√p] and σ = sigma_0 / √p, with sigma_0 = 0.5 by default.
    - independent (`factorised=False`): every entry of ε_W and ε_b is its own N(0, 1) draw.
      Initially μ ~ U[−√(3/p), √(3/p)] and σ = sigma_0, with sigma_0 = 0.017 by default.

    Here p is the input size and q = `units`. One noise sample is shared by the whole batch of
    a call. At inference (`training=False`) the layer uses the mean weights μ, a deterministic
    greedy policy, unless `noisy_inference=True`. Acting for exploration therefore needs either
    `training=True` or `noisy_inference=True`. Deviation from the paper, which draws new noise
    after each optimisation step and acts with that draw until the next one: here every noisy
    call draws anew, so the layer holds no noise between calls.

    Equation:

        outputs = activation(bias + inputs · kernel
                             + (noisy_bias ⊙ ε_b + inputs · (noisy_kernel ⊙ ε_W)))
        [notes eq. 9.16: kernel = W = μ_W, bias = b = μ_b, noisy_kernel = W_noisy = σ_W,
         noisy_bias = b_noisy = σ_b; at inference the noisy term is dropped unless
         noisy_inference]

    Args:
        units: the output size q (an integer >= 1).
        activation: activation function, as in `keras.layers.Dense`. Defaults to none.
        use_bias: whether the layer has a bias (and a noisy bias). Defaults to `True`.
        sigma_0: initial noise scale (a number >= 0): σ = sigma_0 / √p for factorised noise,
            σ = sigma_0 for independent noise. `None` (default) takes the paper's value for the
            chosen noise, 0.5 or 0.017.
        factorised: factorised (default) or independent Gaussian noise, as above.
        noisy_inference: whether calls with `training=False` also add noise. Defaults to `False`.
        seed: integer seed of the noise (`keras.random.SeedGenerator`). Defaults to `None`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: shape (B, ..., p).
        training: whether to add freshly drawn noise. Defaults to `False`.

    Returns:
        Shape (B, ..., units).

    Example:

        >>> import numpy as np
        >>> layer = NoisyDense(3, seed=0)
        >>> print(tuple(layer(np.ones((4, 8), dtype="float32"), training=True).shape))
        (4, 3)

    Reference:
        Fortunato et al., "Noisy Networks for Exploration", ICLR 2018
        (https://arxiv.org/abs/1706.10295).
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        sigma_0=None,
        factorised=True,
        noisy_inference=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_int("units", units)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.sigma_0 = None if sigma_0 is None else check_non_negative("sigma_0", sigma_0)
        self.factorised = factorised
        self.noisy_inference = noisy_inference
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "Expected the last axis of `inputs` to be known. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        if self.factorised:
            sigma_0 = _FACTORISED_SIGMA_0 if self.sigma_0 is None else self.sigma_0
            mean_bound = 1.0 / math.sqrt(input_dim)
            initial_sigma = sigma_0 / math.sqrt(input_dim)
        else:
            initial_sigma = _INDEPENDENT_SIGMA_0 if self.sigma_0 is None else self.sigma_0
            mean_bound = math.sqrt(3.0 / input_dim)
        mean_initializer = keras.initializers.RandomUniform(-mean_bound, mean_bound)
        sigma_initializer = keras.initializers.Constant(initial_sigma)
        self.kernel = self.add_weight(
            shape=(input_dim, self.units), initializer=mean_initializer, name="kernel"
        )
        self.noisy_kernel = self.add_weight(
            shape=(input_dim, self.units), initializer=sigma_initializer, name="noisy_kernel"
        )
        self.bias = self.noisy_bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,), initializer=mean_initializer, name="bias"
            )
            self.noisy_bias = self.add_weight(
                shape=(self.units,), initializer=sigma_initializer, name="noisy_bias"
            )

    def sample_noise(self):
        """Draws one noise sample from the layer's seed generator (the next one a call would use).

        Returns:
            `(epsilon_kernel, epsilon_bias)`: ε_W of shape (p, units) and ε_b of shape (units,),
            or `None` for ε_b when `use_bias=False`.
        """
        input_dim = self.kernel.shape[0]
        if not self.factorised:
            epsilon_kernel = keras.random.normal(
                (input_dim, self.units), dtype=self.compute_dtype, seed=self.seed_generator
            )
            epsilon_bias = None
            if self.use_bias:
                epsilon_bias = keras.random.normal(
                    (self.units,), dtype=self.compute_dtype, seed=self.seed_generator
                )
            return epsilon_kernel, epsilon_bias
        epsilon_in = _scale_noise(
            keras.random.normal((input_dim,), dtype=self.compute_dtype, seed=self.seed_generator)
        )
        epsilon_out = _scale_noise(
            keras.random.normal((self.units,), dtype=self.compute_dtype, seed=self.seed_generator)
        )
        epsilon_kernel = ops.outer(epsilon_in, epsilon_out)  # (p, units)
        return epsilon_kernel, epsilon_out if self.use_bias else None

    def call(self, inputs, training=False):
        outputs = ops.matmul(inputs, self.kernel)  # (B, ..., units)
        if self.use_bias:
            outputs = outputs + self.bias
        if training or self.noisy_inference:
            epsilon_kernel, epsilon_bias = self.sample_noise()
            outputs = outputs + ops.matmul(inputs, self.noisy_kernel * epsilon_kernel)
            if self.use_bias:
                outputs = outputs + self.noisy_bias * epsilon_bias
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "sigma_0": self.sigma_0,
                "factorised": self.factorised,
                "noisy_inference": self.noisy_inference,
                "seed": self.seed,
            }
        )
        return config


def _scale_noise(noise):
    """f(x) = sign(x)·√|x|, the scaling of factorised noise (Fortunato et al. 2018, §3)."""
    return ops.sign(noise) * ops.sqrt(ops.abs(noise))
