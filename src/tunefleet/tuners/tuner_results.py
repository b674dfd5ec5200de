"""A tuner's results read back from its study: the summary and the saved models.

``BaseTuner.results_summary`` and ``get_best_models`` call these with the trials the
tuner's :class:`~tunefleet.tuners.Oracle` reads from the storage, so they answer for
trials run by any process, in this session or before. The trials table
(``trials_dataframe``) is every face's: :func:`tunefleet.records.trials_dataframe`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import keras

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
