#!/usr/bin/env bash
# One-command install: pinned dependencies (envs/requirements.lock), then this project in
# editable mode so scripts/ can import workflow_lib. Runs in the active Python (3.11);
# create and activate a virtual environment first if you want one.
# torch is pinned to the 2.13.0 CPU wheel; pip finds it through its find-links setting
# (or install torch==2.13.0 from your cluster's wheel mirror before running this).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-python}"

"$python" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Python >= 3.11 required, found " + sys.version.split()[0])'
"$python" -m pip install --disable-pip-version-check -q -r "$here/requirements.lock"
"$python" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e "$root"
"$python" -c 'import workflow_lib, torch, transformers, optuna, mlflow, snakemake; print("installed: torch", torch.__version__, "| transformers", transformers.__version__, "| optuna", optuna.__version__, "| mlflow", mlflow.__version__)'
