"""Prometheus text exposition."""

from __future__ import annotations

import pytest

from soritune.serve.metrics import Counter, Histogram, ServeMetrics, parse_text


def test_counter_labels_escape_and_sum():
    c = Counter("x_total", "help")
    c.inc(route="/a", status="200")
    c.inc(2, route="/a", status="200")
    c.inc(route='we"ird\\', status="500")
    assert c.value(route="/a", status="200") == 3
    assert c.value() == 4
    text = "\n".join(c.render())
    assert 'x_total{route="/a",status="200"} 3' in text
    assert 'route="we\\"ird\\\\"' in text
    with pytest.raises(ValueError):
        c.inc(-1)


def test_histogram_buckets_are_cumulative():
    h = Histogram("lat_seconds", "help", (0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(v)
    parsed = parse_text("\n".join(h.render()))
    assert parsed['lat_seconds_bucket{le="0.1"}'] == 2  # le is inclusive
    assert parsed['lat_seconds_bucket{le="1"}'] == 3
    assert parsed['lat_seconds_bucket{le="+Inf"}'] == 4
    assert parsed["lat_seconds_count"] == 4
    assert parsed["lat_seconds_sum"] == pytest.approx(3.65)
    assert h.max == 3.0


def test_serve_metrics_render_every_family_with_type_lines():
    m = ServeMetrics.create()
    m.audio_s.inc(2.5)
    text = m.render()
    for name in ("soritune_requests_total", "soritune_errors_total", "soritune_transcription_latency_seconds",
                 "soritune_audio_seconds_total", "soritune_batch_size", "soritune_model_ready"):
        assert f"# TYPE {name} " in text
    assert parse_text(text)["soritune_audio_seconds_total"] == 2.5
    assert parse_text(text)["soritune_errors_total"] == 0
