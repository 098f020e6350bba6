"""Runnable recipes, one file per task; installed as ``dlkit.recipes``.

Each recipe has a header docstring whose first line describes it, a ``@dataclass Config``
whose field docstrings are its ``--help``, and ``main(config) -> dict``. Run one with
``dlkit run NAME [--field value ...]`` or, from a checkout, ``python recipes/NAME.py``.
"""
