#!/usr/bin/env bash
# Fleet training on a GPU: the fleet tests, then benchmarks/throughput.py, figures as JSON.
#
#   benchmarks/gpu_wheels.sh            # here, with network: the wheels into .whl/
#   benchmarks/gpu.sh OUT_DIR           # there: about 8 minutes on one GPU
#   benchmarks/gpu.sh OUT_DIR --tiny    # anywhere: the same steps in a minute or two (CPU)
#
# Written for a bare x86-64 machine with an NVIDIA GPU, Python 3.12, JAX with CUDA,
# scikit-learn, pandas, rich and pytest, and no network (see gpu_wheels.sh for the rest).
# Steps, each bounded by its own time limit so that one slow step cannot eat the others':
#   1. installs the wheels in $GPU_WHEELS (default .whl; "none": use the Python as it is)
#      into a temporary folder, and puts it and the checkout's src/ on PYTHONPATH;
#   2. runs the fleet equivalence and fleet layer tests on the GPU (pytest, JUnit XML);
#   3. runs benchmarks/throughput.py for the digits MLP and the small CNN: fleets of
#      $GPU_TRIALS trials (default 256) x $GPU_EPOCHS epochs (20), against Keras Tuner,
#      Optuna + model.fit and one-by-one training on the first $GPU_ANCHOR_TRIALS
#      configurations (8), compared per trial, and single fleets of $GPU_FLEET_SIZES
#      trials (64,1024) to show how time grows with the fleet.
# Writes into OUT_DIR: environment.txt, fleet-tests.log, fleet-tests.xml,
# throughput-mlp.json, throughput-cnn.json, throughput.log (six files). Exits non-zero
# if a step failed or ran out of time (the figures written until then are kept).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: benchmarks/gpu.sh OUT_DIR [--tiny]}
tiny=${2:-}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=${PYTHON:-python3}
if [ "$tiny" = "--tiny" ]; then
    : "${GPU_TRIALS:=6}" "${GPU_EPOCHS:=2}" "${GPU_ANCHOR_TRIALS:=2}" "${GPU_FLEET_SIZES:=2,6}"
    : "${GPU_REPEATS:=1}" "${GPU_TEST_ARGS:=-k single_trial_without_shuffle}"
    : "${GPU_LIMITS:=300,300,300}"
elif [ -n "$tiny" ]; then
    echo "usage: benchmarks/gpu.sh OUT_DIR [--tiny]" >&2
    exit 2
fi
trials=${GPU_TRIALS:-256}
epochs=${GPU_EPOCHS:-20}
anchor_trials=${GPU_ANCHOR_TRIALS:-8}
fleet_sizes=${GPU_FLEET_SIZES:-64,1024}
repeats=${GPU_REPEATS:-2}
anchors=${GPU_ANCHORS:-keras_tuner,optuna,plain,fleet}
test_args=${GPU_TEST_ARGS:-}
# Seconds for the tests, the MLP and the CNN: 8 minutes in all.
IFS=, read -r limit_tests limit_mlp limit_cnn <<<"${GPU_LIMITS:-120,220,150}"
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2

wheels=${GPU_WHEELS:-.whl}
site=""
if [ "$wheels" != "none" ]; then
    if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
        echo "no wheels in $wheels: run benchmarks/gpu_wheels.sh first (or GPU_WHEELS=none)" >&2
        exit 2
    fi
    site=$(mktemp -d /tmp/tunefleet-gpu-site.XXXXXX)
    "$py" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile \
        --no-cache-dir --target "$site" "$wheels"/*.whl || exit 2
fi
export PYTHONPATH="$PWD/src${site:+:$site}${PYTHONPATH:+:$PYTHONPATH}"

{
    date -u +"%Y-%m-%dT%H:%M:%SZ"
    uname -a
    if command -v nvidia-smi >/dev/null; then nvidia-smi 2>&1; else echo "nvidia-smi: not found"; fi
    "$py" -c 'import sys, jax, keras, optuna, sklearn
print("python", sys.version.split()[0], "| jax", jax.__version__, "| keras", keras.__version__,
      "| optuna", optuna.__version__, "| scikit-learn", sklearn.__version__)
print("devices:", jax.devices())'
} >"$out/environment.txt" 2>&1
cat "$out/environment.txt"

status=0
step() {  # step NAME LIMIT COMMAND...: run with a time limit, remember a failure
    local name=$1 limit=$2 rc
    shift 2
    echo "== $name (at most ${limit} s)"
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    if [ $rc -ne 0 ]; then
        [ $rc -eq 124 ] && echo "== $name: ran out of its ${limit} s" || echo "== $name: exit $rc"
        status=1
    fi
}

# shellcheck disable=SC2086  # test_args are words for pytest
step "fleet tests" "$limit_tests" "$py" -m pytest -p no:cacheprovider -q -o addopts="" \
    tests/test_fleet_equivalence.py tests/test_fleet_layers.py $test_args \
    --junitxml "$out/fleet-tests.xml" >"$out/fleet-tests.log" 2>&1
tail -n 5 "$out/fleet-tests.log"

: >"$out/throughput.log"
for model in mlp cnn; do
    limit=$limit_mlp
    [ "$model" = cnn ] && limit=$limit_cnn
    step "throughput $model" "$limit" "$py" benchmarks/throughput.py --models "$model" \
        --trials "$trials" --epochs "$epochs" --anchor-trials "$anchor_trials" \
        --fleet-sizes "$fleet_sizes" --fleet-repeats "$repeats" --anchors "$anchors" \
        --json "$out/throughput-$model.json" > >(tee -a "$out/throughput.log") 2>&1
done
[ -n "$site" ] && rm -rf "$site"
echo "figures in $out; exit $status"
exit $status
