import keras
import numpy as np
import pytest

from dlkit.layers.attention import (
    AdditiveScore,
    MultiHeadAttention,
    attention,
    masked_softmax,
    scaled_dot_product_scores,
)
from dlkit.testing import run_layer_test


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def numpy_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def random(rng, *shape):
    return rng.normal(size=shape).astype("float32")


# Functions


def test_scaled_dot_product_scores_match_numpy():
    rng = np.random.default_rng(0)
    query, key = random(rng, 2, 3, 4, 8), random(rng, 2, 3, 5, 8)
    expected = np.einsum("bhqd,bhkd->bhqk", query, key) / np.sqrt(8)
    np.testing.assert_allclose(to_numpy(scaled_dot_product_scores(query, key)), expected, atol=1e-5)


def test_masked_softmax_gives_masked_keys_zero_weight():
    rng = np.random.default_rng(1)
    scores = random(rng, 2, 3, 4)
    mask = rng.random((2, 3, 4)) > 0.4
    mask[0, 1] = False  # a query that may attend to nothing
    weights = to_numpy(masked_softmax(scores, mask))
    expected = np.where(mask, numpy_softmax(np.where(mask, scores, -1e30)), 0.0)
    expected[0, 1] = 0.0
    np.testing.assert_allclose(weights, expected, atol=1e-6)
    assert np.all(weights[~mask] == 0.0)
    sums = weights.sum(-1)
    np.testing.assert_allclose(sums[mask.any(-1)], 1.0, atol=1e-6)
    np.testing.assert_allclose(to_numpy(masked_softmax(scores)), numpy_softmax(scores), atol=1e-6)


def test_attention_matches_numpy_for_both_scores():
    rng = np.random.default_rng(2)
    query, key, value = random(rng, 2, 3, 4), random(rng, 2, 5, 6), random(rng, 2, 5, 7)
    mask = np.ones((2, 3, 5), bool)
    mask[:, :, -2:] = False
    score = AdditiveScore(units=8)
    outputs, weights = attention(query, key, value, mask=mask, score_function=score)
    query_kernel, key_kernel, score_vector = (to_numpy(w) for w in score.weights)
    hidden = np.tanh((query @ query_kernel)[:, :, None] + (key @ key_kernel)[:, None])
    scores = hidden @ score_vector  # (B, Tq, Tk)
    expected_weights = np.where(mask, numpy_softmax(np.where(mask, scores, -1e30)), 0.0)
    np.testing.assert_allclose(to_numpy(weights), expected_weights, atol=1e-5)
    np.testing.assert_allclose(to_numpy(outputs), expected_weights @ value, atol=1e-5)

    key = random(rng, 2, 5, 4)
    outputs, weights = attention(query, key, value)
    expected_weights = numpy_softmax(query @ key.transpose(0, 2, 1) / 2.0)
    np.testing.assert_allclose(to_numpy(outputs), expected_weights @ value, atol=1e-5)


def test_additive_score_run_layer_test():
    run_layer_test(
        AdditiveScore,
        {"units": 6},
        input_shape=((2, 3, 4), (2, 5, 7)),
        expected_output_shape=(2, 3, 5),
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
    )


@pytest.mark.parametrize("units", [0, -1, 2.5, True, None])
def test_additive_score_bad_units(units):
    with pytest.raises(ValueError, match="units="):
        AdditiveScore(units=units)


# MultiHeadAttention


@pytest.mark.parametrize(
    ("init_kwargs", "input_shape", "output_shape", "num_weights"),
    [
        ({"num_heads": 2, "key_dim": 3}, ((2, 4, 6), (2, 5, 6)), (2, 4, 6), 8),
        (
            {
                "num_heads": 2,
                "key_dim": 3,
                "value_dim": 4,
                "output_shape": 5,
                "score": "additive",
                "use_bias": False,
                "dropout": 0.3,
                "seed": 1,
            },
            ((2, 4, 6), (2, 5, 6), (2, 5, 7)),
            (2, 4, 5),
            5,
        ),
    ],
    ids=["dot_product", "additive_dropout"],
)
def test_multi_head_attention_run_layer_test(init_kwargs, input_shape, output_shape, num_weights):
    run_layer_test(
        MultiHeadAttention,
        init_kwargs,
        input_shape=input_shape,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=num_weights,
        expected_num_non_trainable_weights=0,
    )


def test_multi_head_attention_run_layer_test_with_masks_and_scores():
    rng = np.random.default_rng(3)
    value_mask = np.ones((2, 5), bool)
    value_mask[0, 3:] = False
    run_layer_test(
        MultiHeadAttention,
        {"num_heads": 2, "key_dim": 3},
        input_data=[random(rng, 2, 4, 6), random(rng, 2, 5, 6)],
        call_kwargs={"value_mask": value_mask, "return_attention_scores": True},
        expected_output_shape=((2, 4, 6), (2, 2, 4, 5)),
        run_saving_check=False,  # the fixed mask would be a constant inside the saved model
    )


def keras_pair(rng, query, value, key=None, **kwargs):
    mine = MultiHeadAttention(**kwargs)
    reference = keras.layers.MultiHeadAttention(**kwargs)
    mine(query, value, key)
    # Keras' fused path fails on JAX when value_dim != key_dim; its explicit path does not.
    reference(query, value, key, return_attention_scores=True)
    weights = [random(rng, *w.shape) * 0.5 for w in reference.get_weights()]
    reference.set_weights(weights)
    mine.set_weights(weights)
    return mine, reference


def assert_outputs_close(received, expected, rows=slice(None)):
    for a, b in zip(keras.tree.flatten(received), keras.tree.flatten(expected)):
        a, b = to_numpy(a), to_numpy(b)
        assert a.shape == b.shape
        if a.ndim == 4:  # attention weights (B, H, Tq, Tk)
            a, b = a.transpose(0, 2, 1, 3), b.transpose(0, 2, 1, 3)
        np.testing.assert_allclose(a[rows], b[rows], atol=2e-5)


@pytest.mark.parametrize(
    "call_kwargs",
    [
        {},
        {"use_causal_mask": True},
        {"value_mask": "padding"},
        {"attention_mask": "random", "use_causal_mask": True},
        {"value_mask": "padding", "return_attention_scores": True},
        {"use_causal_mask": True, "return_attention_scores": True},
    ],
    ids=["plain", "causal", "value_mask", "attention_mask_causal", "scores", "causal_scores"],
)
def test_multi_head_attention_equals_keras(call_kwargs):
    rng = np.random.default_rng(4)
    query, value, key = random(rng, 2, 4, 6), random(rng, 2, 5, 3), random(rng, 2, 5, 7)
    mine, reference = keras_pair(rng, query, value, key, num_heads=2, key_dim=3)
    masks = {
        "padding": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool),
        "random": rng.random((2, 4, 5)) > 0.3,
    }
    call_kwargs = {k: masks.get(v, v) if isinstance(v, str) else v for k, v in call_kwargs.items()}
    if "attention_mask" in call_kwargs:
        call_kwargs["attention_mask"][:, :, 0] = True  # every query keeps a key
    assert_outputs_close(
        mine(query, value, key, **call_kwargs), reference(query, value, key, **call_kwargs)
    )


def test_multi_head_attention_equals_keras_with_value_dim_and_output_shape():
    rng = np.random.default_rng(5)
    query, value = random(rng, 2, 4, 6), random(rng, 2, 3, 6)
    kwargs = {"num_heads": 3, "key_dim": 2, "value_dim": 4, "output_shape": (2, 5)}
    mine, reference = keras_pair(rng, query, value, **kwargs)
    assert [tuple(w.shape) for w in mine.weights] == [tuple(w.shape) for w in reference.weights]
    assert_outputs_close(
        mine(query, value, return_attention_scores=True),
        reference(query, value, return_attention_scores=True),
    )


def test_query_mask_matches_keras_with_the_equivalent_attention_mask():
    rng = np.random.default_rng(6)
    query, value = random(rng, 2, 4, 6), random(rng, 2, 5, 6)
    mine, reference = keras_pair(rng, query, value, num_heads=2, key_dim=3)
    query_mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    value_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], bool)
    equivalent = query_mask[:, :, None] & value_mask[:, None, :]
    received = mine(query, value, query_mask=query_mask, value_mask=value_mask)
    # Keras' fused path averages the values at padded queries: compare the real ones only.
    assert_outputs_close(received, reference(query, value, attention_mask=equivalent), query_mask)
    # Keras' explicit path (weights returned) also gives padded queries a zero context vector.
    received = mine(query, value, query_mask=query_mask, return_attention_scores=True)
    expected = reference(
        query,
        value,
        attention_mask=query_mask[:, :, None] & np.ones((1, 1, 5), bool),
        return_attention_scores=True,
    )
    assert_outputs_close(received, expected)
    np.testing.assert_allclose(to_numpy(received[0])[0, 2], to_numpy(mine.output_bias), atol=1e-6)


def test_keras_masks_are_read_and_the_query_mask_propagates():
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2]])
    inputs = keras.Input((5,), dtype="int32")
    embedded = keras.layers.Embedding(10, 6, mask_zero=True)(inputs)
    mine = MultiHeadAttention(num_heads=2, key_dim=3)
    reference = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    received, expected = mine(embedded, embedded), reference(embedded, embedded)
    # A masked average pools only the positions the propagated mask marks as real.
    pooled = keras.layers.GlobalAveragePooling1D()(received)
    model = keras.Model(inputs, [received, expected, pooled])
    mine.set_weights(reference.get_weights())
    received, expected, pooled = (to_numpy(x) for x in model(tokens))
    valid = tokens > 0
    assert_outputs_close(received, expected, valid)
    expected_pooled = (received * valid[..., None]).sum(1) / valid.sum(1, keepdims=True)
    np.testing.assert_allclose(pooled, expected_pooled, atol=1e-5)
    assert not np.allclose(pooled[0], received[0].mean(0), atol=1e-3)


@pytest.mark.parametrize(
    "call_kwargs",
    [
        {"query_mask": "query", "value_mask": "value"},
        {"query_mask": "query"},
        {"attention_mask": "random", "use_causal_mask": True},
        {"use_causal_mask": True},
    ],
    ids=["padding", "query_padding", "attention_causal", "causal"],
)
def test_fused_and_explicit_paths_agree(call_kwargs):
    rng = np.random.default_rng(8)
    query, value = random(rng, 2, 4, 6), random(rng, 2, 5, 6)
    masks = {
        "query": np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool),
        "value": np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], bool),
        "random": rng.random((2, 4, 5)) > 0.5,
    }
    call_kwargs = {k: masks.get(v, v) if isinstance(v, str) else v for k, v in call_kwargs.items()}
    layer = MultiHeadAttention(num_heads=2, key_dim=3)
    fused = layer(query, value, **call_kwargs)
    explicit, weights = layer(query, value, return_attention_scores=True, **call_kwargs)
    np.testing.assert_allclose(to_numpy(fused), to_numpy(explicit), atol=1e-5)
    weights = to_numpy(weights)
    if call_kwargs.get("use_causal_mask"):
        assert np.all(weights[..., np.triu(np.ones((4, 5), bool), 1)] == 0.0)  # keys j > i


def test_additive_multi_head_attention_matches_numpy():
    rng = np.random.default_rng(9)
    query, value = random(rng, 2, 4, 6), random(rng, 2, 5, 6)
    layer = MultiHeadAttention(num_heads=2, key_dim=3, score="additive")
    layer(query, value)
    layer.set_weights([random(rng, *w.shape) * 0.5 for w in layer.get_weights()])
    outputs, weights = layer(query, value, return_attention_scores=True)
    w = {v.name: to_numpy(v) for v in layer.weights}
    query_heads = np.einsum("btd,dhk->bhtk", query, w["query_kernel"]) + w["query_bias"][:, None]
    key_heads = np.einsum("btd,dhk->bhtk", value, w["key_kernel"]) + w["key_bias"][:, None]
    value_heads = np.einsum("btd,dhk->bhtk", value, w["value_kernel"]) + w["value_bias"][:, None]
    hidden = np.tanh(query_heads[:, :, :, None] + key_heads[:, :, None])  # (B, H, Tq, Tk, K)
    scores = np.einsum("bhqkd,hd->bhqk", hidden, w["score_vector"])
    expected_weights = numpy_softmax(scores)
    context = expected_weights @ value_heads  # (B, H, Tq, Dv)
    expected = np.einsum("bhtd,hde->bte", context, w["output_kernel"]) + w["output_bias"]
    np.testing.assert_allclose(to_numpy(weights), expected_weights, atol=1e-5)
    np.testing.assert_allclose(to_numpy(outputs), expected, atol=1e-5)


def test_dropout_is_unbiased_and_only_in_training():
    rng = np.random.default_rng(10)
    query, value = random(rng, 1, 3, 4), random(rng, 1, 6, 4)
    query, value = np.repeat(query, 2000, axis=0), np.repeat(value, 2000, axis=0)
    layer = MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.4, seed=3)
    inference = to_numpy(layer(query, value))
    np.testing.assert_allclose(to_numpy(layer(query, value, training=False)), inference)
    dropped, weights = layer(query, value, training=True, return_attention_scores=True)
    dropped = to_numpy(dropped)
    np.testing.assert_allclose(to_numpy(weights).sum(-1), 1.0, atol=1e-5)  # pre-dropout weights
    assert np.std(dropped, axis=0).mean() > 0.05  # examples differ
    # Inverted dropout keeps the expectation: the mean over 2000 copies is the inference output.
    np.testing.assert_allclose(dropped.mean(axis=0), inference[0], atol=0.06)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_heads": 0}, "num_heads=0"),
        ({"num_heads": 2.0}, "num_heads=2.0"),
        ({"key_dim": -1}, "key_dim=-1"),
        ({"value_dim": 0}, "value_dim=0"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"dropout": -0.1}, "dropout=-0.1"),
        ({"score": "cosine"}, "score='cosine'"),
        ({"output_shape": 0}, "output_shape=0"),
    ],
)
def test_multi_head_attention_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MultiHeadAttention(**{"num_heads": 2, "key_dim": 3, **kwargs})


def test_multi_head_attention_bad_shapes():
    layer = MultiHeadAttention(num_heads=2, key_dim=3)
    with pytest.raises(ValueError, match=r"key.shape=\(2, 4, 6\), value.shape=\(2, 5, 6\)"):
        layer(np.ones((2, 3, 6)), np.ones((2, 5, 6)), np.ones((2, 4, 6)))
    with pytest.raises(ValueError, match=r"query.shape=\(2, 6\)"):
        MultiHeadAttention(num_heads=2, key_dim=3)(np.ones((2, 6)), np.ones((2, 5, 6)))


def test_inputs_of_different_batch_sizes_name_both_shapes():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    pattern = r"same batch size\. Received: query\.shape=\(2, 3, 8\), value\.shape=\(3, 5, 8\)"
    with pytest.raises(ValueError, match=pattern):
        layer(np.ones((2, 3, 8), "float32"), np.ones((3, 5, 8), "float32"))
    with pytest.raises(ValueError, match=r"query\.shape=\(2, 3, 4\), key\.shape=\(4, 5, 4\)"):
        attention(np.ones((2, 3, 4)), np.ones((4, 5, 4)), np.ones((4, 5, 6)))
