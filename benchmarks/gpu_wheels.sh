#!/usr/bin/env bash
# Download the wheels that benchmarks/gpu.sh installs on an offline GPU machine.
#
#   benchmarks/gpu_wheels.sh [DIR]        # default DIR: .whl (git-ignored)
#
# The GPU machine this is written for has Python 3.12 with JAX (CUDA), NumPy, SciPy,
# scikit-learn, pandas, rich, psutil, matplotlib, typer, h5py, ml-dtypes, absl-py,
# protobuf, grpcio and pytest, and no network. It lacks Keras, Optuna, Keras Tuner,
# SQLAlchemy and cmaes: this script fetches those, pinned to the versions tunefleet is
# tested with, as CPython wheels for x86-64 Linux, without their dependencies (those
# the machine lacks are listed here one by one). tunefleet itself is not a wheel:
# gpu.sh puts the checkout's src/ on PYTHONPATH, so the run uses the code as it is.
# GPU_PYTHON_VERSION=3.11 fetches wheels for another Python (to try gpu.sh here).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
pyver=${GPU_PYTHON_VERSION:-3.12}
wheels=(
    keras==3.15.1 namex==0.1.0 optree==0.20.0
    optuna==5.1.0 alembic==1.20.1 Mako==1.4.3 colorlog==6.12.0 sqlalchemy==2.1.9
    greenlet==3.5.6 cmaes==0.13.1
    keras-tuner==1.4.8 kt-legacy==1.0.5
)
rm -rf "$dest"
mkdir -p "$dest"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
    manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$pyver" --implementation cp "${platforms[@]}" -d "$dest" "${wheels[@]}"
size=$(du -sm "$dest" | cut -f1)
echo "$(ls "$dest" | wc -l) wheels for Python $pyver in $dest ($size MiB)"
if [ "$size" -gt 60 ]; then
    echo "warning: $size MiB leaves little of the 64 MiB a device run may carry" >&2
fi
