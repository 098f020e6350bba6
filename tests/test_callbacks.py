import keras
import numpy as np
import pytest

from dlkit import plotting
from dlkit.callbacks import LatentScatter, LossCurves, SampleGrid


class TinyGenerative(keras.Model):
    """A model with the sample/encode methods the callbacks use by default."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)
        self.decoder = keras.layers.Dense(64, activation="sigmoid")
        self.decoder.build((None, 2))

    def call(self, x):
        return self.dense(x)

    def encode(self, x):
        return self.dense(x), None

    def sample(self, num_samples):
        codes = keras.random.normal((num_samples, 2), seed=0)
        return keras.ops.reshape(self.decoder(codes), (num_samples, 8, 8, 1))


def test_callbacks_write_one_figure_per_scheduled_epoch(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.integers(0, 3, 32)
    model = TinyGenerative()
    model.compile(optimizer="sgd", loss="mse")
    samples = SampleGrid(output_dir=tmp_path / "samples", num_images=6, every=2)
    latent = LatentScatter(x, y, output_dir=tmp_path / "latent")
    curves = LossCurves(tmp_path / "history.png")
    model.fit(x, rng.normal(size=(32, 2)), epochs=4, verbose=0, callbacks=[samples, latent, curves])
    assert [path.name for path in samples.paths] == [
        "samples_epoch_002.png",
        "samples_epoch_004.png",
    ]
    assert len(latent.paths) == 4 and all(path.stat().st_size > 0 for path in latent.paths)
    assert len(curves.history["loss"]) == 4 and (tmp_path / "history.png").stat().st_size > 0


def test_manifold_mosaic_is_decoded_row_by_row(tmp_path):
    seen = []

    def decode(codes):
        seen.append(codes)
        return np.ones((len(codes), 8, 8, 1), "float32") * 0.5

    plotting.plot_manifold(decode, tmp_path / "manifold.png", grid_size=5, extent=2.0)
    (codes,) = seen
    assert codes.shape == (25, 2)
    np.testing.assert_allclose(codes[0], [-2.0, 2.0])  # top-left: smallest z1, largest z2
    np.testing.assert_allclose(codes[-1], [2.0, -2.0])
    assert (tmp_path / "manifold.png").stat().st_size > 0


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="every=0"):
        SampleGrid(every=0)
    with pytest.raises(ValueError, match="3 images and 2 labels"):
        LatentScatter(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"codes\.shape=\(4, 3\)"):
        plotting.plot_latent_scatter(np.zeros((4, 3)), np.zeros(4), tmp_path / "x.png")


def test_plot_episode_returns_draws_the_moving_average(tmp_path):
    returns = [-100.0] * 50 + [-13.0] * 150
    path = plotting.plot_episode_returns(returns, tmp_path / "returns.png", window=100, lowest=-50)
    assert path.stat().st_size > 0
    empty = plotting.plot_episode_returns([], tmp_path / "empty.png")
    assert empty.stat().st_size > 0
    with pytest.raises(ValueError, match="window"):
        plotting.plot_episode_returns(returns, tmp_path / "x.png", window=0)
