"""Fixtures of the training tests: the private-API version gates of ``dlkit.training._versions``
opened or closed for one test."""

import pytest


@pytest.fixture
def version_gates(monkeypatch):
    """Fresh gate verdicts for the test; ``close(package, keep_open=features)`` makes the
    installed ``package`` fall outside its checked range (and forgets earlier verdicts), with
    the gates of ``features`` left open; ``warnings(caught)`` keeps the gates' warnings of a
    ``warnings.catch_warnings(record=True)`` list."""
    from dlkit.training import _versions

    monkeypatch.setattr(_versions, "_VERDICTS", {})

    class Gates:
        @staticmethod
        def close(package, keep_open=()):
            monkeypatch.setitem(_versions.CHECKED_VERSIONS, package, ("0.0.1", "0.0.2"))
            monkeypatch.setattr(_versions, "_VERDICTS", dict.fromkeys(keep_open, True))

        @staticmethod
        def warnings(caught):
            return [
                w
                for w in caught
                if issubclass(w.category, RuntimeWarning) and "uses private APIs" in str(w.message)
            ]

    return Gates
