#!/usr/bin/env bash
# DeepReg's released package (PyPI deepreg 0.1.2, the last release) in its own virtual environment, for
# benchmarks/bench_deepreg.py. TensorFlow 2.15 is the newest with Keras 2 as tf.keras, which DeepReg needs;
# DeepReg's own pins (tensorflow==2.3.1, numpy==1.18.5, h5py<2.11) have no Python 3.11 wheels, so DeepReg is
# installed without its dependencies and these are installed instead (only what its training path imports).
# Usage: bash benchmarks/deepreg_env.sh [ENV_DIR]   (default: .venv-deepreg in the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir="${1:-.venv-deepreg}"
python3 -m venv "$env_dir"
"$env_dir/bin/pip" install -q "tensorflow-cpu==2.15.1" "numpy<2" "h5py<3.12" "scipy<1.14" "matplotlib<3.9" \
    "pandas<2.3" nibabel pyyaml tabulate tqdm
"$env_dir/bin/pip" install -q --no-deps "deepreg==0.1.2"
"$env_dir/bin/python" -c "import deepreg, tensorflow as tf; print('DeepReg env ready: TensorFlow', tf.__version__)"
