"""Export inference networks to TensorFlow SavedModel or ONNX from any backend.

A network trained on TensorFlow is exported in-process with ``model.export``. A network trained
on JAX or PyTorch is first saved as a backend-neutral ``.keras`` file, which a short
TensorFlow-backend subprocess loads and exports; the result is the same plain TensorFlow graph
whichever backend trained it (on PyTorch no in-process route exists: Keras' SavedModel export
needs torch_xla). ONNX files are converted from that graph with tf2onnx.

Every export has a dynamic batch dimension. A SavedModel serves the endpoint ``serve`` (also
registered as the ``serving_default`` signature for TensorFlow Serving); an ONNX model takes the
network's input by its Keras input name. ``verify`` reloads an export and compares its outputs.

``export_tf_agents_policy`` writes a deterministic dlkit policy in the layout of TF-Agents'
``PolicySaver``, which its ``SavedModelPyTFEagerPolicy`` loads; tf-agents is not needed to write
or to serve it.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

from dlkit.validation import check_choice, check_int, check_type

__all__ = ["FORMATS", "ExportError", "export", "export_tf_agents_policy", "verify"]

FORMATS = ("saved_model", "onnx")
_KERAS_FORMAT = {"saved_model": "tf_saved_model", "onnx": "onnx"}
_REQUIREMENTS = {
    "saved_model": (("tensorflow", "tensorflow"),),
    "onnx": (("tensorflow", "tensorflow"), ("tf2onnx", "tf2onnx"), ("onnx", "onnx")),
}


class ExportError(RuntimeError):
    """An export that could not be written, or whose reloaded outputs differ."""


def export(model: keras.Model, path: str | os.PathLike, format: str = "saved_model") -> Path:
    """Exports an inference network for serving.

    Args:
        model: a built, called Keras model mapping inputs to outputs: a classifier, a
            generator or decoder, a policy. Not a training wrapper such as a GAN (export its
            generator instead).
        path: the SavedModel directory, or the ``.onnx`` file, to write.
        format: ``"saved_model"`` or ``"onnx"``.

    Returns:
        The path written.

    Raises:
        ValueError: for an unknown format, a model that was never built, or a training
            wrapper without a single inference graph (the message names its sub-models).
        ImportError: if a package the format needs is not installed (the message says which).
        ExportError: if the exporting subprocess fails.

    Example:

        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> path = export(model, "policy_savedmodel")  # doctest: +SKIP
    """
    check_choice("format", format, FORMATS)
    _check_exportable(model)
    _check_installed(format)
    path = Path(path)
    _write_with_tensorflow(model, path, format, {})
    return path


def _write_with_tensorflow(model, path: Path, format: str, options: dict) -> None:
    """Writes ``model`` in-process on TensorFlow, else through a TensorFlow subprocess."""
    if keras.backend.backend() == "tensorflow":
        _write(model, path, format, options)
        return
    with tempfile.TemporaryDirectory() as directory:
        keras_file = Path(directory) / "model.keras"
        model.save(keras_file)
        modules = sorted({type(layer).__module__ for layer in model._flatten_layers()})
        _export_in_subprocess(keras_file, path, format, modules, options)


def _write(model, path: Path, format: str, options: dict) -> None:
    if format == TF_AGENTS_FORMAT:
        _write_tf_agents_policy(model, path, **options)
    else:
        _export_in_process(model, path, format)


def _check_exportable(model) -> None:
    if not isinstance(model, keras.Layer):
        raise ValueError(f"Expected a Keras model. Received: model={model!r}")
    from dlkit.training import AlternatingModel

    if isinstance(model, AlternatingModel):
        # On PyTorch, sub-modules live in torch's `_modules` rather than the instance dict.
        attributes = {**vars(model), **(vars(model).get("_modules") or {})}
        sub_models = [
            name
            for name, value in attributes.items()
            if isinstance(value, keras.Model) and not name.startswith("_")
        ]
        raise ValueError(
            f"Expected an inference network. Received: {type(model).__name__}, a training "
            "wrapper of several networks with no single inference graph; export one of its "
            f"sub-models instead: {', '.join('model.' + name for name in sub_models)}"
        )
    if not model.built:
        raise ValueError(
            f"Expected a built model (call it once or give it an Input). Received: {model.name!r}"
        )


def _check_installed(format: str) -> None:
    missing = [
        package
        for module, package in _REQUIREMENTS[format]
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        extra = "" if format == "saved_model" else "[onnx]"
        raise ImportError(
            f"Exporting to {format} needs {', '.join(missing)}: "
            f"pip install {' '.join(missing)}  (or pip install 'dlkit{extra}')"
        )


def _export_in_process(model, path: Path, format: str) -> None:
    if not getattr(model, "_called", True):
        # Keras derives the export signature from a first call.
        # Unknown sizes (a variable sequence length) get 1 for this one call.
        inputs = [
            np.zeros((1, *(size or 1 for size in spec.shape[1:])), spec.dtype)
            for spec in model.inputs
        ]
        model(inputs[0] if len(inputs) == 1 else inputs)
    model.export(str(path), format=_KERAS_FORMAT[format], verbose=False)


def _export_in_subprocess(
    keras_file: Path, path: Path, format: str, modules: list[str], options: dict
) -> None:
    environment = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    arguments = json.dumps(
        {
            "keras_file": str(keras_file),
            "path": str(path),
            "format": format,
            "modules": modules,
            "options": options,
        }
    )
    completed = subprocess.run(
        [sys.executable, "-m", "dlkit.export", arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=900,
    )
    if completed.returncode != 0:
        raise ExportError(
            f"Exporting {keras_file.name} to {format} in a TensorFlow subprocess failed:\n"
            + completed.stderr[-4000:]
        )


def _load_and_export(arguments: dict) -> None:
    """Subprocess side: import the modules defining custom layers, load, export."""
    for module in arguments["modules"]:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    model = keras.saving.load_model(arguments["keras_file"], compile=False)
    _write(model, Path(arguments["path"]), arguments["format"], arguments["options"])


def verify(path: str | os.PathLike, inputs, expected, atol: float = 1e-5) -> float:
    """Reloads an export, runs it on ``inputs`` and compares with ``expected``.

    A SavedModel is reloaded with ``tf.saved_model.load`` and called through its ``serve``
    endpoint; an ``.onnx`` file runs in ONNX Runtime.

    Args:
        path: a SavedModel directory or an ``.onnx`` file written by ``export``.
        inputs: a numpy array batch (or a list of arrays for several inputs).
        expected: the outputs the original model gave for ``inputs``.
        atol: the largest absolute difference allowed.

    Returns:
        The largest absolute difference found.

    Raises:
        ExportError: if the difference exceeds ``atol`` or the output shapes differ.
        ValueError: if ``path`` is neither a SavedModel directory nor an ``.onnx`` file.
    """
    path = Path(path)
    inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    inputs = [np.asarray(x) for x in inputs]
    if path.suffix == ".onnx" and path.is_file():
        _check_installed("onnx")
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {spec.name: x for spec, x in zip(session.get_inputs(), inputs)}
        outputs = session.run(None, feed)
    elif (path / "saved_model.pb").is_file():
        import tensorflow as tf

        restored = tf.saved_model.load(str(path))  # keep a reference while serving
        tensors = [tf.constant(x) for x in inputs]
        # A network with several inputs serves them as one list argument, as Keras exports it.
        result = restored.serve(tensors if len(tensors) > 1 else tensors[0])
        outputs = [np.asarray(t) for t in keras.tree.flatten(result)]
    else:
        raise ValueError(
            f"Expected a SavedModel directory or an .onnx file. Received: path={str(path)!r}"
        )
    expected = [np.asarray(e) for e in keras.tree.flatten(expected)]
    if len(outputs) != len(expected) or any(o.shape != e.shape for o, e in zip(outputs, expected)):
        raise ExportError(
            f"Output shapes differ: export gives {[o.shape for o in outputs]}, expected "
            f"{[e.shape for e in expected]}"
        )
    difference = max(
        float(np.max(np.abs(o - e))) if o.size else 0.0 for o, e in zip(outputs, expected)
    )
    if difference > atol:
        raise ExportError(
            f"Exported outputs differ from the expected ones by up to {difference:.3g} "
            f"(atol={atol})."
        )
    return difference


# ---------------------------------------------------------------------------- TF-Agents policies

TF_AGENTS_FORMAT = "tf_agents"
TF_AGENTS_SIGNATURES = ("action", "get_initial_state", "get_train_step", "get_metadata")
POLICY_SPECS_FILE = "policy_specs.pbtxt"
# TF-Agents' nests, rebuilt by type name and fields: a loaded SavedModel function matches a
# namedtuple argument by those two, so TF-Agents' own classes call it as these do.
TimeStep = collections.namedtuple("TimeStep", ("step_type", "reward", "discount", "observation"))
PolicyStep = collections.namedtuple("PolicyStep", ("action", "state", "info"))
Trajectory = collections.namedtuple(
    "Trajectory",
    ("step_type", "observation", "action", "policy_info", "next_step_type", "reward", "discount"),
)


def export_tf_agents_policy(
    policy, path: str | os.PathLike, *, train_step: int | None = None, metadata: dict | None = None
) -> Path:
    """Exports a deterministic dlkit policy as a TF-Agents saved policy.

    The SavedModel has the layout of TF-Agents' `PolicySaver`, so TF-Agents' loader
    (`tf_agents.policies.py_tf_eager_policy.SavedModelPyTFEagerPolicy`, or `tf.saved_model.load`)
    runs it as one of its own policies, with no dlkit and no tf-agents needed to write or serve
    it:

    - `action(time_step, policy_state=())`: a `TimeStep(step_type, reward, discount,
      observation)` batch (int32 (B,), float32 (B,), float32 (B,), observations (B, ...)) →
      `PolicyStep(action, state=(), info=())`, the action of `act(observations, explore=False)`;
    - `get_initial_state(batch_size)` → `()`: dlkit's policies are stateless;
    - `get_train_step()` → int64 scalar; `get_metadata()` → a dict of scalars;
    - the same four as flat signatures (`action` takes `0/step_type`, `0/reward`,
      `0/discount`, `0/observation` and returns `action`), and `policy_specs.pbtxt`, the
      specs `SavedModelPyTFEagerPolicy(path, load_specs_from_pbtxt=True)` reads.

    Discrete actions are int32 scalars in [0, n - 1]; Box actions float vectors within the
    space's bounds. The export runs as `export` does: in-process on TensorFlow, in a
    TensorFlow subprocess from a `.keras` file on JAX and PyTorch.

    Args:
        policy: a deep agent (`DQN`, `PPO`, `A2C`, `REINFORCE`), whose `policy_model()` is
            exported, or such a policy model (a Keras model ending in `GreedyAction`).
        path: the SavedModel directory to write; it must not exist.
        train_step: what `get_train_step` returns. Defaults to the agent's `num_updates`
            (TF-Agents' train step counts gradient updates), or -1 for a policy model, as
            TF-Agents saves a policy without a step counter.
        metadata: more named ints or floats for `get_metadata`. An agent adds its
            `num_timesteps` and `num_episodes`. Defaults to None.

    Returns:
        The path written.

    Raises:
        ValueError: for a `policy` that is neither an agent nor a policy model, a `path` that
            exists, a `train_step` that is not an integer, or `metadata` values that are not
            numbers by name.
        TypeError: if `metadata` is not a dict.
        ImportError: if TensorFlow is not installed.
        ExportError: if the exporting subprocess fails.

    Example:

        >>> export_tf_agents_policy(agent, "runs/dqn/tf_agents_policy")  # doctest: +SKIP
        >>> # where tf-agents is installed:
        >>> from tf_agents.policies import py_tf_eager_policy  # doctest: +SKIP
        >>> policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(  # doctest: +SKIP
        ...     "runs/dqn/tf_agents_policy", load_specs_from_pbtxt=True
        ... )
        >>> action = policy.action(time_step).action  # doctest: +SKIP
    """
    model, counters = _policy_and_counters(policy)
    if train_step is not None:
        counters["train_step"] = check_int("train_step", train_step, minimum=None)
    if metadata is not None:
        check_type("metadata", metadata, dict, "a dict of numbers by name")
        for name, value in metadata.items():
            if not isinstance(name, str) or not _is_number(value):
                raise ValueError(
                    f"Expected `metadata` to map names to ints or floats. Received: {metadata=}"
                )
        counters["metadata"].update(
            {
                name: value if isinstance(value, float) else int(value)
                for name, value in metadata.items()
            }
        )
    path = Path(path)
    if path.exists():
        raise ValueError(
            "Expected `path` to be a new directory (a saved policy is written whole). "
            f"Received: path={str(path)!r}, which exists"
        )
    _check_installed("saved_model")
    _write_with_tensorflow(model, path, TF_AGENTS_FORMAT, counters)
    return path


def _is_number(value) -> bool:
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _policy_and_counters(policy) -> tuple[keras.Model, dict]:
    from dlkit.rl.agent import Agent, GreedyAction

    if isinstance(policy, Agent):
        counters = {"num_timesteps": policy.num_timesteps, "num_episodes": policy.num_episodes}
        return policy.policy_model(), {"train_step": policy.num_updates, "metadata": counters}
    inputs = getattr(policy, "inputs", None) if isinstance(policy, keras.Model) else None
    if inputs is None or len(inputs) != 1 or not isinstance(policy.layers[-1], GreedyAction):
        raise ValueError(
            "Expected `policy` to be a dlkit agent or its `policy_model()`, a model from one "
            f"observation input to a GreedyAction. Received: policy={policy!r}"
        )
    return policy, {"train_step": -1, "metadata": {}}


def _write_tf_agents_policy(model, path: Path, train_step: int, metadata: dict) -> None:
    """TensorFlow side: the policy module, its four functions and signatures, the specs file."""
    import tensorflow as tf

    time_step_spec, action_spec = _tf_agents_specs(model)
    # Batched inputs named by their path in (time_step, policy_state), as TF-Agents names them.
    batched = TimeStep(
        *(
            tf.TensorSpec((None, *spec.shape), spec.dtype, f"0/{field}")
            for field, spec in zip(TimeStep._fields, time_step_spec)
        )
    )
    batch_size = tf.TensorSpec((), tf.int32, "batch_size")

    saved = tf.Module()
    saved.policy_network = model
    saved.model_variables = [variable.value for variable in model.variables]
    saved.train_step = tf.Variable(train_step, dtype=tf.int64, trainable=False)
    saved.metadata = {
        name: tf.Variable(value, dtype=tf.float64 if isinstance(value, float) else tf.int64)
        for name, value in metadata.items()
    }

    @tf.function
    def action(time_step, policy_state=()):
        # Deterministic and stateless: the step type, reward and state are not read.
        return PolicyStep(model(time_step.observation, training=False), (), ())

    action.get_concrete_function(batched, ())
    action.get_concrete_function(batched)  # called as action(time_step) too
    get_initial_state = tf.function(lambda batch_size: ())
    get_initial_state.get_concrete_function(batch_size)
    get_train_step = tf.function(lambda: saved.train_step.read_value())
    get_metadata = tf.function(
        lambda: {key: value.read_value() for key, value in saved.metadata.items()}
    )
    saved.action, saved.get_initial_state = action, get_initial_state
    saved.get_train_step, saved.get_metadata = get_train_step, get_metadata

    @tf.function(input_signature=list(batched))
    def action_signature(*flat_time_step):
        return {"action": action(TimeStep(*flat_time_step), ()).action}

    signatures = {
        "action": action_signature,
        "get_initial_state": tf.function(lambda batch_size: {}, input_signature=[batch_size]),
        # TF-Agents keys the train step by its dtype's name.
        "get_train_step": tf.function(lambda: {"int64": get_train_step()}, input_signature=[]),
        "get_metadata": tf.function(get_metadata, input_signature=[]),
    }
    tf.saved_model.save(saved, str(path), signatures=signatures)
    specs = {
        "collect_data_spec": Trajectory(
            step_type=time_step_spec.step_type,
            observation=time_step_spec.observation,
            action=action_spec,
            policy_info=(),
            next_step_type=time_step_spec.step_type,
            reward=time_step_spec.reward,
            discount=time_step_spec.discount,
        ),
        "policy_state_spec": (),
    }
    from google.protobuf import text_format

    (path / POLICY_SPECS_FILE).write_text(text_format.MessageToString(_structure_proto(specs)))


@dataclasses.dataclass(frozen=True)
class _Spec:
    """A TensorSpec, bounded like TF-Agents' BoundedTensorSpec where `minimum` is set."""

    shape: tuple
    dtype: str
    name: str
    minimum: object = None
    maximum: object = None


def _tf_agents_specs(model) -> tuple[TimeStep, _Spec]:
    """The unbatched time-step and action specs of a policy model, as TF-Agents writes them."""
    observation, actions, head = model.inputs[0], model.outputs[0], model.layers[-1]
    time_step_spec = TimeStep(
        step_type=_Spec((), "int32", "step_type"),
        reward=_Spec((), "float32", "reward"),
        discount=_Spec((), "float32", "discount", 0.0, 1.0),
        observation=_Spec(tuple(observation.shape[1:]), observation.dtype, "observation"),
    )
    if head.rule == "clip":
        low, high = head.low, head.high
    else:  # an argmax over the actions axis of Q-values, logits or C51 probabilities
        num_actions = head.input.shape[-2 if head.rule == "expected_argmax" else -1]
        low, high = 0, num_actions - 1
    action_spec = _Spec(tuple(actions.shape[1:]), actions.dtype, "action", low, high)
    return time_step_spec, action_spec


def _structure_proto(value):
    """A nest of specs as TensorFlow's `StructuredValue` proto, the format of the specs file."""
    import tensorflow as tf
    from tensorflow.core.protobuf import struct_pb2

    proto = struct_pb2.StructuredValue()
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        proto.named_tuple_value.name = type(value).__name__
        for field in value._fields:
            pair = proto.named_tuple_value.values.add(key=field)
            pair.value.CopyFrom(_structure_proto(getattr(value, field)))
    elif isinstance(value, tuple):
        proto.tuple_value.SetInParent()
        for item in value:
            proto.tuple_value.values.add().CopyFrom(_structure_proto(item))
    elif isinstance(value, dict):
        for key, item in value.items():
            proto.dict_value.fields[key].CopyFrom(_structure_proto(item))
    else:
        bounded = value.minimum is not None
        spec = proto.bounded_tensor_spec_value if bounded else proto.tensor_spec_value
        spec.name = value.name
        spec.shape.CopyFrom(tf.TensorShape(value.shape).as_proto())
        spec.dtype = tf.as_dtype(value.dtype).as_datatype_enum
        if bounded:
            spec.minimum.CopyFrom(tf.make_tensor_proto(value.minimum, value.dtype))
            spec.maximum.CopyFrom(tf.make_tensor_proto(value.maximum, value.dtype))
    return proto


if __name__ == "__main__":
    _load_and_export(json.loads(sys.argv[1]))
