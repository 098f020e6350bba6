import os

import keras
import numpy as np
import pytest

from dlkit.layers.lstm import LSTM, LSTMCell
from dlkit.testing import run_layer_test

UNITS = 3
RNG = np.random.default_rng(0)
SEQUENCES = RNG.normal(size=(2, 5, 4)).astype("float32")  # (B, T, D)
# Right-padded like real batches, and one sequence with a masked step in the middle.
MASK = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], dtype=bool)
INITIAL_STATE = [RNG.normal(size=(2, UNITS)).astype("float32") for _ in range(2)]


def to_numpy(structure):
    return [keras.ops.convert_to_numpy(x) for x in keras.tree.flatten(structure)]


def random_weights(layer):
    # Non-trivial weights (the default bias is mostly zeros) so that every gate matters.
    rng = np.random.default_rng(1)
    return [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]


def paired_with_keras(**kwargs):
    ours, reference = LSTM(UNITS, **kwargs), keras.layers.LSTM(UNITS, **kwargs)
    ours.build(SEQUENCES.shape)
    reference.build(SEQUENCES.shape)
    weights = random_weights(reference)
    reference.set_weights(weights)
    ours.set_weights(weights)
    return ours, reference


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm_step(x, h_previous, c_previous, kernel, recurrent_kernel, bias):
    # Notes eqs. 7.1-7.6, one matrix per gate acting on [h_{t-1}, x_t].
    def gate_matrix(index):
        block = slice(index * UNITS, (index + 1) * UNITS)
        return np.concatenate([recurrent_kernel[:, block], kernel[:, block]], axis=0)

    W_i, W_f, W_C, W_o = (gate_matrix(index) for index in range(4))
    b_i, b_f, b_C, b_o = np.split(bias, 4)
    h_x = np.concatenate([h_previous, x], axis=-1)
    f_t = sigmoid(h_x @ W_f + b_f)
    i_t = sigmoid(h_x @ W_i + b_i)
    C_tilde = np.tanh(h_x @ W_C + b_C)
    C_t = f_t * c_previous + i_t * C_tilde
    o_t = sigmoid(h_x @ W_o + b_o)
    h_t = o_t * np.tanh(C_t)
    return h_t, C_t


def test_cell_step_matches_the_equations_in_numpy():
    cell = LSTMCell(UNITS)
    x = SEQUENCES[:, 0]
    cell.build(x.shape)
    weights = random_weights(cell)
    cell.set_weights(weights)
    hidden_state, (state_h, cell_state) = cell(x, INITIAL_STATE)
    expected_h, expected_c = numpy_lstm_step(x, *INITIAL_STATE, *weights)
    np.testing.assert_allclose(to_numpy(hidden_state)[0], expected_h, atol=1e-5)
    np.testing.assert_allclose(to_numpy(state_h)[0], expected_h, atol=1e-5)
    np.testing.assert_allclose(to_numpy(cell_state)[0], expected_c, atol=1e-5)


def test_cell_weights_have_the_keras_layout():
    cell = LSTMCell(UNITS)
    cell(SEQUENCES[:, 0], INITIAL_STATE)
    assert [tuple(w.shape) for w in cell.weights] == [(4, 4 * UNITS), (UNITS, 4 * UNITS), (12,)]
    # unit_forget_bias: only the forget block (second of i, f, c, o) starts at one.
    expected_bias = np.concatenate([np.zeros(UNITS), np.ones(UNITS), np.zeros(2 * UNITS)])
    np.testing.assert_array_equal(to_numpy(cell.bias)[0], expected_bias)
    no_bias = LSTMCell(UNITS, use_bias=False, unit_forget_bias=False)
    no_bias(SEQUENCES[:, 0], INITIAL_STATE)
    assert len(no_bias.weights) == 2
    assert no_bias.state_size == [UNITS, UNITS] and no_bias.output_size == UNITS


def test_cell_inside_keras_rnn_equals_keras_lstm():
    ours = keras.layers.RNN(LSTMCell(UNITS), return_sequences=True)
    _, reference = paired_with_keras(return_sequences=True)
    ours.build(SEQUENCES.shape)
    ours.set_weights(reference.get_weights())
    np.testing.assert_allclose(
        to_numpy(ours(SEQUENCES, mask=MASK))[0],
        to_numpy(reference(SEQUENCES, mask=MASK))[0],
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"return_sequences": True, "return_state": True, "go_backwards": True},
        {"return_state": True},
        {"return_sequences": True, "zero_output_for_mask": True},
    ],
)
def test_lstm_equals_keras_lstm_with_the_same_weights(kwargs):
    ours, reference = paired_with_keras(**kwargs)
    for mask in (None, MASK):
        received = to_numpy(ours(SEQUENCES, mask=mask))
        expected = to_numpy(reference(SEQUENCES, mask=mask))
        assert len(received) == len(expected) == (3 if kwargs.get("return_state") else 1)
        for ours_part, keras_part in zip(received, expected):
            assert ours_part.shape == keras_part.shape
            np.testing.assert_allclose(ours_part, keras_part, atol=1e-5)


def test_initial_state_equals_keras():
    ours, reference = paired_with_keras(return_sequences=True, return_state=True)
    for mask in (None, MASK):
        received = to_numpy(ours(SEQUENCES, initial_state=INITIAL_STATE, mask=mask))
        expected = to_numpy(reference(SEQUENCES, initial_state=INITIAL_STATE, mask=mask))
        for ours_part, keras_part in zip(received, expected):
            np.testing.assert_allclose(ours_part, keras_part, atol=1e-5)
    outputs, hidden_state, _ = received
    np.testing.assert_array_equal(outputs[:, -1], hidden_state)


def test_masked_steps_carry_the_state_and_repeat_the_output():
    layer = LSTM(UNITS, return_sequences=True, return_state=True)
    layer.build(SEQUENCES.shape)
    layer.set_weights(random_weights(layer))
    leading_mask = np.array([[0, 0, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=bool)
    outputs, hidden_state, cell_state = to_numpy(
        layer(SEQUENCES, initial_state=INITIAL_STATE, mask=leading_mask)
    )
    # Every output, leading masked steps included, is what keras.layers.LSTM gives on this
    # backend (the initial hidden state on JAX, zeros on TensorFlow and PyTorch).
    reference = keras.layers.LSTM(UNITS, return_sequences=True, return_state=True)
    reference.build(SEQUENCES.shape)
    reference.set_weights(layer.get_weights())
    expected = to_numpy(reference(SEQUENCES, initial_state=INITIAL_STATE, mask=leading_mask))
    for actual, wanted in zip((outputs, hidden_state, cell_state), expected):
        np.testing.assert_allclose(actual, wanted, atol=1e-5)
    np.testing.assert_allclose(outputs[0, 4], outputs[0, 3], atol=1e-6)
    np.testing.assert_allclose(hidden_state[0], outputs[0, 3], atol=1e-6)
    # Only the two unmasked steps count: the same as running them alone.
    alone = to_numpy(layer(SEQUENCES[:1, 2:4], initial_state=[s[:1] for s in INITIAL_STATE]))
    np.testing.assert_allclose(hidden_state[:1], alone[1], atol=1e-5)
    np.testing.assert_allclose(cell_state[:1], alone[2], atol=1e-5)


def test_bidirectional_wrapper_equals_keras():
    # Bidirectional builds the backward copy from the config and sets zero_output_for_mask.
    ours = keras.layers.Bidirectional(LSTM(UNITS, return_sequences=True))
    reference = keras.layers.Bidirectional(keras.layers.LSTM(UNITS, return_sequences=True))
    ours.build(SEQUENCES.shape)
    reference.build(SEQUENCES.shape)
    reference.set_weights(random_weights(reference))
    ours.set_weights(reference.get_weights())
    np.testing.assert_allclose(
        to_numpy(ours(SEQUENCES, mask=MASK))[0],
        to_numpy(reference(SEQUENCES, mask=MASK))[0],
        atol=1e-5,
    )


def test_output_mask_follows_keras():
    mask = keras.ops.convert_to_tensor(MASK)
    assert LSTM(UNITS).compute_mask(SEQUENCES, mask) is None
    assert LSTM(UNITS, return_sequences=True).compute_mask(SEQUENCES, mask) is mask
    assert LSTM(UNITS, return_state=True).compute_mask(SEQUENCES, mask) == [None, None, None]


def test_masking_layer_in_a_variable_length_model_equals_keras(tmp_path):
    def build(lstm):
        inputs = keras.Input((None, 4))
        masked = keras.layers.Masking(mask_value=0.0)(inputs)
        outputs = keras.layers.Dense(2)(lstm(masked))
        return keras.Model(inputs, outputs)

    ours = build(LSTM(UNITS, return_sequences=True))
    reference = build(keras.layers.LSTM(UNITS, return_sequences=True))
    reference.set_weights(random_weights(reference))
    ours.set_weights(reference.get_weights())
    padded = SEQUENCES * MASK[:, :, None]  # zeros where MASK is False
    expected = to_numpy(reference(padded))[0]
    np.testing.assert_allclose(to_numpy(ours(padded))[0], expected, atol=1e-5)
    path = os.path.join(tmp_path, "lstm.keras")
    ours.save(path)
    restored = keras.saving.load_model(path)
    # Another length than the one above: the time dimension stays free after loading.
    np.testing.assert_allclose(to_numpy(restored(padded[:, :3]))[0], expected[:, :3], atol=1e-5)


def test_run_layer_test_cell():
    run_layer_test(
        LSTMCell,
        {"units": UNITS},
        input_data=[SEQUENCES[:, 0], INITIAL_STATE],
        expected_output_shape=((2, UNITS), [(2, UNITS), (2, UNITS)]),
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
        atol=1e-5,
    )


def test_run_layer_test_lstm():
    run_layer_test(
        LSTM,
        {"units": UNITS, "return_sequences": True, "return_state": True, "go_backwards": True},
        input_data=SEQUENCES,
        expected_output_shape=((2, 5, UNITS), (2, UNITS), (2, UNITS)),
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=0,
        atol=1e-5,
    )


@pytest.mark.parametrize("units", [0, -2, 2.5, True, "3"])
@pytest.mark.parametrize("layer_cls", [LSTMCell, LSTM])
def test_bad_units_are_rejected(layer_cls, units):
    with pytest.raises(ValueError, match="units"):
        layer_cls(units)


def test_initial_state_must_hold_two_states():
    layer = LSTM(UNITS)
    with pytest.raises(ValueError, match="initial_state"):
        layer(SEQUENCES, initial_state=INITIAL_STATE[0])
    with pytest.raises(ValueError, match="initial_state"):
        layer(SEQUENCES, initial_state=INITIAL_STATE[:1])


@pytest.mark.slow
def test_learns_the_sign_of_a_sum():
    rng = np.random.default_rng(0)
    sequences = rng.normal(size=(256, 6, 1)).astype("float32")
    labels = (sequences.sum(axis=(1, 2)) > 0).astype("float32")[:, None]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((None, 1)), LSTM(8), keras.layers.Dense(1, activation="sigmoid")]
    )
    # XLA on JAX and TensorFlow (Keras' bounded time loop compiles, gradient included). On
    # torch, jit_compile=True would mean torch.compile, which this test is not about.
    backend = keras.backend.backend()
    model.compile(
        keras.optimizers.Adam(0.03), "binary_crossentropy", jit_compile=backend != "torch"
    )
    assert model.jit_compile is (backend != "torch")
    initial_loss = model.evaluate(sequences, labels, verbose=0)
    model.fit(sequences, labels, batch_size=64, epochs=40, verbose=0)
    final_loss = model.evaluate(sequences, labels, verbose=0)
    assert final_loss < 0.25 * initial_loss, (initial_loss, final_loss)
