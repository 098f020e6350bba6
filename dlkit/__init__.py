"""dlkit: the techniques of a deep-learning course as tested Keras 3 building blocks.

The same user code trains with ``model.fit`` on the TensorFlow, JAX and PyTorch backends
(select one with ``KERAS_BACKEND``). Subpackages are imported on demand so that
``import dlkit`` stays cheap:

- ``dlkit.data``: embedded digits and MNIST sample, tensorflow-datasets loaders, synthetic
  shapes, sequences, text and graphs.
- ``dlkit.layers``: the course's layers (dilated and transposed convolution, FiLM, noisy dense,
  LSTM, attention, positional encoding, transformer blocks, Q-value heads, graph convolution).
- ``dlkit.models``: autoencoders, VAEs, GANs (conditional, AC-GAN, AAE, VAE-GAN, CycleGAN), the
  Transformer, sequence models and the GCN, trained with ``fit``.
- ``dlkit.vision``: transfer learning, visualisation, adversarial examples, deep dream, style
  transfer, segmentation and detection.
- ``dlkit.rl``: buffers, tabular agents, DQN, REINFORCE, A2C and PPO on gymnasium.
- ``dlkit.training``: the only home of backend-specific autodiff (alternating updates,
  compiled training and acting).
- ``dlkit.distribute``: data-parallel training on every device of the backend.
- ``dlkit.export``: SavedModel and ONNX export from any backend.
- ``dlkit.validation``: the argument checks every package shares.
- ``dlkit.losses``, ``dlkit.callbacks``, ``dlkit.plotting``, ``dlkit.testing``
  (``run_layer_test``) and the ``dlkit`` command line (``dlkit.cli``).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
