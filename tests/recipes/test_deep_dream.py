import json

import keras
import numpy as np
import pytest

from dlkit.recipes import deep_dream


@pytest.mark.slow
def test_tiny_config_on_a_user_image_writes_every_artefact(tmp_path):
    picture = np.random.default_rng(0).uniform(0, 255, size=(20, 30, 3)).astype("uint8")
    keras.utils.save_img(tmp_path / "picture.png", picture)
    config = deep_dream.Config(
        epochs=1,
        image=str(tmp_path / "picture.png"),
        image_size=16,
        octaves=2,
        steps_per_octave=3,
        step_size=0.03,
        output_dir=str(tmp_path / "run"),
    )
    results = deep_dream.main(config)
    for name in ("model.keras", "dream.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["octave_sizes"] == [[11, 11], [16, 16]]
    assert metrics["activation_norm_after"] > metrics["activation_norm_before"]
    assert results["backend"] == keras.backend.backend()


def test_default_image_is_generated_offline():
    image = deep_dream.load_image(deep_dream.Config(image_size=24))
    assert image.shape == (1, 24, 24, 1)
    assert 0.0 <= image.min() and image.max() <= 1.0


@pytest.mark.parametrize(
    "field, value", [("octaves", 0), ("octave_scale", 1.0), ("layers", " , "), ("image_size", 0)]
)
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        deep_dream.Config(**{field: value})


def test_missing_image_file_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"image="):
        deep_dream.load_image(deep_dream.Config(image=str(tmp_path / "missing.png")))
