import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import atexit
import shutil
import tempfile

# Tests build many identical tiny Keras models; JAX's persistent compilation cache
# (a fresh directory per test session) turns the repeated XLA compilations into
# cache hits. Set before JAX is imported; an explicit setting by the user wins.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _jax_cache_dir = tempfile.mkdtemp(prefix="tunefleet-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _jax_cache_dir
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    atexit.register(shutil.rmtree, _jax_cache_dir, ignore_errors=True)
