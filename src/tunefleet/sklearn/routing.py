"""Where a search's ``fit`` parameters go: the estimator, the splitter, each scorer.

As scikit-learn's searches route them. With metadata routing enabled
(``sklearn.set_config(enable_metadata_routing=True)``), ``process_routing`` sends each
parameter where the estimator, the ``cv`` splitter and the scorers request it. Without
it, every parameter goes to the estimator's ``fit`` except ``groups`` (the splitter's),
and ``sample_weight`` also goes to the scorers that accept it, with scikit-learn's
warning for those that do not.

The scorers' parameters are resolved here, per scorer name, in the search's process, so
that the trials (in worker processes or on a cluster) call each scorer with its own
keyword arguments and need no routing of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sklearn.metrics._scorer import _MultimetricScorer
from sklearn.utils._metadata_requests import _routing_enabled, process_routing
from sklearn.utils.validation import _check_method_params

__all__ = ["RoutedParams", "route_fit_params"]


@dataclass
class RoutedParams:
    """A search's ``fit`` parameters, by destination.

    Args:
        fit: keyword arguments of every ``estimator.fit`` (sample-aligned ones are cut
            with the folds).
        split: keyword arguments of ``cv.split`` (``groups``).
        score: scorer name -> keyword arguments of its calls (cut with the folds too).

    Example:

    >>> from sklearn.linear_model import LogisticRegression
    >>> from tunefleet import GridSearchCV
    >>> search = GridSearchCV(LogisticRegression(), {"C": [1, 10]}, scoring="accuracy")
    >>> routed = route_fit_params(search, [[0], [1]], {"score": "accuracy"}, {"groups": [0, 1]})
    >>> routed.split["groups"], routed.fit
    ([0, 1], {})
    """

    fit: dict[str, Any]
    split: dict[str, Any]
    score: dict[str, dict[str, Any]]

    @property
    def groups(self) -> Any:
        return self.split.get("groups")


def route_fit_params(search: Any, X: Any, names: Any, params: dict[str, Any]) -> RoutedParams:
    """Route ``params`` (``fit``'s keyword arguments, ``groups`` included) of ``search``.

    ``names`` are the names of the search's scorers (``"score"`` for a single one).
    """
    params = _check_method_params(X, params=params)
    routed = search._get_routed_params_for_fit(params)
    score = dict(routed.scorer.score)
    scorer, _ = search._get_scorers()
    if isinstance(scorer, _MultimetricScorer):
        per_scorer = _per_scorer(scorer, score)
    else:
        per_scorer = {name: score for name in names}
    return RoutedParams(dict(routed.estimator.fit), dict(routed.splitter.split), per_scorer)


def _per_scorer(scorer: _MultimetricScorer, score: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each scorer's share of ``score``, as ``_MultimetricScorer.__call__`` shares it."""
    if _routing_enabled():
        routed = process_routing(scorer, "score", **score)
        return {name: dict(routed[name].score) for name in scorer._scorers}
    # without routing: sample_weight only to the scorers that accept it, the rest to all
    common = {key: value for key, value in score.items() if key != "sample_weight"}
    shares = {name: dict(common) for name in scorer._scorers}
    if "sample_weight" in score:
        for name, one in scorer._scorers.items():
            if one._accept_sample_weight():
                shares[name]["sample_weight"] = score["sample_weight"]
    return shares
