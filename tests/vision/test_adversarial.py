import keras
import numpy as np
import pytest

from dlkit.data import digits
from dlkit.vision.adversarial import (
    _square_side,
    attack_report,
    evolutionary_attack,
    fgsm,
    iterative_attack,
)


def _linear_model(weights: np.ndarray, input_shape=(2, 2, 1)) -> keras.Model:
    """logits = flatten(x) · W, so that d CE / dx = W (softmax(logits) − one_hot(y))."""
    model = keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(weights.shape[1], use_bias=False),
        ]
    )
    model.layers[-1].set_weights([weights.astype("float32")])
    return model


def _analytic_gradient(weights, images, labels):
    flat = images.reshape(len(images), -1).astype(np.float64)
    logits = flat @ weights
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.eye(weights.shape[1])[labels]
    return ((p - y) @ weights.T).reshape(images.shape)


def _margin(model, images, targets):
    log_p = keras.ops.convert_to_numpy(keras.ops.log_softmax(model(images), axis=-1))
    rows = np.arange(len(targets))
    others = log_p.copy()
    others[rows, targets] = -np.inf
    return log_p[rows, targets] - others.max(axis=1)


@pytest.fixture(scope="module")
def digits_linear_model():
    """A softmax regression on the 8x8 digits (about 90% test accuracy), trained in a second."""
    keras.utils.set_random_seed(0)
    x_train, y_train = digits("train", seed=0)
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    model.compile(
        keras.optimizers.Adam(0.05),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x_train, y_train, batch_size=128, epochs=5, verbose=0)
    x_test, y_test = digits("test", seed=0)
    predictions = np.argmax(keras.ops.convert_to_numpy(model(x_test)), axis=-1)
    correct = np.flatnonzero(predictions == y_test)[:20]
    return model, x_test[correct], y_test[correct]


@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_is_epsilon_times_the_sign_of_the_analytic_gradient(targeted):
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, 3))
    images = rng.uniform(0.3, 0.7, size=(6, 2, 2, 1)).astype("float32")
    labels = np.array([0, 1, 2, 0, 1, 2])
    adversarial = fgsm(_linear_model(weights), images, labels, epsilon=0.2, targeted=targeted)
    gradient = _analytic_gradient(weights, images, labels)
    assert np.all(np.abs(gradient) > 1e-6)  # every sign is well defined
    sign = -1.0 if targeted else 1.0
    expected = images + sign * 0.2 * np.sign(gradient)
    np.testing.assert_allclose(adversarial, expected, atol=1e-6)
    assert adversarial.dtype == np.float32 and adversarial.shape == images.shape


def test_fgsm_clips_to_the_valid_range():
    weights = np.random.default_rng(1).normal(size=(4, 3))
    images = np.array([0.0, 1.0, 0.05, 0.95], "float32").reshape(1, 2, 2, 1)
    adversarial = fgsm(_linear_model(weights), images, [0], epsilon=0.5)
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    shifted = fgsm(_linear_model(weights), images * 2 - 1, [0], 0.5, clip_range=(-1, 1))
    assert shifted.min() >= -1.0 and shifted.max() <= 1.0 and shifted.min() < 0.0


@pytest.mark.parametrize("clip_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_iterative_attack_stays_in_the_ball_and_the_range(clip_range):
    rng = np.random.default_rng(2)
    weights = rng.normal(size=(4, 3)) * 5
    low, high = clip_range
    images = rng.choice([low, high, (low + high) / 2], size=(8, 2, 2, 1)).astype("float32")
    labels = rng.integers(0, 3, size=8)
    for random_start in (False, True):
        adversarial = iterative_attack(
            _linear_model(weights),
            images,
            labels,
            epsilon=0.05,
            step_size=0.5,  # far larger than ε: only the projection keeps δ small
            steps=3,
            clip_range=clip_range,
            random_start=random_start,
        )
        delta = adversarial - images
        assert np.abs(delta).max() <= 0.05 + 1e-6
        assert np.abs(delta).max() >= 0.05 - 1e-6  # the steps went all the way to the border
        assert adversarial.min() >= low and adversarial.max() <= high


def test_iterative_attack_reaches_the_target_on_a_trained_model(digits_linear_model):
    model, images, labels = digits_linear_model
    targets = (labels + 1) % 10
    before = _margin(model, images, targets)
    adversarial = iterative_attack(model, images, targets, epsilon=0.3, step_size=0.05, steps=10)
    report = attack_report(model, images, adversarial, labels, targets)
    assert np.all(before < 0)
    assert report["success_rate"] >= 0.9
    assert report["linf_max"] <= 0.3 + 1e-6
    # Untargeted, the same budget leaves the true class on most digits.
    untargeted = iterative_attack(
        model, images, labels, epsilon=0.3, step_size=0.05, steps=10, targeted=False
    )
    assert attack_report(model, images, untargeted, labels)["success_rate"] >= 0.9


def test_evolutionary_attack_improves_the_margin_within_epsilon(digits_linear_model):
    model, images, labels = digits_linear_model
    images, labels = images[:10], labels[:10]
    targets = (labels + 3) % 10
    adversarial = evolutionary_attack(
        model, images, targets, epsilon=0.1, population=16, generations=8, seed=1
    )
    gain = _margin(model, adversarial, targets) - _margin(model, images, targets)
    assert np.all(gain > 0), gain
    delta = adversarial - images
    assert np.abs(delta).max() <= 0.1 + 1e-6
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0


def test_evolutionary_attack_succeeds_with_a_large_ball(digits_linear_model):
    model, images, labels = digits_linear_model
    images, labels = images[:10], labels[:10]
    targets = (labels + 1) % 10
    adversarial = evolutionary_attack(
        model, images, targets, epsilon=0.3, population=16, generations=40
    )
    assert attack_report(model, images, adversarial, labels, targets)["success_rate"] >= 0.8


def test_evolutionary_attack_nearly_matches_the_gradient_attack(digits_linear_model):
    # Same radius, same targets: without a gradient, 40 children x 100 generations come
    # within two of the 20 digits of 100 projected gradient steps (both fool 11 on JAX).
    model, images, labels = digits_linear_model
    targets = (labels + 1) % 10
    gradient = iterative_attack(model, images, targets, epsilon=0.2, step_size=0.01, steps=100)
    evolved = evolutionary_attack(model, images, targets, epsilon=0.2)
    white_box = attack_report(model, images, gradient, labels, targets)["success_rate"]
    black_box = attack_report(model, images, evolved, labels, targets)["success_rate"]
    assert white_box >= 0.3, white_box
    assert black_box >= white_box - 0.1, (black_box, white_box)
    assert np.abs(evolved - images).max() <= 0.2 + 1e-6


def test_evolutionary_selection_never_loses_fitness(digits_linear_model):
    # With one-pixel squares from the start the schedule does not depend on `generations`, so
    # a longer run continues a shorter one (same seed, same draws): its margin is never lower.
    model, images, labels = digits_linear_model
    images, targets = images[:10], (labels[:10] + 5) % 10
    margins = [
        _margin(
            model,
            evolutionary_attack(
                model, images, targets, 0.05, population=8, generations=n, square_fraction=1 / 64
            ),
            targets,
        )
        for n in (1, 5, 20)
    ]
    assert np.all(np.diff(margins, axis=0) >= -1e-5), margins


def test_square_schedule_halves_the_area():
    # 28x28 image, 80% of the area at first: side round(sqrt(0.8 * 784)) = 25.
    sides = [_square_side(0.8, g, 100, 28, 28) for g in (0, 1, 2, 5, 10, 20, 40, 60, 80, 99)]
    expected = [round(np.sqrt(0.8 * 784 * 0.5**k)) for k in (0, 2, 3, 4, 5, 6, 7, 8, 9, 9)]
    assert sides == [max(1, e) for e in expected]
    assert _square_side(1.0, 0, 10, 8, 6) == 6  # never wider than the image
    assert _square_side(0.01, 9, 10, 8, 8) == 1  # never below one pixel


def test_evolutionary_attack_leaves_images_already_in_their_target_class():
    weights = np.random.default_rng(3).normal(size=(4, 3))
    model = _linear_model(weights)
    images = np.random.default_rng(4).uniform(size=(5, 2, 2, 1)).astype("float32")
    predictions = np.argmax(keras.ops.convert_to_numpy(model(images)), axis=-1)
    adversarial = evolutionary_attack(model, images, predictions, population=4, generations=3)
    np.testing.assert_array_equal(adversarial, images)


def test_attack_report_on_hand_made_arrays():
    # Identity logits: the predicted class is the brighter of the two pixels.
    model = _linear_model(np.eye(2), input_shape=(1, 1, 2))
    clean = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]], "float32")
    adversarial = np.array([[0.4, 0.6], [0.2, 0.8], [0.7, 0.3], [0.3, 0.7]], "float32")
    clean, adversarial = clean.reshape(4, 1, 1, 2), adversarial.reshape(4, 1, 1, 2)
    labels = np.array([0, 1, 1, 0])  # image 2 is misclassified before the attack
    report = attack_report(model, clean, adversarial, labels)
    assert report["clean_accuracy"] == pytest.approx(0.75)
    assert report["adversarial_accuracy"] == pytest.approx(0.25)
    assert report["num_attacked"] == 3 and report["num_images"] == 4
    assert report["success_rate"] == pytest.approx(2 / 3)  # images 0 and 3 of 0, 1, 3
    assert report["linf_max"] == pytest.approx(0.5)
    assert report["linf_mean"] == pytest.approx((0.5 + 0 + 0 + 0.3) / 4)
    assert report["l2_max"] == pytest.approx(np.sqrt(0.5))
    assert report["l2_mean"] == pytest.approx((np.sqrt(0.5) + np.sqrt(0.18)) / 4)
    assert report["targeted"] is False
    targeted = attack_report(model, clean, adversarial, labels, targets=[1, 1, 0, 1])
    # Image 1's target is its label, image 2 was wrong before: counted are images 0 and 3.
    assert targeted["num_attacked"] == 2 and targeted["success_rate"] == pytest.approx(1.0)
    assert targeted["targeted"] is True
    nothing = attack_report(model, clean, clean, [1, 0, 1, 1])
    assert nothing["num_attacked"] == 0 and np.isnan(nothing["success_rate"])


_MODEL = None


def _tiny_model():
    global _MODEL
    if _MODEL is None:
        _MODEL = _linear_model(np.ones((4, 3)))
    return _MODEL


_IMAGES = np.full((2, 2, 2, 1), 0.5, "float32")
_ATTACKS = {
    "fgsm": lambda **kw: fgsm(_tiny_model(), **{"epsilon": 0.1, **kw}),
    "iterative": lambda **kw: iterative_attack(_tiny_model(), **kw),
    "evolutionary": lambda **kw: evolutionary_attack(
        _tiny_model(), **{"population": 2, "generations": 1, **kw}
    ),
}


@pytest.mark.parametrize("attack", sorted(_ATTACKS))
@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"images": np.zeros((2, 2))}, r"images"),
        ({"images": "not images"}, r"images"),
        ({"epsilon": 0.0}, r"epsilon=0\.0"),
        ({"epsilon": 1.5}, r"epsilon=1\.5"),
        ({"epsilon": -0.1}, r"epsilon=-0\.1"),
        ({"labels": [0, 1, 2]}, r"labels.*\(3,\)"),
        ({"labels": [0, -1]}, r"labels"),
        ({"labels": [0, 7]}, r"labels.*7"),
        ({"clip_range": (1.0, 0.0)}, r"clip_range=\(1\.0, 0\.0\)"),
        ({"clip_range": (0.0,)}, r"clip_range=\(0\.0,\)"),
        ({"clip_range": ("lo", "hi")}, r"clip_range=\('lo', 'hi'\)"),
    ],
)
def test_bad_inputs_are_rejected(attack, overrides, match):
    arguments = {"images": _IMAGES, "labels": [0, 1], **overrides}
    if attack == "evolutionary":
        arguments["targets"] = arguments.pop("labels")
        match = match.replace("labels", "targets")
    with pytest.raises(ValueError, match=match):
        _ATTACKS[attack](**arguments)


@pytest.mark.parametrize(
    "attack, overrides, match",
    [
        ("iterative", {"steps": 0}, r"steps=0"),
        ("iterative", {"step_size": 0.0}, r"step_size=0\.0"),
        ("evolutionary", {"population": 0}, r"population=0"),
        ("evolutionary", {"generations": 0}, r"generations=0"),
        ("evolutionary", {"square_fraction": 0.0}, r"square_fraction=0\.0"),
        ("evolutionary", {"square_fraction": 1.5}, r"square_fraction=1\.5"),
    ],
)
def test_bad_attack_settings_are_rejected(attack, overrides, match):
    key = "targets" if attack == "evolutionary" else "labels"
    with pytest.raises(ValueError, match=match):
        _ATTACKS[attack](images=_IMAGES, **{key: [0, 1]}, **overrides)


def test_attack_report_rejects_mismatched_inputs():
    model = _tiny_model()
    with pytest.raises(ValueError, match=r"adversarial"):
        attack_report(model, _IMAGES, _IMAGES[:1], [0, 1])
    with pytest.raises(ValueError, match=r"labels.*\(1,\)"):
        attack_report(model, _IMAGES, _IMAGES, [0])
    with pytest.raises(ValueError, match=r"targets.*\(3,\)"):
        attack_report(model, _IMAGES, _IMAGES, [0, 1], targets=[0, 1, 2])
    with pytest.raises(ValueError, match=r"clean"):
        attack_report(model, np.zeros(3), _IMAGES, [0, 1])
