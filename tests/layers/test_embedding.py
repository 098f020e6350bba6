import keras
import numpy as np
import pytest
from keras import ops

from dlkit.layers.embedding import TokenAndPositionEmbedding, check_token_ids
from dlkit.testing import run_layer_test

TOKEN_IDS = np.array([[3, 4, 5, 0, 0], [12, 1, 2, 7, 0]], dtype="int32")


def numpy_positional_encoding(positions, dim, max_wavelength=10000.0):
    """The "vaswani" sinusoidal encoding, (len(positions), dim)."""
    positions = np.asarray(positions, dtype="float64")[:, None]
    pair_index = np.arange(dim) // 2  # i of channel pair (2i, 2i+1)
    angles = positions / max_wavelength ** (2 * pair_index / dim)
    return np.where(np.arange(dim) % 2 == 0, np.sin(angles), np.cos(angles))


def expected_outputs(layer, token_ids, start_index=0):
    table = ops.convert_to_numpy(layer.token_embedding.embeddings)  # (V, D)
    length = token_ids.shape[1]
    encoding = numpy_positional_encoding(np.arange(length) + start_index, layer.output_dim)
    return np.sqrt(layer.output_dim) * table[token_ids] + encoding[None]


def test_outputs_are_scaled_embeddings_plus_sinusoidal_encoding():
    layer = TokenAndPositionEmbedding(vocabulary_size=13, max_length=8, output_dim=6)
    outputs = ops.convert_to_numpy(layer(TOKEN_IDS))
    assert outputs.shape == (2, 5, 6)
    np.testing.assert_allclose(outputs, expected_outputs(layer, TOKEN_IDS), atol=1e-5)


def test_start_index_shifts_the_positional_encoding():
    layer = TokenAndPositionEmbedding(vocabulary_size=13, max_length=8, output_dim=6)
    shifted = ops.convert_to_numpy(layer(TOKEN_IDS, start_index=3))
    np.testing.assert_allclose(shifted, expected_outputs(layer, TOKEN_IDS, 3), atol=1e-5)
    assert not np.allclose(shifted, ops.convert_to_numpy(layer(TOKEN_IDS)), atol=1e-3)


def test_mask_marks_the_non_padding_tokens():
    layer = TokenAndPositionEmbedding(vocabulary_size=13, max_length=8, output_dim=4)
    mask = ops.convert_to_numpy(layer.compute_mask(TOKEN_IDS))
    np.testing.assert_array_equal(mask, TOKEN_IDS != 0)
    unmasked = TokenAndPositionEmbedding(13, 8, 4, mask_zero=False)
    assert unmasked.compute_mask(TOKEN_IDS) is None


def test_sequences_longer_than_max_length_are_rejected():
    layer = TokenAndPositionEmbedding(vocabulary_size=13, max_length=4, output_dim=4)
    with pytest.raises(ValueError, match=r"max_length=4.*length 5"):
        layer(TOKEN_IDS)
    short = TOKEN_IDS[:, :3]
    layer(short)  # fits
    with pytest.raises(ValueError, match=r"starting at position 2"):
        layer(short, start_index=2)


@pytest.mark.parametrize("bad_id", [-1, 13])
def test_token_ids_outside_the_vocabulary_are_rejected(bad_id):
    layer = TokenAndPositionEmbedding(vocabulary_size=13, max_length=8, output_dim=4)
    token_ids = TOKEN_IDS.copy()
    token_ids[1, 2] = bad_id
    with pytest.raises(ValueError, match=rf"\[0, 13\).*token id {bad_id}"):
        layer(token_ids)
    with pytest.raises(ValueError, match=rf"token id {bad_id}"):
        layer(ops.convert_to_tensor(token_ids))  # an eager backend tensor


@pytest.mark.parametrize(
    "field, value",
    [("vocabulary_size", 0), ("max_length", -2), ("output_dim", 2.5), ("output_dim", True)],
)
def test_bad_constructor_arguments_are_rejected(field, value):
    arguments = {"vocabulary_size": 13, "max_length": 8, "output_dim": 4, field: value}
    with pytest.raises(ValueError, match=rf"Expected `{field}`.*Received: {field}="):
        TokenAndPositionEmbedding(**arguments)


def test_check_token_ids_passes_valid_ids_and_names_the_argument():
    assert check_token_ids(TOKEN_IDS, vocabulary_size=13) is TOKEN_IDS
    tensor = ops.convert_to_tensor(TOKEN_IDS)
    assert check_token_ids(tensor, vocabulary_size=13) is tensor
    with pytest.raises(ValueError, match=r"Expected `source` to lie in \[0, 10\).*12 in source"):
        check_token_ids(TOKEN_IDS, vocabulary_size=10, name="source")
    with pytest.raises(ValueError, match=r"`ids` to hold integer token ids"):
        check_token_ids(np.array([[1.5, 2.0]]), vocabulary_size=10, name="ids")
    with pytest.raises(ValueError, match=r"vocabulary_size"):
        check_token_ids(TOKEN_IDS, vocabulary_size=0)


def test_keras_file_round_trip_inside_a_functional_model(tmp_path):
    token_ids = keras.Input((None,), dtype="int32")
    embedded = TokenAndPositionEmbedding(13, 8, 4, positional_variant="notes")(token_ids)
    model = keras.Model(token_ids, keras.layers.Dense(3)(embedded))
    expected = ops.convert_to_numpy(model(TOKEN_IDS))
    model.save(tmp_path / "embedding.keras")
    restored = keras.saving.load_model(tmp_path / "embedding.keras")
    np.testing.assert_allclose(ops.convert_to_numpy(restored(TOKEN_IDS)), expected, atol=1e-6)
    layer = restored.layers[1]
    assert isinstance(layer, TokenAndPositionEmbedding)
    assert (layer.vocabulary_size, layer.max_length, layer.output_dim) == (13, 8, 4)
    assert layer.positional_variant == "notes"


def test_token_and_position_embedding_passes_the_layer_checks():
    # Integer ids in, so the .keras check wraps the layer around an int32 keras.Input. With an
    # identity table (vocabulary_size == output_dim) the lookup of id t is the unit vector e_t.
    output_dim = 13
    expected = np.sqrt(output_dim) * np.eye(output_dim)[TOKEN_IDS] + numpy_positional_encoding(
        np.arange(TOKEN_IDS.shape[1]), output_dim
    )
    run_layer_test(
        TokenAndPositionEmbedding,
        {
            "vocabulary_size": 13,
            "max_length": 8,
            "output_dim": output_dim,
            "embeddings_initializer": "identity",
        },
        input_data=TOKEN_IDS,
        expected_output_shape=(2, 5, output_dim),
        expected_output=expected,
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
        atol=1e-5,
        rtol=1e-5,
    )
