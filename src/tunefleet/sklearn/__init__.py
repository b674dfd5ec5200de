"""The scikit-learn face: drop-in ``*SearchCV`` classes on Optuna studies."""

from tunefleet.sklearn.grid_random import GridSearchCV, RandomizedSearchCV
from tunefleet.sklearn.model_based import BayesSearchCV, EvolutionSearchCV, HyperbandSearchCV
from tunefleet.sklearn.search import BaseSearchCV

__all__ = [
    "BaseSearchCV",
    "BayesSearchCV",
    "EvolutionSearchCV",
    "GridSearchCV",
    "HyperbandSearchCV",
    "RandomizedSearchCV",
]
