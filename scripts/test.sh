#!/usr/bin/env bash
# The whole test suite: lint, types, then pytest. Called by ./run.sh test and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
bash scripts/ensure-postgres.sh
bash scripts/ensure-chromium.sh
bash scripts/ensure-airflow.sh  # tests/airflow drive Airflow 3 from its own virtualenv
bash scripts/ensure-slurm.sh  # a real single-node Slurm for the Slurm executor tests
echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy"
mypy
# the Airflow operators once more, against Airflow's own types (the main venv has no Airflow)
mypy --python-executable .venv-airflow/bin/python --cache-dir .mypy_cache/airflow greenai/integrations
echo "== pytest"
pytest "$@"
