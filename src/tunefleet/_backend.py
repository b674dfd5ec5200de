"""Choose the Keras backend before Keras is first imported.

JAX is tunefleet's default backend (fleet training needs it). A user's explicit
``KERAS_BACKEND`` always wins; when it is unset and TensorFlow is not installed,
Keras would otherwise fail to import, so we pick JAX for the user.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import MutableMapping


def choose_backend(environ: MutableMapping[str, str], tensorflow_installed: bool) -> str | None:
    """Return the backend to set, or ``None`` to leave Keras's own choice alone."""
    if environ.get("KERAS_BACKEND"):
        return None
    if tensorflow_installed:
        return None
    return "jax"


def configure_default_backend() -> None:
    """Set ``KERAS_BACKEND=jax`` when it is unset and TensorFlow is absent."""
    if "keras" in sys.modules:
        return  # too late to change it; Keras already chose
    backend = choose_backend(os.environ, importlib.util.find_spec("tensorflow") is not None)
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend
