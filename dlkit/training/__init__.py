"""Backend-specific autodiff lives here and nowhere else.

Everything outside ``dlkit/training/`` is written with ``keras.ops`` and calls into this
package when it needs gradients. Each backend has one small module (``_tensorflow.py``,
``_jax.py``, ``_torch.py``) implementing the same interface; ``_backend()`` picks the one
matching ``keras.backend.backend()``.
"""

from dlkit.training.backend import list_devices
from dlkit.training.gradients import value_and_grad

__all__ = ["list_devices", "value_and_grad"]
