"""dlkit: the techniques of a deep-learning course as tested Keras 3 building blocks.

The same user code trains with ``model.fit`` on the TensorFlow, JAX and PyTorch backends
(select one with ``KERAS_BACKEND``). Subpackages are imported on demand so that
``import dlkit`` stays cheap:

- ``dlkit.data``: embedded digits, tensorflow-datasets loaders, synthetic shapes.
- ``dlkit.training``: the only home of backend-specific autodiff.
- ``dlkit.testing``: ``run_layer_test`` for layers and models.
- ``dlkit.plotting``: figures written by recipes and callbacks.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
