"""A fresh virtual environment runs a script written the way users write it (issue 17).

The script imports keras before tunefleet, searches with ``n_jobs=-1`` and has no
``if __name__ == "__main__":`` guard; its build function lives in the script. The
environment gets tunefleet's wheel and its core dependencies only (no TensorFlow), as
``pip install tunefleet`` would: Keras's backend comes from the start-up hook the wheel
installs (``src/_tunefleet_keras_backend.py``), and the workers receive their job by value.
The rule itself is tested without a new environment in ``tests/test_keras_backend_rule.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# the module's tests share one fresh environment (a session fixture): one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("fresh_install")

ROOT = Path(__file__).resolve().parents[1]

SEED_STYLE_SCRIPT = textwrap.dedent(
    """
    import keras
    import numpy as np
    from sklearn.datasets import load_iris

    from tunefleet import GridSearchCV
    from tunefleet.keras import KerasClassifier

    def build_model(units=8):
        model = keras.Sequential([
            keras.Input((4,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(KerasClassifier(build_model, epochs=3, verbose=0),
                          {"units": [4, 8]}, cv=2, n_jobs=-1)
    search.fit(X.astype("float32"), y)
    print("RESULT", keras.backend.backend(), search.best_params_["units"],
          len(search.cv_results_["params"]))
    """
)


def run(python: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    done = subprocess.run(
        [str(python), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="session")
def fresh_python(tmp_path_factory) -> Path:
    """A new virtual environment with tunefleet's wheel and its core dependencies.

    Made once per pytest worker (the module's tests share one: its xdist group). The wheel
    is built from a copy of what the build reads, so no build state (setuptools's
    ``build/``, the egg-info) is shared with the checkout or with another build.
    """
    base = tmp_path_factory.mktemp("fresh")
    tree = base / "tree"
    shutil.copytree(
        ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    wheels = base / "wheels"
    run(
        Path(sys.executable),
        *("-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"),
        *("-w", str(wheels), str(tree)),
    )
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    (wheel,) = wheels.glob("tunefleet-*.whl")
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel))
    return python


def clean_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment less what would choose a backend or find the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "PYTHONPATH")}
    env["KERAS_HOME"] = str(tmp_path / "keras-home")  # no keras.json of this machine's
    return {**env, **extra}


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_a_seed_style_script_runs_on_the_default_install(fresh_python, tmp_path):
    script = tmp_path / "tune.py"
    script.write_text(SEED_STYLE_SCRIPT)
    out = run(fresh_python, str(script), env=clean_environment(tmp_path), cwd=tmp_path)
    result = next(line for line in out.splitlines() if line.startswith("RESULT"))
    backend, units, n_candidates = result.split()[1:]
    assert backend == "jax" and units in ("4", "8") and n_candidates == "2"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_start_up_hook_keeps_a_backend_the_user_chose(fresh_python, tmp_path):
    show = "import os; print(os.environ.get('KERAS_BACKEND'))"
    env = clean_environment(tmp_path)
    assert run(fresh_python, "-c", show, env=env).split() == ["jax"]  # none chosen: JAX
    chosen = clean_environment(tmp_path, KERAS_BACKEND="torch")
    assert run(fresh_python, "-c", show, env=chosen).split() == ["torch"]
    home = tmp_path / "keras-home"
    home.mkdir()
    (home / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert run(fresh_python, "-c", show, env=env).split() == ["None"]  # Keras reads the file
