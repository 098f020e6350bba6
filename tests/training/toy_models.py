"""Small models built on AlternatingModel for the training tests."""

import keras
import numpy as np

from dlkit.training import AlternatingModel, Update


def mlp(input_dim, hidden, name):
    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(1),
        ],
        name=name,
    )


@keras.saving.register_keras_serializable(package="dlkit_tests")
class ToyGAN(AlternatingModel):
    """A GAN on 1-D data with the non-saturating generator loss and k discriminator steps.

    Batches are real samples (noise drawn from the model's SeedGenerator) or (real, noise)
    pairs (deterministic, for comparing runs).
    """

    def __init__(
        self, latent_dim=4, hidden=32, k=1, seed=0, generator=None, discriminator=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.latent_dim, self.hidden, self.k, self.seed = latent_dim, hidden, k, seed
        self.generator = generator or mlp(latent_dim, hidden, "generator")
        self.discriminator = discriminator or mlp(1, hidden, "discriminator")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, noise):
        return self.generator(noise)

    def updates(self):
        return [
            Update(
                "discriminator",
                self.discriminator.trainable_variables,
                self.discriminator_loss,
                repetitions=self.k,
            ),
            Update("generator", self.generator.trainable_variables, self.generator_loss),
        ]

    def _real_and_noise(self, data):
        if isinstance(data, tuple):
            return data
        noise = keras.random.normal(
            (keras.ops.shape(data)[0], self.latent_dim), seed=self.seed_generator
        )
        return data, noise

    def discriminator_loss(self, data):
        real, noise = self._real_and_noise(data)
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(self.generator(noise))
        return keras.ops.mean(keras.ops.softplus(-real_logits)) + keras.ops.mean(
            keras.ops.softplus(fake_logits)
        )

    def generator_loss(self, data):
        _, noise = self._real_and_noise(data)
        return keras.ops.mean(keras.ops.softplus(-self.discriminator(self.generator(noise))))

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "hidden": self.hidden,
            "k": self.k,
            "seed": self.seed,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("generator", "discriminator"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)


def gan_optimizers(learning_rate=2e-3):
    return {
        "discriminator": keras.optimizers.Adam(learning_rate, beta_1=0.5),
        "generator": keras.optimizers.Adam(learning_rate, beta_1=0.5),
    }


def mixture_samples(num_samples, seed=0):
    """Samples of 0.5·N(-1, 0.4²) + 0.5·N(2, 0.4²): mean 0.5, standard deviation ≈ 1.55."""
    rng = np.random.default_rng(seed)
    centres = np.where(rng.random(num_samples) < 0.5, -1.0, 2.0)
    return (centres + 0.4 * rng.standard_normal(num_samples)).astype("float32")[:, None]


def weights_of(model):
    return [np.array(w) for w in model.get_weights()]
