"""JAX's persistent compilation cache: later processes, worker processes and the commands use it.

Each case runs in a fresh Python process: the cache is a process-wide JAX setting (and
the test session sets its own through ``JAX_COMPILATION_CACHE_DIR``, removed here).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tunefleet import enable_compilation_cache

ROOT = Path(__file__).resolve().parents[1]

#: A ridge regression solved by a jitted JAX function: it compiles in each process that fits.
JAX_RIDGE = textwrap.dedent(
    """
    import numpy as np
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.datasets import load_diabetes


    class JaxRidge(RegressorMixin, BaseEstimator):
        def __init__(self, alpha=1.0):
            self.alpha = alpha

        def fit(self, X, y):
            import jax
            import jax.numpy as jnp

            def solve(X, y, alpha):
                gram = X.T @ X + alpha * jnp.eye(X.shape[1])
                return jnp.linalg.solve(gram, X.T @ y)

            self.coef_ = np.asarray(jax.jit(solve)(X, y, self.alpha))
            return self

        def predict(self, X):
            return np.asarray(X) @ self.coef_


    def data():
        return load_diabetes(return_X_y=True)
    """
)


def clean_environment(**extra):
    """The test process's environment without its JAX settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "TUNEFLEET_COMP"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return {**env, **extra}


def run(args, cwd, **extra):
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=clean_environment(**extra), timeout=600,
    )  # fmt: skip


def entries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_a_later_process_loads_what_an_earlier_one_compiled(tmp_path):
    folder = tmp_path / "cache"
    script = tmp_path / "compile.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import jax, jax.numpy as jnp, tunefleet
            hits = []
            jax.monitoring.register_event_listener(
                lambda event, **_: hits.append(event)
                if event == "/jax/compilation_cache/cache_hits" else None)
            tunefleet.enable_compilation_cache({str(folder)!r}, min_compile_seconds=0)
            jax.jit(lambda x: jnp.tanh(x) @ x.T)(jnp.ones((3, 3))).block_until_ready()
            print("hits", len(hits))
            """
        )
    )
    first = run([script], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "hits 0" in first.stdout and entries(folder)  # compiled and written
    written = entries(folder)
    second = run([script], tmp_path)
    assert second.returncode == 0, second.stderr
    assert "hits 0" not in second.stdout  # loaded, not compiled
    assert {n for n in entries(folder) if not n.endswith("-atime")} == {
        n for n in written if not n.endswith("-atime")
    }


def test_worker_processes_use_a_cache_set_with_jax_config(tmp_path):
    """The parent fits nothing (``refit=False``): what the folder holds, the workers wrote."""
    folder = tmp_path / "cache"
    script = tmp_path / "search.py"
    script.write_text(
        JAX_RIDGE
        + textwrap.dedent(
            f"""
            import tunefleet

            if __name__ == "__main__":
                import jax  # set as JAX's guide says: not seen by a child process by itself

                jax.config.update("jax_compilation_cache_dir", {str(folder)!r})
                jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
                search = tunefleet.RandomizedSearchCV(
                    JaxRidge(), {{"alpha": tunefleet.Float(0.01, 10.0, log=True)}}, n_iter=4,
                    cv=2, n_jobs=2, refit=False, random_state=0,
                    storage="sqlite:///{tmp_path / "study.db"}", progress=False)
                search.fit(*data())
                print("done", len(search.study_.trials))
            """
        )
    )
    done = run([script], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "done 4" in done.stdout
    assert entries(folder), "the worker processes compiled without the parent's cache"


SCRIPT = JAX_RIDGE + textwrap.dedent(
    """
    import tunefleet

    search = tunefleet.RandomizedSearchCV(
        JaxRidge(), {"alpha": tunefleet.Float(0.01, 10.0, log=True)}, n_iter=2, cv=2,
        random_state=0, study_name="ridge", progress=False)
    """
)


@pytest.fixture
def ridge_script(tmp_path):
    script = tmp_path / "ridge_search.py"
    script.write_text(SCRIPT)
    return script


def tune(script, *options, **extra):
    return run(["-m", "tunefleet", "tune", script, *options], script.parent, **extra)


def test_tune_keeps_compiled_programs_in_the_user_cache_folder_by_default(ridge_script, tmp_path):
    done = tune(ridge_script, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert done.returncode == 0, done.stderr
    assert entries(tmp_path / "xdg" / "tunefleet" / "jax")


def test_tune_takes_a_cache_folder_or_off_and_leaves_the_users_own(ridge_script, tmp_path):
    xdg = tmp_path / "xdg"
    chosen = tmp_path / "chosen"
    done = tune(ridge_script, "--compilation-cache", chosen, XDG_CACHE_HOME=str(xdg))
    assert done.returncode == 0, done.stderr
    assert entries(chosen) and not entries(xdg / "tunefleet" / "jax")
    done = tune(ridge_script, "--compilation-cache", "off", XDG_CACHE_HOME=str(xdg))
    assert done.returncode == 0, done.stderr
    assert not entries(xdg / "tunefleet" / "jax")
    own = tmp_path / "own"  # JAX's own setting, through the environment
    done = tune(
        ridge_script, XDG_CACHE_HOME=str(xdg), JAX_COMPILATION_CACHE_DIR=str(own),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert entries(own) and not entries(xdg / "tunefleet" / "jax")


def test_tune_refuses_a_cache_folder_that_is_a_file_before_any_trial(ridge_script, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    done = tune(ridge_script, "--compilation-cache", a_file)
    assert done.returncode == 2
    assert "--compilation-cache" in done.stderr and "is a file; expected a folder" in done.stderr
    assert not (tmp_path / "tunefleet.db").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_compile_seconds": -1}, "min_compile_seconds=-1: expected a number of seconds"),
        ({"min_compile_seconds": "1"}, "min_compile_seconds='1'"),
        ({"max_bytes": 0}, "max_bytes=0: expected a positive integer, or None"),
        ({"max_bytes": 1.5}, "max_bytes=1.5"),
    ],
)
def test_bad_settings_are_refused_before_jax_is_changed(tmp_path, kwargs, message):
    import jax

    before = jax.config.jax_compilation_cache_dir
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        enable_compilation_cache(tmp_path / "cache", **kwargs)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(ValueError, match="is a file; expected a folder"):
        enable_compilation_cache(a_file)
    assert jax.config.jax_compilation_cache_dir == before
    assert not (tmp_path / "cache").exists()
