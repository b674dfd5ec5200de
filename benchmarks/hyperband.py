"""Hyperband, Keras Tuner's vs. tunefleet's, one configuration at a time vs. fleets.

Tunes the digits MLP of ``throughput.py`` (learning rate log-uniform 1e-4..1e-2, three
widths from 32/64/128, dropout 0..0.5) with the Hyperband schedule ``max_epochs=9,
factor=3`` (3 brackets, 17 configurations, 75 epochs) using:

* Keras Tuner ``Hyperband`` (``keras_tuner``),
* ``tunefleet.Hyperband(fleet=False)`` (``solo``): rounds one configuration at a time,
* ``tunefleet.Hyperband(fleet=True)`` (``fleet``): each round's configurations as fleets.

The two tunefleet runs use one seed, so they train the same configurations (the test
suite checks that they store the same trials); Keras Tuner draws its own. Each anchor
runs in a fresh process (no compilation cache shared); wall times include model
building, compilation, the study and checkpoints. Prints medians over ``--repeats``.

Usage::

    python benchmarks/hyperband.py                     # max_epochs=9, 3 repeats
    python benchmarks/hyperband.py --max-epochs 27 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

ANCHORS = ("keras_tuner", "solo", "fleet")


def build(hp):
    """The digits MLP of ``throughput.py``, its arguments drawn from ``hp``."""
    from throughput import build_mlp

    return build_mlp(
        lr=hp.Float("lr", 1e-4, 1e-2, sampling="log"),
        w1=hp.Choice("w1", [0, 1, 2]),
        w2=hp.Choice("w2", [0, 1, 2]),
        w3=hp.Choice("w3", [0, 1, 2]),
        dropout=hp.Float("dropout", 0.0, 0.5),
    )


def run(anchor: str, max_epochs: int, directory: str) -> dict[str, float]:
    """One search; its wall time and best validation accuracy."""
    from throughput import BATCH, load_data

    if anchor == "keras_tuner":
        import keras_tuner as tuners
    else:
        import tunefleet as tuners
    xt, yt, xv, yv = load_data(image=False)
    options = {} if anchor == "keras_tuner" else {"fleet": anchor == "fleet", "progress": False}
    start = time.perf_counter()
    tuner = tuners.Hyperband(
        build,
        objective="val_accuracy",
        max_epochs=max_epochs,
        factor=3,
        seed=0,
        directory=directory,
        project_name=anchor,
        **options,
    )
    tuner.search(xt, yt, batch_size=BATCH, validation_data=(xv, yv), verbose=0)
    seconds = time.perf_counter() - start
    best = tuner.oracle.get_best_trials(1)[0].score
    figures = {"seconds": seconds, "best": float(best), "trials": len(tuner.oracle.trials)}
    if anchor == "fleet":
        figures["compile"] = tuner.fleet_stats_["compile"]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--anchors", default=",".join(ANCHORS))
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        with tempfile.TemporaryDirectory(prefix="hb-bench-") as directory:
            print(json.dumps(run(args.worker, args.max_epochs, directory)))
        return 0
    import jax

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"JAX device {jax.devices()[0]}; Hyperband max_epochs={args.max_epochs}, factor=3"
    )
    results: dict[str, list[dict[str, float]]] = {}
    for repeat in range(args.repeats):
        for anchor in args.anchors.split(","):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    anchor,
                    "--max-epochs",
                    str(args.max_epochs),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            results.setdefault(anchor, []).append(figures)
            print(
                f"  run {repeat + 1} {anchor:12s} {figures['seconds']:7.1f} s  "
                f"best val_accuracy {figures['best']:.4f}  ({figures['trials']} trials)"
                + (f", {figures['compile']:.1f} s compiling" if "compile" in figures else ""),
                flush=True,
            )
    medians = {a: statistics.median(r["seconds"] for r in rs) for a, rs in results.items()}
    print("\nanchor        median s   best val_accuracy (median)")
    for anchor, rs in results.items():
        best = statistics.median(r["best"] for r in rs)
        print(f"{anchor:12s} {medians[anchor]:9.1f}   {best:.4f}")
    if "fleet" in medians:
        for anchor in medians:
            if anchor != "fleet":
                print(f"fleet is {medians[anchor] / medians['fleet']:.1f}x faster than {anchor}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"max_epochs": args.max_epochs, "runs": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
