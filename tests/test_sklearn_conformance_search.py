"""scikit-learn's own search tests, run against tunefleet's five searches.

A subprocess runs ``sklearn/model_selection/tests/test_search.py`` from the installed
scikit-learn (never copied here) with the plugin ``tests/sklearn_swap.py``, which puts
tunefleet's searches in place of scikit-learn's and marks the listed differences
``xfail`` with their reasons: once with ``GridSearchCV`` and ``RandomizedSearchCV``, and
once with each of ``BayesSearchCV``, ``HyperbandSearchCV`` and ``EvolutionSearchCV`` in
``RandomizedSearchCV``'s place (they share its signature). Any other failure fails this test; a listed test that passes
is named in the output, so the list stays honest. See ``docs/conformance.md``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sklearn_swap

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "conformance.md"


def _run_sklearn_search_tests(sampled: str) -> tuple[int, str]:
    env = dict(os.environ)
    env[sklearn_swap.SAMPLED_SEARCH] = sampled
    paths = [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.setdefault("KERAS_BACKEND", "jax")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.sklearn_swap",
        "--pyargs",
        "sklearn.model_selection.tests.test_search",
        "-q",
        "-rfxX",
        "-o",
        "addopts=",
        "-W",
        "ignore",
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    return done.returncode, done.stdout + done.stderr


def _count(summary: str, word: str) -> int:
    match = re.search(rf"(\d+) {word}", summary)
    return int(match.group(1)) if match else 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "sampled", ["RandomizedSearchCV", "BayesSearchCV", "HyperbandSearchCV", "EvolutionSearchCV"]
)
def test_scikit_learn_search_tests_pass_but_for_the_listed_differences(sampled: str) -> None:
    code, output = _run_sklearn_search_tests(sampled)
    summary = output.strip().splitlines()[-1]
    failed = [line for line in output.splitlines() if line.startswith("FAILED")]
    unexpected = [line for line in output.splitlines() if line.startswith("XPASS")]
    if unexpected:
        print("listed as differences but passed:\n" + "\n".join(unexpected))
    assert code == 0 and not failed, f"{summary}\n" + "\n".join(failed or output.splitlines()[-60:])
    # Marks apply to a test's every variant, so variants of a listed test that run
    # scikit-learn's own Halving searches pass as XPASS. scikit-learn 1.9.1's own classes
    # pass 141 of these tests (30 skip); tunefleet's pass all but the by-design ones
    # (2026-12, issue 16): 137, and 135 with HyperbandSearchCV, whose pruned candidates
    # have NaN split scores.
    listed = len(sklearn_swap.BY_DESIGN) + len(sklearn_swap.BY_DESIGN_FOR.get(sampled, {}))
    passed = _count(summary, "passed") + _count(summary, "xpassed")
    assert passed >= 141 - listed, summary


def test_every_listed_difference_is_documented() -> None:
    text = DOCS.read_text()
    missing = [name for name in sklearn_swap.LISTED if f"`{name}`" not in text]
    assert not missing, f"docs/conformance.md does not list {missing}"


def test_the_plugin_swaps_the_searches_scikit_learn_tests_import() -> None:
    import tunefleet

    code = (
        "import sklearn_swap, sklearn.model_selection as m; "
        "sklearn_swap.pytest_configure(None); "
        "print(m.GridSearchCV.__module__, m.RandomizedSearchCV.__module__)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [tunefleet.GridSearchCV.__module__, tunefleet.RandomizedSearchCV.__module__]
