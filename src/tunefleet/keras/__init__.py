"""Keras 3 faces of tunefleet: scikit-learn wrappers around Keras model-building functions."""

from tunefleet.keras.wrappers import KerasClassifier, KerasRegressor

__all__ = ["KerasClassifier", "KerasRegressor"]
