"""Transformer encoder and decoder blocks [notes §7.3]."""

from __future__ import annotations

import numbers

import keras

from dlkit.layers.attention import MultiHeadAttention

__all__ = ["TransformerDecoder", "TransformerEncoder"]


@keras.saving.register_keras_serializable(package="dlkit")
class TransformerEncoder(keras.layers.Layer):
    """One transformer encoder block: self-attention, then a position-wise feed-forward network.

    Every position first gathers information from all (unpadded) positions of its sequence by
    multi-head self-attention; then one small two-layer network transforms each position on its
    own. Each of the two sublayers is wrapped in dropout, a residual connection and layer
    normalization, which keeps deep stacks trainable. The inputs are already embedded, with
    their positional encoding added. Argument and call argument names are those of
    `keras_hub.layers.TransformerEncoder`, so one can replace the other.

    Equation (x of shape (B, T, d_model), key_dim = d_model / num_heads):

        attended = MultiHeadAttention(num_heads, key_dim)(x, x)    keys masked by padding_mask
        x = LayerNorm(x + Dropout(attended))                       [notes §7.3]
        fed = activation(x @ W_1 + b_1) @ W_2 + b_2                (B, T, intermediate_dim) inside
        outputs = LayerNorm(x + Dropout(fed))

        That is post-norm (the paper, BERT). With normalize_first=True (pre-norm, GPT-2) each
        sublayer reads the normalized input instead: x = x + Dropout(sublayer(LayerNorm(x))).

    Args:
        intermediate_dim: width of the feed-forward network's hidden layer (an integer >= 1).
        num_heads: number of attention heads; it must divide the model width d_model.
        dropout: dropout rate of the attention weights and of both sublayer outputs, in [0, 1).
        activation: activation of the feed-forward hidden layer. Defaults to `"relu"`.
        layer_norm_epsilon: the epsilon of the layer normalizations. Defaults to `1e-5`.
        kernel_initializer: initializer of the attention and dense kernels.
        bias_initializer: initializer of the attention and dense biases.
        normalize_first: pre-norm if `True`, post-norm (default) if `False`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: embedded sequences, shape (B, T, d_model).
        padding_mask: boolean (B, T), `False` at padding tokens: no position attends to them.
            Defaults to the Keras mask of `inputs` (from `Embedding(mask_zero=True)`) when
            `inputs` is the only tensor argument.
        attention_mask: boolean (B, T, T), `True` where position i may attend to position j.
        training: whether to apply dropout.

    Returns:
        The transformed sequences, shape (B, T, d_model).

    Example:

        >>> import numpy as np
        >>> encoder = TransformerEncoder(intermediate_dim=32, num_heads=2)
        >>> print(tuple(encoder(np.ones((3, 5, 8))).shape))
        (3, 5, 8)

    Reference:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017
        (https://arxiv.org/abs/1706.03762).
    """

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        dropout=0.0,
        activation="relu",
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalize_first=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _store_arguments(
            self,
            intermediate_dim,
            num_heads,
            dropout,
            activation,
            layer_norm_epsilon,
            kernel_initializer,
            bias_initializer,
            normalize_first,
        )

    def build(self, inputs_shape):
        key_dim = _key_dim(self.num_heads, inputs_shape[-1])
        self.self_attention = _attention(
            self, key_dim, inputs_shape, inputs_shape, "self_attention"
        )
        self.self_attention_layer_norm = _layer_norm(
            self, inputs_shape, "self_attention_layer_norm"
        )
        self.self_attention_dropout = _dropout(self, "self_attention_dropout")
        self.feedforward_layer_norm = _layer_norm(self, inputs_shape, "feedforward_layer_norm")
        _build_feedforward(self, inputs_shape)

    def call(self, inputs, padding_mask=None, attention_mask=None, training=None, mask=None):
        # Keras passes the mask attached to `inputs` as `mask` when `inputs` is the only tensor.
        padding_mask = mask if padding_mask is None else padding_mask

        def self_attention(x):
            return self.self_attention(
                x, x, value_mask=padding_mask, attention_mask=attention_mask, training=training
            )

        x = _residual(self, inputs, self_attention, "self_attention", training)
        return _residual(self, x, self._feedforward, "feedforward", training)

    def _feedforward(self, x):
        return self.feedforward_output_dense(self.feedforward_intermediate_dense(x))

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(_config(self))
        return config


@keras.saving.register_keras_serializable(package="dlkit")
class TransformerDecoder(keras.layers.Layer):
    """One transformer decoder block: causal self-attention, cross-attention, feed-forward.

    Like the encoder block, with two changes. Its self-attention is causal by default: position
    t sees only positions up to t, so the block can be trained on whole target sequences and
    still generate one token at a time. And, when it is called with an `encoder_sequence`, a
    second attention sublayer lets every position read the encoder's output (queries from the
    decoder, keys and values from the encoder). Called without one, the block has no
    cross-attention (a decoder-only model such as GPT); the choice is fixed at the first call.
    Names follow `keras_hub.layers.TransformerDecoder` (without its generation caches).

    Equation (x of shape (B, T, d_model), encoder_sequence of shape (B, S, d_e)):

        x = LayerNorm(x + Dropout(MultiHeadAttention(x, x, use_causal_mask=True)))
        x = LayerNorm(x + Dropout(MultiHeadAttention(x, encoder_sequence)))  [notes §7.3]
        outputs = LayerNorm(x + Dropout(activation(x @ W_1 + b_1) @ W_2 + b_2))

        in post-norm; with normalize_first=True, x = x + Dropout(sublayer(LayerNorm(x))).

    Args:
        intermediate_dim: width of the feed-forward network's hidden layer (an integer >= 1).
        num_heads: number of attention heads; it must divide the model width d_model.
        dropout: dropout rate of the attention weights and of the sublayer outputs, in [0, 1).
        activation: activation of the feed-forward hidden layer. Defaults to `"relu"`.
        layer_norm_epsilon: the epsilon of the layer normalizations. Defaults to `1e-5`.
        kernel_initializer: initializer of the attention and dense kernels.
        bias_initializer: initializer of the attention and dense biases.
        normalize_first: pre-norm if `True`, post-norm (default) if `False`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        decoder_sequence: embedded target sequences, shape (B, T, d_model).
        encoder_sequence: the encoder's output, shape (B, S, d_e), or `None` for no
            cross-attention.
        decoder_padding_mask: boolean (B, T), `False` at padding target tokens.
        decoder_attention_mask: boolean (B, T, T), extra self-attention mask.
        encoder_padding_mask: boolean (B, S), `False` at padding source tokens.
        encoder_attention_mask: boolean (B, T, S), extra cross-attention mask.
        use_causal_mask: whether position t may not see positions after t. Defaults to `True`.
        return_attention_scores: also return the attention weights (post-softmax) of both
            attention sublayers, for inspection and heat maps. Defaults to `False`.
        training: whether to apply dropout.

    Returns:
        The transformed target sequences, shape (B, T, d_model). With
        `return_attention_scores=True`, the tuple `(outputs, weights)` with `weights` a dict:
        `"self_attention"` (B, num_heads, T, T) and, with cross-attention,
        `"cross_attention"` (B, num_heads, T, S).

    Example:

        >>> import numpy as np
        >>> decoder = TransformerDecoder(intermediate_dim=32, num_heads=2)
        >>> print(tuple(decoder(np.ones((3, 5, 8)), np.ones((3, 7, 8))).shape))
        (3, 5, 8)

    Reference:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017
        (https://arxiv.org/abs/1706.03762).
    """

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        dropout=0.0,
        activation="relu",
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalize_first=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _store_arguments(
            self,
            intermediate_dim,
            num_heads,
            dropout,
            activation,
            layer_norm_epsilon,
            kernel_initializer,
            bias_initializer,
            normalize_first,
        )

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        shape = decoder_sequence_shape
        key_dim = _key_dim(self.num_heads, shape[-1])
        self.self_attention = _attention(self, key_dim, shape, shape, "self_attention")
        self.self_attention_layer_norm = _layer_norm(self, shape, "self_attention_layer_norm")
        self.self_attention_dropout = _dropout(self, "self_attention_dropout")
        self.cross_attention = None
        if encoder_sequence_shape is not None:
            self.cross_attention = _attention(
                self, key_dim, shape, encoder_sequence_shape, "cross_attention"
            )
            self.cross_attention_layer_norm = _layer_norm(self, shape, "cross_attention_layer_norm")
            self.cross_attention_dropout = _dropout(self, "cross_attention_dropout")
        _build_feedforward(self, shape)
        self.feedforward_layer_norm = _layer_norm(self, shape, "feedforward_layer_norm")

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        decoder_attention_mask=None,
        encoder_padding_mask=None,
        encoder_attention_mask=None,
        use_causal_mask=True,
        return_attention_scores=False,
        training=None,
    ):
        if (encoder_sequence is None) != (self.cross_attention is None):
            raise ValueError(
                "Expected the same call form as the first call, which built the layer "
                f"{'with' if self.cross_attention is not None else 'without'} cross-attention. "
                f"Received: encoder_sequence={'None' if encoder_sequence is None else 'a tensor'}"
            )

        weights = {}

        def attend(name, layer, x, value, **masks):
            outputs = layer(
                x,
                value,
                return_attention_scores=return_attention_scores,
                training=training,
                **masks,
            )
            if not return_attention_scores:
                return outputs
            outputs, weights[name] = outputs
            return outputs

        def self_attention(x):
            return attend(
                "self_attention",
                self.self_attention,
                x,
                x,
                value_mask=decoder_padding_mask,
                attention_mask=decoder_attention_mask,
                use_causal_mask=use_causal_mask,
            )

        def cross_attention(x):
            return attend(
                "cross_attention",
                self.cross_attention,
                x,
                encoder_sequence,
                value_mask=encoder_padding_mask,
                attention_mask=encoder_attention_mask,
            )

        x = _residual(self, decoder_sequence, self_attention, "self_attention", training)
        if self.cross_attention is not None:
            x = _residual(self, x, cross_attention, "cross_attention", training)
        outputs = _residual(self, x, self._feedforward, "feedforward", training)
        return (outputs, weights) if return_attention_scores else outputs

    def _feedforward(self, x):
        return self.feedforward_output_dense(self.feedforward_intermediate_dense(x))

    def compute_output_shape(self, decoder_sequence_shape, encoder_sequence_shape=None):
        return tuple(decoder_sequence_shape)

    def compute_output_spec(
        self,
        decoder_sequence,
        encoder_sequence=None,
        *args,
        return_attention_scores=False,
        **kwargs,
    ):
        # Symbolic calls (functional models) must return the weights too when asked for them.
        outputs = keras.KerasTensor(decoder_sequence.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return outputs
        batch_size, length = decoder_sequence.shape[:2]
        heads = (batch_size, self.num_heads, length)
        weights = {"self_attention": keras.KerasTensor((*heads, length), dtype=self.compute_dtype)}
        if encoder_sequence is not None:
            weights["cross_attention"] = keras.KerasTensor(
                (*heads, encoder_sequence.shape[1]), dtype=self.compute_dtype
            )
        return outputs, weights

    def get_config(self):
        config = super().get_config()
        config.update(_config(self))
        return config


def _store_arguments(
    layer,
    intermediate_dim,
    num_heads,
    dropout,
    activation,
    layer_norm_epsilon,
    kernel_initializer,
    bias_initializer,
    normalize_first,
):
    """Checks and stores the constructor arguments shared by the encoder and decoder blocks."""
    _check_arguments(intermediate_dim, num_heads, dropout)
    layer.intermediate_dim = intermediate_dim
    layer.num_heads = num_heads
    layer.dropout = dropout
    layer.activation = keras.activations.get(activation)
    layer.layer_norm_epsilon = layer_norm_epsilon
    layer.kernel_initializer = keras.initializers.get(kernel_initializer)
    layer.bias_initializer = keras.initializers.get(bias_initializer)
    layer.normalize_first = normalize_first
    layer.supports_masking = True


def _check_arguments(intermediate_dim, num_heads, dropout):
    for name, value in (("intermediate_dim", intermediate_dim), ("num_heads", num_heads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Expected `{name}` to be an integer >= 1. Received: {name}={value!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(
            f"Expected `dropout` to be a number in [0, 1). Received: dropout={dropout!r}"
        )


def _key_dim(num_heads, width):
    if width is None or width % num_heads:
        raise ValueError(
            "Expected `num_heads` to divide the model width (the last axis of the inputs). "
            f"Received: num_heads={num_heads}, width={width}"
        )
    return width // num_heads


def _residual(block, inputs, sublayer, name, training):
    # Post-norm: LayerNorm(x + Dropout(sublayer(x))). Pre-norm: x + Dropout(sublayer(LayerNorm(x))).
    layer_norm = getattr(block, f"{name}_layer_norm")
    dropout = getattr(block, f"{name}_dropout")
    x = layer_norm(inputs) if block.normalize_first else inputs
    x = inputs + dropout(sublayer(x), training=training)
    return x if block.normalize_first else layer_norm(x)


def _fresh(initializer):
    # A new instance per weight: a reused unseeded initializer would draw identical values.
    return initializer.__class__.from_config(initializer.get_config())


def _attention(block, key_dim, query_shape, value_shape, name):
    layer = MultiHeadAttention(
        block.num_heads,
        key_dim,
        dropout=block.dropout,
        kernel_initializer=block.kernel_initializer,
        bias_initializer=block.bias_initializer,
        dtype=block.dtype_policy,
        name=name,
    )
    layer.build(query_shape, value_shape)
    return layer


def _layer_norm(block, shape, name):
    layer = keras.layers.LayerNormalization(
        epsilon=block.layer_norm_epsilon, dtype=block.dtype_policy, name=name
    )
    layer.build(shape)
    return layer


def _dropout(block, name):
    return keras.layers.Dropout(block.dropout, dtype=block.dtype_policy, name=name)


def _build_feedforward(block, shape):
    def dense(units, activation, input_shape, name):
        layer = keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=_fresh(block.kernel_initializer),
            bias_initializer=_fresh(block.bias_initializer),
            dtype=block.dtype_policy,
            name=name,
        )
        layer.build(input_shape)
        return layer

    intermediate_shape = (*shape[:-1], block.intermediate_dim)
    block.feedforward_intermediate_dense = dense(
        block.intermediate_dim, block.activation, shape, "feedforward_intermediate_dense"
    )
    block.feedforward_output_dense = dense(
        shape[-1], None, intermediate_shape, "feedforward_output_dense"
    )
    block.feedforward_dropout = _dropout(block, "feedforward_dropout")


def _config(block):
    # The constructor arguments shared by both blocks.
    return {
        "intermediate_dim": block.intermediate_dim,
        "num_heads": block.num_heads,
        "dropout": block.dropout,
        "activation": keras.activations.serialize(block.activation),
        "layer_norm_epsilon": block.layer_norm_epsilon,
        "kernel_initializer": keras.initializers.serialize(block.kernel_initializer),
        "bias_initializer": keras.initializers.serialize(block.bias_initializer),
        "normalize_first": block.normalize_first,
    }
