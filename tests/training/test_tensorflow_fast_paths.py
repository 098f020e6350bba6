"""TensorFlow only: the fast paths match Keras's and TensorFlow's own paths.

On TensorFlow an ``AlternatingModel`` applies a plain Adam with one ``ResourceApplyAdam`` kernel
per variable, ``fit`` calls a leaner per-batch function than Keras's, and ``compile_inference``
calls its concrete function flat (DLKIT_TF_FAST=0 turns them all off). These tests run each
case both ways from the same seed and require the same weights, optimizer state, logged losses
or outputs.
"""

import warnings

import keras
import numpy as np
import pytest
from toy_models import ToyGAN, gan_optimizers, mixture_samples

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the fast paths are TensorFlow's"
)


def _apply_steps(optimizer, steps=4, seed=0):
    """Applies `steps` seeded gradients through dlkit's `apply_gradients` in a tf.function;
    returns the variables and the optimizer's variables, the traced graph's op types and the
    optimizer's iteration count."""
    import tensorflow as tf

    from dlkit.training._tensorflow import apply_gradients

    rng = np.random.default_rng(seed)
    variables = [
        keras.Variable(rng.normal(size=(3, 4)).astype("float32")),
        keras.Variable(rng.normal(size=(4,)).astype("float32")),
    ]
    gradients = [
        [rng.normal(size=v.shape).astype("float32") for v in variables] for _ in range(steps)
    ]
    optimizer.build(variables)

    @tf.function
    def step(grads):
        apply_gradients(optimizer, grads, variables)

    for grads in gradients:
        step([tf.constant(g) for g in grads])
    graph = step.get_concrete_function([tf.TensorSpec(v.shape) for v in variables]).graph
    op_types = {op.type for op in graph.get_operations()}
    values = [v.numpy() for v in variables] + [v.numpy() for v in optimizer.variables]
    return values, op_types, int(optimizer.iterations)


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: keras.optimizers.Adam(0.05, beta_1=0.5, epsilon=1e-6),
        lambda: keras.optimizers.Adam(
            keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5),
            global_clipnorm=0.3,
        ),
        lambda: keras.optimizers.Adam(0.05, clipvalue=0.2),
    ],
    ids=["plain", "schedule-and-global-clipnorm", "clipvalue"],
)
def test_fused_adam_matches_keras_adam(monkeypatch, make_optimizer):
    fused, fused_ops, fused_iterations = _apply_steps(make_optimizer())
    monkeypatch.setenv("DLKIT_TF_FAST", "0")
    keras_values, keras_ops, keras_iterations = _apply_steps(make_optimizer())

    assert "ResourceApplyAdam" in fused_ops
    assert "ResourceApplyAdam" not in keras_ops
    assert fused_iterations == keras_iterations == 4
    assert len(fused) == len(keras_values) >= 2 + 4  # the variables, then m and v of each
    for got, expected in zip(fused, keras_values):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(fused[0], _apply_steps(make_optimizer(), steps=0)[0][0])


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: keras.optimizers.Adam(0.05, amsgrad=True),
        lambda: keras.optimizers.AdamW(0.05),
        lambda: keras.optimizers.Adam(0.05, weight_decay=0.1),
        lambda: keras.optimizers.Adam(0.05, use_ema=True),
        lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    ],
    ids=["amsgrad", "adamw", "weight-decay", "ema", "sgd"],
)
def test_other_optimizers_keep_keras_update(monkeypatch, make_optimizer):
    values, op_types, _ = _apply_steps(make_optimizer())
    monkeypatch.setenv("DLKIT_TF_FAST", "0")
    keras_values, _, _ = _apply_steps(make_optimizer())

    assert "ResourceApplyAdam" not in op_types
    for got, expected in zip(values, keras_values):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


_MODEL = keras.Sequential([keras.layers.Dense(1)])  # no distribution strategy


def _sgd_optimizers():
    # Keras's own update on both sides, so that only the per-batch function differs.
    return {
        "discriminator": keras.optimizers.SGD(0.05, momentum=0.5),
        "generator": keras.optimizers.SGD(0.05, momentum=0.5),
    }


def _fit_gan(steps_per_execution=1):
    keras.utils.set_random_seed(3)
    model = ToyGAN(k=2, seed=3)
    model.compile(optimizers=_sgd_optimizers(), steps_per_execution=steps_per_execution)
    # Unshuffled: the lean pipeline and Keras's then feed the same batches in the same order.
    history = model.fit(
        mixture_samples(192, seed=3), batch_size=32, epochs=2, shuffle=False, verbose=0
    )
    return model, history.history


def _model_state(model):
    optimizers = [optimizer for _, optimizer, _ in model._resolved_updates()]
    variables = [*model.variables, *[v for o in optimizers for v in o.variables]]
    return [keras.ops.convert_to_numpy(v) for v in variables]


def test_fit_through_lean_step_matches_keras_fit(monkeypatch):
    lean_model, lean_history = _fit_gan()
    assert "fit_train_function" in lean_model.train_function.__qualname__
    monkeypatch.setenv("DLKIT_TF_FAST", "0")
    keras_model, keras_history = _fit_gan()
    assert "fit_train_function" not in keras_model.train_function.__qualname__

    for name in ("discriminator_loss", "generator_loss"):
        np.testing.assert_allclose(lean_history[name], keras_history[name], rtol=1e-5)
    for got, expected in zip(_model_state(lean_model), _model_state(keras_model)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # k = 2 discriminator steps per batch, 6 batches per epoch, 2 epochs.
    discriminator, generator = (o for _, o, _ in lean_model._resolved_updates())
    assert int(discriminator.iterations) == 24 and int(generator.iterations) == 12


def test_steps_per_execution_keeps_keras_function():
    model, history = _fit_gan(steps_per_execution=3)
    assert "fit_train_function" not in model.train_function.__qualname__
    assert np.all(np.isfinite(history["generator_loss"]))


def test_fused_adam_gan_trains_like_keras_adam(monkeypatch):
    """Over a GAN's 36 Adam updates the two roundings drift apart a little (measured: means
    0.855 and 0.870, standard deviations 1.817 and 1.824); the fitted generators' statistics
    stay within 0.05 of each other."""

    def fitted_moments():
        keras.utils.set_random_seed(5)
        model = ToyGAN(seed=5)
        model.compile(optimizers=gan_optimizers(1e-2))
        model.fit(mixture_samples(768, seed=5), batch_size=64, epochs=3, shuffle=False, verbose=0)
        samples = keras.ops.convert_to_numpy(model(np.random.default_rng(5).normal(size=(4096, 4))))
        return samples.mean(), samples.std()

    fused = fitted_moments()
    monkeypatch.setenv("DLKIT_TF_FAST", "0")
    reference = fitted_moments()
    np.testing.assert_allclose(fused, reference, atol=0.05)


class _BatchGAN(ToyGAN):
    """Takes the (x, y, sample_weight) triple that train_on_batch hands over."""

    def _real_and_noise(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return super()._real_and_noise(x)


def test_train_on_batch_through_lean_step(monkeypatch):
    real = mixture_samples(32, seed=4)
    noise = np.random.default_rng(4).normal(size=(32, 4)).astype("float32")

    def losses():
        keras.utils.set_random_seed(4)
        model = _BatchGAN(seed=4)
        model.compile(optimizers=_sgd_optimizers())
        return [model.train_on_batch((real, noise), return_dict=True) for _ in range(3)]

    lean = losses()
    monkeypatch.setenv("DLKIT_TF_FAST", "0")
    reference = losses()
    for got, expected in zip(lean, reference):
        assert got.keys() == expected.keys()
        for name in got:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5)
    assert lean[2]["discriminator_loss"] != lean[0]["discriminator_loss"]  # it trained


@pytest.mark.parametrize("by_indices", [False, True], ids=["whole-rows", "by-indices"])
def test_fit_dataset_yields_keras_batches_in_a_new_order_every_epoch(monkeypatch, by_indices):
    from dlkit.training import _tensorflow_fast

    if by_indices:  # arrays above the limit are shuffled by their indices
        monkeypatch.setattr(_tensorflow_fast, "SHUFFLE_COPY_LIMIT_BYTES", 0)
    x = np.arange(70, dtype="float32")[:, None] * np.ones((1, 3), "float32")
    y = np.arange(70, dtype="int64")

    def epoch(dataset):
        batches = [tuple(part.numpy() for part in batch) for batch in dataset]
        assert [len(bx) for bx, _ in batches] == [32, 32, 6]  # Keras's batches
        for bx, by in batches:
            np.testing.assert_array_equal(bx[:, 0], by)  # rows stay paired
        return np.concatenate([by for _, by in batches])

    dataset = _tensorflow_fast.fit_dataset(_MODEL, x, y, 32, shuffle=True)
    first, second = epoch(dataset), epoch(dataset)
    np.testing.assert_array_equal(np.sort(first), y)  # every row once per epoch
    np.testing.assert_array_equal(np.sort(second), y)
    assert not np.array_equal(first, second)  # reshuffled every epoch
    assert not np.array_equal(first, y)

    in_order = _tensorflow_fast.fit_dataset(_MODEL, x, None, None, shuffle=False)
    batches = [batch.numpy() for batch in in_order]  # x alone, as Keras yields it
    assert [len(batch) for batch in batches] == [32, 32, 6]  # batch_size defaults to 32
    np.testing.assert_array_equal(np.concatenate(batches), x)


def test_fit_dataset_leaves_other_inputs_to_keras():
    from dlkit.training import _tensorflow_fast

    x = np.zeros((8, 2), "float32")
    assert _tensorflow_fast.fit_dataset(_MODEL, x, None, 4, shuffle="batch") is None
    assert _tensorflow_fast.fit_dataset(_MODEL, {"a": x}, None, 4, shuffle=True) is None
    assert _tensorflow_fast.fit_dataset(_MODEL, x, np.zeros(5), 4, shuffle=True) is None
    assert _tensorflow_fast.fit_dataset(_MODEL, list(x), None, 4, shuffle=True) is None


def test_fit_on_arrays_matches_keras_fit(monkeypatch):
    """Unshuffled, the lean pipeline feeds Keras's batches in Keras's order: same losses and
    weights; (x, y) pairs reach the losses as Keras passes them."""
    real = mixture_samples(100, seed=6)
    noise = np.random.default_rng(6).normal(size=(100, 4)).astype("float32")

    def fitted(**fit_arguments):
        keras.utils.set_random_seed(6)
        model = ToyGAN(seed=6)
        model.compile(optimizers=_sgd_optimizers())
        history = model.fit(real, noise, batch_size=16, epochs=2, verbose=0, **fit_arguments)
        return model, history.history

    lean, lean_history = fitted(shuffle=False)
    validated, validated_history = fitted(shuffle=False, validation_split=0.2)
    monkeypatch.setenv("DLKIT_TF_FAST", "0")
    reference, reference_history = fitted(shuffle=False)
    for name in ("discriminator_loss", "generator_loss"):
        np.testing.assert_allclose(lean_history[name], reference_history[name], rtol=1e-5)
    for got, expected in zip(_model_state(lean), _model_state(reference)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # validation_split goes through Keras's adapter, which splits the arrays itself.
    assert "val_generator_loss" in validated_history
    assert int(validated.optimizer.iterations) == 2 * 5  # 80 training rows, batches of 16


def test_fit_with_sample_weight_goes_through_keras_adapter():
    keras.utils.set_random_seed(7)
    model = _BatchGAN(seed=7)
    model.compile(optimizers=_sgd_optimizers())
    history = model.fit(
        mixture_samples(64, seed=7),
        sample_weight=np.ones(64, "float32"),
        batch_size=16,
        epochs=1,
        verbose=0,
    )
    assert int(model.optimizer.iterations) == 4
    assert np.isfinite(history.history["generator_loss"][0])


@pytest.mark.parametrize("structure", ["tensor", "tuple", "dict"])
def test_flat_acting_call_matches_the_public_call(monkeypatch, structure):
    from dlkit.training import compile_inference

    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(5, activation="tanh")(inputs)
    head = keras.layers.Dense(2)(hidden)
    outputs = {"tensor": head, "tuple": (head, hidden), "dict": {"head": head, "h": hidden}}
    model = keras.Model(inputs, outputs[structure])
    observations = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    results = {}
    for fast in ("1", "0"):
        monkeypatch.setenv("DLKIT_TF_FAST", fast)
        act = compile_inference(model)
        results[fast] = act(observations)
        assert act(observations[:1]) is not None and act.num_traces == 1
    flat, public = results["1"], results["0"]
    assert type(flat) is type(public)
    for received, expected in zip(keras.tree.flatten(flat), keras.tree.flatten(public)):
        assert isinstance(received, np.ndarray)
        np.testing.assert_array_equal(received, expected)


def test_flat_acting_call_is_taken_only_with_the_known_entry_point(monkeypatch):
    import tensorflow as tf

    from dlkit.training._tensorflow_fast import flat_call as _flat_call

    concrete = tf.function(lambda x: 2.0 * x).get_concrete_function(
        tf.TensorSpec([None], "float32")
    )
    flat = _flat_call(concrete)
    assert flat is not concrete  # this TensorFlow has the entry point: the fast path is used
    np.testing.assert_array_equal(flat(tf.constant([1.0, 2.0])).numpy(), [2.0, 4.0])

    class OtherEntryPoint:
        def _call_flat(self, arguments, captured, options=None):
            raise AssertionError("must not be called")

        captured_inputs = ()

    other = OtherEntryPoint()
    assert _flat_call(other) is other
    monkeypatch.setenv("DLKIT_TF_FAST", "0")
    assert _flat_call(concrete) is concrete


def _feature_warnings(version_gates, caught, feature):
    return [w for w in version_gates.warnings(caught) if feature in str(w.message)]


def test_unchecked_versions_keep_keras_adam_with_one_warning(version_gates):
    make_optimizer = lambda: keras.optimizers.Adam(0.05, beta_1=0.5)  # noqa: E731
    fused, fused_ops, _ = _apply_steps(make_optimizer())
    assert "ResourceApplyAdam" in fused_ops  # the gate is open: the fused kernel
    version_gates.close("keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain, plain_ops, _ = _apply_steps(make_optimizer())
    assert "ResourceApplyAdam" not in plain_ops
    assert len(_feature_warnings(version_gates, caught, "TensorFlow fused Adam")) == 1
    for got, expected in zip(fused, plain):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_unchecked_versions_keep_keras_fit_step_with_one_warning(version_gates):
    lean_model, lean_history = _fit_gan()
    assert "fit_train_function" in lean_model.train_function.__qualname__
    version_gates.close("keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keras_model, keras_history = _fit_gan()
    assert "fit_train_function" not in keras_model.train_function.__qualname__
    assert len(_feature_warnings(version_gates, caught, "TensorFlow lean fit step")) == 1
    for name in ("discriminator_loss", "generator_loss"):
        np.testing.assert_allclose(lean_history[name], keras_history[name], rtol=1e-5)
    for got, expected in zip(_model_state(lean_model), _model_state(keras_model)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_unchecked_versions_keep_the_public_acting_call_with_one_warning(version_gates):
    import tensorflow as tf

    from dlkit.training import compile_inference
    from dlkit.training._tensorflow_fast import flat_call

    concrete = tf.function(lambda x: 2.0 * x).get_concrete_function(
        tf.TensorSpec([None], "float32")
    )
    assert flat_call(concrete) is not concrete  # the gate is open: the flat call
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    observations = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    flat = compile_inference(model)(observations)
    version_gates.close("tensorflow")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert flat_call(concrete) is concrete
        public = compile_inference(model)(observations)
    assert len(_feature_warnings(version_gates, caught, "TensorFlow flat acting call")) == 1
    np.testing.assert_array_equal(flat, public)
