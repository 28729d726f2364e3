from classroom.metrics import Metrics


def test_each_events_latency_is_its_own_series() -> None:
    metrics = Metrics()
    join = metrics.event_latency_of("join")
    assert metrics.event_latency_of("join") is join  # looked up once
    join.observe(0.01)
    metrics.event_latency_of("join").observe(0.02)
    metrics.event_latency_of("signal").observe(0.5)
    text = metrics.render().decode()
    assert 'classroom_socketio_event_seconds_count{event="join"} 2.0' in text
    assert 'classroom_socketio_event_seconds_count{event="signal"} 1.0' in text
