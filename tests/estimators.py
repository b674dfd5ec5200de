"""Small real estimators for tests: one that takes time, one that fails on purpose."""

import os
import sys
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


class SlowClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression that sleeps ``delay`` seconds in fit (to kill a search mid-trial).

    While the file named by the environment variable ``TUNEFLEET_TEST_HOLD`` exists, a
    fit touches ``<that file>.held`` and waits, so a test can kill a search inside a fit.
    """

    def __init__(self, C=1.0, delay=0.0):
        self.C = C
        self.delay = delay

    def fit(self, X, y):
        time.sleep(self.delay)
        hold = os.environ.get("TUNEFLEET_TEST_HOLD")
        if hold and os.path.exists(hold):
            with open(hold + ".held", "w"):
                pass
            time.sleep(300)
        self.model_ = LogisticRegression(C=self.C, max_iter=300).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


class WhereClassifier(SlowClassifier):
    """``SlowClassifier`` that notes where each fit ran: a line ``ray <pid>`` (in a Ray
    actor) or ``process <pid>`` is appended to the file ``TUNEFLEET_TEST_FIT_LOG`` names."""

    def fit(self, X, y):
        log = os.environ.get("TUNEFLEET_TEST_FIT_LOG")
        if log:
            ray = sys.modules.get("ray")
            kind = "ray" if ray is not None and ray.is_initialized() else "process"
            with open(log, "a") as out:
                out.write(f"{kind} {os.getpid()}\n")
        return super().fit(X, y)


class FlakyClassifier(ClassifierMixin, BaseEstimator):
    """Raises in fit when ``fail`` is true; otherwise logistic regression."""

    def __init__(self, C=1.0, fail=False):
        self.C = C
        self.fail = fail

    def fit(self, X, y):
        if self.fail:
            raise ArithmeticError(f"deliberate failure with C={self.C}")
        self.model_ = LogisticRegression(C=self.C, max_iter=300).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


def iris():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return X, np.asarray(y)
