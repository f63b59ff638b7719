"""Smoke run of benchmarks/bench_server.py (tiny request counts, keyword backend)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_server.py"


@pytest.mark.slow
def test_bench_server_smoke(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH), "--model", "keyword", "--requests", "40",
                          "--concurrency", "1,4", "--json", str(tmp_path / "r.json")],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| micro-batching | concurrency | requests/s | p50 ms | p99 ms | non-200 |" in out.stdout
    assert out.stdout.count("| on |") == 2 and out.stdout.count("| off |") == 2
    import json

    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert all(r["non_200"] == 0 and r["requests"] == 40 for r in rows)
