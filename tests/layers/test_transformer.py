import keras
import numpy as np
import pytest

from dlkit.layers.transformer import TransformerDecoder, TransformerEncoder
from dlkit.testing import run_layer_test


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def random(rng, *shape):
    return rng.normal(size=shape).astype("float32")


def randomize_weights(layer, rng, scale=0.3):
    layer.set_weights([random(rng, *w.shape) * scale for w in layer.get_weights()])


# NumPy reference of one block, written from the equations.


def numpy_attention(layer, query, value, mask):
    weights = {w.name: to_numpy(w) for w in layer.weights}
    q = np.einsum("btd,dhk->bhtk", query, weights["query_kernel"]) + weights["query_bias"][:, None]
    k = np.einsum("btd,dhk->bhtk", value, weights["key_kernel"]) + weights["key_bias"][:, None]
    v = np.einsum("btd,dhk->bhtk", value, weights["value_kernel"]) + weights["value_bias"][:, None]
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])  # (B, H, Tq, Tk)
    scores = np.where(mask[:, None], scores, -1e30)
    probabilities = np.exp(scores - scores.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    context = probabilities @ v  # (B, H, Tq, Dv)
    return np.einsum("bhtd,hde->bte", context, weights["output_kernel"]) + weights["output_bias"]


def numpy_layer_norm(layer, x):
    gamma, beta = (to_numpy(w) for w in layer.weights)
    mean, variance = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + 1e-5) * gamma + beta


def numpy_residual(block, x, sublayer, layer_norm):
    if block.normalize_first:
        return x + sublayer(numpy_layer_norm(layer_norm, x))
    return numpy_layer_norm(layer_norm, x + sublayer(x))


def numpy_feedforward(block, x):
    kernel_1, bias_1 = (to_numpy(w) for w in block.feedforward_intermediate_dense.weights)
    kernel_2, bias_2 = (to_numpy(w) for w in block.feedforward_output_dense.weights)
    return np.maximum(x @ kernel_1 + bias_1, 0.0) @ kernel_2 + bias_2


def numpy_encoder(block, x, padding_mask):
    mask = np.broadcast_to(padding_mask[:, None, :], (x.shape[0], x.shape[1], x.shape[1]))
    x = numpy_residual(
        block,
        x,
        lambda y: numpy_attention(block.self_attention, y, y, mask),
        block.self_attention_layer_norm,
    )
    return numpy_residual(
        block, x, lambda y: numpy_feedforward(block, y), block.feedforward_layer_norm
    )


def numpy_decoder(block, x, encoder_sequence, encoder_padding_mask):
    length = x.shape[1]
    causal = np.broadcast_to(np.tril(np.ones((length, length), bool)), (x.shape[0], length, length))
    cross = np.broadcast_to(
        encoder_padding_mask[:, None, :], (x.shape[0], length, encoder_padding_mask.shape[1])
    )
    x = numpy_residual(
        block,
        x,
        lambda y: numpy_attention(block.self_attention, y, y, causal),
        block.self_attention_layer_norm,
    )
    x = numpy_residual(
        block,
        x,
        lambda y: numpy_attention(block.cross_attention, y, encoder_sequence, cross),
        block.cross_attention_layer_norm,
    )
    return numpy_residual(
        block, x, lambda y: numpy_feedforward(block, y), block.feedforward_layer_norm
    )


PADDING = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
ENCODER_PADDING = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)


@pytest.mark.parametrize("normalize_first", [False, True], ids=["post_norm", "pre_norm"])
def test_encoder_matches_numpy(normalize_first):
    rng = np.random.default_rng(0)
    x = random(rng, 2, 5, 8)
    encoder = TransformerEncoder(intermediate_dim=16, num_heads=2, normalize_first=normalize_first)
    encoder(x)
    randomize_weights(encoder, rng)
    received = to_numpy(encoder(x, padding_mask=PADDING))
    np.testing.assert_allclose(received, numpy_encoder(encoder, x, PADDING), atol=1e-4)


@pytest.mark.parametrize("normalize_first", [False, True], ids=["post_norm", "pre_norm"])
def test_decoder_matches_numpy(normalize_first):
    rng = np.random.default_rng(1)
    x, encoder_sequence = random(rng, 2, 5, 8), random(rng, 2, 6, 4)
    decoder = TransformerDecoder(intermediate_dim=16, num_heads=2, normalize_first=normalize_first)
    decoder(x, encoder_sequence)
    randomize_weights(decoder, rng)
    received = to_numpy(decoder(x, encoder_sequence, encoder_padding_mask=ENCODER_PADDING))
    expected = numpy_decoder(decoder, x, encoder_sequence, ENCODER_PADDING)
    np.testing.assert_allclose(received, expected, atol=1e-4)


@pytest.mark.parametrize("normalize_first", [False, True], ids=["post_norm", "pre_norm"])
def test_encoder_run_layer_test(normalize_first):
    run_layer_test(
        TransformerEncoder,
        {
            "intermediate_dim": 16,
            "num_heads": 2,
            "dropout": 0.1,
            "normalize_first": normalize_first,
        },
        input_shape=(2, 5, 8),
        expected_output_shape=(2, 5, 8),
        expected_num_trainable_weights=16,
        expected_num_non_trainable_weights=0,
    )


@pytest.mark.parametrize(
    ("input_shape", "num_weights"),
    [(((2, 5, 8), (2, 6, 8)), 26), ((2, 5, 8), 16)],
    ids=["cross_attention", "decoder_only"],
)
def test_decoder_run_layer_test(input_shape, num_weights):
    run_layer_test(
        TransformerDecoder,
        {"intermediate_dim": 16, "num_heads": 2, "normalize_first": True, "activation": "gelu"},
        input_shape=input_shape,
        expected_output_shape=(2, 5, 8),
        expected_num_trainable_weights=num_weights,
        expected_num_non_trainable_weights=0,
    )


def test_pre_and_post_norm_differ_with_the_same_weights():
    rng = np.random.default_rng(2)
    x = random(rng, 2, 5, 8)
    post = TransformerEncoder(intermediate_dim=16, num_heads=2)
    pre = TransformerEncoder(intermediate_dim=16, num_heads=2, normalize_first=True)
    post(x), pre(x)
    randomize_weights(post, rng)
    pre.set_weights(post.get_weights())
    assert np.abs(to_numpy(post(x)) - to_numpy(pre(x))).max() > 0.1


@pytest.mark.parametrize("with_encoder", [False, True], ids=["decoder_only", "cross_attention"])
def test_causal_mask_hides_the_future(with_encoder):
    rng = np.random.default_rng(3)
    x, encoder_sequence = random(rng, 2, 5, 8), random(rng, 2, 6, 8)
    arguments = (encoder_sequence,) if with_encoder else ()
    decoder = TransformerDecoder(intermediate_dim=16, num_heads=2)
    changed = x.copy()
    changed[:, 3:] = random(rng, 2, 2, 8)  # positions 3 and 4 change
    before, after = to_numpy(decoder(x, *arguments)), to_numpy(decoder(changed, *arguments))
    np.testing.assert_allclose(before[:, :3], after[:, :3], atol=1e-5)
    assert np.abs(before[:, 3:] - after[:, 3:]).min() > 1e-4
    # Without the causal mask, the past sees the change.
    before = to_numpy(decoder(x, *arguments, use_causal_mask=False))
    after = to_numpy(decoder(changed, *arguments, use_causal_mask=False))
    assert np.abs(before[:, :3] - after[:, :3]).max() > 1e-3


def test_encoder_padding_mask_hides_padded_positions():
    rng = np.random.default_rng(4)
    x = random(rng, 2, 5, 8)
    changed = x.copy()
    changed[~PADDING] = random(rng, int((~PADDING).sum()), 8)
    encoder = TransformerEncoder(intermediate_dim=16, num_heads=2, normalize_first=True)
    before, after = encoder(x, padding_mask=PADDING), encoder(changed, padding_mask=PADDING)
    np.testing.assert_allclose(to_numpy(before)[PADDING], to_numpy(after)[PADDING], atol=1e-5)
    before, after = to_numpy(encoder(x)), to_numpy(encoder(changed))
    assert np.abs(before[0, :3] - after[0, :3]).max() > 1e-3


def test_decoder_encoder_padding_mask_hides_padded_source_positions():
    rng = np.random.default_rng(5)
    x, encoder_sequence = random(rng, 2, 5, 8), random(rng, 2, 6, 8)
    changed = encoder_sequence.copy()
    changed[~ENCODER_PADDING] = random(rng, int((~ENCODER_PADDING).sum()), 8)
    decoder = TransformerDecoder(intermediate_dim=16, num_heads=2)
    before = decoder(x, encoder_sequence, encoder_padding_mask=ENCODER_PADDING)
    after = decoder(x, changed, encoder_padding_mask=ENCODER_PADDING)
    np.testing.assert_allclose(to_numpy(before), to_numpy(after), atol=1e-5)
    assert (
        np.abs(to_numpy(decoder(x, encoder_sequence)) - to_numpy(decoder(x, changed))).max() > 1e-3
    )


def test_encoder_reads_the_keras_mask_of_its_inputs():
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2]])
    inputs = keras.Input((5,), dtype="int32")
    embedded = keras.layers.Embedding(10, 8, mask_zero=True)(inputs)
    encoder = TransformerEncoder(intermediate_dim=16, num_heads=2)
    model = keras.Model(inputs, [embedded, encoder(embedded)])
    embedded, received = (to_numpy(x) for x in model(tokens))
    expected = to_numpy(encoder(embedded, padding_mask=tokens > 0))
    np.testing.assert_allclose(received[tokens > 0], expected[tokens > 0], atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"intermediate_dim": 0}, "intermediate_dim=0"),
        ({"num_heads": -1}, "num_heads=-1"),
        ({"dropout": 1.5}, "dropout=1.5"),
    ],
)
@pytest.mark.parametrize("block", [TransformerEncoder, TransformerDecoder])
def test_bad_arguments(block, kwargs, name):
    with pytest.raises(ValueError, match=name):
        block(**{"intermediate_dim": 8, "num_heads": 2, **kwargs})


def test_num_heads_must_divide_the_width():
    x = np.ones((2, 5, 8), "float32")
    with pytest.raises(ValueError, match="num_heads=3, width=8"):
        TransformerEncoder(intermediate_dim=8, num_heads=3)(x)
    with pytest.raises(ValueError, match="num_heads=3, width=8"):
        TransformerDecoder(intermediate_dim=8, num_heads=3)(x)


def test_decoder_call_form_is_fixed_by_the_first_call():
    x = np.ones((2, 5, 8), "float32")
    decoder = TransformerDecoder(intermediate_dim=8, num_heads=2)
    decoder(x)
    with pytest.raises(ValueError, match="without cross-attention"):
        decoder(x, x)
    decoder = TransformerDecoder(intermediate_dim=8, num_heads=2)
    decoder(x, x)
    with pytest.raises(ValueError, match="with cross-attention"):
        decoder(x)


@pytest.mark.slow
def test_one_encoder_block_learns_to_reverse_a_sequence():
    length, vocabulary, width = 6, 8, 32
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, vocabulary, size=(2048, length))
    targets = tokens[:, ::-1]
    keras.utils.set_random_seed(0)
    inputs = keras.Input((length,), dtype="int32")
    positions = keras.ops.zeros_like(inputs) + keras.ops.arange(length, dtype="int32")
    x = keras.layers.Embedding(vocabulary, width)(inputs)
    x = x + keras.layers.Embedding(length, width)(positions)
    x = TransformerEncoder(intermediate_dim=64, num_heads=4)(x)
    outputs = keras.layers.Dense(vocabulary)(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(tokens, targets, batch_size=64, epochs=6, verbose=0)
    test_tokens = rng.integers(0, vocabulary, size=(256, length))
    predictions = to_numpy(model(test_tokens)).argmax(-1)
    assert (predictions == test_tokens[:, ::-1]).mean() > 0.95
