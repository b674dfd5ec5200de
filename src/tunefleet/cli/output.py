"""What the ``tunefleet`` commands print: trials as rows, tables, CSV, JSON and errors."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from enum import StrEnum
from typing import Any, NoReturn

import optuna
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tunefleet.records import StudyData, TrialRecord, study_data, trials_table


class Format(StrEnum):
    """Output formats of the reading commands."""

    table = "table"
    csv = "csv"
    json = "json"


def console() -> Console:
    """The console of the commands' output (200 columns wide when not a terminal)."""
    out = Console()
    if not out.is_terminal:
        out = Console(width=200)
    return out


def print_error(message: str) -> None:
    """Print ``error: message`` on stderr."""
    Console(stderr=True, width=200).print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (no traceback)."""
    print_error(message)
    raise typer.Exit(code)


def _note(record: TrialRecord) -> str:
    if record.status:
        return record.status
    return "" if not record.error else " ".join(record.error.split())[:120]


def _finite(value: Any) -> Any:
    """``None`` for NaN (JSON has no NaN), else ``value``."""
    return None if isinstance(value, float) and math.isnan(value) else value


def trial_rows(
    study: optuna.Study | StudyData, *, counted_only: bool = False
) -> list[dict[str, Any]]:
    """One dict per trial, read through :mod:`tunefleet.records`.

    The columns of ``trials_dataframe`` (``number``, ``state``, ``value``, a
    ``value_<name>`` per further objective, ``std``, ``duration`` in seconds, ``error``,
    ``status``), with the parameters as one dict ``params``, the per-fold test scores by
    metric as ``cv`` and a one-line ``note`` (the status, else the error's start).
    ``counted_only`` leaves out trials that do not count (interrupted, surplus).
    """
    data = study if isinstance(study, StudyData) else study_data(study)
    _, table = trials_table(data)
    rows = []
    for record, flat in zip(data.trials, table, strict=True):
        if counted_only and not record.counted:
            continue
        row = {k: _finite(v) for k, v in flat.items() if k not in ("error", "status")}
        row = {k: v for k, v in row.items() if not k.startswith("param_")}
        row["params"] = {k[len("param_") :]: v for k, v in flat.items() if k.startswith("param_")}
        row.update(cv=record.cv, error=record.error, status=record.status, note=_note(record))
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    """A table _cell (rich markup in values, e.g. ``[0.1, 1]``, is shown as text)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return escape(str(value))


def _param_names(rows: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        for name in row["params"]:
            names.setdefault(name)
    return list(names)


def _write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _write_csv(rows: list[dict[str, Any]], fields: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    sys.stdout.write(buffer.getvalue())


def print_studies(rows: list[dict[str, Any]], fmt: Format, title: str) -> None:
    """The ``studies`` command's rows as a table, CSV or JSON."""
    if fmt is Format.json:
        _write_json(rows)
        return
    if fmt is Format.csv:
        _write_csv(rows, list(rows[0]) if rows else ["study"])
        return
    table = Table(title=title)
    for column in ("study", "direction", "trials", "complete", "pruned", "failed", "running"):
        table.add_column(column, justify="left" if column in ("study", "direction") else "right")
    table.add_column("best value", justify="right")
    table.add_column("best trial", justify="right")
    for r in rows:
        table.add_row(
            r["study"],
            r["direction"],
            *(str(r[k]) for k in ("trials", "complete", "pruned", "failed", "running")),
            _cell(r["best_value"]),
            _cell(r["best_trial"]),
        )
    console().print(table)


def print_rows(rows: list[dict[str, Any]], fmt: Format, title: str) -> None:
    """Trials (:func:`trial_rows`) as a table, CSV or JSON."""
    if fmt is Format.json:
        _write_json(rows)
        return
    names = _param_names(rows)
    values = [k for k in (rows[0] if rows else {}) if k.startswith("value_")]
    head = ["number", "state", "value", *values, "std", "duration"]
    flat = [
        {
            **{k: r[k] for k in head},
            **{f"param_{n}": r["params"].get(n) for n in names},
            **{k: r[k] for k in ("error", "status", "note")},
        }
        for r in rows
    ]
    if fmt is Format.csv:
        _write_csv(flat, [*head, *(f"param_{n}" for n in names), "error", "status", "note"])
        return
    table = Table(title=title)
    shown = ["trial", "state", "value", *values, "std", "seconds", *names, "note"]
    for column in shown:
        table.add_column(column, justify="left" if column in ("state", "note") else "right")
    for r in flat:
        table.add_row(
            str(r["number"]),
            r["state"],
            *(_cell(r[k]) for k in head[2:]),
            *(_cell(r[f"param_{n}"]) for n in names),
            _cell(r["note"]),
        )
    console().print(table)


def print_best(data: StudyData, fmt: Format = Format.table) -> None:
    """The best trial and its parameters; fails when the study has none."""
    best = data.best_trial
    if best is None and data.multi_objective:
        fail(
            f"study {data.study_name!r} optimizes {len(data.directions)} objectives, so it has "
            "no single best trial: `tunefleet trials` lists every trial's values and "
            "`tunefleet report` draws the Pareto front."
        )
    if best is None:
        fail(f"study {data.study_name!r} has no completed trial yet.")
    params = best.param_values()
    if fmt is Format.json:
        _write_json(
            {"study": data.study_name, "number": best.number, "value": best.value, "params": params}
        )
        return
    if fmt is Format.csv:
        _write_csv(
            [{"parameter": k, "value": v} for k, v in params.items()], ["parameter", "value"]
        )
        return
    out = console()
    out.print(
        f"Best trial of {data.study_name!r}: #{best.number}, value {_cell(best.value)}",
        highlight=False,
    )
    table = Table()
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for name, value in params.items():
        table.add_row(name, _cell(value))
    out.print(table)
