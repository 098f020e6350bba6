"""Alternating multi-optimizer updates: one declaration, ``fit`` on every backend.

GAN-like models train by taking turns: a few steps on the discriminator's variables with its
optimizer, then one on the generator's with another [notes ch. 6, the GAN algorithm with k
discriminator steps]. A model subclassing ``AlternatingModel`` declares these turns as
``Update`` objects; the losses are written once with ``keras.ops``. The per-backend modules of
this package run them: GradientTape on TensorFlow, a traced graph per turn on PyTorch (eager
autograd where the tracer cannot follow the loss), and on JAX a stateless
step that threads every optimizer's variables through ``fit``'s state (they are grouped in an
``OptimizerGroup`` set as ``model.optimizer``, the only optimizer JAX's fit threads).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import keras

from dlkit.training._versions import private_api_supported
from dlkit.training.backend import backend_module
from dlkit.training.fused import FusedFit
from dlkit.validation import check_int

__all__ = ["AlternatingModel", "OptimizerGroup", "Update"]


@dataclasses.dataclass
class Update:
    """One turn of an alternating training step.

    Args:
        name: the update's name; ``compile(optimizers={name: ...})`` gives its optimizer and the
            logs report its loss as ``{name}_loss``.
        variables: the trainable variables this update changes (only these get its gradient).
        loss: ``loss(data) -> scalar``, written with ``keras.ops``. It receives the batch as the
            dataset yields it and may call sub-models, draw from a ``SeedGenerator`` and update
            metrics.
        repetitions: steps of this update per batch (the notes' k for the discriminator); each
            repetition sees the same batch and fresh randomness.
    """

    name: str
    variables: Sequence[keras.Variable]
    loss: Callable
    repetitions: int = 1


@keras.saving.register_keras_serializable(package="dlkit")
class OptimizerGroup(keras.optimizers.Optimizer):
    """The optimizers of an ``AlternatingModel``, one per update, seen by Keras as one.

    ``fit`` on JAX threads only ``model.optimizer``'s variables through its compiled step, and
    saving stores only ``model.optimizer``; this group exposes every member's variables so both
    see all of them. Each member is built on, and applied to, its own update's variables; the
    group's own ``iterations`` counts training steps (batches).

    Args:
        optimizers: mapping of update name to a ``keras.optimizers.Optimizer``.
        name: the group's name.
    """

    def __init__(self, optimizers: Mapping[str, keras.optimizers.Optimizer], name=None, **kwargs):
        kwargs.pop("learning_rate", None)
        super().__init__(learning_rate=0.0, name=name or "optimizer_group", **kwargs)
        self.optimizers = dict(optimizers)

    @property
    def variables(self):
        variables = list(super().variables)
        for optimizer in self.optimizers.values():
            variables.extend(optimizer.variables)
        return variables

    def build(self, var_list):
        # Members are built on their own update's variables by AlternatingModel.compile.
        if not self.built:
            self.built = True

    def apply(self, grads, trainable_variables=None):
        raise TypeError(
            "An OptimizerGroup is applied update by update by AlternatingModel.train_step; "
            "call a member optimizer's apply instead."
        )

    def get_config(self):
        return {
            "name": self.name,
            "optimizers": {
                name: keras.saving.serialize_keras_object(optimizer)
                for name, optimizer in self.optimizers.items()
            },
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        optimizers = {
            name: keras.saving.deserialize_keras_object(value, custom_objects=custom_objects)
            for name, value in config["optimizers"].items()
        }
        return cls(optimizers, name=config.get("name"))


class UpdateLoss(keras.metrics.Mean):
    """The mean of an update's loss since the last reset, which also keeps the first of its
    calls whose loss was NaN or infinite (``first_nonfinite``, -1 for none): recorded inside
    the compiled step, read once per epoch by ``NonFiniteLossCheck``."""

    def __init__(self, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.first_nonfinite = self.add_variable(
            shape=(), initializer=keras.initializers.Constant(-1.0), name="first_nonfinite"
        )

    def update_state(self, values, sample_weight=None):
        finite = keras.ops.all(keras.ops.isfinite(values))
        first = self.first_nonfinite.value
        calls = keras.ops.cast(self.count.value, first.dtype)
        recorded = keras.ops.logical_or(first >= 0, finite)
        self.first_nonfinite.assign(keras.ops.where(recorded, first, calls))
        return super().update_state(values, sample_weight=sample_weight)

    def reset_state(self):
        super().reset_state()
        self.first_nonfinite.assign(-1.0)


class NonFiniteLossCheck(keras.callbacks.Callback):
    """Stops ``fit`` of an ``AlternatingModel`` with a ``FloatingPointError`` when an update's
    loss became NaN or infinite during the epoch, naming the update and the step.

    It reads each ``UpdateLoss``'s record once per epoch, before validation resets it (or at
    the epoch's end without validation), and runs before the other callbacks, so a
    ``BackupAndRestore`` or checkpoint callback never saves the broken weights.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._checked = epoch, False

    def on_test_begin(self, logs=None):
        if getattr(self, "_checked", True) is False:
            self._check()

    def on_epoch_end(self, epoch, logs=None):
        if not self._checked:
            self._check()

    def _check(self):
        self._checked = True
        for update in self.model._checked_updates():
            tracker = self.model._update_loss_trackers[update.name]
            first = float(keras.ops.convert_to_numpy(tracker.first_nonfinite))
            if first >= 0:
                step = int(first) // update.repetitions + 1
                raise FloatingPointError(
                    f"The loss of update {update.name!r} became NaN or infinite at step {step} "
                    f"of epoch {self._epoch + 1}; training stopped at the end of that epoch, "
                    "before its callbacks saved anything. Lower the learning rate, clip the "
                    "gradients or check the data."
                )


class AlternatingModel(FusedFit, keras.Model):
    """Base class of models trained by alternating updates with one optimizer each.

    A subclass builds its sub-models in ``__init__``, implements ``updates()`` returning its
    ordered ``Update`` list, and ``call`` for inference (a GAN's ``call`` runs its generator).
    It is then compiled with one optimizer per update and trained with ``fit``; ``evaluate``
    reports every update's loss without changing weights. The model holds no backend code: the
    same subclass trains on TensorFlow, JAX and PyTorch, under ``tf.distribute.MirroredStrategy``
    and under ``keras.distribution.DataParallel``.

    Training step, for a batch ``data``:

        for update in updates():                       # in the declared order
            repeat update.repetitions times:
                g = ∇_{update.variables} update.loss(data)
                update.variables ← optimizer[update.name](update.variables, g)

    Logged metrics: ``{name}_loss`` per update (mean over repetitions and batches), plus any
    metric the subclass tracks and updates in its loss functions.

    Example:

    >>> class Pair(AlternatingModel):
    ...     def __init__(self, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.a = keras.Variable(1.0)
    ...         self.b = keras.Variable(1.0)
    ...     def updates(self):
    ...         return [Update("a", [self.a], lambda x: keras.ops.mean((self.a - x) ** 2)),
    ...                 Update("b", [self.b], lambda x: keras.ops.mean((self.b + x) ** 2))]
    >>> model = Pair()
    >>> model.compile(optimizers={"a": keras.optimizers.SGD(0.1),
    ...                           "b": keras.optimizers.SGD(0.1)})
    >>> history = model.fit(keras.ops.full((64, 1), 3.0), batch_size=8, epochs=4, verbose=0)
    >>> sorted(history.history)
    ['a_loss', 'b_loss']
    >>> round(float(model.a.numpy()), 2), round(float(model.b.numpy()), 2)
    (3.0, -3.0)
    """

    def updates(self) -> list[Update]:
        """Returns the ordered updates of one training step; subclasses implement it."""
        raise TypeError(
            f"{type(self).__name__} must implement updates(), returning its list of Update objects."
        )

    def compile(
        self,
        optimizers: Mapping[str, keras.optimizers.Optimizer] | None = None,
        run_eagerly: bool = False,
        jit_compile: bool | str = "auto",
        steps_per_execution: int = 1,
    ) -> None:
        """Configures training with one optimizer per update.

        Args:
            optimizers: ``{update_name: optimizer}`` with exactly one optimizer object per
                update, or an ``OptimizerGroup``.
            run_eagerly: run steps eagerly (for debugging).
            jit_compile: XLA-compile the step; ``"auto"`` lets Keras decide per backend.
            steps_per_execution: batches per compiled call.

        Raises:
            ValueError: if an update has no variables, an invalid repetition count or no
                optimizer, if an optimizer is not for any update, or one optimizer object is
                given to two updates; if ``steps_per_execution`` is not an integer >= 1.
        """
        steps_per_execution = check_int("steps_per_execution", steps_per_execution)
        group = optimizers if isinstance(optimizers, OptimizerGroup) else None
        optimizers = dict(group.optimizers if group else (optimizers or {}))
        updates = self._checked_updates()
        names = [update.name for update in updates]
        missing = [name for name in names if name not in optimizers]
        if missing:
            raise ValueError(
                f"Expected an optimizer for each update {names}. "
                f"Received: no optimizer for update(s) {missing} in optimizers={optimizers!r}"
            )
        unknown = [name for name in optimizers if name not in names]
        if unknown:
            raise ValueError(
                f"Expected optimizers only for the updates {names}. "
                f"Received: optimizers for unknown update(s) {unknown}"
            )
        seen = {}
        for name in names:
            optimizer = optimizers[name]
            if not isinstance(optimizer, keras.optimizers.Optimizer):
                raise ValueError(
                    f"Expected a keras.optimizers.Optimizer for update {name!r}. "
                    f"Received: {optimizer!r}"
                )
            if id(optimizer) in seen:
                raise ValueError(
                    f"Expected a separate optimizer object for each update. Received: the same "
                    f"optimizer {optimizer.name!r} for updates {seen[id(optimizer)]!r} and "
                    f"{name!r}"
                )
            seen[id(optimizer)] = name
        group = group or OptimizerGroup(optimizers)
        super().compile(
            optimizer=group,
            run_eagerly=run_eagerly,
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
        )
        # The losses of an alternating model are per update; the single "loss" is meaningless.
        # Keras reports it from its private `Model._loss_tracker`, which `None` switches off;
        # on Keras versions not checked, `metrics` leaves that tracker out instead (the same
        # metrics, logs and JAX metric state, through the public property).
        self._keras_loss_tracker_id = None
        if private_api_supported("AlternatingModel loss logs", "keras"):
            self._loss_tracker = None
        else:
            keras_loss = [m for m in super().metrics if m.name == "loss"]
            self._keras_loss_tracker_id = id(keras_loss[0]) if keras_loss else None
        trackers = getattr(self, "_update_loss_trackers", None)
        if trackers is None or list(trackers) != names:  # keep them on a second compile
            self._update_loss_trackers = {name: UpdateLoss(name=f"{name}_loss") for name in names}
        for update in updates:
            optimizers[update.name].build(list(update.variables))
        group.build(self.trainable_variables)
        self._alternating_compile_config = keras.utils.Config(
            optimizers=group,
            run_eagerly=run_eagerly,
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
        )
        self.built = True

    @property
    def metrics(self):
        """Keras's metrics, less its "loss" tracker where ``compile`` could not switch it off."""
        metrics = super().metrics
        keras_loss = getattr(self, "_keras_loss_tracker_id", None)
        if keras_loss is None:
            return metrics
        return [metric for metric in metrics if id(metric) != keras_loss]

    def get_compile_config(self):
        if not getattr(self, "compiled", False):
            return {}
        config = dict(self._alternating_compile_config)
        config["optimizers"] = keras.saving.serialize_keras_object(config["optimizers"])
        return config

    def compile_from_config(self, config):
        config = dict(config)
        config["optimizers"] = keras.saving.deserialize_keras_object(config["optimizers"])
        self.compile(**config)

    def _checked_updates(self) -> list[Update]:
        updates = list(self.updates())
        if not updates:
            raise ValueError(f"Expected {type(self).__name__}.updates() to return at least one.")
        names = set()
        for update in updates:
            if not isinstance(update, Update):
                raise ValueError(f"Expected Update objects from updates(). Received: {update!r}")
            if update.name in names:
                raise ValueError(f"Expected unique update names. Received: {update.name!r} twice")
            names.add(update.name)
            if not list(update.variables):
                raise ValueError(
                    f"Expected update {update.name!r} to have trainable variables. "
                    f"Received: variables={list(update.variables)!r} (is the sub-model built?)"
                )
            if not isinstance(update.repetitions, int) or update.repetitions < 1:
                raise ValueError(
                    f"Expected update {update.name!r} to have repetitions >= 1. "
                    f"Received: repetitions={update.repetitions!r}"
                )
        return updates

    def _resolved_updates(self) -> list[tuple[Update, keras.optimizers.Optimizer, object]]:
        """(update, its optimizer, its loss tracker) in order, for the backend step."""
        optimizers, trackers = self.optimizer.optimizers, self._update_loss_trackers
        return [
            (update, optimizers[update.name], trackers[update.name])
            for update in self._checked_updates()
        ]

    def _checked_loss(self, update: Update, data):
        """Evaluates an update's loss and checks that it is a scalar."""
        loss = update.loss(data)
        # The static shape: a traced step may leave the batch dimension unknown (None).
        shape = tuple(getattr(loss, "shape", ()))
        if shape not in ((), (1,)):
            raise ValueError(
                f"Expected the loss of update {update.name!r} to be a scalar. "
                f"Received: a tensor of shape {shape}"
            )
        return keras.ops.reshape(loss, ())

    # Keras saves no SeedGenerator state, so a reloaded or resumed model would draw other noise
    # than an uninterrupted one. The model stores the state of every seed generator in its
    # tree with its own variables, which makes `.keras` files and BackupAndRestore exact.
    _SEED_KEY = "seed_generator_state_"

    def _seed_states(self) -> list[keras.Variable]:
        """The state variables of every ``SeedGenerator`` in the model's tree, in layer order.

        Through Keras's private ``_flatten_layers`` and ``Layer._seed_generators``; on Keras
        versions not checked, through the public ``variables`` (every weight and, since Keras
        3.0, every seed generator's state, layer by layer in the same order) less ``weights``.
        """
        if not private_api_supported("AlternatingModel seed saving", "keras"):
            weights = {id(weight) for weight in self.weights}
            return [v for v in self.variables if id(v) not in weights]
        states, seen = [], set()
        for layer in self._flatten_layers(include_self=True):
            for generator in layer._seed_generators:
                if id(generator) not in seen:
                    seen.add(id(generator))
                    states.append(generator.state)
        return states

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for index, state in enumerate(self._seed_states()):
            store[f"{self._SEED_KEY}{index}"] = state

    def load_own_variables(self, store):
        keys = list(store.keys())
        super().load_own_variables({k: store[k] for k in keys if not k.startswith(self._SEED_KEY)})
        for index, state in enumerate(self._seed_states()):
            key = f"{self._SEED_KEY}{index}"
            if key in keys:
                state.assign(store[key])

    def _training_callbacks(self) -> list:
        """``NonFiniteLossCheck``, run before the user's callbacks."""
        return [NonFiniteLossCheck()]

    def _streaming_fit(self, arguments: dict):
        """Keras's ``fit``, its arguments first handed to the backend module's
        ``fit_arguments``, which may feed NumPy arrays through a leaner input pipeline with the
        same batches (see ``dlkit.training.backend.BackendModule.fit_arguments``)."""
        return keras.Model.fit(self, **backend_module().fit_arguments(self, arguments))

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        function = backend_module().fit_train_function(self)
        if function is None:
            return super().make_train_function(force=force)
        self.train_function = function
        return function

    def train_step(self, *args):
        return backend_module().alternating_train_step(self, *args)

    def test_step(self, *args):
        return backend_module().alternating_test_step(self, *args)
