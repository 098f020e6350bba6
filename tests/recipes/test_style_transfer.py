import json

import keras
import numpy as np
import pytest

from dlkit.recipes import style_transfer


@pytest.mark.slow
def test_tiny_config_reduces_the_style_loss_and_writes_every_artefact(tmp_path):
    config = style_transfer.Config(
        steps=8, image_size=16, filters=4, output_dir=str(tmp_path), verbose=0
    )
    results = style_transfer.main(config)
    assert results["backend"] == keras.backend.backend()
    assert results["content_loss_start"] == 0.0
    assert results["style_loss_end"] < results["style_loss_start"]
    assert results["loss_end"] < results["loss_start"]
    for name in ("style_transfer.png", "losses.png", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["style_loss_end"] == pytest.approx(results["style_loss_end"])


def test_user_images_are_read_from_files(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("content.png", "style.png"):
        keras.utils.save_img(tmp_path / name, rng.integers(0, 255, (20, 24, 3)).astype("uint8"))
    config = style_transfer.Config(
        steps=2,
        image_size=16,
        filters=4,
        content=str(tmp_path / "content.png"),
        style=str(tmp_path / "style.png"),
        output_dir=str(tmp_path / "run"),
        verbose=0,
    )
    results = style_transfer.main(config)
    assert results["content_loss_start"] == 0.0 < results["style_loss_start"]
    assert (tmp_path / "run" / "style_transfer.png").stat().st_size > 0
    with pytest.raises(ValueError, match=r"path='missing.png'"):
        style_transfer.main(style_transfer.Config(content="missing.png", output_dir=str(tmp_path)))


@pytest.mark.parametrize("kind", style_transfer.TEXTURES)
def test_textures_are_rgb_images_in_the_unit_range(kind):
    texture = style_transfer.make_texture(kind, 16, seed=1)
    assert texture.shape == (1, 16, 16, 3)
    assert 0.0 <= texture.min() and texture.max() <= 1.0 and texture.std() > 0.01


@pytest.mark.parametrize(
    "field, value", [("steps", 0), ("texture", "plaid"), ("weights", "places365")]
)
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        style_transfer.Config(**{field: value})
