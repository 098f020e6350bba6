import importlib

import numpy as np
import pytest

from dlkit.recipes import _images, vae_digits

IMAGE_RECIPES = (
    "gan_digits",
    "cgan_digits",
    "acgan_digits",
    "vae_digits",
    "cvae_digits",
    "aae_digits",
    "vaegan_digits",
    "classifier_digits",
    "visualize_digits",
    "adversarial_digits",
)


@pytest.mark.parametrize("name", IMAGE_RECIPES)
def test_every_image_recipe_accepts_the_mnist_sample(name):
    recipe = importlib.import_module(f"dlkit.recipes.{name}")
    assert recipe.Config(dataset="mnist_sample").dataset == "mnist_sample"
    with pytest.raises(ValueError, match="dataset"):
        recipe.Config(dataset="svhn")


def test_the_mnist_sample_loads_as_28x28_arrays_in_the_value_range():
    images = _images.load_images("mnist_sample", (-1.0, 1.0), batch_size=16, seed=0)
    train_images, train_labels = images.train
    assert train_images.shape == (4000, 28, 28, 1) and images.image_shape == (28, 28, 1)
    assert train_images.min() == -1.0 and train_images.max() == 1.0
    assert np.bincount(train_labels).tolist() == [400] * 10
    assert images.is_embedded and images.fit_arguments()["batch_size"] == 16


def test_only_the_offline_digit_sets_have_a_judge():
    assert _images.Images("cifar10", None, None, (32, 32, 3), 10, 8).judge is None
    judge = _images.Images("digits", None, None, (8, 8, 1), 10, 8).judge
    assert judge.input_shape == (None, 8, 8, 1)


def test_class_coverage_counts_the_classes_above_two_percent():
    images = _images.load_images("digits", (-1.0, 1.0), batch_size=32, seed=0)
    test_images, test_labels = images.test
    coverage = _images.class_coverage(test_images[test_labels < 4], images, (-1.0, 1.0))
    assert coverage["classes_with_at_least_2_percent"] == 4
    assert sum(coverage["class_shares"][:4]) >= 0.95


def test_vae_trains_on_the_mnist_sample_with_networks_sized_to_28x28(tmp_path):
    config = vae_digits.Config(
        dataset="mnist_sample", epochs=1, export="none", output_dir=str(tmp_path), verbose=0
    )
    results = vae_digits.main(config)
    assert results["dataset"] == "mnist_sample"
    assert results["test_elbo"] > results["test_elbo_before"] + 50  # nats per 784-pixel image
    assert (tmp_path / "samples.png").stat().st_size > 0
