"""Passwords in storage URLs never reach the user's screen, logs or files.

Each URL form goes through every output path: ``mask_url``, the error of
``open_storage`` (message and traceback), the CLI, the HTML report and the logs.
"""

import logging
import sqlite3
import traceback

import optuna
import pytest
import sqlalchemy.exc
from sklearn.datasets import load_iris
from sklearn.neighbors import KNeighborsClassifier
from typer.testing import CliRunner

import tunefleet
from tunefleet.cli import app
from tunefleet.report import render_report, study_data
from tunefleet.storage import is_transient, open_storage
from tunefleet.urls import mask_secrets, mask_url

runner = CliRunner()

# (URL, the strings that must never be shown)
URLS = [
    ("postgresql://bob:hunter2secret@db:5432/tune", ["hunter2secret"]),
    ("postgresql://u:p@ss-secret@h/db", ["p@ss-secret", "ss-secret"]),
    ("postgresql://:secret1@h/db", ["secret1"]),
    ("postgresql://u@h/db?password=secret2", ["secret2"]),
    ("postgresql:/u:secret3@h/db", ["secret3"]),
    ("mysql+pymysql://u:s%40cret4@h/db", ["s@cret4", "s%40cret4", "cret4"]),
    ("postgresql://u@h/db?sslmode=require&api_token=tok5secret", ["tok5secret"]),
    ("nosuchdialect://u:secret6@h/db", ["secret6"]),
]
IDS = [u for u, _ in URLS]


def assert_hidden(text, secrets):
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked in: {text}"


@pytest.mark.parametrize(("url", "secrets"), URLS, ids=IDS)
def test_mask_url_hides_every_password_form(url, secrets):
    masked = mask_url(url)
    assert_hidden(masked, secrets)
    assert "***" in masked
    assert masked.split(":", 1)[0] == url.split(":", 1)[0]  # the scheme stays readable


def test_mask_url_keeps_what_is_not_secret():
    assert mask_url("sqlite:///tune.db") == "sqlite:///tune.db"
    assert mask_url("postgresql://bob:pw@db:5432/tune?sslmode=require") == (
        "postgresql://bob:***@db:5432/tune?sslmode=require"
    )


@pytest.mark.parametrize(("url", "secrets"), URLS, ids=IDS)
def test_open_storage_error_hides_the_password(url, secrets, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValueError, match="storage=") as info:
        open_storage(url)
    assert_hidden(str(info.value), secrets)
    assert_hidden("".join(traceback.format_exception(info.value)), secrets)
    assert_hidden(caplog.text, secrets)


def test_mask_secrets_scrubs_a_driver_message_that_echoes_the_url():
    url = "postgresql://u:p@ss-secret@h/db"
    echoed = f'could not translate host name "ss-secret@h" for {url}; password "p@ss-secret"'
    masked = mask_secrets(echoed, url)
    assert_hidden(masked, ["p@ss-secret", "ss-secret"])
    assert masked.startswith("could not translate host name")


@pytest.mark.parametrize(("url", "secrets"), URLS, ids=IDS)
def test_cli_errors_hide_the_password(url, secrets, tmp_path):
    for args in (["studies", url], ["trials", url], ["report", url, "-o", tmp_path / "r.html"]):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code != 0
        assert "error: " in result.output
        assert_hidden(result.output, secrets)


def test_a_storage_that_opens_is_shown_masked_everywhere(tmp_path, caplog):
    # SQLite ignores query arguments it does not know, so this URL opens for real.
    url = f"sqlite:///{tmp_path}/tune.db?password=sqlitesecret7"
    caplog.set_level(logging.DEBUG)
    search = tunefleet.RandomizedSearchCV(
        KNeighborsClassifier(),
        {"n_neighbors": tunefleet.Int(1, 20)},
        n_iter=2,
        cv=2,
        random_state=0,
        storage=url,
        study_name="knn",
        progress=True,
    )
    search.fit(*load_iris(return_X_y=True))
    outputs = []
    for args in (["studies", url], ["trials", url], ["best", url]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "password=***" in "".join(outputs[0].split())  # the table's title wraps long URLs
    report = tmp_path / "r.html"
    result = runner.invoke(app, ["report", url, "-o", str(report)])
    assert result.exit_code == 0, result.output
    outputs += [result.output, report.read_text()]
    outputs.append(render_report(study_data(search.study_, storage_label=url)))
    missing = runner.invoke(app, ["studies", f"sqlite:///{tmp_path}/none.db?password=gone8"])
    assert missing.exit_code != 0
    assert_hidden(missing.output, ["gone8"])
    assert_hidden("\n".join(outputs) + caplog.text, ["sqlitesecret7"])


def sqlite_error(message):
    return sqlalchemy.exc.OperationalError("CREATE TABLE", {}, sqlite3.OperationalError(message))


def test_only_transient_storage_errors_are_retried():
    assert is_transient(sqlite_error("database is locked"))
    assert is_transient(sqlite_error("table studies already exists"))
    assert is_transient(sqlalchemy.exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("x")))
    exists = Exception('type "studydirection" already exists')  # psycopg's DuplicateObject
    assert is_transient(sqlalchemy.exc.ProgrammingError("CREATE TYPE", {}, exists))
    denied = Exception("permission denied for table studies")
    assert not is_transient(sqlalchemy.exc.ProgrammingError("SELECT", {}, denied))
    assert not is_transient(sqlite_error("unable to open database file"))
    assert not is_transient(ImportError("no driver"))
    assert not is_transient(sqlalchemy.exc.ArgumentError("bad URL"))


def test_a_non_transient_storage_error_fails_at_the_first_attempt(tmp_path):
    attempts = []

    def count(*args):
        attempts.append(1)

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "do_connect", count)
    try:
        with pytest.raises(ValueError, match="unable to open database file"):
            open_storage(f"sqlite:///{tmp_path}/no/such/folder/tune.db")
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "do_connect", count)
    assert len(attempts) == 1


def test_in_memory_optuna_study_report_shows_no_storage_password():
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    html = render_report(study_data(study, storage_label="postgresql://u:p@ss-word9@h/db"))
    assert_hidden(html, ["p@ss-word9", "ss-word9"])
