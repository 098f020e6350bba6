"""Sampling a VAE's latent code with the reparameterisation trick [notes §5.2]."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["GaussianSampling"]


@keras.saving.register_keras_serializable(package="dlkit")
class GaussianSampling(keras.layers.Layer):
    """Draws z ~ N(mean, exp(log_variance)) so that gradients reach both parameters.

    The encoder of a variational autoencoder predicts, for each input, the mean μ and the log
    variance log σ² of a Gaussian over the latent code; the decoder reconstructs from a sample
    z of that Gaussian. Sampling is not differentiable with respect to μ and σ, but the same
    draw can be written as a deterministic function of them and of parameter-free noise ε, and
    that function is differentiable: the reparameterisation trick. The encoder predicts log σ²
    rather than σ so that its output may be any real number.

    By default the layer samples at inference too, like the Keras VAE examples, so that a
    trained encoder–decoder still produces varied reconstructions; with
    `sample_at_inference=False` a call with `training=False` returns the mean, the most likely
    code.

    Equation:

        epsilon = normal(0, I)                               same shape as `mean`
        z       = mean + exp(½ · log_variance) ⊙ epsilon     [notes §5.2]

    Args:
        sample_at_inference: whether calls with `training=False` also sample (default `True`);
            if `False` they return `mean`.
        seed: integer seed of the noise (`keras.random.SeedGenerator`). Defaults to `None`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        mean: the mean μ predicted by the encoder, shape (B, latent_dim) (any shape works).
        log_variance: the log variance log σ², the shape of `mean`.
        training: whether the call is a training call. Defaults to `False`.

    Returns:
        The sample z, the shape of `mean`.

    Example:

        >>> import numpy as np
        >>> mean = np.zeros((4, 2), dtype="float32")
        >>> log_variance = np.zeros((4, 2), dtype="float32")
        >>> print(tuple(GaussianSampling(seed=0)(mean, log_variance).shape))
        (4, 2)

    Reference:
        Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014
        (https://arxiv.org/abs/1312.6114), §2.4.
    """

    def __init__(self, sample_at_inference=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.sample_at_inference = sample_at_inference
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, mean_shape, log_variance_shape):
        _check_shapes(mean_shape, log_variance_shape)

    def call(self, mean, log_variance, training=False):
        _check_shapes(mean.shape, log_variance.shape)
        if not (training or self.sample_at_inference):
            return mean
        dtype = keras.backend.standardize_dtype(mean.dtype)
        epsilon = keras.random.normal(ops.shape(mean), dtype=dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_variance) * epsilon

    def compute_output_shape(self, mean_shape, log_variance_shape):
        return tuple(mean_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"sample_at_inference": self.sample_at_inference, "seed": self.seed})
        return config


def _check_shapes(mean_shape, log_variance_shape):
    mean_shape, log_variance_shape = tuple(mean_shape), tuple(log_variance_shape)
    compatible = len(mean_shape) == len(log_variance_shape) and all(
        a is None or b is None or a == b for a, b in zip(mean_shape, log_variance_shape)
    )
    if not compatible:
        raise ValueError(
            f"Expected `log_variance` to have the shape of `mean`, {mean_shape}. "
            f"Received: log_variance.shape={log_variance_shape}"
        )
