"""Fill in Keras's backend at interpreter start-up: JAX, when none is chosen and TensorFlow is absent.

tunefleet installs ``tunefleet-keras-backend.pth`` next to itself in site-packages; Python
runs its one line, ``import _tunefleet_keras_backend``, when the interpreter starts, so a
script that imports ``keras`` before ``tunefleet`` works on the default install (Keras
would otherwise pick TensorFlow, which tunefleet does not install). The rule, in one place
(``docs/troubleshooting.md`` explains it to users):

* ``KERAS_BACKEND`` set: kept.
* TensorFlow installed: Keras's own choice (``keras.json`` or TensorFlow) is kept.
* otherwise a ``keras.json`` naming another backend (``jax``, ``torch``...) is kept;
  Keras writes ``"tensorflow"`` there by itself on its first import, so that value is no
  choice of the user's.
* otherwise ``KERAS_BACKEND=jax`` is set in the environment (child processes inherit it).

``import tunefleet`` applies the same rule when Keras is not imported yet (a source
checkout on ``PYTHONPATH`` has no ``.pth``). This module imports nothing heavy: it runs in
every Python process of the environment.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from collections.abc import Mapping, MutableMapping


def keras_json_backend(environ: Mapping[str, str]) -> str | None:
    """The backend named in Keras's ``keras.json`` (where Keras looks for it), if any."""
    home = environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as config:
            backend = json.load(config).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) and backend else None


def choose_backend(
    environ: Mapping[str, str], tensorflow_installed: bool, configured: str | None
) -> str | None:
    """The backend to set, or ``None`` to leave Keras's own choice alone.

    ``configured`` is the backend named in ``keras.json`` (``None`` if none).
    """
    if environ.get("KERAS_BACKEND") or tensorflow_installed:
        return None
    if configured not in (None, "tensorflow"):
        return None
    return "jax"


def fill_in_backend(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Apply the rule to ``environ`` (``os.environ``); return the backend set, if any."""
    environ = os.environ if environ is None else environ
    if environ.get("KERAS_BACKEND"):
        return None  # the common case costs one lookup
    tensorflow = importlib.util.find_spec("tensorflow") is not None
    backend = choose_backend(
        environ, tensorflow, None if tensorflow else keras_json_backend(environ)
    )
    if backend is not None:
        environ["KERAS_BACKEND"] = backend
    return backend


with contextlib.suppress(Exception):  # a start-up hook must never stop the interpreter
    fill_in_backend()
