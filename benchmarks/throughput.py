"""Fleet training vs. one-model-at-a-time tuning on the same configurations.

Trains the same N random configurations (learning rate log-uniform 1e-4..1e-2,
widths from a fixed set, dropout uniform 0..0.5) of a digits MLP and of a small
digits CNN with:

* Keras Tuner ``RandomSearch`` (its oracle draws the configuration index),
* Optuna + ``model.fit`` (the configurations are enqueued, then optimized),
* plain one-by-one training (build + ``fit`` each; tunefleet without fleets),
* ``tunefleet.fleet.FleetTrainer`` (``fleet``),
* the whole tuner face with fleets, ``tunefleet.GridSearch(..., fleet=True)``
  (``tuner_fleet``: SQLite study, per-epoch reports, best models saved),
* for the MLP, a hand-written JAX loop over the same configurations (``jax_loop``:
  zero-padded widths, one ``vmap``-ed, ``scan``-ned program; no Keras, no study),
  the floor a fleet's training program can be compared with.

Every trial is built after ``keras.utils.set_random_seed(SEED)``, so they all train
the same models from the same initial weights on the same batches. Wall times
include model building and compilation. The score of a trial is its best
validation accuracy over epochs (Keras Tuner's default objective).

Usage::

    python benchmarks/throughput.py                 # 64 trials x 20 epochs, MLP and CNN
    python benchmarks/throughput.py --quick         # 8 trials x 3 epochs
    python benchmarks/throughput.py --models mlp --anchors fleet,plain --trials 16
    python benchmarks/throughput.py --trials 256 --anchor-trials 16 --fleet-sizes 64,1024

Runs unchanged on GPU (JAX picks the device; the script prints which);
``benchmarks/gpu.sh`` runs it there. With ``--anchor-trials N`` the one-by-one
anchors train only the first N configurations and are compared per trial (their
time is scaled to the full count); the fleet's best accuracy is then also given
over those N configurations, so the accuracies compare like with like.
``--fleet-sizes`` adds single fleet runs over the first 64, 1,024... configurations
of the same sequence, to show how a fleet's time grows with its size.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tunefleet.fleet import FleetTrainer

SEED = 0
BATCH = 32
WIDTHS = (32, 64, 128)
CNN_FILTERS = ((8, 16, 32), (16, 32, 64))  # per conv layer, indexed like WIDTHS


# ----------------------------------------------------------------- problem
def load_data(image: bool) -> tuple[np.ndarray, ...]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    xt, xv, yt, yv = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    if image:
        xt, xv = xt.reshape(-1, 8, 8, 1), xv.reshape(-1, 8, 8, 1)
    return xt, yt, xv, yv


def sample_configs(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "lr": float(10 ** rng.uniform(-4, -2)),
            "w1": int(rng.integers(len(WIDTHS))),
            "w2": int(rng.integers(len(WIDTHS))),
            "w3": int(rng.integers(len(WIDTHS))),
            "dropout": float(rng.uniform(0.0, 0.5)),
        }
        for _ in range(n)
    ]


def build_mlp(lr: float, w1: int, w2: int, w3: int, dropout: float) -> keras.Model:
    """64-w1-w2-w3-10 MLP (w from 32/64/128), Dropout after each hidden layer, Adam."""
    layers: list[Any] = [keras.Input((64,))]
    for w in (w1, w2, w3):
        layers += [keras.layers.Dense(WIDTHS[w], activation="relu"), keras.layers.Dropout(dropout)]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def build_cnn(lr: float, w1: int, w2: int, w3: int, dropout: float) -> keras.Model:
    """Conv(8/16/32)-pool-Conv(16/32/64)-flatten-dropout-Dense(32/64/128)-10, Adam."""
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(CNN_FILTERS[0][w1], 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(CNN_FILTERS[1][w2], 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dropout(dropout),
            keras.layers.Dense(WIDTHS[w3], activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def seeded(build: Callable[..., keras.Model], config: dict[str, Any]) -> keras.Model:
    keras.utils.set_random_seed(SEED)
    return build(**config)


# ----------------------------------------------------------------- anchors
def run_plain(build, configs, data, epochs) -> list[float]:
    xt, yt, xv, yv = data
    scores = []
    for config in configs:
        model = seeded(build, config)
        hist = model.fit(
            xt, yt, epochs=epochs, batch_size=BATCH, validation_data=(xv, yv), verbose=0
        )
        scores.append(max(hist.history["val_accuracy"]))
    return scores


def run_optuna(build, configs, data, epochs) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    xt, yt, xv, yv = data
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    for config in configs:
        study.enqueue_trial(config)

    def objective(trial: optuna.Trial) -> float:
        config = {
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "w1": trial.suggest_int("w1", 0, len(WIDTHS) - 1),
            "w2": trial.suggest_int("w2", 0, len(WIDTHS) - 1),
            "w3": trial.suggest_int("w3", 0, len(WIDTHS) - 1),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        }
        model = seeded(build, config)
        hist = model.fit(
            xt, yt, epochs=epochs, batch_size=BATCH, validation_data=(xv, yv), verbose=0
        )
        return max(hist.history["val_accuracy"])

    study.optimize(objective, n_trials=len(configs))
    return [t.value for t in study.trials]


def run_keras_tuner(build, configs, data, epochs) -> list[float]:
    import keras_tuner as kt

    xt, yt, xv, yv = data

    def hypermodel(hp: kt.HyperParameters) -> keras.Model:
        return seeded(build, configs[hp.Int("config", 0, len(configs) - 1)])

    directory = tempfile.mkdtemp(prefix="kt-bench-")
    try:
        tuner = kt.RandomSearch(
            hypermodel,
            objective="val_accuracy",
            max_trials=len(configs),
            seed=SEED,
            directory=directory,
            project_name="bench",
            overwrite=True,
        )
        # RandomSearch redraws a seen configuration up to 20 times before giving up;
        # with exactly N values to visit it must be allowed to keep drawing.
        tuner.oracle._max_collisions = 100_000
        tuner.search(xt, yt, epochs=epochs, batch_size=BATCH, validation_data=(xv, yv), verbose=0)
        trials = tuner.oracle.trials.values()
        return [t.score for t in trials if t.score is not None]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_tuner_fleet(build, configs, data, epochs) -> list[float]:
    """The whole tuner face with fleets: SQLite study, per-epoch reports, saved models."""
    import tunefleet

    xt, yt, xv, yv = data

    def hypermodel(hp: tunefleet.HyperParameters) -> keras.Model:
        return seeded(build, configs[hp.Int("config", 0, len(configs) - 1)])

    directory = tempfile.mkdtemp(prefix="tunefleet-bench-")
    try:
        tuner = tunefleet.GridSearch(  # each configuration exactly once
            hypermodel,
            objective="val_accuracy",
            seed=SEED,
            directory=directory,
            project_name="bench",
            fleet=True,
        )
        tuner.search(xt, yt, epochs=epochs, batch_size=BATCH, validation_data=(xv, yv), verbose=0)
        run_tuner_fleet.last = tuner.fleet_stats_  # type: ignore[attr-defined]
        return [t.score for t in tuner.oracle.get_best_trials(len(configs))]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_fleet(build, configs, data, epochs) -> list[float]:
    xt, yt, xv, yv = data
    trainer = FleetTrainer(build, seed=SEED)
    result = trainer.fit(configs, xt, yt, epochs=epochs, batch_size=BATCH, validation_data=(xv, yv))
    run_fleet.last = result  # type: ignore[attr-defined]
    return [max(h["val_accuracy"]) for h in result.history]


def run_jax_loop(build, configs, data, epochs) -> list[float]:
    """The same MLPs in a hand-written JAX loop, as the issue's reference loop is written.

    Every trial's weights are drawn (Glorot uniform, at its true widths, on the host)
    and zero-padded to the widest widths (zero units stay zero under ReLU and Adam);
    one ``jax.jit`` program per epoch ``lax.scan``s over the shared batches a
    ``jax.vmap``-ed step (forward, dropout from ``jax.random``, softmax cross-entropy,
    Adam with Keras's defaults) of all trials. No Keras, no study, no exactness
    guarantees: the figure is how fast the arithmetic itself runs here.
    """
    if build is not build_mlp:
        raise NotImplementedError("the hand-written JAX loop exists for the MLP only")
    xt, yt, xv, yv = (jnp.asarray(a) for a in data)
    n, widest = len(configs), max(WIDTHS)
    sizes = [xt.shape[1], widest, widest, widest, 10]
    rng = np.random.default_rng(SEED)
    kernels = [np.zeros((n, a, b), np.float32) for a, b in itertools.pairwise(sizes)]
    for i, config in enumerate(configs):
        true = [sizes[0], *(WIDTHS[config[k]] for k in ("w1", "w2", "w3")), 10]
        for kernel, (a, b) in zip(kernels, itertools.pairwise(true), strict=True):
            limit = np.sqrt(6.0 / (a + b))
            kernel[i, :a, :b] = rng.uniform(-limit, limit, (a, b))
    params = [(jnp.asarray(k), jnp.zeros((n, k.shape[2]), jnp.float32)) for k in kernels]
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = (params, zeros, zeros, jnp.zeros(n, jnp.int32))
    lr = jnp.asarray([c["lr"] for c in configs], jnp.float32)
    keep = jnp.asarray([1.0 - c["dropout"] for c in configs], jnp.float32)
    keys = jax.random.split(jax.random.key(SEED), n)

    def forward(p, x, key=None, keep=None):
        h = x
        for layer, (w, b) in enumerate(p):
            h = h @ w + b
            if layer < len(p) - 1:
                h = jax.nn.relu(h)
                if key is not None:
                    mask = jax.random.bernoulli(jax.random.fold_in(key, layer), keep, h.shape)
                    h = jnp.where(mask, h / keep, 0.0)
        return h

    def loss(p, x, y, w, key, keep):
        logp = jax.nn.log_softmax(forward(p, x, key, keep))
        return -jnp.sum(w * jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]) / jnp.sum(w)

    def step(state, lr, keep, key, x, y, w):
        p, m, v, t = state
        g = jax.grad(loss)(p, x, y, w, jax.random.fold_in(key, t), keep)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: m + (g - m) * 0.1, m, g)
        v = jax.tree_util.tree_map(lambda v, g: v + (g * g - v) * 0.001, v, g)
        tf = t.astype(jnp.float32)
        alpha = lr * jnp.sqrt(1.0 - 0.999**tf) / (1.0 - 0.9**tf)
        p = jax.tree_util.tree_map(lambda p, m, v: p - alpha * m / (jnp.sqrt(v) + 1e-7), p, m, v)
        return p, m, v, t

    vstep = jax.vmap(step, in_axes=(0, 0, 0, 0, None, None, None))

    @jax.jit
    def epoch(state, batches, weights):
        def body(s, batch):
            idx, w = batch
            return vstep(s, lr, keep, keys, xt[idx], yt[idx], w), None

        return jax.lax.scan(body, state, (batches, weights))[0]

    @jax.jit
    def val_accuracy(p):
        logits = jax.vmap(forward, in_axes=(0, None))(p, xv)
        return jnp.mean(jnp.argmax(logits, -1) == yv, axis=1)

    order_rng = np.random.default_rng(SEED)
    n_batches = -(-len(xt) // BATCH)
    pad = n_batches * BATCH - len(xt)
    weights = np.concatenate([np.ones(len(xt)), np.zeros(pad)]).astype(np.float32)
    weights = jnp.asarray(weights.reshape(n_batches, BATCH))
    best = np.zeros(n)
    for _ in range(epochs):
        order = order_rng.permutation(len(xt))
        batches = np.concatenate([order, order[:pad]]).reshape(n_batches, BATCH)
        state = epoch(state, jnp.asarray(batches, jnp.int32), weights)
        best = np.maximum(best, np.asarray(val_accuracy(state[0])))
    return [float(b) for b in best]


ANCHORS: dict[str, Callable[..., list[float]]] = {
    "keras_tuner": run_keras_tuner,
    "optuna": run_optuna,
    "plain": run_plain,
    "fleet": run_fleet,
    "tuner_fleet": run_tuner_fleet,
    "jax_loop": run_jax_loop,
}


# ----------------------------------------------------------------- driver
def warm_up() -> None:
    """Start JAX's backend and Keras once, outside every timing."""
    model = seeded(build_mlp, {"lr": 1e-3, "w1": 0, "w2": 0, "w3": 0, "dropout": 0.0})
    model.fit(np.zeros((4, 64), "float32"), np.zeros(4, "int32"), epochs=1, verbose=0)


def throughput_curve(build, configs, data) -> str:
    xt, yt, _, _ = data
    trainer = FleetTrainer(build, seed=SEED, measure_throughput=True)
    t0 = time.perf_counter()
    plan = trainer.plan(configs, batch_size=BATCH, x=xt, y=yt)
    seconds = time.perf_counter() - t0
    return f"{plan.report()}\n(measuring took {seconds:.1f} s, compiles included)"


def timed_run(model_name: str, anchor: str, configs: list[dict], epochs: int) -> dict[str, Any]:
    """Run one anchor once in this process; wall time includes building and compiling."""
    build = {"mlp": build_mlp, "cnn": build_cnn}[model_name]
    data = load_data(image=model_name == "cnn")
    t0 = time.perf_counter()
    scores = ANCHORS[anchor](build, configs, data, epochs)
    row: dict[str, Any] = {
        "seconds": time.perf_counter() - t0,
        "best_val_accuracy": max(scores),
        "trials": len(scores),
        "scores": [round(float(s), 4) for s in scores],
    }
    if anchor == "fleet":
        result = run_fleet.last  # type: ignore[attr-defined]
        stats = result.stats
        row.update(
            groups=len(result.groups),
            compile_seconds=stats["compile_seconds"],
            build_seconds=stats["read_seconds"],
            setup_seconds=stats["setup_seconds"],
            train_seconds=stats["train_seconds"],
            plan=stats["plan"].report(),
        )
    if anchor == "tuner_fleet":  # per-epoch reports and storage writes, SQLite
        stats = run_tuner_fleet.last  # type: ignore[attr-defined]
        row.update(
            bookkeeping_seconds=stats["bookkeeping"],
            bookkeeping_share=stats["bookkeeping"] / row["seconds"],
        )
    return row


def isolated_run(model_name: str, anchor: str, trials: int, epochs: int) -> dict[str, Any]:
    """``timed_run`` in a fresh Python process, so no anchor reuses another's compilations."""
    import subprocess

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        f"{model_name}:{anchor}",
        "--trials",
        str(trials),
        "--epochs",
        str(epochs),
        "--json",
        out,
    ]
    try:
        subprocess.run(cmd, check=True)
        with open(out) as fh:
            return json.load(fh)
    finally:
        os.unlink(out)


def schedule(anchors: list[str], fleet_repeats: int) -> list[str]:
    """Run order: the fleet's repeats interleaved with the anchors (similar machine load)."""
    others = [a for a in anchors if a != "fleet"]
    if "fleet" not in anchors:
        return others
    order: list[str] = []
    left = fleet_repeats
    for anchor in others:
        if left:
            order.append("fleet")
            left -= 1
        order.append(anchor)
    return order + ["fleet"] * left


#: Anchors that train one trial at a time: measured on ``--anchor-trials`` configurations.
ONE_BY_ONE = ("keras_tuner", "optuna", "plain")


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run of an anchor, with every run's seconds and load."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    row = dict(ordered[len(ordered) // 2])
    row["seconds"] = statistics.median(r["seconds"] for r in runs)
    row["per_trial_seconds"] = row["seconds"] / row["trials"]
    row["all_seconds"] = [round(r["seconds"], 2) for r in runs]
    row["all_load_averages"] = [r["load_average"] for r in runs]
    return row


def compare(model_name: str, rows: dict[str, Any], trials: int, anchor_trials: int) -> None:
    """Per-trial speed-ups of the fleets over every other anchor, and accuracy gaps.

    An anchor measured on fewer configurations than the fleet is compared per trial,
    and with the fleet's best accuracy over the same configurations.
    """
    for fast in ("fleet", "tuner_fleet"):
        if fast not in rows:
            continue
        for anchor, row in rows.items():
            if anchor in ("fleet", "tuner_fleet") or anchor.startswith("fleet_"):
                continue
            speedup = row["per_trial_seconds"] / rows[fast]["per_trial_seconds"]
            fleet_best = rows[fast]["best_val_accuracy"]
            if row["trials"] < rows[fast]["trials"] and fast == "fleet":
                fleet_best = max(rows[fast]["scores"][: row["trials"]])
            gap = 100 * (fleet_best - row["best_val_accuracy"])
            row[f"{fast}_speedup"] = speedup
            row[f"{fast}_accuracy_gap_points"] = gap
            scope = f" (per trial, {row['trials']} of {trials})" if row["trials"] < trials else ""
            print(
                f"{model_name:4s} {fast} vs {anchor:12s} {speedup:6.1f}x faster{scope}, "
                f"best val acc {gap:+.2f} points"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="8 trials x 3 epochs")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--anchors", default="keras_tuner,optuna,plain,fleet,tuner_fleet,jax_loop")
    parser.add_argument("--fleet-repeats", type=int, default=3, help="fleet runs (median)")
    parser.add_argument(
        "--anchor-trials",
        type=int,
        help="train only this many configurations with the one-by-one anchors "
        f"({', '.join(ONE_BY_ONE)}) and compare per trial (default: all)",
    )
    parser.add_argument(
        "--fleet-sizes",
        default="",
        help="comma-separated trial counts of extra single fleet runs (e.g. 64,1024)",
    )
    parser.add_argument("--curve", action="store_true", help="also measure throughput curves")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="run all anchors in this process (default: each run in a fresh process)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.epochs = 8, 3
    anchor_trials = min(args.anchor_trials or args.trials, args.trials)
    if anchor_trials < 1:
        parser.error(f"--anchor-trials must be at least 1; got {args.anchor_trials}")
    try:
        fleet_sizes = [int(n) for n in args.fleet_sizes.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--fleet-sizes must be comma-separated integers; got {args.fleet_sizes!r}")

    if args.worker:  # one isolated run, figures to --json
        model_name, anchor = args.worker.split(":")
        warm_up()
        row = timed_run(model_name, anchor, sample_configs(args.trials), args.epochs)
        with open(args.json, "w") as fh:
            json.dump(row, fh)
        return 0

    device = jax.devices()[0]
    print(f"device: {device.platform} {device.device_kind} ({jax.device_count()} device(s))")
    print(
        f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f}; jax {jax.__version__}, keras {keras.__version__}"
    )
    scope = (
        f" (one-by-one anchors: the first {anchor_trials})" if anchor_trials < args.trials else ""
    )
    print(f"{args.trials} trials x {args.epochs} epochs, batch {BATCH}{scope}\n")
    if args.same_process:
        warm_up()
    figures: dict[str, Any] = {
        "device": str(device),
        "device_kind": device.device_kind,
        "jax": jax.__version__,
        "keras": keras.__version__,
        "trials": args.trials,
        "anchor_trials": anchor_trials,
        "epochs": args.epochs,
    }
    runs_planned = [(a, args.trials) for a in schedule(args.anchors.split(","), args.fleet_repeats)]
    runs_planned += [(f"fleet_{n}", n) for n in fleet_sizes]
    for model_name in args.models.split(","):
        rows: dict[str, Any] = {}
        runs_of: dict[str, list[dict[str, Any]]] = {}
        for name, trials in runs_planned:
            anchor = "fleet" if name.startswith("fleet_") else name
            if anchor == "jax_loop" and model_name != "mlp":
                continue  # written for the MLP only
            if anchor in ONE_BY_ONE:
                trials = anchor_trials
            load_before = os.getloadavg()[0]
            try:
                if args.same_process:
                    run = timed_run(model_name, anchor, sample_configs(trials), args.epochs)
                else:
                    run = isolated_run(model_name, anchor, trials, args.epochs)
            except Exception as err:  # report, keep benchmarking the others
                print(f"{model_name} {name}: failed: {type(err).__name__}: {err}")
                continue
            run["load_average"] = round((load_before + os.getloadavg()[0]) / 2, 1)
            runs_of.setdefault(name, []).append(run)
            figures[f"{model_name}_runs"] = runs_of
            if args.json:  # after every run: a time limit cutting the rest keeps these
                with open(args.json, "w") as fh:
                    json.dump(figures, fh, indent=2)
            print(
                f"  ({model_name} {name}: {run['seconds']:.1f} s for {run['trials']} trials, "
                f"load average ~{run['load_average']})",
                flush=True,
            )
        for name, runs in runs_of.items():
            row = rows[name] = summarize_runs(runs)
            extra = ""
            if name.startswith("fleet"):
                extra = (
                    f"  [groups {row['groups']}, compile {row['compile_seconds']:.1f} s, "
                    f"build {row['build_seconds']:.1f} s, train {row['train_seconds']:.1f} s; "
                    f"runs {row['all_seconds']}]"
                )
            if name == "tuner_fleet":
                extra = (
                    f"  [reporting + storage {row['bookkeeping_seconds']:.2f} s = "
                    f"{100 * row['bookkeeping_share']:.1f}% of the wall time]"
                )
            print(
                f"{model_name:4s} {name:12s} {row['seconds']:8.1f} s "
                f"({1000 * row['per_trial_seconds']:7.1f} ms a trial, {row['trials']} trials)  "
                f"best val acc {100 * row['best_val_accuracy']:6.2f}%  "
                f"(load ~{row['all_load_averages']}){extra}",
                flush=True,
            )
        compare(model_name, rows, args.trials, anchor_trials)
        sized = sorted(
            (rows[n]["trials"], rows[n]["seconds"]) for n in rows if n.startswith("fleet_")
        )
        if len(sized) > 1:
            (n0, t0), *rest = sized
            for n, t in rest:
                print(
                    f"{model_name:4s} a fleet of {n} takes {t / t0:.2f}x the time of a fleet of {n0}"
                )
        if args.curve:
            build = {"mlp": build_mlp, "cnn": build_cnn}[model_name]
            curve = throughput_curve(
                build, sample_configs(args.trials), load_data(image=model_name == "cnn")
            )
            print(curve)
            figures[f"{model_name}_curve"] = curve
        figures[model_name] = rows
        print(flush=True)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(figures, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
