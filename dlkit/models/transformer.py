"""A trainable encoder-decoder Transformer and its greedy / beam-search decoder [notes §7.3]."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from dlkit.data.sequences import END_ID, PAD_ID, START_ID
from dlkit.layers.embedding import TokenAndPositionEmbedding, check_token_ids
from dlkit.layers.transformer import TransformerDecoder, TransformerEncoder
from dlkit.losses import sequence_cross_entropy
from dlkit.training.fused import FusedFit
from dlkit.validation import check_fraction, check_int, check_non_negative

__all__ = ["SequenceGenerator", "Transformer"]

# A large negative log-probability standing for "impossible" (finite, so sums stay finite).
_IMPOSSIBLE = -1e9


@keras.saving.register_keras_serializable(package="dlkit")
class Transformer(FusedFit, keras.Model):
    """The encoder-decoder Transformer of the notes, trained by teacher forcing with `fit`.

    The encoder reads the source tokens with self-attention; the decoder reads the target
    sequence shifted right by one (a start token first) with causal self-attention, and the
    encoder's output with cross-attention, and predicts at every position the next target
    token. Training feeds the true previous tokens (teacher forcing), so a whole sequence is
    one parallel step; generation (`generate`) feeds back the model's own predictions, greedily
    or by beam search. Token id 0 is padding in sources and targets: padded source positions
    are masked in attention and padded target positions count for nothing in the loss.

    `fit` takes `x = {"source": (B, S), "decoder_inputs": (B, T)}` (or the tuple in that order)
    and `y = targets` (B, T), where `decoder_inputs[:, t + 1] == targets[:, t]`: exactly what
    `dlkit.data.sequences.digit_sequences` returns. `compile` needs only the optimizer: the
    loss (token cross-entropy over non-padding tokens, with optional label smoothing) is the
    model's own, and the logged metrics are `loss`, `token_accuracy` (share of non-padding
    target tokens predicted right) and `sequence_accuracy` (share of targets predicted right in
    every token, under teacher forcing).

    Equation (S source and T target positions, d = model_dim):

        h_0 = Dropout(√d·E_src[source] + PE)                       [notes §7.3, eqs. 7.12-7.13]
        h_l = TransformerEncoder_l(h_{l−1}, padding_mask=source != 0),     l = 1..num_layers
        g_0 = Dropout(√d·E_tgt[decoder_inputs] + PE)
        g_l = TransformerDecoder_l(g_{l−1}, h_L)   (causal self-attention, cross-attention)
        logits = g_L W_out + b_out                                   (B, T, target_vocabulary)
        loss = sequence_cross_entropy(targets, logits, label_smoothing)

    Args:
        source_vocabulary_size: number of source token ids, padding included (>= 2).
        target_vocabulary_size: number of target token ids, padding, start and end included.
        max_length: the longest source or decoder-input sequence the model accepts; longer
            inputs raise a `ValueError`. Generation produces at most `max_length` tokens.
        model_dim: embedding and model width d_model. Defaults to `64`.
        num_heads: attention heads; must divide `model_dim`. Defaults to `4`.
        intermediate_dim: hidden width of each block's feed-forward network. Defaults to `128`.
        num_layers: encoder blocks and decoder blocks (the same number of each). Defaults to `2`.
        dropout: dropout rate of embeddings, attention weights and sublayers. Defaults to `0.1`.
        label_smoothing: ε of the loss's label smoothing, in [0, 1). Defaults to `0.0`.
        **kwargs: other keyword arguments of `keras.Model` (`name`, ...).

    Call arguments:
        inputs: `{"source": (B, S), "decoder_inputs": (B, T)}` integer ids, or the tuple
            `(source, decoder_inputs)`.
        training: whether to apply dropout.

    Returns:
        The next-token logits, shape (B, T, target_vocabulary_size).

    Example:

        >>> import numpy as np
        >>> model = Transformer(13, 13, max_length=8, model_dim=16, num_heads=2, num_layers=1)
        >>> logits = model({"source": np.array([[3, 4, 5, 0]]),
        ...                 "decoder_inputs": np.array([[1, 5, 4]])})
        >>> print(tuple(logits.shape))
        (1, 3, 13)

    Reference:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017
        (https://arxiv.org/abs/1706.03762).
    """

    def __init__(
        self,
        source_vocabulary_size,
        target_vocabulary_size,
        max_length,
        model_dim=64,
        num_heads=4,
        intermediate_dim=128,
        num_layers=2,
        dropout=0.1,
        label_smoothing=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.source_vocabulary_size = check_int("source_vocabulary_size", source_vocabulary_size, 2)
        self.target_vocabulary_size = check_int("target_vocabulary_size", target_vocabulary_size, 2)
        self.max_length = check_int("max_length", max_length, 2)
        self.model_dim = check_int("model_dim", model_dim)
        self.num_heads = check_int("num_heads", num_heads)
        self.intermediate_dim = check_int("intermediate_dim", intermediate_dim)
        self.num_layers = check_int("num_layers", num_layers)
        if model_dim % num_heads:
            raise ValueError(
                "Expected `num_heads` to divide `model_dim`. "
                f"Received: num_heads={num_heads}, model_dim={model_dim}"
            )
        self.dropout = check_fraction("dropout", dropout)
        self.label_smoothing = check_fraction("label_smoothing", label_smoothing)

        def embedding(vocabulary_size, name):
            return TokenAndPositionEmbedding(vocabulary_size, max_length, model_dim, name=name)

        def block(layer_class, name):
            return layer_class(intermediate_dim, num_heads, dropout=dropout, name=name)

        self.source_embedding = embedding(source_vocabulary_size, "source_embedding")
        self.target_embedding = embedding(target_vocabulary_size, "target_embedding")
        self.source_dropout = keras.layers.Dropout(dropout, name="source_dropout")
        self.target_dropout = keras.layers.Dropout(dropout, name="target_dropout")
        self.encoder_blocks = [
            block(TransformerEncoder, f"encoder_{index}") for index in range(num_layers)
        ]
        self.decoder_blocks = [
            block(TransformerDecoder, f"decoder_{index}") for index in range(num_layers)
        ]
        self.output_projection = keras.layers.Dense(target_vocabulary_size, name="logits")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.token_accuracy_tracker = keras.metrics.Mean(name="token_accuracy")
        self.sequence_accuracy_tracker = keras.metrics.Mean(name="sequence_accuracy")
        self._generators = {}  # compiled generators by decoding setting
        self._attention_models = {}  # compiled cross-attention weights by decoder block

    @property
    def metrics(self):
        return [self.loss_tracker, self.token_accuracy_tracker, self.sequence_accuracy_tracker]

    def build(self, input_shape):
        source_shape, decoder_shape = _unpack(input_shape, "input_shape")
        source_shape, decoder_shape = tuple(source_shape), tuple(decoder_shape)
        self.source_embedding.build(source_shape)
        self.target_embedding.build(decoder_shape)
        encoded_shape = (*source_shape, self.model_dim)
        decoded_shape = (*decoder_shape, self.model_dim)
        for block in self.encoder_blocks:
            block.build(encoded_shape)
        for block in self.decoder_blocks:
            block.build(decoded_shape, encoded_shape)
        self.output_projection.build(decoded_shape)
        self.built = True

    def call(self, inputs, training=None):
        source, decoder_inputs = _unpack(inputs, "inputs")
        encoder_outputs = self.encode(source, training=training)  # (B, S, d)
        return self.decode(decoder_inputs, encoder_outputs, source, training=training)

    def encode(self, source, training=None):
        """Runs the encoder: source ids (B, S) → encoder outputs (B, S, model_dim)."""
        hidden = self.source_embedding(source)  # (B, S, d)
        hidden = self.source_dropout(hidden, training=training)
        source_mask = ops.not_equal(source, PAD_ID)  # (B, S)
        for block in self.encoder_blocks:
            hidden = block(hidden, padding_mask=source_mask, training=training)
        return hidden

    def decode(
        self, decoder_inputs, encoder_outputs, source, training=None, return_attention_scores=False
    ):
        """Runs the decoder: decoder inputs (B, T), encoder outputs, source ids → logits (B, T, V).

        With `return_attention_scores=True`, returns `(logits, weights)`, `weights` a list with
        one dict per decoder block (see `TransformerDecoder`).
        """
        hidden = self.target_embedding(decoder_inputs)  # (B, T, d)
        hidden = self.target_dropout(hidden, training=training)
        decoder_mask = ops.not_equal(decoder_inputs, PAD_ID)  # (B, T)
        source_mask = ops.not_equal(source, PAD_ID)  # (B, S)
        weights = []
        for block in self.decoder_blocks:
            hidden = block(
                hidden,
                encoder_outputs,
                decoder_padding_mask=decoder_mask,
                encoder_padding_mask=source_mask,
                return_attention_scores=return_attention_scores,
                training=training,
            )
            if return_attention_scores:
                hidden, block_weights = hidden
                weights.append(block_weights)
        logits = self.output_projection(hidden)  # (B, T, V)
        return (logits, weights) if return_attention_scores else logits

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = sequence_cross_entropy(y, y_pred, self.label_smoothing, padding_id=PAD_ID)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        targets = ops.cast(y, "int32")
        mask = ops.not_equal(targets, PAD_ID)  # (B, T)
        correct = ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), targets)  # (B, T)
        self.loss_tracker.update_state(loss)
        self.token_accuracy_tracker.update_state(
            ops.cast(correct, "float32"), sample_weight=ops.cast(mask, "float32")
        )
        whole_sequence = ops.all(ops.logical_or(correct, ops.logical_not(mask)), axis=-1)  # (B,)
        self.sequence_accuracy_tracker.update_state(ops.cast(whole_sequence, "float32"))
        return loss

    def cross_attention_weights(self, source, decoder_inputs, layer=-1):
        """Attention weights of one decoder block's cross-attention, for heat maps.

        Args:
            source: source ids, shape (B, S).
            decoder_inputs: decoder input ids (start token, then the target), shape (B, T).
            layer: index of the decoder block. Defaults to the last.

        Returns:
            A NumPy array (B, num_heads, T, S): how much decoder position t reads source
            position s; each row sums to 1 over the unpadded source positions.
        """
        source = self._check_source(source, "source")
        decoder_inputs = self._check_target(decoder_inputs, "decoder_inputs")
        if not -self.num_layers <= layer < self.num_layers:
            raise ValueError(
                f"Expected `layer` in [-{self.num_layers}, {self.num_layers}). Received: "
                f"layer={layer}"
            )
        layer = layer % self.num_layers
        if layer not in self._attention_models:
            # A functional model of the weights, so that `predict_on_batch` compiles the pass.
            source_input = keras.Input((None,), dtype="int32")
            decoder_input = keras.Input((None,), dtype="int32")
            encoder_outputs = self.encode(source_input, training=False)
            _, weights = self.decode(
                decoder_input,
                encoder_outputs,
                source_input,
                training=False,
                return_attention_scores=True,
            )
            attention_model = keras.Model(
                [source_input, decoder_input], weights[layer]["cross_attention"]
            )
            # The bound method, not the model: a model here would be tracked as a sub-layer.
            self._attention_models[layer] = attention_model.predict_on_batch
        weights = self._attention_models[layer]([source, decoder_inputs])
        return ops.convert_to_numpy(weights)  # (B, H, T, S)

    def generator(
        self, max_length=None, beam_width=1, length_penalty=0.0, start_id=START_ID, end_id=END_ID
    ):
        """The decoding model for serving: source ids (B, S) int32 → generated ids (B, L).

        A functional `keras.Model` around a `SequenceGenerator` that shares this model's
        weights; `dlkit.export.export` writes it as one SavedModel (or ONNX file) that runs
        the whole search. Arguments as in `generate`.
        """
        source = keras.Input((None,), dtype="int32", name="source")
        generated = SequenceGenerator(
            self,
            max_length=max_length,
            beam_width=beam_width,
            length_penalty=length_penalty,
            start_id=start_id,
            end_id=end_id,
        )(source)
        return keras.Model(source, generated, name="generator")

    def generate(
        self,
        source,
        max_length=None,
        beam_width=1,
        length_penalty=0.0,
        start_id=START_ID,
        end_id=END_ID,
        batch_size=256,
    ):
        """Generates target sequences for `source`, greedily (`beam_width=1`) or by beam search.

        Runs a compiled `SequenceGenerator` (built once per setting and cached) over the
        sources in batches of `batch_size`; the last batch is padded to the same size so that
        no batch triggers a new compilation.

        Args:
            source: source ids, shape (N, S) with S <= max_length.
            max_length: most tokens to generate, END included. Defaults to the model's
                `max_length`.
            beam_width: beams kept per sequence; 1 is greedy decoding.
            length_penalty: α of the length normalisation score / length^α used to rank
                finished beams. Defaults to `0.0` (raw log-probability).
            start_id: the token that starts every decoder input. Defaults to `1`.
            end_id: the token that ends a sequence. Defaults to `2`.
            batch_size: sources decoded per compiled call. Defaults to `256`.

        Returns:
            A NumPy int32 array (N, max_length): generated ids, END then padding (0) once a
            sequence has ended.
        """
        from dlkit.training import compile_inference

        source = self._check_source(source, "source")
        check_int("batch_size", batch_size)
        key = (max_length, beam_width, float(length_penalty), start_id, end_id)
        if key not in self._generators:
            generator = self.generator(max_length, beam_width, length_penalty, start_id, end_id)
            self._generators[key] = compile_inference(generator)
        decode = self._generators[key]
        num_sources = len(source)
        batch_size = min(batch_size, num_sources)
        outputs = []
        for start in range(0, num_sources, batch_size):
            batch = source[start : start + batch_size]
            num_rows = len(batch)
            if num_rows < batch_size:  # same shape as earlier batches: no recompilation
                filler = np.repeat(batch[:1], batch_size - num_rows, axis=0)
                batch = np.concatenate([batch, filler])
            outputs.append(np.asarray(decode(batch))[:num_rows])
        return np.concatenate(outputs).astype("int32")

    def _check_source(self, source, name):
        source = np.asarray(source)
        if source.ndim != 2:
            raise ValueError(
                f"Expected `{name}` of shape (batch, length). Received: {name} of shape "
                f"{source.shape}"
            )
        if source.shape[1] > self.max_length:
            raise ValueError(
                f"Expected `{name}` of at most max_length={self.max_length} tokens. "
                f"Received: {name} of length {source.shape[1]}"
            )
        check_token_ids(source, self.source_vocabulary_size, name)
        return source.astype("int32")

    def _check_target(self, tokens, name):
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] > self.max_length:
            raise ValueError(
                f"Expected `{name}` of shape (batch, length <= {self.max_length}). "
                f"Received: {name} of shape {tokens.shape}"
            )
        check_token_ids(tokens, self.target_vocabulary_size, name)
        return tokens.astype("int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "source_vocabulary_size": self.source_vocabulary_size,
                "target_vocabulary_size": self.target_vocabulary_size,
                "max_length": self.max_length,
                "model_dim": self.model_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "num_layers": self.num_layers,
                "dropout": self.dropout,
                "label_smoothing": self.label_smoothing,
            }
        )
        return config


def _unpack(inputs, name):
    if isinstance(inputs, dict):
        if set(inputs) != {"source", "decoder_inputs"}:
            raise ValueError(
                f"Expected `{name}` with the keys 'source' and 'decoder_inputs'. "
                f"Received: keys {sorted(inputs)}"
            )
        return inputs["source"], inputs["decoder_inputs"]
    if isinstance(inputs, (list, tuple)) and len(inputs) == 2:
        return inputs[0], inputs[1]
    raise ValueError(
        f"Expected `{name}` to be a dict {{'source', 'decoder_inputs'}} or a pair "
        f"(source, decoder_inputs). Received: {name}={inputs!r}"
    )


@keras.saving.register_keras_serializable(package="dlkit")
class SequenceGenerator(keras.layers.Layer):
    """Generates target sequences with a trained `Transformer`: greedy or beam search.

    One model, source ids in and generated ids out, so that the whole search runs as a single
    compiled call (`jax.jit`, `tf.function`) and exports as one SavedModel for serving. The
    decoder writes into a fixed buffer of `max_length + 1` positions, which starts with the
    start token followed by padding; at step t it reruns on the first `max_length` positions
    (causal attention makes the padding beyond t irrelevant) and fills position t + 1. Beam
    search keeps the `beam_width` prefixes of highest total log-probability; a beam that has
    produced the end token is frozen (it can only append padding, at no cost); a running beam
    never produces padding or the start token. Greedy decoding is the case
    `beam_width=1`. The encoder runs once per call.

    Equation (beam search, K = beam_width, V the target vocabulary):

        score(y_1..y_t) = Σ_{τ<=t} log p(y_τ | y_<τ, source)
        candidates_t = {prefix + v : prefix in beams_{t−1}, v in 1..V}
        beams_t = the K candidates of highest score
        result = argmax over final beams of score / length^length_penalty

    Args:
        transformer: a `Transformer` (trained).
        max_length: most tokens to generate, END included. Defaults to the transformer's
            `max_length` (the decoder reads the start token and all generated tokens but the
            last).
        beam_width: beams per sequence (>= 1; 1 is greedy).
        length_penalty: α of the length normalisation (>= 0). Defaults to `0.0`.
        start_id: the start token. Defaults to `1`.
        end_id: the end token. Defaults to `2`.
        **kwargs: other keyword arguments of `keras.Model` (`name`, ...).

    Call arguments:
        source: source ids, shape (B, S).

    Returns:
        Generated ids, int32, shape (B, max_length): the tokens after the start token, ending
        with `end_id` followed by padding once a sequence has ended.

    Example:

        >>> import numpy as np
        >>> transformer = Transformer(13, 13, max_length=6, model_dim=8, num_heads=2,
        ...                           intermediate_dim=8, num_layers=1)
        >>> generator = SequenceGenerator(transformer, beam_width=2)
        >>> print(tuple(generator(np.array([[3, 4, 5]])).shape))
        (1, 6)

    Reference:
        Sutskever et al., "Sequence to Sequence Learning with Neural Networks", NeurIPS 2014
        (beam search for neural translation); Wu et al., "Google's Neural Machine Translation
        System", 2016 (length normalisation).
    """

    def __init__(
        self,
        transformer,
        max_length=None,
        beam_width=1,
        length_penalty=0.0,
        start_id=START_ID,
        end_id=END_ID,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(transformer, Transformer):
            raise TypeError(
                f"Expected `transformer` to be a dlkit Transformer. Received: {transformer!r}"
            )
        if max_length is None:
            max_length = transformer.max_length
        check_int("max_length", max_length)
        if max_length > transformer.max_length:
            raise ValueError(
                "Expected `max_length` <= the transformer's max_length = "
                f"{transformer.max_length} (the decoder reads the start token and all but the "
                f"last generated token). Received: max_length={max_length}"
            )
        check_int("beam_width", beam_width)
        if beam_width > transformer.target_vocabulary_size:
            raise ValueError(
                "Expected `beam_width` <= the target vocabulary size "
                f"{transformer.target_vocabulary_size}. Received: beam_width={beam_width}"
            )
        check_non_negative("length_penalty", length_penalty)
        for name, value in (("start_id", start_id), ("end_id", end_id)):
            check_int(name, value, 0)
            if value >= transformer.target_vocabulary_size or value == PAD_ID:
                raise ValueError(
                    f"Expected `{name}` in [1, {transformer.target_vocabulary_size}) (not the "
                    f"padding id 0). Received: {name}={value}"
                )
        self.transformer = transformer
        self.max_length = int(max_length)
        self.beam_width = int(beam_width)
        self.length_penalty = float(length_penalty)
        self.start_id = int(start_id)
        self.end_id = int(end_id)

    def build(self, source_shape):
        if not self.transformer.built:
            buffer_shape = (source_shape[0], self.max_length)
            self.transformer.build({"source": source_shape, "decoder_inputs": buffer_shape})
        self.built = True

    def call(self, source, training=None):
        # Generation is inference: dropout stays off whatever `training` says.
        source = ops.cast(source, "int32")
        num_beams, length = self.beam_width, self.max_length + 1
        vocabulary_size = self.transformer.target_vocabulary_size
        encoder_outputs = self.transformer.encode(source, training=False)  # (B, S, d)
        # Every beam of sequence b reads the same source: rows b·K .. b·K + K − 1.
        encoder_outputs = ops.repeat(encoder_outputs, num_beams, axis=0)  # (B·K, S, d)
        beam_source = ops.repeat(source, num_beams, axis=0)  # (B·K, S)
        num_rows = ops.shape(beam_source)[0]
        positions = ops.arange(length, dtype="int32")  # (L + 1,)
        tokens = ops.where(positions[None, :] == 0, self.start_id, PAD_ID)  # (1, L + 1)
        tokens = ops.cast(ops.tile(tokens, (num_rows, 1)), "int32")  # (B·K, L + 1)
        # At first all beams of a sequence hold the same prefix: keep only beam 0 alive.
        first_scores = [0.0] + [_IMPOSSIBLE] * (num_beams - 1)  # (B, K) once tiled
        num_sources = ops.shape(source)[0]
        scores = ops.tile(ops.convert_to_tensor([first_scores], "float32"), (num_sources, 1))
        finished = ops.zeros((num_rows,), dtype="bool")  # (B·K,)
        lengths = ops.zeros((num_rows,), dtype="float32")  # (B·K,) tokens generated
        # A finished beam may only append padding, at no cost.
        vocabulary = ops.arange(vocabulary_size)  # (V,)
        padding_only = ops.where(vocabulary == PAD_ID, 0.0, _IMPOSSIBLE)  # (V,)
        # A running beam may produce neither padding nor a second start token.
        never = ops.logical_or(vocabulary == PAD_ID, vocabulary == self.start_id)  # (V,)
        row_offsets = ops.arange(num_sources, dtype="int32")[:, None] * num_beams  # (B, 1)

        def step(t, state):
            tokens, scores, finished, lengths = state
            # The last buffer position is only written: the decoder reads positions 0..L−1.
            logits = self.transformer.decode(
                tokens[:, :-1], encoder_outputs, beam_source, training=False
            )  # (B·K, L, V)
            at_t = ops.cast(positions[:-1] == t, logits.dtype)  # (L,)
            step_logits = ops.sum(logits * at_t[None, :, None], axis=1)  # (B·K, V)
            log_probabilities = ops.log_softmax(ops.cast(step_logits, "float32"), axis=-1)
            log_probabilities = ops.where(never[None, :], _IMPOSSIBLE, log_probabilities)
            log_probabilities = ops.where(finished[:, None], padding_only, log_probabilities)
            candidates = scores[:, :, None] + ops.reshape(
                log_probabilities, (-1, num_beams, vocabulary_size)
            )  # (B, K, V)
            candidates = ops.reshape(candidates, (-1, num_beams * vocabulary_size))  # (B, K·V)
            scores, best = ops.top_k(candidates, num_beams)  # (B, K) each
            best = ops.cast(best, "int32")
            parents = ops.reshape(best // vocabulary_size + row_offsets, (-1,))  # (B·K,)
            new_tokens = ops.reshape(best % vocabulary_size, (-1,))  # (B·K,)
            tokens = ops.take(tokens, parents, axis=0)  # (B·K, L + 1)
            finished = ops.take(finished, parents, axis=0)
            lengths = ops.take(lengths, parents, axis=0) + ops.cast(
                ops.logical_not(finished), "float32"
            )
            tokens = ops.where(positions[None, :] == t + 1, new_tokens[:, None], tokens)
            finished = ops.logical_or(finished, new_tokens == self.end_id)
            return tokens, scores, finished, lengths

        tokens, scores, finished, lengths = ops.fori_loop(
            0, self.max_length, step, (tokens, scores, finished, lengths)
        )
        if self.length_penalty:
            lengths = ops.reshape(lengths, (-1, num_beams))  # (B, K)
            scores = scores / ops.power(ops.maximum(lengths, 1.0), self.length_penalty)
        best = ops.cast(ops.argmax(scores, axis=-1), "int32")  # (B,)
        rows = ops.reshape(best, (-1,)) + row_offsets[:, 0]  # (B,)
        return ops.take(tokens, rows, axis=0)[:, 1:]  # (B, L)

    def compute_output_spec(self, source):
        return keras.KerasTensor((source.shape[0], self.max_length), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "transformer": keras.saving.serialize_keras_object(self.transformer),
                "max_length": self.max_length,
                "beam_width": self.beam_width,
                "length_penalty": self.length_penalty,
                "start_id": self.start_id,
                "end_id": self.end_id,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["transformer"] = keras.saving.deserialize_keras_object(config["transformer"])
        return cls(**config)
