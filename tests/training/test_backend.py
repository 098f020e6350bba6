"""Every backend module of dlkit.training provides the functions of ``BackendModule``."""

import importlib
import inspect
import types

import pytest

from dlkit.training.backend import _BACKEND_MODULES, BackendModule, backend_module


def _members():
    return [
        name
        for name, value in vars(BackendModule).items()
        if not name.startswith("_") and inspect.isfunction(value)
    ]


def protocol_mismatches(module) -> list[str]:
    """What ``module`` lacks of ``BackendModule``: missing functions, or parameters that do not
    take the protocol's arguments (by position and name; ``*args`` in the protocol accepts any
    further positional parameters)."""
    problems = []
    for name in _members():
        function = getattr(module, name, None)
        if not callable(function):
            problems.append(f"{name}: missing")
            continue
        expected = list(inspect.signature(getattr(BackendModule, name)).parameters.values())[1:]
        received = list(inspect.signature(function).parameters.values())
        for index, parameter in enumerate(expected):
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                rest = received[index:]
                if not rest or any(p.kind not in _POSITIONAL for p in rest):
                    problems.append(f"{name}: expected positional arguments after {index}")
                break
            if index >= len(received) or received[index].name != parameter.name:
                problems.append(f"{name}: expected parameter {index} named {parameter.name!r}")
                break
        else:
            extra = [p for p in received[len(expected) :] if p.default is inspect.Parameter.empty]
            if extra:
                problems.append(f"{name}: unexpected required parameters {extra}")
    return problems


_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.VAR_POSITIONAL,
)


@pytest.mark.parametrize("backend", sorted(_BACKEND_MODULES))
def test_backend_module_satisfies_the_protocol(backend):
    try:
        module = importlib.import_module(_BACKEND_MODULES[backend])
    except ImportError as error:  # that backend's library is not installed here
        pytest.skip(f"{backend} cannot be imported here: {error}")
    assert protocol_mismatches(module) == []
    assert isinstance(module, BackendModule)


def test_the_protocol_check_fails_on_a_module_that_breaks_it():
    reference = backend_module()

    broken = types.ModuleType("broken")
    for name in _members():
        setattr(broken, name, getattr(reference, name))
    assert protocol_mismatches(broken) == []
    del broken.list_devices
    broken.fit_arguments = lambda model, kwargs, extra: kwargs
    broken.alternating_train_step = lambda model, *, data: data
    assert sorted(protocol_mismatches(broken)) == [
        "alternating_train_step: expected positional arguments after 1",
        "fit_arguments: expected parameter 1 named 'arguments'",
        "list_devices: missing",
    ]
    assert not isinstance(broken, BackendModule)
