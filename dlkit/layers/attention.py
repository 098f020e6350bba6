"""Attention: score functions, masked softmax and multi-head attention [notes §7.2-7.3]."""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
from keras import ops

from dlkit.layers._initializers import clone_initializer
from dlkit.validation import check_choice, check_fraction, check_int, check_shape

__all__ = [
    "AdditiveScore",
    "MultiHeadAttention",
    "attention",
    "masked_softmax",
    "scaled_dot_product_scores",
]

_SCORES = ("dot_product", "additive")


def scaled_dot_product_scores(query, key):
    """Scores every key against every query by a dot product scaled by 1/√d [notes eq. 7.10].

    Dividing by √d keeps the scores of unit-variance queries and keys at unit variance whatever
    their size d, so the softmax that follows does not saturate.

    Equation:

        attention_scores[..., i, j] = query[..., i, :] · key[..., j, :] / √d   [notes eq. 7.10]

    Args:
        query: queries, shape (B, ..., Tq, d).
        key: keys, shape (B, ..., Tk, d).

    Returns:
        The scores, shape (B, ..., Tq, Tk).

    Example:

        >>> import numpy as np
        >>> scores = scaled_dot_product_scores(np.ones((2, 3, 4)), np.ones((2, 5, 4)))
        >>> print(tuple(scores.shape))
        (2, 3, 5)
    """
    query = ops.convert_to_tensor(query)
    # Scaling the query before the product, as keras.layers.MultiHeadAttention does.
    scaled_query = query * ops.cast(1.0 / math.sqrt(query.shape[-1]), query.dtype)
    return ops.matmul(scaled_query, ops.swapaxes(key, -1, -2))  # (B, ..., Tq, Tk)


def masked_softmax(attention_scores, mask=None):
    """Softmax over the keys (last axis) that gives masked keys exactly zero weight [eq. 7.8].

    A query whose keys are all masked gets all-zero weights (it attends to nothing) rather than
    a uniform average of masked positions; `keras.layers.Softmax` does the same.

    Equation:

        attention_weights = softmax(where(mask, attention_scores, −10⁹))   [notes eq. 7.8]
        attention_weights = where(mask, attention_weights, 0)

    Args:
        attention_scores: scores, shape (B, ..., Tq, Tk).
        mask: optional boolean mask broadcastable to the scores; `True` marks a key the query
            may attend to.

    Returns:
        The attention weights, shape (B, ..., Tq, Tk); each row sums to 1 (or to 0 where every
        key is masked).

    Example:

        >>> import numpy as np
        >>> weights = masked_softmax(np.zeros((1, 2, 3)), mask=np.array([True, True, False]))
        >>> print(np.round(keras.ops.convert_to_numpy(weights)[0, 0], 2))
        [0.5 0.5 0. ]
    """
    attention_scores = ops.convert_to_tensor(attention_scores)
    if mask is None:
        return ops.softmax(attention_scores, axis=-1)
    mask = ops.cast(mask, "bool")
    # A large finite number rather than −inf, so that a fully masked row gives no NaN.
    dtype = keras.backend.standardize_dtype(attention_scores.dtype)
    large_negative = -3e4 if dtype == "float16" else -1e9
    attention_scores = ops.where(mask, attention_scores, large_negative)
    attention_weights = ops.softmax(attention_scores, axis=-1)
    return ops.where(mask, attention_weights, ops.zeros_like(attention_weights))


def attention(
    query, key, value, mask=None, score_function: Callable = scaled_dot_product_scores
) -> tuple:
    """Reads the values with weights given by how well each key matches the query [eqs. 7.7-7.9].

    Equation:

        attention_scores  = score_function(query, key)              [notes eq. 7.7]
        attention_weights = masked_softmax(attention_scores, mask)  [notes eq. 7.8]
        outputs           = attention_weights @ value               [notes eq. 7.9]

    Args:
        query: queries, shape (B, ..., Tq, d).
        key: keys, shape (B, ..., Tk, d) (any width for an `AdditiveScore`).
        value: values, shape (B, ..., Tk, dv).
        mask: optional boolean mask broadcastable to (B, ..., Tq, Tk); `True` marks a key the
            query may attend to.
        score_function: a callable `(query, key) -> (B, ..., Tq, Tk)` scores:
            `scaled_dot_product_scores` (default) or an `AdditiveScore` layer.

    Returns:
        A tuple `(outputs, attention_weights)` of shapes (B, ..., Tq, dv) and (B, ..., Tq, Tk).

    Example:

        >>> import numpy as np
        >>> outputs, weights = attention(np.ones((2, 3, 4)), np.ones((2, 5, 4)), np.ones((2, 5, 6)))
        >>> print(tuple(outputs.shape), tuple(weights.shape))
        (2, 3, 6) (2, 3, 5)
    """
    check_same_batch(query=query, key=key, value=value)
    attention_scores = score_function(query, key)  # (B, ..., Tq, Tk)
    attention_weights = masked_softmax(attention_scores, mask)  # (B, ..., Tq, Tk)
    outputs = ops.matmul(attention_weights, ops.cast(value, attention_weights.dtype))
    return outputs, attention_weights  # (B, ..., Tq, dv), (B, ..., Tq, Tk)


def _additive_scores(projected_query, projected_key, score_vector):
    # Every query row meets every key row: (.., Tq, 1, U) + (.., 1, Tk, U) -> (.., Tq, Tk, U).
    hidden = ops.tanh(ops.expand_dims(projected_query, -2) + ops.expand_dims(projected_key, -3))
    return ops.sum(hidden * score_vector, axis=-1)  # (B, ..., Tq, Tk)


@keras.saving.register_keras_serializable(package="dlkit")
class AdditiveScore(keras.layers.Layer):
    """Additive (MLP) attention score: a one-hidden-layer network rates each query–key pair.

    Unlike the dot product, queries and keys may have different widths, and the match is learned.

    Equation:

        attention_scores[..., i, j] = score_vector · tanh(query[..., i, :] @ query_kernel
                                                          + key[..., j, :] @ key_kernel)

    Eq. 7.11 of the notes stops at the vector tanh(W_q q + W_k k); as in Bahdanau et al., the
    learned `score_vector` (v) turns it into one number per pair.   [notes eq. 7.11]

    Args:
        units: the width U of the hidden layer (an integer >= 1).
        kernel_initializer: initializer of `query_kernel`, `key_kernel` and `score_vector`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        query: queries, shape (B, ..., Tq, dq).
        key: keys, shape (B, ..., Tk, dk).

    Returns:
        The scores, shape (B, ..., Tq, Tk).

    Example:

        >>> import numpy as np
        >>> score = AdditiveScore(units=8)
        >>> print(tuple(score(np.ones((2, 3, 4)), np.ones((2, 5, 6))).shape))
        (2, 3, 5)

    Reference:
        Bahdanau, Cho and Bengio, "Neural Machine Translation by Jointly Learning to Align and
        Translate", ICLR 2015 (https://arxiv.org/abs/1409.0473).
    """

    def __init__(self, units, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = check_int("units", units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, query_shape, key_shape):
        def kernel(shape, name):
            return self.add_weight(
                shape, initializer=clone_initializer(self.kernel_initializer), name=name
            )

        self.query_kernel = kernel((query_shape[-1], self.units), "query_kernel")
        self.key_kernel = kernel((key_shape[-1], self.units), "key_kernel")
        self.score_vector = kernel((self.units,), "score_vector")

    def call(self, query, key):
        projected_query = ops.matmul(query, self.query_kernel)  # (B, ..., Tq, U)
        projected_key = ops.matmul(key, self.key_kernel)  # (B, ..., Tk, U)
        return _additive_scores(projected_query, projected_key, self.score_vector)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="dlkit")
class MultiHeadAttention(keras.layers.Layer):
    """Several attention heads on separate learned projections, combined by one projection.

    Each head projects the queries, keys and values into its own subspace and attends there, so
    different heads can look at different positions for different reasons; one output
    projection sums the heads back to the query width. The layer is a drop-in for
    `keras.layers.MultiHeadAttention` on sequences (rank-3 inputs): the arguments it shares
    with Keras have the same names, the masks follow the same rules, and the weights have the
    same shapes in the same order, so `set_weights` moves weights between the two and their
    outputs agree. The dot-product score runs through `keras.ops.dot_product_attention` (the
    backend's fused kernel) unless the weights are returned, dropout is active (training), the
    score is additive or `value_dim != key_dim`; an explicit path then gives the same result.

    Where the two layers differ, Keras is at odds with itself or fails: an explicit `query_mask`
    is applied (Keras reads only the Keras mask attached to `query`); a query whose keys are all
    masked (a padded query) gets a zero context vector on both paths, as on Keras' explicit
    path, whereas Keras' fused path averages the masked values there; and `value_dim !=
    key_dim` works on JAX. Not supported: `attention_axes` (inputs of rank > 3),
    `sliding_window`, `flash_attention`, `use_gate`, regularizers and constraints.

    Equation (every head h at once; B batch, H heads, Tq/Tk lengths, E output width):

        query_heads = query @ query_kernel + query_bias          (B, Tq, H, key_dim)
        key_heads   = key @ key_kernel + key_bias                (B, Tk, H, key_dim)
        value_heads = value @ value_kernel + value_bias          (B, Tk, H, value_dim)
        attention_scores  = query_heads_h · key_heads_h / √key_dim     [notes eq. 7.10]
            or, with score="additive", score_vector_h · tanh(query_heads_h + key_heads_h)
                                                                     [notes eq. 7.11]
        attention_weights = masked_softmax(attention_scores, mask)     [notes eq. 7.8]
        context = dropout(attention_weights) @ value_heads_h     (B, Tq, H, value_dim) [eq. 7.9]
        outputs = Σ_h context_h @ output_kernel_h + output_bias  (B, Tq, E)  [notes §7.3]

        mask = attention_mask ∧ query_mask[:, :, None] ∧ value_mask[:, None, :]
               ∧ key_mask[:, None, :] ∧ (i >= j if use_causal_mask), each term when given

    Args:
        num_heads: the number of heads H (an integer >= 1).
        key_dim: the width of each head's queries and keys (an integer >= 1).
        value_dim: the width of each head's values; defaults to `key_dim`.
        dropout: dropout rate on the attention weights while training, in [0, 1).
        use_bias: whether the four projections have biases. Defaults to `True`.
        output_shape: the output width E (an integer or a tuple of feature dimensions);
            defaults to the width of `query`.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.
        score: `"dot_product"` (default, eq. 7.10) or `"additive"` (eq. 7.11, one extra weight
            `score_vector` of shape (H, key_dim), no Keras counterpart).
        seed: seed of the dropout.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        query: shape (B, Tq, dq).
        value: shape (B, Tk, dv).
        key: shape (B, Tk, dk); defaults to `value`.
        query_mask: boolean (B, Tq), `False` at padded queries; defaults to the Keras mask of
            `query` (from `Embedding(mask_zero=True)`, `Masking`, ...).
        value_mask: boolean (B, Tk), `False` at padded values; defaults to the Keras mask of
            `value`.
        key_mask: boolean (B, Tk), like `value_mask`, for `key`.
        attention_mask: boolean (B, Tq, Tk) (or broadcastable, or (B, H, Tq, Tk)), `True` where
            query i may attend to key j.
        return_attention_scores: also return the attention weights (post-softmax, named
            scores as in Keras).
        training: whether to apply dropout.
        use_causal_mask: forbid query i to attend to keys j > i (a decoder's self-attention).

    Returns:
        The outputs, shape (B, Tq, E), carrying the Keras mask of `query`; with
        `return_attention_scores=True`, a tuple `(outputs, attention_weights)` with weights
        of shape (B, H, Tq, Tk).

    Example:

        >>> import numpy as np
        >>> layer = MultiHeadAttention(num_heads=2, key_dim=4)
        >>> query, value = np.ones((3, 5, 8)), np.ones((3, 7, 6))
        >>> outputs, weights = layer(query, value, return_attention_scores=True)
        >>> print(tuple(outputs.shape), tuple(weights.shape))
        (3, 5, 8) (3, 2, 5, 7)

    Reference:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017
        (https://arxiv.org/abs/1706.03762).
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        score="dot_product",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_int("num_heads", num_heads)
        self.key_dim = check_int("key_dim", key_dim)
        self.value_dim = self.key_dim if value_dim is None else check_int("value_dim", value_dim)
        self.dropout = check_fraction("dropout", dropout)
        self.use_bias = use_bias
        # Named `_output_shape` as in Keras: `model.summary()` would read a public
        # `output_shape` attribute as the shape of the layer's output.
        self._output_shape = _output_dims(output_shape)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.score = check_choice("score", score, _SCORES)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None
        self.supports_masking = True

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) != 3:
                raise ValueError(
                    f"Expected `{name}` of rank 3, shape (B, T, dim). "
                    f"Received: {name}.shape={tuple(shape)}"
                )
        if None not in (key_shape[1], value_shape[1]) and key_shape[1] != value_shape[1]:
            raise ValueError(
                "Expected `key` and `value` of the same length. "
                f"Received: key.shape={tuple(key_shape)}, value.shape={tuple(value_shape)}"
            )
        heads, output_dims = self.num_heads, self._output_shape or (query_shape[-1],)

        def kernel(shape, name):
            return self.add_weight(
                shape, initializer=clone_initializer(self.kernel_initializer), name=name
            )

        def bias(shape, name):
            if not self.use_bias:
                return None
            return self.add_weight(
                shape, initializer=clone_initializer(self.bias_initializer), name=name
            )

        # The shapes and order of keras.layers.MultiHeadAttention's weights.
        self.query_kernel = kernel((query_shape[-1], heads, self.key_dim), "query_kernel")
        self.query_bias = bias((heads, self.key_dim), "query_bias")
        self.key_kernel = kernel((key_shape[-1], heads, self.key_dim), "key_kernel")
        self.key_bias = bias((heads, self.key_dim), "key_bias")
        self.value_kernel = kernel((value_shape[-1], heads, self.value_dim), "value_kernel")
        self.value_bias = bias((heads, self.value_dim), "value_bias")
        self.output_kernel = kernel((heads, self.value_dim, *output_dims), "output_kernel")
        self.output_bias = bias(output_dims, "output_bias")
        self.score_vector = None
        if self.score == "additive":
            self.score_vector = kernel((heads, self.key_dim), "score_vector")

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        key = value if key is None else key
        check_same_batch(query=query, value=value, key=key)
        query_heads = _project(query, self.query_kernel, self.query_bias)  # (B, Tq, H, Dk)
        key_heads = _project(key, self.key_kernel, self.key_bias)  # (B, Tk, H, Dk)
        value_heads = _project(value, self.value_kernel, self.value_bias)  # (B, Tk, H, Dv)
        apply_dropout = bool(training) and self.dropout > 0
        # The fused kernel returns no weights and has no dropout; on JAX it also needs
        # value_dim == key_dim.
        fused = not (
            return_attention_scores
            or apply_dropout
            or self.score == "additive"
            or self.value_dim != self.key_dim
        )
        other_masks = (query_mask, value_mask, key_mask, attention_mask)
        causal_only = fused and use_causal_mask and all(m is None for m in other_masks)
        mask = None
        if not causal_only:
            mask = _merge_masks(query, key, *other_masks, use_causal_mask)  # (B|1, H|1, Tq, Tk)
        if fused:
            context = self._fused_attention(query_heads, key_heads, value_heads, mask, causal_only)
            attention_weights = None
        else:
            context, attention_weights = self._explicit_attention(
                query_heads, key_heads, value_heads, mask, apply_dropout
            )
        outputs = ops.tensordot(context, self.output_kernel, axes=[[2, 3], [0, 1]])  # (B, Tq, E)
        if self.output_bias is not None:
            outputs = outputs + self.output_bias
        return (outputs, attention_weights) if return_attention_scores else outputs

    def _fused_attention(self, query_heads, key_heads, value_heads, mask, is_causal):
        context = ops.dot_product_attention(
            query_heads,
            key_heads,
            value_heads,
            mask=mask,
            scale=1.0 / math.sqrt(self.key_dim),
            is_causal=is_causal,
        )  # (B, Tq, H, Dv)
        if mask is None:
            return context
        # The fused kernel averages the values for a query whose keys are all masked; the
        # explicit path (masked_softmax) gives it a zero context vector. Match the latter.
        query_has_keys = ops.swapaxes(ops.any(mask, axis=-1), 1, 2)  # (B|1, Tq, H|1)
        return context * ops.cast(ops.expand_dims(query_has_keys, -1), context.dtype)

    def _explicit_attention(self, query_heads, key_heads, value_heads, mask, apply_dropout):
        query_heads = ops.transpose(query_heads, (0, 2, 1, 3))  # (B, H, Tq, Dk)
        key_heads = ops.transpose(key_heads, (0, 2, 1, 3))  # (B, H, Tk, Dk)
        if self.score == "dot_product":
            attention_scores = scaled_dot_product_scores(query_heads, key_heads)  # (B, H, Tq, Tk)
        else:
            score_vector = ops.reshape(self.score_vector, (self.num_heads, 1, 1, self.key_dim))
            attention_scores = _additive_scores(query_heads, key_heads, score_vector)
        attention_weights = masked_softmax(attention_scores, mask)  # (B, H, Tq, Tk)
        dropped_weights = attention_weights
        if apply_dropout:
            dropped_weights = keras.random.dropout(
                attention_weights, self.dropout, seed=self.seed_generator
            )
        context = ops.einsum("bhts,bshd->bthd", dropped_weights, value_heads)  # (B, Tq, H, Dv)
        return context, attention_weights

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_shape": self._output_shape,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "score": self.score,
                "seed": self.seed,
            }
        )
        return config


def check_same_batch(**tensors) -> None:
    """Raises a ValueError naming every shape when tensors of one rank have different static
    batch sizes (the first dimension; unknown ones, as while tracing, are not compared; inputs
    of different ranks broadcast and are left alone)."""
    shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
    if len({len(shape) for shape in shapes.values()}) != 1:
        return
    sizes = {shape[0] for shape in shapes.values() if len(shape) and shape[0] is not None}
    if len(sizes) > 1:
        received = ", ".join(f"{name}.shape={shape}" for name, shape in shapes.items())
        raise ValueError(f"Expected inputs with the same batch size. Received: {received}")


def _output_dims(output_shape):
    if output_shape is None:
        return None
    dims = check_shape("output_shape", output_shape, minimum=1)
    if not dims:  # `()` would fall back to the query's width in `build`
        raise ValueError(
            "Expected `output_shape` to be None, an integer >= 1 or a tuple of them. "
            f"Received: output_shape={output_shape!r}"
        )
    return dims


def _project(inputs, kernel, bias):
    projected = ops.einsum("btd,dhk->bthk", inputs, kernel)  # (B, T, H, K)
    return projected if bias is None else projected + bias


def _merge_masks(query, key, query_mask, value_mask, key_mask, attention_mask, use_causal_mask):
    # Each part is brought to rank 4, (B|1, H|1, Tq|1, Tk|1), before the logical and.
    masks = []
    if query_mask is not None:
        masks.append(ops.expand_dims(ops.cast(query_mask, "bool"), (1, 3)))  # (B, 1, Tq, 1)
    for padding_mask in (value_mask, key_mask):
        if padding_mask is not None:
            masks.append(ops.expand_dims(ops.cast(padding_mask, "bool"), (1, 2)))  # (B, 1, 1, Tk)
    if use_causal_mask:
        query_positions = ops.arange(ops.shape(query)[1])
        key_positions = ops.arange(ops.shape(key)[1])
        causal_mask = ops.expand_dims(query_positions, 1) >= ops.expand_dims(key_positions, 0)
        masks.append(ops.expand_dims(causal_mask, (0, 1)))  # (1, 1, Tq, Tk)
    if attention_mask is not None:
        attention_mask = ops.cast(attention_mask, "bool")
        while len(attention_mask.shape) < 4:
            attention_mask = ops.expand_dims(attention_mask, -3)  # (B, 1, Tq, Tk)
        masks.append(attention_mask)
    if not masks:
        return None
    mask = masks[0]
    for other in masks[1:]:
        mask = ops.logical_and(mask, other)
    return mask
