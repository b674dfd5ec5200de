"""A tuner's results read back from its study: the summary, the saved models, a table.

``BaseTuner.results_summary``, ``get_best_models`` and ``trials_dataframe`` call these
with the trials the tuner's :class:`~tunefleet.tuners.Oracle` reads from the storage,
so they answer for trials run by any process, in this session or before.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from optuna.trial import FrozenTrial

from tunefleet.tuners.oracle import Objective, Trial


def print_summary(trials: Sequence[Trial], project_dir: str, objective: Objective) -> None:
    """Print ``trials`` (the best ones, best first) as Keras Tuner's ``results_summary``."""
    print("Results summary")
    print(f"Results in {project_dir}")
    print(f"Showing {len(trials)} best trials")
    print(f'Objective(name="{objective.name}", direction="{objective.direction}")')
    for trial in trials:
        print()
        trial.summary()


def load_models(trials: Sequence[Trial]) -> list[Any]:
    """The saved ``.keras`` model of each trial, loaded with ``safe_mode=True``."""
    models = []
    for trial in trials:
        path = trial.model_path
        if path is None or not os.path.exists(path):
            raise FileNotFoundError(
                f"trial {trial.trial_id} has no saved model"
                + (f" at {path}" if path else "")
                + "; rebuild it with hypermodel.build(get_best_hyperparameters()[0]) "
                "and train it."
            )
        try:
            models.append(keras.saving.load_model(path, safe_mode=True))
        except ValueError as exc:
            raise ValueError(
                f"{exc}\n(tunefleet loads saved models with safe_mode=True; a model with "
                f"Lambda layers can be loaded, if you trust {path}, with "
                "keras.saving.load_model(path, safe_mode=False).)"
            ) from exc
    return models


def trials_frame(trials: Sequence[tuple[FrozenTrial, Trial]]) -> Any:
    """A pandas DataFrame, one row per ``(stored trial, its Keras Tuner view)``.

    Columns: ``trial``, ``state``, ``score``, ``std`` (over folds), ``duration_s``,
    one column per hyperparameter, ``error``.
    """
    import pandas as pd

    rows = []
    for frozen, view in trials:
        folds = view.cv_scores or []
        row: dict[str, Any] = {
            "trial": frozen.number,
            "state": frozen.state.name,
            "score": frozen.value,
            "std": float(np.std(folds)) if len(folds) > 1 else math.nan,
            "duration_s": frozen.duration.total_seconds() if frozen.duration else None,
        }
        row.update(view.hyperparameters.values)
        row["error"] = view.error
        rows.append(row)
    return pd.DataFrame(rows)
