"""The benchmark harness runs end to end (tiny scale) and writes a complete report.

Only the shape of the report is checked, never a speed: `make test` must pass on any machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_SECTIONS = ("latency_c1", "paced", "throughput", "delayed", "streams")
ROUTES = ("openai", "ollama")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """One tiny benchmark run, asked to compare with a LiteLLM that is not there."""
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--scale", "tiny", "--out", str(out),
         "--litellm", str(out / "no-such-venv" / "bin" / "litellm")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    return proc, out


def test_tiny_run_writes_every_section(tiny_run):
    """`bench.run --scale tiny` exits 0 and its JSON has every section for the direct path and litegate."""
    proc, out = tiny_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "latest.json").read_text())
    assert set(report) >= {"meta", "systems", "targets", "comparison"}
    assert report["meta"]["scale"] == "tiny"
    lg, direct = report["systems"]["litegate"], report["systems"]["direct"]
    assert {"startup", "memory_flat", *SYSTEM_SECTIONS} <= set(lg), lg.get("error")
    assert set(SYSTEM_SECTIONS) <= set(direct)
    assert lg["startup"]["ready_s"] > 0 and lg["startup"]["idle_rss_mb"] is not None
    for route in ROUTES:
        assert {"nonstream", "stream"} <= set(lg["latency_c1"][route])
        assert {"c16", "c64", "stream_c16"} <= set(lg["throughput"][route])
        assert "cpu_ms_per_req" in lg["throughput"][route]["c16"]
        assert {"errors", "rss_peak_mb", "n"} <= set(lg["streams"][route])
        assert {"v1_c16", "api_c16", "v1_stream_c16", "api_stream_c16", "api_c1", "api_c1_stream"} <= set(
            lg["ollama_face"][route])
        assert lg["ollama_face"][route]["api_c16"]["errors"] == 0  # /api/chat answered on both routes
        assert lg["paced"][route]["n"] > 0 and lg["paced"][route]["ttft_p50_ms"] is not None
        assert lg["delayed"][route]["n"] > 0 and "cpu_util" in lg["delayed"][route]
        assert 0 <= lg["delayed"][route]["bunched"] <= 1  # a share, measured from the answers' end times
    assert {"rss_after_warmup_mb", "rss_after_mb", "delta_mb", "requests"} <= set(lg["memory_flat"])
    for route in ROUTES:  # the Anthropic face beside the OpenAI face, same backend, streams ended properly
        runs = lg["anthropic_face"][route]
        assert {"v1_c16", "messages_c16", "v1_stream_c16", "messages_stream_c16"} <= set(runs)
        assert runs["messages_c16"]["errors"] == 0 and runs["messages_stream_c16"]["errors"] == 0
    floor = report["systems"]["floor"]  # the bare pass-through beside litegate, OpenAI route only
    assert {"startup", *SYSTEM_SECTIONS} <= set(floor), floor.get("error")
    assert floor["throughput"]["openai"]["c16"]["errors"] == 0 and "ollama" not in floor["throughput"]
    for face in ("chat", "responses"):  # the Responses face beside chat, same backend, none failing
        runs = lg["responses_face"][face]
        assert {"nonstream", "stream"} <= set(runs) and "cpu_ms_per_req" in runs["nonstream"]
        assert runs["nonstream"]["errors"] == 0 and runs["stream"]["errors"] == 0


def test_every_target_line_has_a_verdict(tiny_run):
    """Each target line in the report says PASS, MISS or n/a, and the Markdown report lists them."""
    _, out = tiny_run
    report = json.loads((out / "latest.json").read_text())
    assert len(report["targets"]) >= 10
    assert {t["status"] for t in report["targets"]} <= {"PASS", "MISS", "n/a"}
    md = (out / "latest.md").read_text()
    assert "## Targets" in md and "## All figures" in md and "## The floor (OpenAI route)" in md
    assert len(list(out.glob("*.json"))) == 2 and len(list(out.glob("*.md"))) == 2  # <timestamp> + latest


def test_missing_litellm_is_a_note_not_a_failure(tiny_run):
    """A LiteLLM that is not installed leaves a clear note and exit status 0; litegate's figures remain."""
    proc, out = tiny_run
    report = json.loads((out / "latest.json").read_text())
    assert proc.returncode == 0
    assert report["comparison"]["status"] == "unavailable"
    assert "not installed" in report["comparison"]["note"]
    assert "litellm" not in report["systems"]
    assert "LiteLLM is not installed" in (out / "latest.md").read_text()
