"""The wrappers and a search on every Keras backend, and importing tunefleet first.

The default-backend rule itself: ``tests/test_keras_backend_rule.py``.

Each backend runs in its own subprocess (Keras picks its backend once per process).
TensorFlow and PyTorch are installed by ``make test``.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

SCRIPT = textwrap.dedent(
    """
    import json, pickle
    import numpy as np
    import tunefleet
    import keras
    from sklearn.datasets import load_iris, load_diabetes
    from tunefleet.keras import KerasClassifier, KerasRegressor
    from keras_models import build_classifier, build_regressor

    X, y = load_iris(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype("float32")
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = KerasClassifier(build_classifier, epochs=20, batch_size=16, learning_rate=0.05, random_state=0)
    clf.fit(X, labels)
    restored = pickle.loads(pickle.dumps(clf))
    Xd, yd = load_diabetes(return_X_y=True)
    Xd = ((Xd - Xd.mean(0)) / Xd.std(0)).astype("float32")
    yd = ((yd - yd.mean()) / yd.std()).astype("float32")
    reg = KerasRegressor(build_regressor, input_shape=(10,), epochs=10, learning_rate=0.01).fit(Xd, yd)
    search = tunefleet.HyperbandSearchCV(
        KerasClassifier(build_classifier, epochs=4, batch_size=16),
        {"learning_rate": tunefleet.Float(1e-4, 1e-1, log=True), "n_neurons": [4, 16]},
        n_iter=6, cv=2, random_state=0,
    ).fit(X, y)
    print(json.dumps({
        "backend": keras.backend.backend(),
        "accuracy": clf.score(X, labels),
        "labels": sorted(set(clf.predict(X).tolist())),
        "same_after_pickle": bool((restored.predict_proba(X) == clf.predict_proba(X)).all()),
        "r2": reg.score(Xd, yd),
        "states": sorted({t.state.name for t in search.study_.trials}),
        "best_score": search.best_score_,
    }))
    """
)


def run_python(code, backend=None):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if backend:
        env["KERAS_BACKEND"] = backend
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.backend
@pytest.mark.parametrize("backend", ["jax", "tensorflow", "torch"])
def test_wrappers_and_a_search_on_each_backend(backend):
    module = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}[backend]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"the {module} package is not installed here (`make test` installs it)")
    result = json.loads(run_python(SCRIPT, backend))
    assert result["backend"] == backend
    assert result["accuracy"] > 0.8
    assert result["labels"] == ["setosa", "versicolor", "virginica"]
    assert result["same_after_pickle"]
    assert result["r2"] > 0.2
    assert "COMPLETE" in result["states"]
    assert result["best_score"] > 0.5


def test_importing_tunefleet_first_selects_the_backend():
    backend = run_python("import tunefleet, keras; print(keras.backend.backend())")
    expected = "tensorflow" if importlib.util.find_spec("tensorflow") is not None else "jax"
    assert backend == expected
    assert run_python("import tunefleet, keras; print(keras.backend.backend())", "torch") == "torch"
