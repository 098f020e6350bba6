"""Generators and decoders export for serving (noise [, label] -> image) from every backend."""

import keras
import numpy as np
import pytest

from dlkit.export import export, verify
from dlkit.models import (
    VAE,
    ConditionalGAN,
    build_digits_vae_decoder,
    build_digits_vae_encoder,
)
from dlkit.models.gan import GAN, build_digits_discriminator, build_digits_generator


@pytest.mark.slow
def test_gan_generator_exports_to_both_formats(tmp_path):
    keras.utils.set_random_seed(0)
    gan = GAN(build_digits_generator(8), build_digits_discriminator(), latent_dim=8, seed=0)
    gan.compile(
        optimizers={"discriminator": keras.optimizers.Adam(), "generator": keras.optimizers.Adam()}
    )
    images = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 1)).astype("float32")
    gan.fit(images, batch_size=32, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"model\.generator"):
        export(gan, tmp_path / "wrapper")
    noise = np.random.default_rng(1).standard_normal((5, 8)).astype("float32")
    expected = keras.ops.convert_to_numpy(gan.generator(noise))
    assert expected.shape == (5, 8, 8, 1)
    for path, format in (
        (tmp_path / "saved_model", "saved_model"),
        (tmp_path / "generator.onnx", "onnx"),
    ):
        assert verify(export(gan.generator, path, format), noise, expected, atol=1e-5) <= 1e-5


@pytest.mark.slow
def test_vae_decoder_and_conditional_generator_export(tmp_path):
    keras.utils.set_random_seed(0)
    vae = VAE(build_digits_vae_encoder(2), build_digits_vae_decoder(2), seed=0)
    codes = np.random.default_rng(2).standard_normal((4, 2)).astype("float32")
    decoded = keras.ops.convert_to_numpy(vae.decoder(codes))
    path = export(vae.decoder, tmp_path / "decoder.onnx", format="onnx")
    assert verify(path, codes, decoded, atol=1e-5) <= 1e-5

    cgan = ConditionalGAN(None, None, latent_dim=8, num_classes=10, seed=0)
    noise = np.random.default_rng(3).standard_normal((4, 8)).astype("float32")
    labels = keras.ops.convert_to_numpy(keras.ops.one_hot(np.array([0, 3, 7, 9]), 10))
    expected = keras.ops.convert_to_numpy(cgan.generator([noise, labels]))
    path = export(cgan.generator, tmp_path / "conditional")
    assert verify(path, [noise, labels], expected, atol=1e-5) <= 1e-5


@pytest.mark.slow
def test_cyclegan_generator_and_aae_decoder_export(tmp_path):
    from dlkit.models import (
        AdversarialAutoencoder,
        CycleGAN,
        build_digits_aae_networks,
        build_digits_cyclegan_networks,
    )

    keras.utils.set_random_seed(0)
    cyclegan = CycleGAN(*build_digits_cyclegan_networks())
    images = np.random.default_rng(4).uniform(-1, 1, (3, 8, 8, 1)).astype("float32")
    translated = keras.ops.convert_to_numpy(cyclegan.translate_ab(images))
    path = export(cyclegan.generator_ab, tmp_path / "generator_ab")  # image -> image
    assert verify(path, images, translated, atol=1e-5) <= 1e-5

    aae = AdversarialAutoencoder(*build_digits_aae_networks(2), seed=0)
    codes = keras.ops.convert_to_numpy(aae.sample_prior(4))
    decoded = keras.ops.convert_to_numpy(aae.decode(codes))
    path = export(aae.decoder, tmp_path / "decoder.onnx", format="onnx")
    assert verify(path, codes, decoded, atol=1e-5) <= 1e-5
