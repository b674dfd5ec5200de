"""Bayesmark's scikit-learn tuning problems on the data sets bundled with scikit-learn.

Model families and search spaces are Bayesmark's (``bayesmark/sklearn_funcs.py``), with
one change: Bayesmark's ``logit``-scaled reals are searched on a linear scale here (no
optimizer below offers a logit scale; all of them get the same space). The objective is
the mean 3-fold cross-validation loss (negative log-likelihood for classifiers, mean
squared error for regressors) on fixed, shuffled folds, so a point always has one value.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import datasets
from sklearn.ensemble import (
    AdaBoostClassifier,
    AdaBoostRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor


@dataclass(frozen=True)
class Param:
    """One searched parameter: ``kind`` is "int" or "real"; ``log`` its scale."""

    name: str
    kind: str
    low: float
    high: float
    log: bool = False


def _p(name: str, kind: str, low: float, high: float, space: str = "linear") -> Param:
    return Param(name, kind, low, high, log=space == "log")


KNN = [_p("n_neighbors", "int", 1, 25), _p("p", "int", 1, 4)]
SVM = [
    _p("C", "real", 1.0, 1e3, "log"),
    _p("gamma", "real", 1e-4, 1e-3, "log"),
    _p("tol", "real", 1e-5, 1e-1, "log"),
]
TREE = [
    _p("max_depth", "int", 1, 15),
    _p("min_samples_split", "real", 0.01, 0.99),
    _p("min_samples_leaf", "real", 0.01, 0.49),
    _p("min_weight_fraction_leaf", "real", 0.01, 0.49),
    _p("max_features", "real", 0.01, 0.99),
    _p("min_impurity_decrease", "real", 0.0, 0.5),
]
MLP_COMMON = [
    _p("hidden_layer_sizes", "int", 50, 200),
    _p("alpha", "real", 1e-5, 1e1, "log"),
    _p("batch_size", "int", 10, 250),
    _p("learning_rate_init", "real", 1e-5, 1e-1, "log"),
    _p("tol", "real", 1e-5, 1e-1, "log"),
    _p("validation_fraction", "real", 0.1, 0.9),
]
MLP_ADAM = [
    *MLP_COMMON,
    _p("beta_1", "real", 0.5, 0.99),
    _p("beta_2", "real", 0.9, 1.0 - 1e-06),
    _p("epsilon", "real", 1e-09, 1e-06, "log"),
]
MLP_SGD = [*MLP_COMMON, _p("power_t", "real", 0.1, 0.9), _p("momentum", "real", 0.001, 0.999)]
ADA = [_p("n_estimators", "int", 10, 100), _p("learning_rate", "real", 1e-4, 1e1, "log")]
LINEAR_CLF = [_p("C", "real", 1e-2, 1e2, "log"), _p("intercept_scaling", "real", 1e-2, 1e2, "log")]
# Bayesmark's regression lasso/ridge also search booleans (fit_intercept, normalize,
# positive); "normalize" is gone from scikit-learn, the others stay fixed at defaults here.
LINEAR_REG = [
    _p("alpha", "real", 1e-2, 1e2, "log"),
    _p("max_iter", "int", 10, 5000, "log"),
    _p("tol", "real", 1e-5, 1e-1, "log"),
]

MODELS_CLF: dict[str, tuple[Any, dict[str, Any], list[Param]]] = {
    "kNN": (KNeighborsClassifier, {}, KNN),
    "SVM": (SVC, {"kernel": "rbf", "probability": True}, SVM),
    "DT": (DecisionTreeClassifier, {}, TREE),
    "RF": (RandomForestClassifier, {"n_estimators": 10}, TREE),
    "MLP-adam": (MLPClassifier, {"solver": "adam", "early_stopping": True}, MLP_ADAM),
    "MLP-sgd": (
        MLPClassifier,
        {
            "solver": "sgd",
            "early_stopping": True,
            "learning_rate": "invscaling",
            "nesterovs_momentum": True,
        },
        MLP_SGD,
    ),
    "ada": (AdaBoostClassifier, {}, ADA),
    "lasso": (LogisticRegression, {"penalty": "l1", "solver": "liblinear"}, LINEAR_CLF),
    "linear": (LogisticRegression, {"penalty": "l2", "solver": "liblinear"}, LINEAR_CLF),
}
MODELS_REG: dict[str, tuple[Any, dict[str, Any], list[Param]]] = {
    "kNN": (KNeighborsRegressor, {}, KNN),
    "SVM": (SVR, {"kernel": "rbf"}, SVM),
    "DT": (DecisionTreeRegressor, {}, TREE),
    "RF": (RandomForestRegressor, {"n_estimators": 10}, TREE),
    "MLP-adam": (MLPRegressor, {"solver": "adam", "early_stopping": True}, MLP_ADAM),
    "MLP-sgd": (
        MLPRegressor,
        {
            "activation": "tanh",
            "solver": "sgd",
            "early_stopping": True,
            "learning_rate": "invscaling",
            "nesterovs_momentum": True,
        },
        MLP_SGD,
    ),
    "ada": (AdaBoostRegressor, {}, ADA),
    "lasso": (Lasso, {}, LINEAR_REG),
    "linear": (Ridge, {}, LINEAR_REG),
}
DATASETS = ("iris", "wine", "digits", "breast", "diabetes")
_LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "digits": datasets.load_digits,
    "breast": datasets.load_breast_cancer,
    "diabetes": datasets.load_diabetes,
}


@dataclass
class Problem:
    """One tuning problem: a model family on a data set, with a cache of evaluated points.

    Example:

    >>> problem = Problem.make("kNN", "iris")
    >>> round(problem.loss({"n_neighbors": 5, "p": 2}), 3) < 0.5
    True
    """

    model: str
    dataset: str
    estimator: Any
    space: list[Param]
    X: np.ndarray
    y: np.ndarray
    scoring: str
    cv: Any
    cache: dict[tuple, float] = field(default_factory=dict)
    fits: int = 0
    stamps: list[float] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``model-dataset``, as Bayesmark names problems (without the metric)."""
        return f"{self.model}-{self.dataset}"

    @classmethod
    def make(cls, model: str, dataset: str) -> Problem:
        """Build the problem ``model`` on ``dataset`` (names as in Bayesmark)."""
        X, y = _LOADERS[dataset](return_X_y=True)
        classify = dataset != "diabetes"
        family, fixed, space = (MODELS_CLF if classify else MODELS_REG)[model]
        estimator = family(**fixed)
        if model in ("lasso", "linear") and classify:
            estimator = OneVsRestClassifier(estimator)  # Bayesmark's multi_class="ovr"
        # Bayesmark does not scale; kNN, SVM, MLPs and linear models need it to be sane.
        estimator = make_pipeline(StandardScaler(), estimator)
        splitter = StratifiedKFold if classify else KFold
        return cls(
            model,
            dataset,
            estimator,
            space,
            X.astype(float),
            y,
            "neg_log_loss" if classify else "neg_mean_squared_error",
            splitter(n_splits=3, shuffle=True, random_state=0),
        )

    def estimator_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Searched parameters as pipeline parameters (``step__name``)."""
        step = self.estimator.steps[-1][0]
        prefix = f"{step}__estimator__" if "onevsrest" in step else f"{step}__"
        return {prefix + k: v for k, v in params.items()}

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        """Clip to the space and round integers (optimizers return numpy or float types)."""
        out = {}
        for p in self.space:
            v = float(params[p.name])
            v = min(max(v, p.low), p.high)
            out[p.name] = round(v) if p.kind == "int" else v
        return out

    def loss(self, params: dict[str, Any]) -> float:
        """Mean cross-validation loss at ``params`` (cached: a repeated point is not refit).

        When each evaluation ended is appended to ``stamps`` (``time.perf_counter()``).
        """
        params = self.clean(params)
        key = tuple((k, float(f"{v:.10g}")) for k, v in sorted(params.items()))
        if key not in self.cache:
            from sklearn.base import clone

            model = clone(self.estimator).set_params(**self.estimator_params(params))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = cross_val_score(
                    model, self.X, self.y, scoring=self.scoring, cv=self.cv, error_score=np.nan
                )
            value = -float(np.mean(scores))
            self.cache[key] = value if np.isfinite(value) else float("inf")
            self.fits += 1
        self.stamps.append(time.perf_counter())
        return self.cache[key]
