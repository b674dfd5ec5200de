"""The scikit-learn face: drop-in ``*SearchCV`` classes on Optuna studies."""

from tunefleet.sklearn.model_based import BayesSearchCV, EvolutionSearchCV, HyperbandSearchCV
from tunefleet.sklearn.search import BaseSearchCV, GridSearchCV, RandomizedSearchCV

__all__ = [
    "BaseSearchCV",
    "BayesSearchCV",
    "EvolutionSearchCV",
    "GridSearchCV",
    "HyperbandSearchCV",
    "RandomizedSearchCV",
]
