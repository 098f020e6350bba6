import keras
import numpy as np

from dlkit.layers._initializers import clone_initializer


def draw(initializer):
    return keras.ops.convert_to_numpy(initializer((4, 3)))


def test_clones_of_an_unseeded_initializer_draw_different_values():
    initializer = keras.initializers.GlorotUniform()
    # The reason for cloning: one instance used twice repeats its draw.
    np.testing.assert_array_equal(draw(initializer), draw(initializer))
    first, second = clone_initializer(initializer), clone_initializer(initializer)
    assert type(first) is keras.initializers.GlorotUniform
    assert not np.allclose(draw(first), draw(second))


def test_a_seeded_initializer_keeps_its_seed_and_configuration():
    initializer = keras.initializers.RandomNormal(stddev=0.5, seed=3)
    clone = clone_initializer(initializer)
    assert clone is not initializer
    assert clone.get_config() == initializer.get_config()
    np.testing.assert_array_equal(draw(clone), draw(initializer))
