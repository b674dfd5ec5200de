"""The model-build benchmark (benchmarks/model_builds.py) runs and prints its table.

A tiny version (two models, one repeat): the table's structure and the runs' fields are
checked, not the seconds; tunefleet's builds must not compile more than Keras's own.
"""

from __future__ import annotations

import json

import pytest
from benchmarks.model_builds import main


@pytest.mark.slow
def test_tiny_run_prints_and_writes_its_table(tmp_path, capsys):
    out = tmp_path / "builds.json"
    main(["--models", "2", "--repeats", "1", "--families", "search", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| family | Keras s | tunefleet s | ratio |" in printed
    assert "| search |" in printed
    runs = json.loads(out.read_text())["runs"]
    assert sorted(r["mode"] for r in runs) == ["keras", "tunefleet"]
    by_mode = {r["mode"]: r for r in runs}
    assert all(r["seconds"] > 0 for r in runs)
    assert 0 < by_mode["tunefleet"]["compilations"] <= by_mode["keras"]["compilations"]


def test_an_unknown_family_is_refused_with_the_names_expected(capsys):
    with pytest.raises(SystemExit):
        main(["--families", "search,transformer"])
    error = capsys.readouterr().err
    assert "--families: unknown ['transformer']" in error and "'search', 'mlp', 'cnn'" in error
