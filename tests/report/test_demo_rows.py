"""The demo's report rows: one per system and held-out voice family, read from the `test_set` slices of
one evaluation; the issue's targets computed from them."""

from __future__ import annotations

import json

import pytest

from soritune.demo import _slice_system, _targets


def _slice(cer, lo, hi, n=10):
    return {"n_utts": n, "cer": cer, "wer": cer + 0.1, "cer_reading": cer - 0.01, "ci95": {"cer": [lo, hi]}}


def _eval_dir(tmp_path, name, slices):
    d = tmp_path / name
    d.mkdir()
    (d / "report.json").write_text(json.dumps({"cer": 0.5, "timing": {"rtfx": 3.0}, "slices": {"test_set": slices}}))
    return d


def test_rows_come_from_the_family_slices(tmp_path):
    d = _eval_dir(tmp_path, "lora", {"lecture-kokoro": _slice(0.12, 0.1, 0.14, 48), "everyday-kokoro": _slice(0.2, 0.1, 0.3),
                                     "lecture-espeak": _slice(0.4, 0.3, 0.5, 24)})
    k = _slice_system(d, "lora · kokoro", "kokoro")
    assert (k.cer, k.cer_ci95, k.cer_everyday, k.n_utts, k.rtfx) == (0.12, [0.1, 0.14], 0.2, 48, 3.0)
    e = _slice_system(d, "lora · espeak", "espeak")
    assert e.cer == 0.4 and e.cer_everyday is None  # no everyday-espeak slice
    assert _slice_system(_eval_dir(tmp_path, "zs", {"lecture-kokoro": _slice(0.3, 0.2, 0.4)}), "zs", "espeak") is None


def test_targets(tmp_path):
    def row(name, lecture, everyday):
        d = _eval_dir(tmp_path, name.replace(" · ", "-"), {"lecture-kokoro": _slice(lecture, 0, 1),
                                                             "everyday-kokoro": _slice(everyday, 0, 1)})
        return _slice_system(d, name, "kokoro")

    zs, lora, q, c = (row("zero-shot · kokoro", 0.30, 0.25), row("lora · kokoro", 0.12, 0.24),
                      row("qlora4 · kokoro", 0.15, 0.26), row("ct2-int8 · kokoro", 0.126, 0.24))
    c.extra["parent"] = "lora · kokoro"
    t = _targets([zs, lora, q, c])
    assert t["lora_cer_vs_half_zero_shot"]["met"] and t["lora_cer_at_most_15"]["met"]
    assert t["everyday_no_worse"]["met"]
    assert t["qlora4_within_2"] == {"delta_points": pytest.approx(3.0), "met": False}
    assert t["int8_within_0.5"]["delta_points"] == pytest.approx(0.6) and not t["int8_within_0.5"]["met"]


def test_report_renders_extra_tables(tmp_path):
    """build_report's `tables`: titled tables beside the systems, in report.md and report.html."""
    from soritune.report import build_report
    from soritune.report.collect import System

    tables = {"Hallucination suite": (["system", "loops"], [["lora", "0.0%"], ["zero-shot", "4.2% (0.0-12.5)"]])}
    build_report([System(name="lora · kokoro", cer=0.2, cer_ci95=[0.1, 0.3])], tmp_path, tables=tables)
    md = (tmp_path / "report.md").read_text()
    assert "## Hallucination suite" in md and "| zero-shot | 4.2% (0.0-12.5) |" in md
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Hallucination suite</h2>" in html and "<td>4.2% (0.0-12.5)</td>" in html
