"""Storages for one machine and for many: SQLite, Optuna's journal file, PostgreSQL.

The processes-share-a-storage, kill-and-resume and ``n_jobs`` tests of
``test_persistence.py`` run on all three (the ``shared_storage`` fixture); these test
opening them, their URLs and their errors, on real files and a real server.
"""

import threading
import time

import optuna
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

import tunefleet
from estimators import iris
from tunefleet.storage import open_storage, open_storage_for_reading, storage_url

# PostgreSQL servers and Ray clusters: these tests share one pytest-xdist worker (Makefile)
pytestmark = pytest.mark.xdist_group("servers")


def test_a_journal_url_opens_one_file_that_workers_reopen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = open_storage("journal:///tune.log")  # relative, like sqlite:///tune.db
    assert isinstance(storage, optuna.storages.JournalStorage)
    assert storage_url(storage) == f"journal:///{tmp_path / 'tune.log'}"
    optuna.create_study(storage=storage, study_name="s").optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    again = open_storage(storage_url(storage))  # absolute: journal:////...
    assert len(optuna.load_study(study_name="s", storage=again).trials) == 2
    assert (
        len(
            optuna.load_study(
                study_name="s", storage=open_storage_for_reading(str(tmp_path / "tune.log"))
            ).trials
        )
        == 2
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("journal:///", r"storage='journal:///' names no file"),
        ("journal:////no/such/folder/t.log", r"no such directory '/no/such/folder'"),
    ],
)
def test_a_bad_journal_url_says_what_was_expected(url, message):
    with pytest.raises(ValueError, match=message):
        open_storage(url)


def test_reading_a_missing_journal_creates_nothing(tmp_path):
    url = f"journal:///{tmp_path / 'missing.log'}"
    with pytest.raises(ValueError, match=r"no such journal file .*creates nothing"):
        open_storage_for_reading(url)
    assert not (tmp_path / "missing.log").exists()


def test_a_search_runs_on_a_journal_file_and_resumes(tmp_path):
    X, y = iris()
    url = f"journal:///{tmp_path / 'tune.log'}"
    space = {"C": stats.loguniform(1e-2, 1e2)}
    tunefleet.RandomizedSearchCV(
        LogisticRegression(max_iter=200),
        space,
        n_iter=3,
        storage=url,
        study_name="s",
        random_state=0,
    ).fit(X, y)
    search = tunefleet.RandomizedSearchCV(
        LogisticRegression(max_iter=200),
        space,
        n_iter=5,
        storage=url,
        study_name="s",
        random_state=0,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 5
    assert len(optuna.load_study(study_name="s", storage=open_storage(url)).trials) == 5


def test_a_postgresql_url_uses_psycopg_3(postgres_server):
    url = postgres_server.create_database()
    storage = open_storage(url)
    assert storage.url.startswith("postgresql+psycopg://")
    assert storage_url(storage) == storage.url  # what worker processes reopen


def test_a_wrong_postgresql_password_is_named_and_never_shown(postgres_server):
    url = postgres_server.url().replace(postgres_server.password, "not-the-pw-42")
    with pytest.raises(ValueError) as caught:
        open_storage(url)
    message = str(caught.value)
    assert message.startswith(f"storage='postgresql://{postgres_server.user}:***@")
    assert "password authentication failed" in message
    assert "not-the-pw-42" not in message and caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_opening_a_postgresql_database_whose_schema_another_process_is_creating(
    postgres_server,
):
    # Two workers started at once on a new database both create Optuna's schema: the
    # other one's CREATE TYPE (its first statement) is not committed yet when this one
    # looks for the type; this one's CREATE TYPE waits for it, fails once it commits
    # (a unique violation; "already exists" when the commit falls between the look and
    # the CREATE: test_secrets.py), and opening retries, now finding the type.
    import psycopg

    url = postgres_server.create_database()
    other = psycopg.connect(url)
    other.execute("CREATE TYPE studydirection AS ENUM ('NOT_SET', 'MINIMIZE', 'MAXIMIZE')")
    threading.Timer(1.0, other.commit).start()
    try:
        storage = open_storage(url)
        study = optuna.create_study(storage=storage, study_name="s")
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
        assert len(open_storage(url).get_all_studies()) == 1
    finally:
        other.close()


class StopsTheServer(ClassifierMixin, BaseEstimator):
    """Stops the PostgreSQL server inside its ``fit`` (once, on the first call) and starts
    it again ``down`` seconds later, from another thread: the search's next reads and
    writes find no server."""

    server = None
    down = 3.0
    restarted = None

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        if StopsTheServer.server is not None:
            server, StopsTheServer.server = StopsTheServer.server, None
            server.stop()
            StopsTheServer.restarted = threading.Timer(StopsTheServer.down, server.start)
            StopsTheServer.restarted.start()
        self.model_ = LogisticRegression(C=self.C, max_iter=200).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


def test_a_search_goes_on_after_the_postgresql_server_is_down_for_seconds(
    own_postgres_server, caplog
):
    # The reads and writes that find no server are retried with backoff (for
    # TUNEFLEET_STORAGE_RETRY, 60 s); the search ends as if nothing happened.
    X, y = iris()
    url = own_postgres_server.create_database()
    StopsTheServer.server = own_postgres_server
    start = time.monotonic()
    try:
        search = tunefleet.RandomizedSearchCV(
            StopsTheServer(),
            {"C": stats.loguniform(1e-2, 1e2)},
            n_iter=3,
            cv=2,
            storage=url,
            study_name="s",
            random_state=0,
        ).fit(X, y)
    finally:
        if StopsTheServer.restarted is not None:
            StopsTheServer.restarted.join()
    assert StopsTheServer.server is None  # it did stop
    assert time.monotonic() - start > StopsTheServer.down  # and the search waited for it
    assert "lost its database connection" in caplog.text and "reconnected after" in caplog.text
    stored = optuna.load_study(study_name="s", storage=open_storage(url)).trials
    assert [t.state.name for t in stored] == ["COMPLETE"] * 3
    assert len({t.params["C"] for t in stored}) == 3
    assert search.best_score_ > 0.8
