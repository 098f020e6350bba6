import keras
import numpy as np
import pytest
from toy_models import ToyGAN, gan_optimizers, mixture_samples, weights_of

from dlkit.training import AlternatingModel, OptimizerGroup, Update


def generated(gan, num_samples=4096):
    noise = keras.random.normal((num_samples, gan.latent_dim), seed=123)
    return keras.ops.convert_to_numpy(gan(noise))[:, 0]


@pytest.mark.slow
def test_gan_learns_a_gaussian_mixture():
    keras.utils.set_random_seed(0)
    data = mixture_samples(4096)
    gan = ToyGAN(k=2)
    gan.compile(optimizers=gan_optimizers())
    before = generated(gan)
    assert abs(before.std() - data.std()) > 1.0  # an untrained generator is far off
    history = gan.fit(data, batch_size=128, epochs=30, verbose=0)
    after = generated(gan)
    assert abs(after.mean() - data.mean()) < 0.3
    assert abs(after.std() - data.std()) < 0.3
    # Both modes (around -1 and 2) receive a fair share of the samples.
    assert 0.3 < np.mean(after < 0.5) < 0.7
    # At the equilibrium the discriminator is unsure: D ≈ 1/2, so its loss is near 2·log 2.
    assert history.history["discriminator_loss"][-1] == pytest.approx(2 * np.log(2), abs=0.15)


def test_iterations_count_steps_times_repetitions():
    gan = ToyGAN(k=2)
    gan.compile(optimizers=gan_optimizers())
    gan.fit(mixture_samples(256), batch_size=32, epochs=2, verbose=0)  # 16 steps
    optimizers = gan.optimizer.optimizers
    assert int(optimizers["discriminator"].iterations.numpy()) == 32
    assert int(optimizers["generator"].iterations.numpy()) == 16
    assert int(gan.optimizer.iterations.numpy()) == 16


def test_each_update_changes_only_its_own_variables():
    gan = ToyGAN()
    gan.compile(
        optimizers={
            "discriminator": keras.optimizers.SGD(0.0),
            "generator": keras.optimizers.SGD(0.1),
        }
    )
    discriminator, generator = weights_of(gan.discriminator), weights_of(gan.generator)
    gan.fit(mixture_samples(64), batch_size=32, epochs=1, verbose=0)
    for old, new in zip(discriminator, weights_of(gan.discriminator)):
        np.testing.assert_array_equal(old, new)
    assert any(not np.allclose(o, n) for o, n in zip(generator, weights_of(gan.generator)))


def test_logs_and_evaluate_report_each_update_loss():
    gan = ToyGAN()
    gan.compile(optimizers=gan_optimizers())
    history = gan.fit(mixture_samples(128), batch_size=32, epochs=1, verbose=0)
    assert sorted(history.history) == ["discriminator_loss", "generator_loss"]
    weights = weights_of(gan)
    results = gan.evaluate(mixture_samples(128, seed=1), batch_size=32, verbose=0, return_dict=True)
    assert sorted(results) == ["discriminator_loss", "generator_loss"]
    assert all(np.isfinite(value) and value > 0 for value in results.values())
    for old, new in zip(weights, weights_of(gan)):
        np.testing.assert_array_equal(old, new)


def test_deterministic_loss_equals_its_numpy_value():
    # One update of w on L(w) = mean((w - x)²) with SGD: the logged loss is L at the old w and
    # the new w = w - lr · 2 · mean(w - x)   [plain gradient descent, notes ch. 3]
    class Quadratic(AlternatingModel):
        def __init__(self):
            super().__init__()
            self.w = keras.Variable(0.5)

        def updates(self):
            return [Update("w", [self.w], lambda x: keras.ops.mean((self.w - x) ** 2))]

    x = np.array([[1.0], [2.0], [4.0], [5.0]], dtype="float32")
    model = Quadratic()
    model.compile(optimizers={"w": keras.optimizers.SGD(0.1)})
    history = model.fit(x, batch_size=4, epochs=1, verbose=0)
    assert history.history["w_loss"][0] == pytest.approx(np.mean((0.5 - x) ** 2), rel=1e-6)
    assert float(model.w.numpy()) == pytest.approx(0.5 - 0.1 * 2 * np.mean(0.5 - x), rel=1e-6)


def test_keras_file_restores_optimizer_state(tmp_path):
    # Training on after a save/load round trip continues exactly like uninterrupted training.
    keras.utils.set_random_seed(0)
    data = mixture_samples(256)
    gan = ToyGAN(k=2)
    gan.compile(optimizers=gan_optimizers())
    gan.fit(data, batch_size=32, epochs=2, shuffle=False, verbose=0)
    path = tmp_path / "gan.keras"
    gan.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.optimizer, OptimizerGroup)
    for name in ("discriminator", "generator"):
        saved = gan.optimizer.optimizers[name].variables
        loaded = restored.optimizer.optimizers[name].variables
        assert len(loaded) == len(saved)
        for expected, received in zip(saved, loaded):
            np.testing.assert_array_equal(np.array(received), np.array(expected))
    gan.fit(data, batch_size=32, epochs=2, shuffle=False, verbose=0)
    restored.fit(data, batch_size=32, epochs=2, shuffle=False, verbose=0)
    for expected, received in zip(weights_of(gan), weights_of(restored)):
        np.testing.assert_allclose(received, expected, rtol=1e-5, atol=1e-6)
    assert int(restored.optimizer.optimizers["discriminator"].iterations.numpy()) == 64


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    data = mixture_samples(256)

    def run(callbacks, epochs=4):
        keras.utils.set_random_seed(0)
        gan = ToyGAN(k=2)
        gan.compile(optimizers=gan_optimizers())
        return gan, gan.fit(
            data, batch_size=32, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks
        )

    uninterrupted, _ = run([])

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(KeyboardInterrupt):
        run([backup, Interrupt()])
    resumed, history = run([keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))])
    assert len(history.history["generator_loss"]) == 2  # epochs 3 and 4 only
    assert int(resumed.optimizer.optimizers["discriminator"].iterations.numpy()) == 64
    for expected, received in zip(weights_of(uninterrupted), weights_of(resumed)):
        np.testing.assert_allclose(received, expected, rtol=1e-4, atol=1e-5)


class Configurable(AlternatingModel):
    """Updates given at construction, for the bad-input tests."""

    def __init__(self, make_updates):
        super().__init__()
        self.w = keras.Variable(np.ones((2,), "float32"))
        self.v = keras.Variable(np.ones((2,), "float32"))
        self.make_updates = make_updates

    def updates(self):
        return self.make_updates(self)


def scalar_loss(model):
    return lambda x: keras.ops.mean((model.w - x) ** 2)


@pytest.mark.parametrize(
    "make_updates, optimizers, message",
    [
        (
            lambda m: [Update("d", [], scalar_loss(m))],
            {"d": "sgd"},
            r"update 'd' to have trainable variables\. Received: variables=\[\]",
        ),
        (
            lambda m: [Update("d", [m.w], scalar_loss(m), repetitions=0)],
            {"d": "sgd"},
            r"update 'd' to have repetitions >= 1\. Received: repetitions=0",
        ),
        (
            lambda m: [Update("d", [m.w], scalar_loss(m)), Update("g", [m.v], scalar_loss(m))],
            {"d": keras.optimizers.SGD()},
            r"no optimizer for update\(s\) \['g'\]",
        ),
        (
            lambda m: [Update("d", [m.w], scalar_loss(m))],
            {"d": keras.optimizers.SGD(), "typo": keras.optimizers.SGD()},
            r"unknown update\(s\) \['typo'\]",
        ),
    ],
)
def test_bad_declarations_are_rejected_at_compile(make_updates, optimizers, message):
    optimizers = {
        name: keras.optimizers.SGD() if value == "sgd" else value
        for name, value in optimizers.items()
    }
    with pytest.raises(ValueError, match=message):
        Configurable(make_updates).compile(optimizers=optimizers)


def test_one_optimizer_for_two_updates_is_rejected():
    model = Configurable(
        lambda m: [Update("d", [m.w], scalar_loss(m)), Update("g", [m.v], scalar_loss(m))]
    )
    shared = keras.optimizers.Adam()
    with pytest.raises(ValueError, match=r"same optimizer .* for updates 'd' and 'g'"):
        model.compile(optimizers={"d": shared, "g": shared})


def test_non_scalar_loss_is_rejected_naming_the_update():
    model = Configurable(lambda m: [Update("d", [m.w], lambda x: (m.w - x) ** 2)])
    model.compile(optimizers={"d": keras.optimizers.SGD()})
    with pytest.raises(ValueError, match=r"loss of update 'd' to be a scalar"):
        model.fit(np.ones((4, 2), "float32"), batch_size=4, verbose=0)


def test_optimizer_group_cannot_be_applied_directly():
    group = OptimizerGroup({"d": keras.optimizers.SGD()})
    with pytest.raises(TypeError, match="update by update"):
        group.apply([], [])
