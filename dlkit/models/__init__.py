"""Fit-able models of the course: autoencoders and VAEs [notes ch. 5], GANs [notes ch. 6],
the Transformer and LSTM / transformer sequence models [notes ch. 7], graph convolutional
networks [notes ch. 8].

Single-optimizer models (``Autoencoder``, ``VAE``, ``ConditionalVAE``) override
``compute_loss``; the adversarial ones (``GAN``, ``ConditionalGAN``, ``ACGAN``,
``AdversarialAutoencoder``, ``VAEGAN``, ``CycleGAN``) declare their alternating updates on
``dlkit.training.AlternatingModel``. All train with ``fit`` on
TensorFlow, JAX and PyTorch, save to ``.keras`` and come with builders of default networks for
the embedded 8×8 digits.
"""

from dlkit.models.aae import PRIORS, AdversarialAutoencoder, build_digits_aae_networks, sample_prior
from dlkit.models.autoencoder import Autoencoder, build_conv_autoencoder, build_dense_autoencoder
from dlkit.models.cyclegan import ADVERSARIAL_LOSSES, CycleGAN, build_digits_cyclegan_networks
from dlkit.models.gan import (
    ACGAN,
    CONDITIONING_MODES,
    GAN,
    ConditionalGAN,
    build_acgan_digits_discriminator,
    build_conditional_digits_discriminator,
    build_conditional_digits_generator,
    build_digits_discriminator,
    build_digits_generator,
)
from dlkit.models.gcn import GCN_CONV_TYPES, build_gcn
from dlkit.models.sequence_models import (
    build_lstm_classifier,
    build_lstm_forecaster,
    build_transformer_classifier,
)
from dlkit.models.transformer import SequenceGenerator, Transformer
from dlkit.models.vae import (
    VAE,
    ConditionalVAE,
    build_digits_cvae_decoder,
    build_digits_cvae_encoder,
    build_digits_vae_decoder,
    build_digits_vae_encoder,
)
from dlkit.models.vaegan import VAEGAN, build_digits_vaegan_networks

__all__ = [
    "ACGAN",
    "ADVERSARIAL_LOSSES",
    "CONDITIONING_MODES",
    "GAN",
    "GCN_CONV_TYPES",
    "PRIORS",
    "VAE",
    "VAEGAN",
    "AdversarialAutoencoder",
    "Autoencoder",
    "ConditionalGAN",
    "ConditionalVAE",
    "CycleGAN",
    "SequenceGenerator",
    "Transformer",
    "build_acgan_digits_discriminator",
    "build_conditional_digits_discriminator",
    "build_conditional_digits_generator",
    "build_conv_autoencoder",
    "build_dense_autoencoder",
    "build_digits_aae_networks",
    "build_digits_cvae_decoder",
    "build_digits_cvae_encoder",
    "build_digits_cyclegan_networks",
    "build_digits_discriminator",
    "build_digits_generator",
    "build_digits_vae_decoder",
    "build_digits_vae_encoder",
    "build_digits_vaegan_networks",
    "build_gcn",
    "build_lstm_classifier",
    "build_lstm_forecaster",
    "build_transformer_classifier",
    "sample_prior",
]
