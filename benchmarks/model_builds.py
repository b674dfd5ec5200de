"""Building many Keras models: Keras's own initialisation against tunefleet's.

Builds 64 models of a family, each with its optimizer (as its first ``fit`` would), in a
fresh process, side by side:

* ``keras``: plain Keras builds;
* ``tunefleet``: the same builds inside ``tunefleet.keras.shared_draw_programs()``, as
  every build of tunefleet's faces and fleets runs (see ``docs/fleet.md``).

It prints the seconds and the XLA compilations of each, and their ratios. The families:
``search`` (the digits MLP of ``benchmarks/multi_fidelity``, depth 1-3 and width 16-256
drawn log-uniformly: a new shape nearly every build), ``mlp`` and ``cnn`` (the digits
models of ``benchmarks/throughput.py``, widths from three choices). The weights are the
same either way (``tests/test_initializer_draws.py``).

Usage::

    python benchmarks/model_builds.py                 # 64 models a family, 3 repeats
    python benchmarks/model_builds.py --models 16 --repeats 1 --families search
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("search", "mlp", "cnn")
MODES = ("keras", "tunefleet")


def build_all(family: str, mode: str, n_models: int) -> dict:
    """In this process: seconds and XLA compilations to build ``n_models`` of ``family``."""
    import contextlib
    import time

    import jax
    import keras
    import numpy as np
    from benchmarks.multi_fidelity.tasks import TASKS
    from benchmarks.throughput import build_cnn, build_mlp, sample_configs

    from tunefleet.keras import shared_draw_programs

    compilations = [0]

    def count(event: str, seconds: float, **kwargs: object) -> None:
        compilations[0] += event == "/jax/core/compile/backend_compile_duration"

    if family == "search":
        rng = np.random.default_rng(0)
        depths = rng.integers(1, 4, n_models)
        widths = np.exp(rng.uniform(np.log(16), np.log(256), n_models))
        configs = [
            {"depth": int(depth), "width": round(float(width))}
            for depth, width in zip(depths, widths, strict=True)
        ]
        build = TASKS["digits-mlp"].build
    else:
        configs = sample_configs(n_models)
        build = {"mlp": build_mlp, "cnn": build_cnn}[family]
    jax.monitoring.register_event_duration_secs_listener(count)
    context = shared_draw_programs() if mode == "tunefleet" else contextlib.nullcontext()
    start = time.perf_counter()
    with context:
        for config in configs:
            keras.utils.set_random_seed(0)
            model = build(**config)
            model.optimizer.build(model.trainable_variables)
    seconds = time.perf_counter() - start
    return {"family": family, "mode": mode, "seconds": seconds, "compilations": compilations[0]}


def run_child(family: str, mode: str, n_models: int) -> dict:
    """:func:`build_all` in a fresh process (JAX's in-memory caches start empty)."""
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    command = [
        sys.executable,
        "-m",
        "benchmarks.model_builds",
        "--child",
        family,
        mode,
        str(n_models),
    ]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=64, help="models built a run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (median)")
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"of {FAMILIES}")
    parser.add_argument("--json", help="write the runs to this file")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        family, mode, n_models = args.child
        print(json.dumps(build_all(family, mode, int(n_models))))
        return
    families = args.families.split(",")
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"--families: unknown {unknown}; expected names of {FAMILIES}")
    print(f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    runs = [
        run_child(family, mode, args.models)
        for family in families
        for _ in range(args.repeats)
        for mode in MODES  # alternated, so that drift in the machine's speed hits both
    ]
    print(f"\n{args.models} models a run, median of {args.repeats}\n")
    print(
        "| family | Keras s | tunefleet s | ratio | Keras compilations | tunefleet compilations |"
    )
    print("|---|---|---|---|---|---|")
    for family in families:

        def median(mode: str, key: str, family: str = family) -> float:
            return statistics.median(
                r[key] for r in runs if (r["family"], r["mode"]) == (family, mode)
            )

        keras_s, ours_s = median("keras", "seconds"), median("tunefleet", "seconds")
        print(
            f"| {family} | {keras_s:.2f} | {ours_s:.2f} | {ours_s / keras_s:.2f} "
            f"| {median('keras', 'compilations'):.0f} | {median('tunefleet', 'compilations'):.0f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"models": args.models, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
