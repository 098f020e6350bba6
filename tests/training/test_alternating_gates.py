"""The version gates of ``AlternatingModel``'s private Keras APIs, closed and open.

``AlternatingModel loss logs`` (``Model._loss_tracker``) and ``AlternatingModel seed saving``
(``_flatten_layers``, ``Layer._seed_generators``): with the gates closed the public paths must
give the same logs, weights, metric state and saved seed states, with one warning each.
"""

import warnings

import keras
import numpy as np
from toy_models import ToyGAN, gan_optimizers, mixture_samples, mlp, weights_of

from dlkit.training import AlternatingModel

ALTERNATING_GATES = ("AlternatingModel loss logs", "AlternatingModel seed saving")
# The other gates on keras stay open, so that only the alternating paths change.
OTHER_KERAS_GATES = (
    "PyTorch step tracing",
    "TensorFlow fused Adam",
    "TensorFlow lean fit step",
    "compile_train_steps model build",
)


def noisy_gan():
    """A ToyGAN with three seed generators: the model's and two dropout layers' below it."""
    generator = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dropout(0.1, seed=1), mlp(4, 8, "inner")],
        name="generator",
    )
    discriminator = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dropout(0.1, seed=2), mlp(1, 8, "critic")],
        name="discriminator",
    )
    return ToyGAN(hidden=8, generator=generator, discriminator=discriminator)


def train_save_and_resume(tmp_path, name):
    """Fits a noisy GAN, saves and reloads it, fits the copy on; returns both and the logs."""
    keras.utils.set_random_seed(0)
    data = mixture_samples(128)
    gan = noisy_gan()
    gan.compile(optimizers=gan_optimizers())
    history = gan.fit(data, batch_size=32, epochs=2, shuffle=False, verbose=0)
    path = tmp_path / f"{name}.keras"
    gan.save(path)
    restored = keras.saving.load_model(path)
    resumed = restored.fit(data, batch_size=32, epochs=1, shuffle=False, verbose=0)
    evaluation = restored.evaluate(data, batch_size=32, verbose=0, return_dict=True)
    return gan, restored, history.history, resumed.history, evaluation


def test_closed_alternating_gates_give_the_same_training_and_warn_once(
    tmp_path, version_gates, monkeypatch
):
    flattened = []
    original = AlternatingModel._flatten_layers

    def spy(self, *args, **kwargs):
        flattened.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AlternatingModel, "_flatten_layers", spy)
    gan, restored, history, resumed, evaluation = train_save_and_resume(tmp_path, "open")
    assert gan._loss_tracker is None and restored._loss_tracker is None  # the private paths
    assert flattened  # the seed states were found through _flatten_layers
    open_states = [np.array(s) for s in restored._seed_states()]

    version_gates.close("keras", keep_open=OTHER_KERAS_GATES)
    flattened.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        closed = train_save_and_resume(tmp_path, "closed")
        closed_states = [np.array(s) for s in closed[1]._seed_states()]
    gan_closed, restored_closed, history_closed, resumed_closed, evaluation_closed = closed
    gates = version_gates.warnings(caught)
    assert sorted(str(w.message).split("'s ")[1].split(" uses")[0] for w in gates) == sorted(
        ALTERNATING_GATES
    )
    # The plain paths: Keras's loss tracker stays, left out of `metrics`; no _flatten_layers
    # from dlkit (Keras's own code may still call it).
    assert gan_closed._loss_tracker is not None and restored_closed._loss_tracker is not None
    assert "loss" not in [m.name for m in restored_closed.metrics]
    assert sorted(history_closed) == sorted(history) == ["discriminator_loss", "generator_loss"]
    for closed_logs, open_logs in [
        (history_closed, history),
        (resumed_closed, resumed),
        (evaluation_closed, evaluation),
    ]:
        assert sorted(closed_logs) == sorted(open_logs)
        for key in open_logs:
            np.testing.assert_allclose(closed_logs[key], open_logs[key], rtol=1e-6)
    for expected, received in zip(weights_of(restored), weights_of(restored_closed)):
        np.testing.assert_allclose(received, expected, rtol=1e-6, atol=1e-7)
    assert len(closed_states) == len(open_states) == 3
    for expected, received in zip(open_states, closed_states):
        np.testing.assert_array_equal(received, expected)


def test_seed_states_are_the_same_variables_either_way(version_gates):
    gan = noisy_gan()
    gan.compile(optimizers=gan_optimizers())
    private = gan._seed_states()
    version_gates.close("keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        public = gan._seed_states()
    [warning] = version_gates.warnings(caught)
    assert "AlternatingModel seed saving" in str(warning.message)
    assert [id(v) for v in public] == [id(v) for v in private]
    assert len(public) == 3 and all(v.name == "seed_generator_state" for v in public)
