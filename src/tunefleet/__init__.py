"""tunefleet: tune and optimize Keras 3 and scikit-learn models.

Three drop-in faces (scikit-learn ``*SearchCV``, Keras Tuner-style tuners, Keras
scikit-learn wrappers) on one engine built on Optuna.
"""

from tunefleet._backend import configure_default_backend

configure_default_backend()

__version__ = "0.1.0"
