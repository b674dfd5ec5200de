"""Pytest setup shared by the tests and the docstring examples of ``src/`` (doctests).

Doctests run on the JAX Keras backend, whatever is installed: set before anything
imports Keras (``tests/conftest.py`` does the same for the tests).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras
