"""metrics.jsonl: a line cut by a crash is dropped, and truncation rewrites the file."""

from __future__ import annotations

from modelspec.runtime.runlog import MetricsLog


def test_metrics_log_survives_a_cut_line(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.append({"epoch": 1, "loss": 1.0})
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 2, "lo')
    assert log.read() == [{"epoch": 1, "loss": 1.0}]
    log.truncate(1)
    assert (tmp_path / "metrics.jsonl").read_text() == '{"epoch": 1, "loss": 1.0}\n'
