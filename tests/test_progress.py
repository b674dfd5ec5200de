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


def test_a_rerun_with_fewer_candidates_than_stored_says_there_is_nothing_to_fit(capsys, tmp_path):
    X, y = iris()
    url = f"sqlite:///{tmp_path / 'tune.db'}"

    def search(n_iter):
        return tunefleet.RandomizedSearchCV(
            SlowClassifier(),
            {"C": tunefleet.Float(0.1, 10.0)},
            n_iter=n_iter,
            cv=2,
            storage=url,
            study_name="s",
            verbose=1,
            random_state=0,
        ).fit(X, y)

    search(3)
    capsys.readouterr()
    search(2)
    out = capsys.readouterr().out
    assert "Nothing to fit: study 's' already holds 3 candidates" in out
    assert "-1" not in out
