"""The version gates of the private APIs: parsing, ranges, one warning, pyproject's bounds."""

import re
import warnings
from pathlib import Path

import pytest

from dlkit.training import _versions


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3.15.1", (3, 15, 1)),
        ("2.13.0+cpu", (2, 13, 0)),
        ("3.16.0.dev2025", (3, 16, 0)),
        ("2.21", (2, 21, 0)),
    ],
)
def test_parse_version_keeps_the_release_numbers(text, expected):
    assert _versions.parse_version(text) == expected


def test_installed_versions_are_inside_their_checked_ranges():
    for package, (minimum, maximum) in _versions.CHECKED_VERSIONS.items():
        if _versions.installed_version(package) is not None:
            assert _versions.version_in_range(package, minimum, maximum), package
    assert not _versions.version_in_range("keras", "0.1", "0.2")
    assert not _versions.version_in_range("no-such-dlkit-package", "0", "99")


def test_a_closed_gate_warns_once_naming_package_version_and_range(version_gates):
    assert _versions.private_api_supported("a test feature", "keras")
    version_gates.close("keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        verdicts = [_versions.private_api_supported("a test feature", "keras") for _ in range(3)]
    assert verdicts == [False, False, False]
    [warning] = version_gates.warnings(caught)
    message = str(warning.message)
    assert "a test feature" in message and "keras>=0.0.1,<0.0.2" in message
    assert _versions.installed_version("keras") in message


def test_pyproject_states_the_checked_upper_bounds():
    """One record of the checked versions (``CHECKED_VERSIONS``); pyproject must agree."""
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    requirements = re.findall(r'"([A-Za-z][A-Za-z0-9_.-]*\s*[<>=~!][^"]*)"', text)
    for package, (minimum, maximum) in _versions.CHECKED_VERSIONS.items():
        stated = [r for r in requirements if re.match(rf"{package}\s*[<>=]", r)]
        assert stated, package
        for requirement in stated:
            if "==" in requirement:  # an exact pin (the dev extra's torch): inside the range
                pinned = _versions.parse_version(requirement.split("==")[1])
                low, high = _versions.parse_version(minimum), _versions.parse_version(maximum)
                assert low <= pinned < high, requirement
                continue
            assert f">={minimum}" in requirement and f"<{maximum}" in requirement, requirement
