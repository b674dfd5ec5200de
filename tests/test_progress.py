"""The progress bar: on when asked (or on a terminal), silent otherwise."""

import tunefleet
from estimators import SlowClassifier, iris
from tunefleet.progress import SearchProgress


def test_progress_bar_draws_trials_and_best_score(capsys):
    with SearchProgress(total=10, done=2, description="GridSearchCV", enabled=True) as bar:
        bar.update(done=3, best=0.9321)
    err = capsys.readouterr().err
    assert "GridSearchCV" in err and "3/10" in err and "0.9321" in err


def test_search_is_silent_off_a_terminal(capsys):
    X, y = iris()
    tunefleet.GridSearchCV(SlowClassifier(), {"C": [0.1, 1.0]}).fit(X, y)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_search_shows_progress_when_asked(capsys):
    X, y = iris()
    tunefleet.GridSearchCV(SlowClassifier(), {"C": [0.1, 1.0]}, progress=True, verbose=1).fit(X, y)
    captured = capsys.readouterr()
    assert "Fitting 5 folds for each of 2 candidates, totalling 10 fits" in captured.out
    assert "2/2" in captured.err
