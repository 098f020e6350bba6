"""PyTorch only: training steps and inference replayed from traced graphs match eager Keras.

On PyTorch, `dlkit.training` traces a step once per input signature and replays the graph
(DLKIT_TORCH_TRACE=0 turns that off). These tests run each case twice, traced and eager, from the
same seed, and require the same weights, optimizer state, metrics and random-generator state.
"""

import warnings

import keras
import numpy as np
import pytest
from toy_models import ToyGAN, gan_optimizers, mixture_samples

from dlkit.layers import NoisyDense
from dlkit.training import compile_inference, compile_train_steps

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="graph tracing is the PyTorch path"
)


def _state(model):
    variables = [*model.variables, *model.metrics_variables]
    optimizers = [getattr(model, "optimizer", None)]
    if hasattr(model, "_resolved_updates"):  # an AlternatingModel: one optimizer per update
        optimizers += [optimizer for _, optimizer, _ in model._resolved_updates()]
    variables += [v for optimizer in optimizers if optimizer for v in optimizer.variables]
    return [keras.ops.convert_to_numpy(v) for v in variables]


def _traced_entries(model):
    from dlkit.training._torch_tracing import traced_steps

    return traced_steps(model)


def _run_both(monkeypatch, build_and_train):
    """Runs `build_and_train()` traced, then eagerly; returns both (model, result) pairs."""
    traced = build_and_train()
    monkeypatch.setenv("DLKIT_TORCH_TRACE", "0")
    eager = build_and_train()
    monkeypatch.delenv("DLKIT_TORCH_TRACE")
    return traced, eager


def _classifier(seed, layers=()):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(16, activation="tanh"),
            *layers,
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2, global_clipnorm=0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _data(steps=5, batch=12):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(steps, batch, 5)).astype("float32")
    y = rng.integers(0, 3, size=(steps, batch)).astype("int32")
    return x, y


def test_traced_train_steps_equal_eager_steps(monkeypatch):
    x, y = _data()

    def run():
        model = _classifier(0, [keras.layers.BatchNormalization()])
        logs = compile_train_steps(model)(x, y)
        return model, logs

    (traced, traced_logs), (eager, eager_logs) = _run_both(monkeypatch, run)
    [entry] = _traced_entries(traced)
    assert entry.failure is None and entry.num_traces == 1
    assert _traced_entries(eager) == []
    for a, b in zip(_state(traced), _state(eager)):  # weights, BN statistics, Adam, metrics
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert traced_logs == pytest.approx(eager_logs, rel=1e-5)
    assert int(keras.ops.convert_to_numpy(traced.optimizer.iterations)) == 5


def test_new_batch_size_traces_again_and_old_graph_is_reused():
    model = _classifier(0)
    steps = compile_train_steps(model)
    x, y = _data(batch=12)
    steps(x, y)
    x_small, y_small = _data(steps=2, batch=7)
    steps(x_small, y_small)
    steps(x, y)
    assert steps.num_traces == 2


def test_untraceable_step_falls_back_to_eager_with_same_result(monkeypatch):
    x, y = _data()

    def run():
        model = _classifier(3, [keras.layers.Dropout(0.3, seed=1)])
        compile_train_steps(model)(x, y)
        return model

    traced, eager = _run_both(monkeypatch, run)
    [entry] = _traced_entries(traced)
    assert "dropout" in entry.failure and entry.num_traces == 0
    for a, b in zip(_state(traced), _state(eager)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_alternating_gan_with_in_step_noise_matches_eager(monkeypatch):
    samples = mixture_samples(256, seed=0)

    def run():
        keras.utils.set_random_seed(0)
        gan = ToyGAN(latent_dim=4, hidden=16, k=2, seed=3)
        gan.compile(optimizers=gan_optimizers())
        history = gan.fit(samples, batch_size=64, epochs=2, verbose=0, shuffle=False)
        return gan, history.history

    (traced, traced_history), (eager, eager_history) = _run_both(monkeypatch, run)
    entries = _traced_entries(traced)
    assert len(entries) == 2 and all(e.failure is None for e in entries)
    # The noise is drawn outside the graph from the model's seed generator, as in eager mode.
    for a, b in zip(_state(traced), _state(eager)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key in ("discriminator_loss", "generator_loss"):
        np.testing.assert_allclose(traced_history[key], eager_history[key], rtol=1e-5)


def test_traced_noisy_inference_draws_the_same_noise_as_eager(monkeypatch):
    def run():
        keras.utils.set_random_seed(0)
        network = keras.Sequential([keras.Input((4,)), NoisyDense(3, seed=5)])
        act = compile_inference(network, training=True)
        observation = np.ones((2, 4), "float32")
        outputs = [act(observation) for _ in range(3)]
        return network, (act, outputs)

    (network, (act, traced)), (eager_network, (_, eager)) = _run_both(monkeypatch, run)
    assert act.num_traces == 1
    assert not np.allclose(traced[0], traced[1])  # fresh noise on every call
    for a, b in zip(traced, eager):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    for a, b in zip(_state(network), _state(eager_network)):  # seed generator states
        np.testing.assert_array_equal(a, b)


def test_run_eagerly_keeps_the_python_step():
    gan = ToyGAN(latent_dim=4, hidden=8, seed=0)
    gan.compile(optimizers=gan_optimizers(), run_eagerly=True)
    gan.fit(mixture_samples(64), batch_size=32, epochs=1, verbose=0)
    assert _traced_entries(gan) == []
    assert int(keras.ops.convert_to_numpy(gan.optimizer.iterations)) == 2


def test_a_deep_copy_traces_and_trains_its_own_variables():
    import copy

    model = _classifier(0)
    x, y = _data()
    compile_train_steps(model)(x, y)
    clone = copy.deepcopy(model)
    before = _state(model)
    x_small, y_small = _data(steps=2, batch=5)  # a new signature: traced again, for the copy
    compile_train_steps(clone)(x_small, y_small)
    for a, b in zip(_state(model), before):
        np.testing.assert_array_equal(a, b)  # the original is untouched
    [entry] = _traced_entries(clone)
    assert entry.num_traces == 1 and all(
        any(v is w for w in clone.weights) for v in entry.variables[: len(clone.trainable_weights)]
    )
    assert int(keras.ops.convert_to_numpy(clone.optimizer.iterations)) == 7


def test_unchecked_versions_run_eagerly_with_one_warning(version_gates):
    """Outside the torch versions the tracer was checked against, steps run eagerly (one
    warning) and end where the traced ones do."""
    x, y = _data()

    def run():
        model = _classifier(0, [keras.layers.BatchNormalization()])
        logs = compile_train_steps(model)(x, y)
        return model, logs

    traced, traced_logs = run()
    assert len(_traced_entries(traced)) == 1  # the gate is open: the traced path
    version_gates.close("torch")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        eager, eager_logs = run()
        act = compile_inference(eager)
        act(x[0])
    [warning] = version_gates.warnings(caught)
    assert "PyTorch step tracing" in str(warning.message)
    assert _traced_entries(eager) == [] and act.num_traces == 0
    for a, b in zip(_state(traced), _state(eager)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert traced_logs == pytest.approx(eager_logs, rel=1e-5)
