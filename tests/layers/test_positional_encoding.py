import keras
import numpy as np
import pytest

from dlkit.layers.positional_encoding import SinusoidalPositionalEncoding
from dlkit.testing import run_layer_test


def reference_encoding(sequence_length, model_dim, variant, start_index=0, max_wavelength=1e4):
    """NumPy transcription of the two formulas, channel by channel."""
    encoding = np.zeros((sequence_length, model_dim))
    for position in range(start_index, start_index + sequence_length):
        for channel in range(model_dim):
            i = channel // 2
            if channel % 2 == 0:
                value = np.sin(position / max_wavelength ** (2 * i / model_dim))
            elif variant == "vaswani":
                value = np.cos(position / max_wavelength ** (2 * i / model_dim))
            else:  # notes eq. 7.13
                value = np.cos(position / max_wavelength ** ((2 * i + 1) / model_dim))
            encoding[position - start_index, channel] = value
    return encoding.astype("float32")


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("variant", ["vaswani", "notes"])
@pytest.mark.parametrize("model_dim", [6, 7])
def test_matches_numpy_reference(variant, model_dim):
    embeddings = np.random.default_rng(0).normal(size=(2, 9, model_dim)).astype("float32")
    layer = SinusoidalPositionalEncoding(variant=variant, max_wavelength=50)
    encoding = to_numpy(layer(embeddings, start_index=3))
    expected = reference_encoding(9, model_dim, variant, start_index=3, max_wavelength=50)
    assert encoding.shape == (2, 9, model_dim)
    np.testing.assert_allclose(encoding[0], expected, atol=1e-5)
    np.testing.assert_allclose(encoding[1], expected, atol=1e-5)


def test_variants_differ_only_on_cosine_channels():
    embeddings = np.zeros((1, 12, 8), dtype="float32")
    vaswani = to_numpy(SinusoidalPositionalEncoding(variant="vaswani")(embeddings))[0]
    notes = to_numpy(SinusoidalPositionalEncoding(variant="notes")(embeddings))[0]
    np.testing.assert_allclose(vaswani[:, 0::2], notes[:, 0::2], atol=1e-6)
    # Channel 1: cos(pos) in the paper, cos(pos / 10000^(1/8)) in the notes.
    np.testing.assert_allclose(vaswani[:, 1], np.cos(np.arange(12)), atol=1e-5)
    np.testing.assert_allclose(notes[:, 1], np.cos(np.arange(12) / 1e4 ** (1 / 8)), atol=1e-5)
    assert np.max(np.abs(vaswani[:, 1::2] - notes[:, 1::2])) > 0.1


@pytest.mark.parametrize("variant", ["vaswani", "notes"])
def test_position_zero_is_sin_zero_and_cos_zero(variant):
    encoding = to_numpy(SinusoidalPositionalEncoding(variant=variant)(np.ones((1, 3, 5))))
    np.testing.assert_array_equal(encoding[0, 0], [0.0, 1.0, 0.0, 1.0, 0.0])
    # The first sine channel has wavelength 2π: sin(pos).
    np.testing.assert_allclose(encoding[0, :, 0], np.sin([0.0, 1.0, 2.0]), atol=1e-6)


def test_run_layer_test():
    run_layer_test(
        SinusoidalPositionalEncoding,
        {"max_wavelength": 100, "variant": "notes"},
        input_shape=(2, 4, 6),
        expected_output_shape=(2, 4, 6),
        expected_output=np.broadcast_to(
            reference_encoding(4, 6, "notes", max_wavelength=100), (2, 4, 6)
        ),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        run_training_check=False,
        atol=1e-5,
    )


def test_start_index_equals_slicing_a_longer_encoding():
    layer = SinusoidalPositionalEncoding()
    full = to_numpy(layer(np.zeros((2, 10, 6), dtype="float32")))
    window = to_numpy(layer(np.zeros((2, 3, 6), dtype="float32"), start_index=4))
    np.testing.assert_allclose(window, full[:, 4:7], atol=1e-5)
    tensor_start = keras.ops.convert_to_tensor(7, dtype="int32")
    window = to_numpy(layer(np.zeros((2, 3, 6), dtype="float32"), start_index=tensor_start))
    np.testing.assert_allclose(window, full[:, 7:10], atol=1e-5)


def test_unknown_sequence_length_in_functional_model():
    inputs = keras.Input(shape=(None, 6))
    outputs = inputs + SinusoidalPositionalEncoding()(inputs)
    model = keras.Model(inputs, outputs)
    assert tuple(model.output_shape) == (None, None, 6)
    for sequence_length in (3, 5):
        embeddings = np.ones((2, sequence_length, 6), dtype="float32")
        expected = 1.0 + reference_encoding(sequence_length, 6, "vaswani")
        np.testing.assert_allclose(to_numpy(model(embeddings))[1], expected, atol=1e-5)
    predicted = model.predict(np.ones((2, 7, 6), dtype="float32"), verbose=0)
    np.testing.assert_allclose(predicted[0], 1.0 + reference_encoding(7, 6, "vaswani"), atol=1e-5)


def test_follows_the_compute_dtype():
    layer = SinusoidalPositionalEncoding(dtype="mixed_float16")
    encoding = layer(np.zeros((1, 4, 6), dtype="float16"))
    assert keras.backend.standardize_dtype(encoding.dtype) == "float16"


@pytest.mark.parametrize("max_wavelength", [0, -5.0, "big", None])
def test_bad_max_wavelength(max_wavelength):
    with pytest.raises(ValueError, match="max_wavelength="):
        SinusoidalPositionalEncoding(max_wavelength=max_wavelength)


def test_bad_variant():
    with pytest.raises(ValueError, match="variant='paper'"):
        SinusoidalPositionalEncoding(variant="paper")
