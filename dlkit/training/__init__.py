"""Backend-specific autodiff lives here and nowhere else.

Everything outside ``dlkit/training/`` is written with ``keras.ops`` and calls into this
package when it needs gradients. Each backend has one small module (``_tensorflow.py``,
``_jax.py``, ``_torch.py``) implementing the same interface, the protocol
``backend.BackendModule``; ``backend.backend_module()`` picks the one matching
``keras.backend.backend()``. Speed paths that read private APIs sit beside them
(``_torch_tracing.py``, ``_tensorflow_fast.py``), each behind its environment switch and the
version gates of ``_versions.py``, which also guard ``alternating.py``'s and
``dlkit.distribute``'s private-API uses.
"""

from dlkit.training.alternating import AlternatingModel, OptimizerGroup, Update
from dlkit.training.backend import enable_compilation_cache, list_devices
from dlkit.training.fused import FusedFit, fused_fit
from dlkit.training.gradients import (
    CompiledFunction,
    CompiledGradients,
    compile_function,
    compile_gradients,
    hessian_vector_product,
    value_and_grad,
)
from dlkit.training.inference import CompiledInference, compile_inference
from dlkit.training.steps import CompiledTrainSteps, compile_train_steps

__all__ = [
    "AlternatingModel",
    "CompiledFunction",
    "CompiledGradients",
    "CompiledInference",
    "CompiledTrainSteps",
    "FusedFit",
    "OptimizerGroup",
    "Update",
    "compile_function",
    "compile_gradients",
    "compile_inference",
    "compile_train_steps",
    "enable_compilation_cache",
    "fused_fit",
    "hessian_vector_product",
    "list_devices",
    "value_and_grad",
]
