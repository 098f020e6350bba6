"""Token embedding with a sinusoidal positional encoding added [notes §7.3, eqs. 7.12-7.13]."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from dlkit.layers.positional_encoding import SinusoidalPositionalEncoding
from dlkit.validation import check_int

__all__ = ["TokenAndPositionEmbedding", "check_token_ids"]


def _concrete_values(tensor):
    """Returns the values of an eager tensor or array as NumPy, or None inside a trace."""
    if isinstance(tensor, np.ndarray):
        return tensor
    if isinstance(tensor, keras.KerasTensor):
        return None
    try:
        return ops.convert_to_numpy(tensor)
    except Exception:  # a jax tracer or a symbolic tf.Tensor: values unknown until run time
        return None


def check_token_ids(token_ids, vocabulary_size, name="token_ids"):
    """Raises a `ValueError` when some token id lies outside [0, vocabulary_size).

    Embedding lookups do not agree across backends on ids outside the table: TensorFlow raises
    on CPU and returns zeros on GPU, JAX clamps them silently, PyTorch raises. Checking the ids
    before they reach a model gives one clear error everywhere. Inside a compiled function the
    values are unknown, and the check is skipped.

    Args:
        token_ids: integer token ids of any shape, a NumPy array or an eager tensor.
        vocabulary_size: the number of rows of the embedding table (an integer >= 1).
        name: the argument name to report in the error.

    Returns:
        `token_ids`, unchanged.

    Example:

        >>> import numpy as np
        >>> check_token_ids(np.array([[3, 4, 0]]), vocabulary_size=13).shape
        (1, 3)
    """
    check_int("vocabulary_size", vocabulary_size)
    values = _concrete_values(token_ids)
    if values is None or values.size == 0:
        return token_ids
    if not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.equal(np.mod(values, 1), 0)):
            raise ValueError(
                f"Expected `{name}` to hold integer token ids. Received: {name} of dtype "
                f"{values.dtype} with non-integer values"
            )
    low, high = values.min(), values.max()
    if low < 0 or high >= vocabulary_size:
        bad = low if low < 0 else high
        raise ValueError(
            f"Expected `{name}` to lie in [0, {vocabulary_size}) (vocabulary_size="
            f"{vocabulary_size}). Received: a token id {int(bad)} in {name}"
        )
    return token_ids


@keras.saving.register_keras_serializable(package="dlkit")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Embeds token ids and adds the sinusoidal encoding of their positions.

    The input layer of every transformer in dlkit. Each token id selects a learned vector; the
    vector is scaled by √output_dim, as in the paper, so that it is not drowned by the positional
    encoding (whose entries lie in [-1, 1]), and the fixed sine/cosine code of its position is
    added. Id 0 is padding: with `mask_zero=True` the layer attaches a Keras mask that the
    following layers read. The layer refuses sequences longer than `max_length`, the length the
    model is declared for (and exported with), and token ids outside the vocabulary whenever
    their values are known (eager calls; compiled training steps cannot raise on values).

    Equation:

        outputs[b, t] = √output_dim · E[token_ids[b, t]] + PE(start_index + t)
            with E the (vocabulary_size, output_dim) embedding table and PE the sinusoidal
            encoding of `SinusoidalPositionalEncoding`      [notes §7.3, eqs. 7.12-7.13]
        mask[b, t] = token_ids[b, t] != 0                     (with mask_zero)

    Args:
        vocabulary_size: number of token ids, including padding and special tokens (>= 1).
        max_length: the longest sequence the layer accepts (an integer >= 1).
        output_dim: size of each embedding, the model width d_model (an integer >= 1).
        mask_zero: whether id 0 is padding and gets masked. Defaults to `True`.
        embeddings_initializer: initializer of the embedding table. Defaults to `"uniform"`
            (Keras' `Embedding` default).
        positional_variant: `"vaswani"` (default) or `"notes"`, see `SinusoidalPositionalEncoding`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        token_ids: integer ids, shape (B, T) with T <= max_length.
        start_index: position of the first token (an integer; used when decoding one step at a
            time). Defaults to `0`.

    Returns:
        The embedded sequences, shape (B, T, output_dim), with a boolean (B, T) Keras mask when
        `mask_zero`.

    Example:

        >>> import numpy as np
        >>> embedding = TokenAndPositionEmbedding(vocabulary_size=13, max_length=8, output_dim=4)
        >>> print(tuple(embedding(np.array([[3, 4, 5, 0]])).shape))
        (1, 4, 4)

    Reference:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017
        (https://arxiv.org/abs/1706.03762).
    """

    def __init__(
        self,
        vocabulary_size,
        max_length,
        output_dim,
        mask_zero=True,
        embeddings_initializer="uniform",
        positional_variant="vaswani",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = check_int("vocabulary_size", vocabulary_size)
        self.max_length = check_int("max_length", max_length)
        self.output_dim = check_int("output_dim", output_dim)
        self.mask_zero = bool(mask_zero)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.positional_variant = positional_variant
        self.token_embedding = keras.layers.Embedding(
            self.vocabulary_size,
            self.output_dim,
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_encoding = SinusoidalPositionalEncoding(
            variant=positional_variant, dtype=self.dtype_policy, name="position_encoding"
        )
        self.supports_masking = self.mask_zero

    def _check_length(self, length, start_index=0):
        if isinstance(length, int) and isinstance(start_index, int):
            if length + start_index > self.max_length:
                raise ValueError(
                    f"Expected sequences of at most max_length={self.max_length} tokens. "
                    f"Received: token_ids of length {length}"
                    + (f" starting at position {start_index}" if start_index else "")
                )

    def build(self, token_ids_shape):
        if len(token_ids_shape) != 2:
            raise ValueError(
                "Expected `token_ids` of shape (batch, length). "
                f"Received: token_ids of shape {tuple(token_ids_shape)}"
            )
        self._check_length(token_ids_shape[1])
        self.token_embedding.build(token_ids_shape)

    def call(self, token_ids, start_index=0):
        self._check_length(ops.shape(token_ids)[1], start_index)
        check_token_ids(token_ids, self.vocabulary_size)
        embedded = self.token_embedding(token_ids)  # (B, T, D)
        embedded = embedded * ops.cast(math.sqrt(self.output_dim), embedded.dtype)
        return embedded + self.position_encoding(embedded, start_index=start_index)

    def compute_mask(self, token_ids, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(token_ids, 0)  # (B, T)

    def compute_output_shape(self, token_ids_shape):
        return (*token_ids_shape, self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "max_length": self.max_length,
                "output_dim": self.output_dim,
                "mask_zero": self.mask_zero,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "positional_variant": self.positional_variant,
            }
        )
        return config
