"""Transformer encoder and decoder blocks [notes §7.3]."""

from __future__ import annotations

import keras

from dlkit.layers._initializers import clone_initializer
from dlkit.layers.attention import MultiHeadAttention
from dlkit.validation import check_fraction, check_int

__all__ = ["TransformerBlock", "TransformerDecoder", "TransformerEncoder"]


class TransformerBlock(keras.layers.Layer):
    """The part shared by the encoder and decoder blocks: arguments, sublayers, residuals.

    It holds and checks the constructor arguments common to both blocks, builds their
    sublayers (multi-head attention, layer normalization, dropout, the two dense layers of the
    feed-forward network) and wraps a sublayer in its residual connection. Each subclass
    assigns its own sublayers in `build`, in its own order, and writes its own `call`.

    Its constructor arguments are those of `TransformerEncoder` and `TransformerDecoder`,
    documented there.
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
        self.intermediate_dim = check_int("intermediate_dim", intermediate_dim)
        self.num_heads = check_int("num_heads", num_heads)
        self.dropout = check_fraction("dropout", dropout)
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.normalize_first = normalize_first
        self.supports_masking = True

    def _key_dim(self, width):
        if width is None or width % self.num_heads:
            raise ValueError(
                "Expected `num_heads` to divide the model width (the last axis of the inputs). "
                f"Received: num_heads={self.num_heads}, width={width}"
            )
        return width // self.num_heads

    def _attention(self, key_dim, query_shape, value_shape, name):
        layer = MultiHeadAttention(
            self.num_heads,
            key_dim,
            dropout=self.dropout,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name=name,
        )
        layer.build(query_shape, value_shape)
        return layer

    def _layer_norm(self, shape, name):
        layer = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        layer.build(shape)
        return layer

    def _dropout(self, name):
        return keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name=name)

    def _feedforward_denses(self, shape):
        """The hidden and output dense layers of the feed-forward network, built for `shape`."""

        def dense(units, activation, input_shape, name):
            layer = keras.layers.Dense(
                units,
                activation=activation,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                bias_initializer=clone_initializer(self.bias_initializer),
                dtype=self.dtype_policy,
                name=name,
            )
            layer.build(input_shape)
            return layer

        intermediate_shape = (*shape[:-1], self.intermediate_dim)
        intermediate = dense(
            self.intermediate_dim, self.activation, shape, "feedforward_intermediate_dense"
        )
        output = dense(shape[-1], None, intermediate_shape, "feedforward_output_dense")
        return intermediate, output

    def _feedforward(self, x):
        return self.feedforward_output_dense(self.feedforward_intermediate_dense(x))

    def _residual(self, inputs, sublayer, layer_norm, dropout, training):
        # Post-norm: LayerNorm(x + Dropout(sublayer(x))).
        # Pre-norm: x + Dropout(sublayer(LayerNorm(x))).
        x = layer_norm(inputs) if self.normalize_first else inputs
        x = inputs + dropout(sublayer(x), training=training)
        return x if self.normalize_first else layer_norm(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "normalize_first": self.normalize_first,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="dlkit")
class TransformerEncoder(TransformerBlock):
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

    def build(self, inputs_shape):
        key_dim = self._key_dim(inputs_shape[-1])
        self.self_attention = self._attention(key_dim, inputs_shape, inputs_shape, "self_attention")
        self.self_attention_layer_norm = self._layer_norm(inputs_shape, "self_attention_layer_norm")
        self.self_attention_dropout = self._dropout("self_attention_dropout")
        self.feedforward_layer_norm = self._layer_norm(inputs_shape, "feedforward_layer_norm")
        self.feedforward_intermediate_dense, self.feedforward_output_dense = (
            self._feedforward_denses(inputs_shape)
        )
        self.feedforward_dropout = self._dropout("feedforward_dropout")

    def call(self, inputs, padding_mask=None, attention_mask=None, training=None, mask=None):
        # Keras passes the mask attached to `inputs` as `mask` when `inputs` is the only tensor.
        padding_mask = mask if padding_mask is None else padding_mask

        def self_attention(x):
            return self.self_attention(
                x, x, value_mask=padding_mask, attention_mask=attention_mask, training=training
            )

        x = self._residual(
            inputs,
            self_attention,
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            training,
        )
        return self._residual(
            x, self._feedforward, self.feedforward_layer_norm, self.feedforward_dropout, training
        )

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)


@keras.saving.register_keras_serializable(package="dlkit")
class TransformerDecoder(TransformerBlock):
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

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        shape = decoder_sequence_shape
        key_dim = self._key_dim(shape[-1])
        self.self_attention = self._attention(key_dim, shape, shape, "self_attention")
        self.self_attention_layer_norm = self._layer_norm(shape, "self_attention_layer_norm")
        self.self_attention_dropout = self._dropout("self_attention_dropout")
        self.cross_attention = None
        if encoder_sequence_shape is not None:
            self.cross_attention = self._attention(
                key_dim, shape, encoder_sequence_shape, "cross_attention"
            )
            self.cross_attention_layer_norm = self._layer_norm(shape, "cross_attention_layer_norm")
            self.cross_attention_dropout = self._dropout("cross_attention_dropout")
        self.feedforward_intermediate_dense, self.feedforward_output_dense = (
            self._feedforward_denses(shape)
        )
        self.feedforward_dropout = self._dropout("feedforward_dropout")
        self.feedforward_layer_norm = self._layer_norm(shape, "feedforward_layer_norm")

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

        x = self._residual(
            decoder_sequence,
            self_attention,
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            training,
        )
        if self.cross_attention is not None:
            x = self._residual(
                x,
                cross_attention,
                self.cross_attention_layer_norm,
                self.cross_attention_dropout,
                training,
            )
        outputs = self._residual(
            x, self._feedforward, self.feedforward_layer_norm, self.feedforward_dropout, training
        )
        return (outputs, weights) if return_attention_scores else outputs

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
