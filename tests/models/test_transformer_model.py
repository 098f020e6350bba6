import itertools

import keras
import numpy as np
import pytest
from keras import ops

from dlkit.data import digit_sequences
from dlkit.data.sequences import END_ID, PAD_ID, START_ID
from dlkit.layers import TransformerDecoder
from dlkit.losses import sequence_cross_entropy
from dlkit.models import SequenceGenerator, Transformer
from dlkit.testing import run_layer_test

VOCABULARY_SIZE = 13
MAX_LENGTH = 6
# Four sources of 1-4 digits; the last two columns are padding in every row.
SHORT_SOURCE = np.array(
    [[3, 4, 5, 6], [12, 11, 0, 0], [7, 0, 0, 0], [5, 5, 9, 8]],
    dtype="int32",
)
SOURCE = np.pad(SHORT_SOURCE, ((0, 0), (0, 2)))  # (4, 6)
DECODER_INPUTS = np.array(
    [
        [1, 6, 5, 4, 3, 0],
        [1, 11, 12, 0, 0, 0],
        [1, 7, 0, 0, 0, 0],
        [1, 8, 9, 5, 5, 0],
    ],
    dtype="int32",
)


def to_numpy(tensor):
    return ops.convert_to_numpy(tensor)


def log_softmax(logits):
    logits = logits - logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def numpy_sequence_cross_entropy(targets, logits, label_smoothing=0.0):
    num_classes = logits.shape[-1]
    smoothed = (1 - label_smoothing) * np.eye(num_classes)[targets] + label_smoothing / num_classes
    token_loss = -np.sum(smoothed * log_softmax(logits.astype("float64")), axis=-1)
    mask = targets != 0
    return np.sum(token_loss * mask) / max(mask.sum(), 1)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    model = Transformer(
        VOCABULARY_SIZE,
        VOCABULARY_SIZE,
        max_length=MAX_LENGTH,
        model_dim=16,
        num_heads=2,
        intermediate_dim=16,
        num_layers=1,
        dropout=0.0,
    )
    model.build({"source": SOURCE.shape, "decoder_inputs": DECODER_INPUTS.shape})
    return model


def logits_of(model, source=SOURCE, decoder_inputs=DECODER_INPUTS):
    # A compiled call: on JAX, eager calls compile every operation anew for each input shape.
    return np.asarray(model.predict_on_batch({"source": source, "decoder_inputs": decoder_inputs}))


def test_output_shape_for_dict_and_tuple_inputs(model):
    logits = logits_of(model)
    assert logits.shape == (4, MAX_LENGTH, VOCABULARY_SIZE)
    from_tuple = np.asarray(model.predict_on_batch((SOURCE, DECODER_INPUTS)))
    np.testing.assert_allclose(from_tuple, logits, atol=1e-6)


@pytest.mark.parametrize(
    "inputs",
    [{"source": SOURCE}, {"source": SOURCE, "targets": DECODER_INPUTS}, (SOURCE,), SOURCE],
    ids=["missing-key", "wrong-key", "one-element", "array"],
)
def test_bad_inputs_structure_is_rejected(model, inputs):
    with pytest.raises(ValueError, match=r"Expected `inputs`"):
        model(inputs)


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_heads", 3),  # does not divide model_dim=16
        ("dropout", 1.0),
        ("label_smoothing", -0.1),
        ("max_length", 1),
        ("source_vocabulary_size", 1),
        ("num_layers", 0),
        ("model_dim", 16.0),
    ],
)
def test_bad_constructor_arguments_are_rejected(field, value):
    arguments = {
        "source_vocabulary_size": 13,
        "target_vocabulary_size": 13,
        "max_length": 6,
        "model_dim": 16,
        "num_heads": 2,
        field: value,
    }
    with pytest.raises(ValueError, match=rf"`{field}`.*Received: {field}="):
        Transformer(**arguments)


def test_padding_the_source_does_not_change_the_logits(model):
    np.testing.assert_allclose(
        logits_of(model, source=SHORT_SOURCE), logits_of(model, source=SOURCE), atol=1e-5
    )


def test_decoder_is_causal(model):
    changed = DECODER_INPUTS.copy()
    changed[:, 3] = 10
    logits, changed_logits = logits_of(model), logits_of(model, decoder_inputs=changed)
    np.testing.assert_allclose(changed_logits[:, :3], logits[:, :3], atol=1e-5)
    assert np.max(np.abs(changed_logits[:, 3:] - logits[:, 3:])) > 1e-3
    changed[:, 3:] = PAD_ID  # padding after position k: the positions before it are unchanged
    np.testing.assert_allclose(
        logits_of(model, decoder_inputs=changed)[:, :3], logits[:, :3], atol=1e-5
    )


def test_compute_loss_is_the_label_smoothed_masked_cross_entropy():
    smoothed_model = Transformer(
        13, 13, max_length=6, model_dim=8, num_heads=2, label_smoothing=0.2
    )
    logits = np.random.default_rng(0).normal(size=(3, 5, 13)).astype("float32") * 3
    targets = np.array([[3, 4, 2, 0, 0], [5, 2, 0, 0, 0], [12, 11, 10, 9, 2]], dtype="int32")
    loss = smoothed_model.compute_loss(y=targets, y_pred=ops.convert_to_tensor(logits))
    expected = numpy_sequence_cross_entropy(targets, logits, label_smoothing=0.2)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_evaluate_reports_loss_and_token_and_sequence_accuracy(model):
    logits = logits_of(model)
    predictions = logits.argmax(axis=-1)
    wrong = np.where(predictions == 12, 3, predictions + 1)  # never the prediction, never PAD
    targets = np.where(predictions == PAD_ID, 3, predictions)  # all right, no padding
    targets[0, 4:] = PAD_ID  # right up to padding
    targets[1, 1] = wrong[1, 1]  # one token wrong
    targets[3, [0, 2]] = wrong[3, [0, 2]]  # two tokens wrong
    targets[3, 5] = PAD_ID
    targets = targets.astype("int32")
    mask = targets != PAD_ID
    correct = (predictions == targets) & mask
    expected_token_accuracy = correct.sum() / mask.sum()
    expected_sequence_accuracy = np.mean(np.all(correct | ~mask, axis=-1))
    # The targets hold exactly the three wrong tokens set above, in two of the four sequences.
    assert expected_token_accuracy == (mask.sum() - 3) / mask.sum()
    assert expected_sequence_accuracy == 0.5

    model.compile(optimizer="adam")
    results = model.evaluate(
        {"source": SOURCE, "decoder_inputs": DECODER_INPUTS},
        targets,
        batch_size=4,
        verbose=0,
        return_dict=True,
    )
    assert set(results) == {"loss", "token_accuracy", "sequence_accuracy"}
    assert results["loss"] == pytest.approx(numpy_sequence_cross_entropy(targets, logits), rel=1e-5)
    assert results["token_accuracy"] == pytest.approx(expected_token_accuracy, abs=1e-6)
    assert results["sequence_accuracy"] == pytest.approx(expected_sequence_accuracy, abs=1e-6)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_sequence_cross_entropy_matches_numpy(label_smoothing):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 4, 7)).astype("float32") * 2
    targets = np.array([[3, 6, 2, 0], [1, 0, 0, 0]], dtype="int32")
    loss = float(sequence_cross_entropy(targets, logits, label_smoothing=label_smoothing))
    expected = numpy_sequence_cross_entropy(targets, logits, label_smoothing)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert float(sequence_cross_entropy(np.zeros_like(targets), logits, label_smoothing)) == 0.0


@pytest.mark.parametrize("label_smoothing", [1.0, -0.1])
def test_sequence_cross_entropy_rejects_bad_label_smoothing(label_smoothing):
    with pytest.raises(ValueError, match=r"label_smoothing"):
        sequence_cross_entropy(np.ones((1, 2)), np.zeros((1, 2, 3)), label_smoothing)


def test_greedy_generation_matches_a_step_by_step_reference(model):
    generated = model.generate(SOURCE)
    assert generated.shape == (4, MAX_LENGTH) and generated.dtype == np.int32
    # Decoder inputs: START, the tokens chosen so far, then padding, which the causal decoder
    # does not read (test_decoder_is_causal); a fixed shape avoids recompilation.
    buffer = np.zeros((4, MAX_LENGTH + 1), dtype="int32")
    buffer[:, 0] = START_ID
    finished = np.zeros(4, dtype=bool)
    for step in range(MAX_LENGTH):
        step_logits = logits_of(model, decoder_inputs=buffer[:, :-1])[:, step]  # (B, V)
        step_logits[:, [PAD_ID, START_ID]] = -np.inf  # never emitted while decoding
        tokens = np.where(finished, PAD_ID, step_logits.argmax(axis=-1))
        finished |= tokens == END_ID
        buffer[:, step + 1] = tokens
    expected = buffer[:, 1:]
    np.testing.assert_array_equal(generated, expected)
    assert np.any(generated[:, 1] != PAD_ID)  # some sequence runs beyond one token


def test_generator_model_matches_generate_and_survives_a_keras_file(model, tmp_path):
    # `generate` runs a compiled `generator()` in batches; the saved generator reloads alone.
    model.generator().save(tmp_path / "generator.keras")
    restored = keras.saving.load_model(tmp_path / "generator.keras")
    outputs = np.asarray(restored.predict_on_batch(SOURCE))
    np.testing.assert_array_equal(outputs, model.generate(SOURCE))
    np.testing.assert_array_equal(model.generate(SOURCE, batch_size=3), outputs)


def test_transformer_survives_a_keras_file(model, tmp_path):
    model.save(tmp_path / "transformer.keras")
    restored = keras.saving.load_model(tmp_path / "transformer.keras")
    assert isinstance(restored, Transformer)
    assert restored.get_config() == model.get_config()
    np.testing.assert_allclose(logits_of(restored), logits_of(model), atol=1e-6)


def test_cross_attention_weights_ignore_padded_source_positions(model):
    weights = model.cross_attention_weights(SOURCE, DECODER_INPUTS)
    assert weights.shape == (4, 2, MAX_LENGTH, MAX_LENGTH)  # (B, H, T, S)
    padded = (SOURCE == PAD_ID)[:, None, None, :]  # (B, 1, 1, S)
    np.testing.assert_allclose(np.where(padded, 0.0, weights).sum(axis=-1), 1.0, atol=1e-5)
    assert np.max(np.where(padded, weights, 0.0)) < 1e-7


def test_transformer_decoder_returns_both_attention_weights(model):
    layer = model.decoder_blocks[0]  # shapes shared with the model's calls: no new compilation
    assert isinstance(layer, TransformerDecoder)
    decoder_sequence = np.random.default_rng(0).normal(size=(4, 6, 16)).astype("float32")
    encoder_sequence = np.random.default_rng(1).normal(size=(4, 6, 16)).astype("float32")
    outputs = to_numpy(layer(decoder_sequence, encoder_sequence))
    with_weights, weights = layer(decoder_sequence, encoder_sequence, return_attention_scores=True)
    np.testing.assert_allclose(to_numpy(with_weights), outputs, atol=1e-6)
    assert set(weights) == {"self_attention", "cross_attention"}
    self_weights = to_numpy(weights["self_attention"])
    cross_weights = to_numpy(weights["cross_attention"])
    assert self_weights.shape == (4, 2, 6, 6) and cross_weights.shape == (4, 2, 6, 6)
    np.testing.assert_allclose(cross_weights.sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(self_weights.sum(axis=-1), 1.0, atol=1e-5)
    assert np.max(np.triu(self_weights, k=1)) < 1e-7  # causal: no weight on later positions
    assert np.min(self_weights[..., np.tril_indices(6)[0], np.tril_indices(6)[1]]) > 0
    # Symbolic calls (functional models) return the same structure.
    symbolic_outputs, symbolic_weights = layer(
        keras.Input((6, 16)), keras.Input((3, 16)), return_attention_scores=True
    )
    assert tuple(symbolic_outputs.shape) == (None, 6, 16)
    assert tuple(symbolic_weights["self_attention"].shape) == (None, 2, 6, 6)
    assert tuple(symbolic_weights["cross_attention"].shape) == (None, 2, 6, 3)


def test_generate_rejects_bad_sources(model):
    out_of_vocabulary = SOURCE.copy()
    out_of_vocabulary[2, 1] = VOCABULARY_SIZE
    with pytest.raises(ValueError, match=r"`source` to lie in \[0, 13\)"):
        model.generate(out_of_vocabulary)
    too_long = np.full((4, MAX_LENGTH + 1), 3, dtype="int32")
    with pytest.raises(ValueError, match=r"`source` of at most max_length=6.*length 7"):
        model.generate(too_long)
    with pytest.raises(ValueError, match=r"`source` of shape \(batch, length\)"):
        model.generate(SOURCE[0])


@pytest.mark.parametrize(
    "field, value", [("beam_width", 0), ("max_length", MAX_LENGTH + 1), ("start_id", 0)]
)
def test_generator_rejects_bad_arguments(model, field, value):
    with pytest.raises(ValueError, match=rf"{field}={value}"):
        model.generator(**{field: value})


# Beam search on a tiny vocabulary: PAD, START, END and three tokens; two generated tokens.
TINY_SOURCE = np.array([[3, 4], [5, 0], [4, 4]], dtype="int32")


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(5)
    model = Transformer(
        6, 6, max_length=2, model_dim=8, num_heads=2, intermediate_dim=8, num_layers=1, dropout=0.0
    )
    model.build({"source": (None, 2), "decoder_inputs": (None, 2)})
    # Sharper, more varied next-token distributions than at initialisation.
    kernel = model.output_projection.kernel
    kernel.assign(ops.convert_to_numpy(kernel) * 4)
    return model


def brute_force_scores(model, sources):
    """Total log-probability of every sequence the decoder can produce, one dict per source."""
    first_tokens = (END_ID, 3, 4, 5)
    prefixes = np.array([[START_ID, token] for token in first_tokens], dtype="int32")  # (4, 2)
    logits = logits_of(
        model, np.repeat(sources, 4, axis=0), np.tile(prefixes, (len(sources), 1))
    )  # (B·4, 2, V)
    log_probabilities = log_softmax(logits.astype("float64")).reshape(len(sources), 4, 2, -1)
    all_scores = []
    for per_source in log_probabilities:  # (4, 2, V)
        first = per_source[0, 0]  # (V,) the same in every row
        scores = {(END_ID, PAD_ID): first[END_ID]}  # after END only padding, at no cost
        for index, token in itertools.product(range(1, 4), (END_ID, 3, 4, 5)):
            scores[(first_tokens[index], token)] = (
                first[first_tokens[index]] + per_source[index, 1, token]
            )
        all_scores.append(scores)
    return all_scores


@pytest.mark.parametrize("beam_width", [4, 6])
def test_wide_beam_search_finds_the_most_probable_sequence(tiny_model, beam_width):
    beam = tiny_model.generate(TINY_SOURCE, beam_width=beam_width)
    greedy = tiny_model.generate(TINY_SOURCE)
    for scores, beam_tokens, greedy_tokens in zip(
        brute_force_scores(tiny_model, TINY_SOURCE), beam, greedy
    ):
        assert len(scores) == 13
        best = max(scores, key=scores.get)
        assert tuple(beam_tokens) == best
        assert scores[tuple(beam_tokens)] >= scores[tuple(greedy_tokens)] - 1e-6


@pytest.mark.slow
def test_learns_to_reverse_short_digit_strings():
    keras.utils.set_random_seed(0)
    data = digit_sequences("reverse", num_train=600, num_test=50, min_length=2, max_length=4)
    train, test = data["train"], data["test"]
    model = Transformer(
        VOCABULARY_SIZE,
        VOCABULARY_SIZE,
        max_length=5,
        model_dim=32,
        num_heads=2,
        intermediate_dim=64,
        num_layers=1,
        dropout=0.0,
    )
    model.build({"source": (None, 4), "decoder_inputs": (None, 5)})
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    inputs = {"source": train["source"], "decoder_inputs": train["decoder_inputs"]}
    # 15 equal batches per epoch: one compiled training step.
    model.fit(inputs, train["targets"], batch_size=40, epochs=8, verbose=0)
    generated = model.generate(test["source"])
    exact_match = np.mean(np.all(generated == test["targets"], axis=1))
    assert exact_match >= 0.8  # chance is about 10^-3; seeds 0-2 reach 0.94-1.0 on every backend


def test_transformer_passes_the_layer_checks():
    # No closed form for a whole Transformer's logits: the shape, weights, round trips and
    # gradients are checked here, the parts numerically in tests/layers.
    run_layer_test(
        Transformer,
        {
            "source_vocabulary_size": VOCABULARY_SIZE,
            "target_vocabulary_size": VOCABULARY_SIZE,
            "max_length": MAX_LENGTH,
            "model_dim": 8,
            "num_heads": 2,
            "intermediate_dim": 8,
            "num_layers": 1,
        },
        input_data=[{"source": SOURCE, "decoder_inputs": DECODER_INPUTS}],
        expected_output_shape=(4, MAX_LENGTH, VOCABULARY_SIZE),
        # Two embedding tables, 16 in the encoder block, 26 in the decoder block, 2 in logits.
        expected_num_trainable_weights=46,
        expected_num_non_trainable_weights=0,
        atol=1e-5,
        rtol=1e-5,
    )


def test_sequence_generator_passes_the_layer_checks(model):
    # The expected ids are `generate`'s, which the step-by-step reference above checks.
    run_layer_test(
        SequenceGenerator,
        {"transformer": model},
        input_data=SOURCE,
        expected_output_shape=(4, MAX_LENGTH),
        expected_output=model.generate(SOURCE),
        expected_num_trainable_weights=46,  # the transformer's, shared
        expected_num_non_trainable_weights=0,
        # Decoding picks tokens by top-k, which has no gradient; the weights are the
        # Transformer's, whose training step the test above checks.
        run_training_check=False,
    )
