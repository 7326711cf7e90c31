"""Request metrics kept in plain counters render as Prometheus counters and histograms."""

from __future__ import annotations

from modelyard.runtime.metrics import RuntimeMetrics


def test_requests_render_as_a_counter_and_a_cumulative_histogram() -> None:
    metrics = RuntimeMetrics(lambda: 2, lambda: 5, batching=False)
    metrics.observe("/score", 200, 0.0007)
    metrics.observe("/score", 200, 0.02)
    metrics.observe("/score", 500, 30.0)
    text = metrics.render().decode()
    assert 'modelyard_requests_total{route="/score",status="200"} 2.0' in text
    assert 'modelyard_requests_total{route="/score",status="500"} 1.0' in text
    assert 'modelyard_request_duration_seconds_bucket{le="0.0005",route="/score"} 0.0' in text
    assert 'modelyard_request_duration_seconds_bucket{le="0.001",route="/score"} 1.0' in text
    assert 'modelyard_request_duration_seconds_bucket{le="0.025",route="/score"} 2.0' in text
    assert 'modelyard_request_duration_seconds_bucket{le="10.0",route="/score"} 2.0' in text
    assert 'modelyard_request_duration_seconds_bucket{le="+Inf",route="/score"} 3.0' in text
    assert 'modelyard_request_duration_seconds_count{route="/score"} 3.0' in text
    assert 'modelyard_request_duration_seconds_sum{route="/score"} 30.0207' in text
    assert "modelyard_requests_in_flight 2.0" in text
    assert "modelyard_accept_backlog 5.0" in text


def test_the_batch_size_histogram_exists_only_when_batching() -> None:
    batching = RuntimeMetrics(lambda: 0, lambda: 0, batching=True)
    batching.observe_batch(3)
    assert 'modelyard_batch_size_bucket{le="4.0"} 1.0' in batching.render().decode()
    plain = RuntimeMetrics(lambda: 0, lambda: 0, batching=False)
    plain.observe_batch(3)
    assert "modelyard_batch_size" not in plain.render().decode()
