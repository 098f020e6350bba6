"""Sinusoidal positional encoding for transformers [notes §7.3, eqs. 7.12-7.13]."""

from __future__ import annotations

import keras
from keras import ops

from dlkit.validation import check_choice, check_positive

__all__ = ["SinusoidalPositionalEncoding"]

_VARIANTS = ("vaswani", "notes")


@keras.saving.register_keras_serializable(package="dlkit")
class SinusoidalPositionalEncoding(keras.layers.Layer):
    """Fixed sine/cosine encoding of each position, the same size as the token embeddings.

    Attention ignores the order of its inputs, so a transformer adds to each token embedding a
    vector that depends only on the token's position. Channel pairs (2i, 2i+1) hold a sine and a
    cosine of the position at one frequency; the wavelengths grow geometrically across the
    channels, from 2π up to about `max_wavelength`·2π, so that nearby positions get similar codes
    and every position gets a distinct one. The layer has no weights. It returns the encoding
    broadcast to the shape of `inputs`; add it to the embeddings yourself, as with
    `keras_hub.layers.SinePositionEncoding`, whose argument names this layer shares.

    Two variants differ only in the exponent of the cosine channels:

    - `"vaswani"` (default, the paper and `keras_hub`): both members of a pair share a frequency,
      so the pair is a rotation of one angle and a fixed offset k gives a linear map between the
      encodings of pos and pos + k.
    - `"notes"`: the exponent of channel j is j / d, so the cosine channel 2i+1 has a slightly
      lower frequency than its sine partner. This is what eq. 7.13 of the notes writes; it differs
      from the paper, which this layer follows by default.

    An odd `d` is allowed: the last channel d−1 is even and holds a sine.

    Equation:

        Variant "vaswani" [Vaswani et al. 2017, §3.5]:
        encoding[pos, 2i]   = sin(pos / max_wavelength^(2i / d))
        encoding[pos, 2i+1] = cos(pos / max_wavelength^(2i / d))

        Variant "notes" [notes eqs. 7.12-7.13]:
        encoding[pos, 2i]   = sin(pos / max_wavelength^(2i / d))        [notes eq. 7.12]
        encoding[pos, 2i+1] = cos(pos / max_wavelength^((2i+1) / d))    [notes eq. 7.13]

        with pos = start_index, ..., start_index + T − 1, d the size of the last axis and
        max_wavelength = 10000 in both the notes and the paper.

    Args:
        max_wavelength: the base of the geometric progression of wavelengths (a number > 0).
            Defaults to `10000`.
        variant: `"vaswani"` (default) or `"notes"`, the exponent of the cosine channels as above.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: the token embeddings, shape (B, T, d); only the shape is used. T may be unknown
            (`None`) in a functional model.
        start_index: an integer or integer scalar tensor, the position of the first token
            (useful when decoding one step at a time). Defaults to `0`.

    Returns:
        The positional encoding broadcast to the shape of `inputs`, (B, T, d), in the layer's
        compute dtype.

    Example:

        >>> import numpy as np
        >>> embeddings = np.zeros((2, 5, 8), dtype="float32")
        >>> encoding = SinusoidalPositionalEncoding()(embeddings)
        >>> print(tuple(encoding.shape))
        (2, 5, 8)
        >>> print(np.round(keras.ops.convert_to_numpy(encoding)[0, 0, :4], 3))
        [0. 1. 0. 1.]

    Reference:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (https://arxiv.org/abs/1706.03762).
    """

    def __init__(self, max_wavelength=10000, variant="vaswani", **kwargs):
        super().__init__(**kwargs)
        check_positive("max_wavelength", max_wavelength)
        # Plain Python numbers keep the config JSON-serializable (NumPy scalars are not).
        self.max_wavelength = (
            max_wavelength if isinstance(max_wavelength, int) else float(max_wavelength)
        )
        self.variant = check_choice("variant", variant, _VARIANTS)
        self.built = True

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        sequence_length, model_dim = shape[-2], shape[-1]
        # Angles are computed in float32 even under mixed precision: positions in the thousands
        # lose their fractional part in float16.
        positions = ops.cast(ops.arange(sequence_length) + start_index, "float32")  # (T,)
        channels = ops.arange(model_dim)  # (d,)
        if self.variant == "vaswani":
            exponents = 2 * (channels // 2)  # channels 2i and 2i+1 both use 2i
        else:
            exponents = channels  # channel 2i uses 2i, channel 2i+1 uses 2i+1 (eq. 7.13)
        exponents = ops.cast(exponents, "float32") / ops.cast(model_dim, "float32")
        angular_frequencies = ops.power(float(self.max_wavelength), -exponents)  # (d,)
        angles = positions[:, None] * angular_frequencies[None, :]  # (T, d)
        is_cosine = ops.cast(channels % 2, "float32")  # (d,): 0 on sine, 1 on cosine channels
        encoding = (1.0 - is_cosine) * ops.sin(angles) + is_cosine * ops.cos(angles)  # (T, d)
        encoding = ops.cast(encoding, self.compute_dtype)
        return ops.broadcast_to(encoding, shape)  # (B, T, d)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"max_wavelength": self.max_wavelength, "variant": self.variant})
        return config
