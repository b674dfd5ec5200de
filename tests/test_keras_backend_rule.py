"""The rule that fills in Keras's backend (``src/_tunefleet_keras_backend.py``).

A fresh environment with the installed start-up hook: ``tests/test_fresh_install.py``.
"""

import json

import pytest

from _tunefleet_keras_backend import choose_backend, fill_in_backend, keras_json_backend


@pytest.mark.parametrize(
    ("environ", "tensorflow", "configured", "expected"),
    [
        ({}, False, None, "jax"),  # nothing chosen, TensorFlow absent: JAX
        ({"KERAS_BACKEND": ""}, False, None, "jax"),  # set but empty: nothing chosen
        ({}, False, "tensorflow", "jax"),  # Keras wrote its default; it cannot work
        ({"KERAS_BACKEND": "torch"}, False, None, None),  # the user's variable wins
        ({}, False, "torch", None),  # the user's keras.json wins
        ({}, True, None, None),  # TensorFlow installed: Keras's own default
    ],
)
def test_the_backend_is_filled_in_only_when_nothing_chose_one(
    environ, tensorflow, configured, expected
):
    assert choose_backend(environ, tensorflow, configured) == expected


def test_keras_json_is_read_where_keras_reads_it(tmp_path):
    assert keras_json_backend({"KERAS_HOME": str(tmp_path)}) is None  # no file
    (tmp_path / "keras.json").write_text("{not json")
    assert keras_json_backend({"KERAS_HOME": str(tmp_path)}) is None
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert keras_json_backend({"KERAS_HOME": str(tmp_path)}) == "torch"


def test_a_set_backend_is_never_touched():
    environ = {"KERAS_BACKEND": "numpy"}
    assert fill_in_backend(environ) is None and environ == {"KERAS_BACKEND": "numpy"}
