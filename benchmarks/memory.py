"""Resident memory (RSS) over a long search over widths, per path and Keras backend.

Every trial samples a learning rate, a width (8-512 units) and a depth (1-3 hidden
layers) of a small MLP on digits (300 rows, 1 epoch), so nearly every trial has shapes
of its own and compiles new programs: the case in which memory used to grow trial after
trial. The RSS of the process that trained it is recorded after trials 10, 100, 500 and
1,000 (``--trials``), for:

* ``wrapper``: ``KerasClassifier(...).fit`` in a loop (what a user's own loop does);
* ``search``: ``tunefleet.RandomizedSearchCV`` over ``KerasClassifier`` (one split);
* ``tuner``: ``tunefleet.RandomSearch`` (the Keras Tuner face);
* ``fleet``: ``RandomizedSearchCV(..., fleet=True)``: batches of trials trained as
  fleets (JAX only). Its RSS is taken between batches: the search is run to each mark
  in turn, resuming the same SQLite study.

Each backend runs in a fresh subprocess (Keras picks its backend once per process). On
TensorFlow, the search and tuner paths train in worker processes replaced every 25 trials
(see ``tunefleet.dispatch.runs_in_worker_process``): their rows are the workers' RSS, and
the summary says how many there were and what the search's own process held at the end.
Goal: at most 200 MB growth from trial 10 to trial 1,000 on every path and backend.

Usage:
    python benchmarks/memory.py [--backend jax tensorflow torch] [--path wrapper ...]
                                [--trials 10 100 500 1000] [--quick] [--json out.json]

``--quick`` runs trials 5 and 30 only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PATHS = ("wrapper", "search", "tuner", "fleet")
BACKENDS = ("jax", "tensorflow", "torch")
N_ROWS = 300


def build_mlp(n_hidden: int = 1, n_neurons: int = 16, learning_rate: float = 1e-2) -> object:
    """The searched MLP on digits (64 inputs, 10 classes), compiled."""
    import keras

    model = keras.Sequential([keras.Input((64,))])
    for _ in range(n_hidden):
        model.add(keras.layers.Dense(n_neurons, activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    return model


def build_hp(hp: object) -> object:
    """The same MLP, through Keras Tuner-style ``hp``."""
    return build_mlp(
        hp.Int("n_hidden", 1, 3),
        hp.Int("n_neurons", 8, 512),
        hp.Float("learning_rate", 1e-4, 1e-1, sampling="log"),
    )


def _data() -> tuple[object, object]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X[:N_ROWS] / 16.0).astype("float32"), y[:N_ROWS]


def _space() -> dict[str, object]:
    import tunefleet

    return {
        "n_hidden": tunefleet.Int(1, 3),
        "n_neurons": tunefleet.Int(8, 512),
        "learning_rate": tunefleet.Float(1e-4, 1e-1, log=True),
    }


def measure(path: str, marks: list[int]) -> dict[str, object]:
    """Run ``path`` in this process up to ``max(marks)`` trials; RSS (MiB) at each mark."""
    import keras
    import numpy as np
    import psutil

    import tunefleet
    from tunefleet.keras import KerasClassifier

    process = psutil.Process()
    X, y = _data()
    rss: dict[int, float] = {}
    seconds: dict[int, float] = {}
    start = time.time()
    # One line per trial, "pid rss time", written by the process that trained it: this
    # one, or a worker process (TensorFlow runs long searches in replaced workers).
    log = Path(tempfile.mkdtemp(prefix="tunefleet-memory-")) / "trials"
    log.touch()

    def mark() -> None:
        with open(log, "a") as out:
            out.write(f"{os.getpid()} {psutil.Process().memory_info().rss} {time.time()}\n")
        done = len(log.read_text().splitlines())
        if done in marks:
            print(f"  {path}: trial {done}: {psutil.Process().memory_info().rss / 2**20:.0f} MiB")

    class Mark(keras.callbacks.Callback):
        def on_train_end(self, logs: object = None) -> None:
            mark()

    n = max(marks)
    half = np.arange(len(X)) % 2 == 0
    one_split = [(np.flatnonzero(half), np.flatnonzero(~half))]
    if path == "wrapper":
        rng = np.random.default_rng(0)
        for _ in range(n):
            KerasClassifier(
                build_mlp,
                n_hidden=int(rng.integers(1, 4)),
                n_neurons=int(rng.integers(8, 513)),
                learning_rate=float(10 ** rng.uniform(-4, -1)),
                epochs=1,
                batch_size=64,
                verbose=0,
            ).fit(X, y)
            mark()
    elif path == "search":
        estimator = KerasClassifier(build_mlp, epochs=1, batch_size=64, verbose=0)
        estimator.set_params(callbacks=[Mark()])
        tunefleet.RandomizedSearchCV(
            estimator, _space(), n_iter=n, cv=one_split, refit=False, random_state=0
        ).fit(X, y)
    elif path == "tuner":
        with tempfile.TemporaryDirectory() as tmp:
            tuner = tunefleet.RandomSearch(
                build_hp, "val_loss", n, directory=tmp, project_name="m", seed=0
            )
            tuner.search(
                X[half],
                y[half],
                epochs=1,
                batch_size=64,
                validation_data=(X[~half], y[~half]),
                callbacks=[Mark()],
                verbose=0,
            )
    elif path == "fleet":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'fleet.db'}"
            for m in sorted(marks):
                tunefleet.RandomizedSearchCV(
                    KerasClassifier(build_mlp, epochs=1, batch_size=64, verbose=0),
                    _space(),
                    n_iter=m,
                    cv=one_split,
                    refit=False,
                    random_state=0,
                    fleet=True,
                    storage=url,
                    study_name="m",
                ).fit(X, y)
                rss[m] = process.memory_info().rss / 2**20
                seconds[m] = time.time() - start
                print(f"  {path}: trial {m}: {rss[m]:.0f} MiB", flush=True)
    else:
        raise ValueError(f"--path: expected one of {PATHS}, got {path!r}.")
    pids = set()
    peak = 0.0  # the highest RSS of any trial from the first mark on (between the marks too)
    for number, line in enumerate(log.read_text().splitlines(), 1):
        pid, resident, at = line.split()
        pids.add(pid)
        if number >= min(marks):
            peak = max(peak, int(resident) / 2**20)
        if number in marks:
            rss[number] = int(resident) / 2**20
            seconds[number] = float(at) - start
    first, last = min(rss), max(rss)
    return {
        "path": path,
        "backend": keras.backend.backend(),
        "rss_mib": rss,
        "seconds": seconds,
        "growth_mib": rss[last] - rss[first],
        "peak_growth_mib": max(peak, *rss.values()) - rss[first],
        # trials trained in worker processes: the search's own process at the end
        "processes": len(pids - {str(os.getpid())}),
        "search_process_mib": process.memory_info().rss / 2**20,
    }


def run_backend(backend: str, paths: list[str], marks: list[int]) -> list[dict[str, object]]:
    """Each path on ``backend`` in a fresh subprocess; their results."""
    results = []
    for path in paths:
        if path == "fleet" and backend != "jax":
            print(f"{backend}/{path}: skipped (fleets need the JAX backend)")
            continue
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        command = [sys.executable, __file__, "--child", path, "--trials", *map(str, marks)]
        print(f"{backend}/{path}:", flush=True)
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as child:
            assert child.stdout is not None
            lines = []
            for line in child.stdout:  # progress as it comes; the last line is the result
                lines.append(line.rstrip("\n"))
                if not line.startswith("{"):
                    print(line, end="", flush=True)
        if child.returncode != 0 or not lines or not lines[-1].startswith("{"):
            print(f"  failed (exit status {child.returncode})")
            continue
        results.append(json.loads(lines[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", nargs="+", choices=BACKENDS, default=["jax"])
    parser.add_argument("--path", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--trials", nargs="+", type=int, default=[10, 100, 500, 1000])
    parser.add_argument("--quick", action="store_true", help="trials 5 and 30 only")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    marks = [5, 30] if args.quick else sorted(args.trials)
    if args.child:
        import warnings

        warnings.filterwarnings("ignore")
        print(json.dumps(measure(args.child, marks)))
        return
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    results = [r for b in args.backend for r in run_backend(b, args.path, marks)]
    print("\nbackend     path      " + "".join(f"{m:>9}" for m in marks) + "   growth")
    for r in results:
        rss = {int(k): v for k, v in r["rss_mib"].items()}
        cells = "".join(f"{rss[m]:>9.0f}" if m in rss else f"{'-':>9}" for m in marks)
        where = (
            f" (in {r['processes']} worker processes; the search's own: "
            f"{r['search_process_mib']:.0f} MiB)"
            if r.get("processes")
            else ""
        )
        peak = f" (at most {r['peak_growth_mib']:+.0f} MiB)" if "peak_growth_mib" in r else ""
        print(
            f"{r['backend']:<11} {r['path']:<9} {cells}   {r['growth_mib']:+.0f} MiB{peak}{where}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
