import json

import keras
import numpy as np
import pytest

from dlkit.recipes import cyclegan


@pytest.mark.slow
def test_quick_config_closes_the_round_trip_and_writes_every_artefact(tmp_path):
    config = cyclegan.Config(
        **cyclegan.QUICK_CONFIG, export="none", output_dir=str(tmp_path), verbose=0
    )
    results = cyclegan.main(config)
    assert results["backend"] == keras.backend.backend()
    assert np.isfinite(results["generators_loss"]) and np.isfinite(results["discriminators_loss"])
    assert results["cycle_error_threshold"] == cyclegan.CYCLE_ERROR_THRESHOLD
    assert results["cycle_error_a"] < cyclegan.CYCLE_ERROR_THRESHOLD
    assert results["cycle_error_b"] < cyclegan.CYCLE_ERROR_THRESHOLD
    assert results["cycle_error_below_threshold"] is True
    # Leaving the digits unchanged is far from their inversion: |a − (−a)| = 2|a|. The learnt
    # translation is close to the true one, though no training image has its counterpart.
    assert results["identity_mapping_error"] > 1.0
    for name in ("translation_error_ab", "translation_error_ba"):
        assert results[name] < cyclegan.CYCLE_ERROR_THRESHOLD, name
    for path in results["files"].values():
        assert (tmp_path / path.rsplit("/", 1)[-1]).is_file(), path
    generator = keras.saving.load_model(tmp_path / "generator_ba.keras")
    assert tuple(generator(np.zeros((3, 8, 8, 1), "float32")).shape) == (3, 8, 8, 1)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["config"]["epochs"] == config.epochs and saved["transform"] == "invert"


def test_rotate_transform_turns_the_digits():
    images = np.arange(2 * 8 * 8, dtype="float32").reshape(2, 8, 8, 1)
    rotated = cyclegan.transform_digits(images, "rotate")
    np.testing.assert_array_equal(rotated[1, :, :, 0], np.rot90(images[1, :, :, 0]))
    np.testing.assert_array_equal(cyclegan.transform_digits(images, "invert"), -images)


def test_bad_config_values_are_rejected():
    with pytest.raises(ValueError, match="cycle_weight"):
        cyclegan.Config(export="none", cycle_weight=-1.0)
    with pytest.raises(ValueError, match="transform='flip'"):
        cyclegan.Config(export="none", transform="flip")
    with pytest.raises(ValueError, match="dataset='mnist'"):
        cyclegan.Config(export="none", dataset="mnist")
    with pytest.raises(ValueError, match="image_size=30"):
        cyclegan.Config(export="none", image_size=30)
    with pytest.raises(ValueError, match="adversarial_loss='hinge'"):
        cyclegan.Config(export="none", adversarial_loss="hinge")


def test_horse2zebra_under_mock_data(tmp_path, offline_tfds):
    data_dir, mock_data = offline_tfds
    config = cyclegan.Config(
        export="none",
        dataset="horse2zebra",
        image_size=16,
        epochs=1,
        batch_size=4,
        data_dir=data_dir,
        output_dir=str(tmp_path / "run"),
        verbose=0,
    )
    with mock_data(num_examples=8):
        results = cyclegan.main(config)
    assert np.isfinite(results["generators_loss"]) and np.isfinite(results["cycle_error_a"])
    assert "translation_error_ab" not in results  # no true translation for horses and zebras
    generator = keras.saving.load_model(tmp_path / "run" / "generator_ab.keras")
    assert tuple(generator(np.zeros((2, 16, 16, 3), "float32")).shape) == (2, 16, 16, 3)
    assert (tmp_path / "run" / "translations.png").is_file()


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="CI time: one backend runs the 28x28 plumbing; the 8x8 gate runs on every backend",
)
def test_the_mnist_sample_trains_28x28_generators_on_inverted_real_digits(tmp_path):
    config = cyclegan.Config(
        dataset="mnist_sample", epochs=1, export="none", output_dir=str(tmp_path), verbose=0
    )
    results = cyclegan.main(config)
    assert results["dataset"] == "mnist_sample" and results["transform"] == "invert"
    # Held-out domain B is the negated 28x28 test digits: |a - (-a)| = 2|a| averages about 1.9
    # over MNIST's mostly background pixels at -1.
    assert 1.8 < results["identity_mapping_error"] < 2.0
    for name in ("generator_ab.keras", "generator_ba.keras"):
        generator = keras.saving.load_model(tmp_path / name)
        assert tuple(generator.output_shape) == (None, 28, 28, 1)
