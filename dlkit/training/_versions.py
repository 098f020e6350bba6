"""Version gates of the private APIs that ``dlkit.training`` and ``dlkit.distribute`` use.

The speed paths of ``dlkit.training`` (PyTorch step tracing, TensorFlow's fused Adam, flat call
and lean ``fit`` pipeline), a few steps every user takes (building a model for
``compile_train_steps``; an ``AlternatingModel``'s logs and saved seed states) and
``dlkit.distribute`` (the multi-worker check, the JAX processes' early-computation check and
agreed seed) read private attributes of Keras, TensorFlow, JAX and PyTorch. Each such use asks
``private_api_supported`` first: inside the versions it was checked against it goes ahead;
outside them it warns once and the caller takes its plain, public path instead (the table of
gates in docs/pages/training.md names each path and, where none is public, the consequence).

``CHECKED_VERSIONS`` is the one record of those versions, as ``[minimum, maximum)``: the
maximum is the first release not checked; the minimum is the oldest release the private-API
paths were tested on. Only the versions installed in dlkit's development environment (keras
3.15.1, tensorflow 2.21, jax 0.10.2, torch 2.13) have been tested, so each range starts there.
``pyproject.toml`` states the same bounds (``tests/training/test_versions.py`` checks that
they agree).
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import warnings

__all__ = ["CHECKED_VERSIONS", "private_api_supported", "version_in_range"]

CHECKED_VERSIONS = {
    "keras": ("3.15.1", "3.16"),
    "tensorflow": ("2.21", "2.22"),
    "jax": ("0.10.2", "0.11"),
    "torch": ("2.13", "2.14"),
}

# Each feature's verdict, decided (and warned about) once per process.
_VERDICTS: dict[str, bool] = {}


def parse_version(version: str) -> tuple[int, int, int]:
    """``"3.15.1"``, ``"2.13.0+cpu"`` or ``"3.16.0.dev2025"`` → ``(3, 15, 1)``, ``(2, 13, 0)``,
    ``(3, 16, 0)``: the release numbers, without local or pre-release parts."""
    numbers = [int(number) for number in re.findall(r"\d+", version)[:3]]
    return tuple(numbers + [0] * (3 - len(numbers)))


def installed_version(package: str) -> str | None:
    """The version of ``package``: the imported module's (``keras.version()``, else its
    ``__version__``) or, before it is imported, the installed distribution's; None if it is not
    installed."""
    module = sys.modules.get(package)
    if module is not None:
        version = getattr(module, "version", None)
        version = version() if callable(version) else getattr(module, "__version__", None)
        if version:
            return str(version)
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def version_in_range(package: str, minimum: str, maximum_exclusive: str) -> bool:
    """Whether the installed ``package`` is at least ``minimum`` and below
    ``maximum_exclusive`` (False if it is not installed)."""
    version = installed_version(package)
    if version is None:
        return False
    return parse_version(minimum) <= parse_version(version) < parse_version(maximum_exclusive)


def private_api_supported(feature: str, *packages: str) -> bool:
    """Whether ``feature``'s private-API code may run with the installed ``packages``.

    True when every package is inside its ``CHECKED_VERSIONS`` range. Otherwise the first call
    warns (a ``RuntimeWarning`` naming the feature, the package, its version and the range) and
    every call returns False, for the caller to take its plain path.

    Args:
        feature: what the private APIs serve, as the warning names it (such as
            ``"PyTorch step tracing"``).
        *packages: keys of ``CHECKED_VERSIONS``.

    Returns:
        Whether the feature's private-API path may be taken.
    """
    verdict = _VERDICTS.get(feature)
    if verdict is not None:
        return verdict
    verdict = True
    for package in packages:
        minimum, maximum = CHECKED_VERSIONS[package]
        if not version_in_range(package, minimum, maximum):
            warnings.warn(
                f"dlkit's {feature} uses private APIs of {package} checked only against "
                f"{package}>={minimum},<{maximum}; installed: {package} "
                f"{installed_version(package)}. dlkit takes its plain path instead.",
                RuntimeWarning,
                stacklevel=2,
            )
            verdict = False
            break
    _VERDICTS[feature] = verdict
    return verdict
