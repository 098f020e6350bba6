"""``run_rnn``: each backend's time loop gives Keras's outputs."""

import keras
import numpy as np
import pytest

from dlkit.training import recurrence
from dlkit.training.backend import backend_module


def _rnn(**kwargs):
    keras.utils.set_random_seed(0)
    rnn = keras.layers.RNN(keras.layers.GRUCell(4), return_state=True, **kwargs)
    rnn.build((None, 5, 3))
    return rnn


SEQUENCES = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
# Right-padded: masked steps only after the first unmasked one (where every backend agrees).
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)


@pytest.mark.parametrize(
    "options",
    [{}, {"return_sequences": True}, {"return_sequences": True, "go_backwards": True}],
    ids=["last", "sequences", "backwards"],
)
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_both_loops_give_keras_outputs(options, masked):
    rnn = _rnn(**options)
    mask = MASK if masked else None
    expected = rnn(SEQUENCES, mask=mask)
    loops = [recurrence.keras_loop, recurrence.run_rnn]
    if keras.backend.backend() != "tensorflow":
        # Keras 3.15's TensorFlow `ops.scan` fails on this carry (a list of states and the
        # output), one reason the scanned loop serves PyTorch only.
        loops.append(recurrence.scanned_loop)
    for loop in loops:
        received = loop(rnn, SEQUENCES, None, mask, None)
        assert len(received) == len(expected) == 2
        for got, want in zip(received, expected):
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want), atol=1e-5
            )


def test_the_backend_names_its_loop():
    loops = {"torch": recurrence.scanned_loop}
    expected = loops.get(keras.backend.backend(), recurrence.keras_loop)
    assert backend_module().run_rnn is expected


def test_rejects_an_rnn_without_its_state():
    rnn = keras.layers.RNN(keras.layers.GRUCell(4))
    with pytest.raises(ValueError, match="return_state"):
        recurrence.run_rnn(rnn, SEQUENCES)
