#!/usr/bin/env bash
# Set up (if needed) and start the MedSight app on its offline default at http://127.0.0.1:8501
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False
# MEDSIGHT_DEV=1: reload pages when their files change (off by default: see .streamlit/config.toml)
[ "${MEDSIGHT_DEV:-0}" = 1 ] && set -- --server.fileWatcherType auto --server.runOnSave true "$@"
exec .venv/bin/streamlit run app.py --server.address "${MEDSIGHT_ADDRESS:-127.0.0.1}" --server.port "${MEDSIGHT_PORT:-8501}" "$@"
