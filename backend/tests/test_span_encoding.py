"""`span_encoding`: our OTLP bytes are the library's bytes, and the exporter sends them.

The spans come from the real SDK (a TracerProvider with an in-memory exporter), and the
reference is opentelemetry-exporter-otlp-proto-common's own encoder; the exporter posts to an
HTTP server in the test that parses the body with opentelemetry-proto, as a collector would.
The copy in the frontend is identical (tests/test_shared_files.py).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as library_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from api.observability.span_encoding import WireOTLPSpanExporter, encode_spans

REMOTE_PARENT = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0x00F067AA0BA902B7,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "value"), ("other", "x")]),
)


def provider(
    resource: dict[str, Any], limits: SpanLimits | None = None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=Resource.create(resource), span_limits=limits)
    tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    return tracer_provider, memory


def assert_same_bytes(spans: list[ReadableSpan]) -> None:
    ours, theirs = encode_spans(spans), library_encode_spans(spans).SerializeToString()
    # On a difference, compare the decoded messages: pytest prints what differs.
    assert ExportTraceServiceRequest.FromString(ours) == ExportTraceServiceRequest.FromString(
        theirs
    )
    assert ours == theirs


def test_every_part_of_a_span_is_encoded_as_the_library_encodes_it() -> None:
    first, memory = provider({"service.name": "flights-backend", "n": 3, "f": 1.5, "b": True})
    tracer = first.get_tracer(
        "fastapi",
        "0.165.0",
        schema_url="https://opentelemetry.io/schemas/1.44.0",
        attributes={"scope": "x"},
    )
    attributes: dict[str, Any] = {
        "http.request.method": "GET",
        "url.path": "/api/v1/flights/12",
        "server.port": 12015,
        "negative": -5,
        "zero": 0,
        "int64.max": 2**63 - 1,
        "int64.min": -(2**63),
        "empty": "",
        "unicode": "Zürich ✈",
        "double": -0.25,
        "double.zero": 0.0,
        "true": True,
        "false": False,
        "ints": [1, 2, 3],
        "strings": ("a", ""),
        "bools": [True, False],
        "doubles": (1.5,),
        "nothing": (),
    }
    with tracer.start_as_current_span(
        "GET /api/v1/flights/{flight_id}",
        kind=SpanKind.SERVER,
        attributes=attributes,
        context=set_span_in_context(NonRecordingSpan(REMOTE_PARENT)),
    ) as server:
        server.add_event("exception", {"exception.type": "ValueError", "exception.message": "boom"})
        server.add_event("no attributes")
        server.set_status(Status(StatusCode.ERROR, "went wrong"))
        with first.get_tracer("duckdb").start_as_current_span(
            "SELECT flights",
            kind=SpanKind.CLIENT,
            links=[Link(REMOTE_PARENT, {"link.n": 1}), Link(SpanContext(1, 2, is_remote=False))],
        ) as client:
            client.set_status(Status(StatusCode.OK))
        for kind in (SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER):
            with tracer.start_as_current_span(f"child {kind.name}", kind=kind):
                pass
    with tracer.start_as_current_span(""):  # no name, no attributes, a root span
        pass
    # A second provider with another resource, and a third whose resource is equal to the
    # first's but another object: the library groups equal resources together.
    second, second_memory = provider({"service.name": "flights-frontend"})
    with second.get_tracer("flask").start_as_current_span("GET /"):
        pass
    third, third_memory = provider({"service.name": "flights-backend", "n": 3, "f": 1.5, "b": True})
    with third.get_tracer(
        "fastapi",
        "0.165.0",
        schema_url="https://opentelemetry.io/schemas/1.44.0",
        attributes={"scope": "x"},
    ).start_as_current_span("same resource, same scope"):
        pass

    spans = [
        *memory.get_finished_spans(),
        *second_memory.get_finished_spans(),
        *third_memory.get_finished_spans(),
    ]
    assert len(spans) == 8
    assert_same_bytes(spans)
    assert_same_bytes(spans[::-1])
    assert_same_bytes(spans[:1])
    assert_same_bytes([])


def test_dropped_attributes_events_and_links_are_counted_as_the_library_counts_them() -> None:
    limits = SpanLimits(
        max_attributes=2, max_events=1, max_links=1, max_event_attributes=1, max_link_attributes=1
    )
    tracer_provider, memory = provider({"service.name": "limits"}, limits)
    links = [Link(REMOTE_PARENT, {"a": 1, "b": 2}), Link(REMOTE_PARENT)]
    with tracer_provider.get_tracer("t").start_as_current_span(
        "s", attributes={"a": 1, "b": 2, "c": 3}, links=links
    ) as span:
        span.add_event("first", {"x": 1, "y": 2})
        span.add_event("second")
    spans = list(memory.get_finished_spans())
    assert (
        spans[0].dropped_attributes == 1
        and spans[0].dropped_events == 1
        and spans[0].dropped_links == 1
    )
    assert_same_bytes(spans)


def _random_value(rng: random.Random) -> Any:
    scalar = rng.choice(
        [
            lambda: rng.choice(
                ["", "GET", "/api/v1/flights", "ü" * rng.randint(1, 300), "a" * 200]
            ),
            lambda: rng.choice([0, 1, -1, 127, 128, 300, 2**31, -(2**40), 2**63 - 1, -(2**63)]),
            lambda: rng.choice([0.0, -1.5, 1e300, 3.14159]),
            lambda: rng.random() < 0.5,
        ]
    )
    if rng.random() < 0.2:  # a homogeneous sequence, as the SDK keeps them
        kind = scalar()
        return tuple(
            type(kind)(scalar()) if not isinstance(kind, str) else str(scalar())
            for _ in range(rng.randint(0, 4))
        )
    return scalar()


def test_many_random_spans_encode_as_the_library_encodes_them() -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    tracer_provider, memory = provider({"service.name": "random", "service.instance.id": "x" * 36})
    tracer = tracer_provider.get_tracer("t")
    for n in range(300):
        attributes = {
            f"key.{rng.randint(0, 40)}": _random_value(rng) for _ in range(rng.randint(0, 15))
        }
        kind = rng.choice(list(SpanKind))
        with tracer.start_as_current_span(f"span {n}", kind=kind, attributes=attributes) as span:
            for _ in range(rng.randint(0, 2)):
                span.add_event(f"event {rng.randint(0, 9)}", {"e": _random_value(rng)})
    spans = list(memory.get_finished_spans())
    try:
        assert_same_bytes(spans)
    except AssertionError:
        pytest.fail(f"random spans differ (seed {seed})")


def test_values_it_does_not_encode_are_left_to_the_library(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An integer beyond 64 bits or a lone surrogate: the library logs and drops that
    attribute; with the whole batch handed to it, the output is exactly its output."""
    tracer_provider, memory = provider({"service.name": "odd"})
    with tracer_provider.get_tracer("t").start_as_current_span(
        "big", attributes={"big": 2**70, "ok": 1}
    ):
        pass
    with tracer_provider.get_tracer("t").start_as_current_span(
        "surrogate", attributes={"s": "\ud800"}
    ):
        pass
    spans = list(memory.get_finished_spans())
    with caplog.at_level(logging.ERROR):
        ours = encode_spans(spans)
    assert ours == library_encode_spans(spans).SerializeToString()
    decoded = ExportTraceServiceRequest.FromString(ours).resource_spans[0].scope_spans[0].spans
    assert [a.key for a in decoded[0].attributes] == ["ok"]  # the library dropped "big"
    assert "Failed to encode key big" in caplog.text


def test_zero_and_negative_zero_are_not_one_cached_value() -> None:
    """Regression: 0.0 == -0.0 with one hash, so a cache keyed on the value gave -0.0 the
    bytes of 0.0 (found in review); the library writes the sign bit."""
    tracer_provider, memory = provider({"service.name": "zeros"})
    for value in (0.0, -0.0, 0.0):
        with tracer_provider.get_tracer("t").start_as_current_span("z", attributes={"v": value}):
            pass
    assert_same_bytes(list(memory.get_finished_spans()))


def test_resources_equal_but_hashed_apart_stay_apart_as_in_the_library() -> None:
    """Regression: `Resource.__eq__` holds for {"k": 1} and {"k": True} but their hashes
    differ, so the library's dict keeps two ResourceSpans; merging them sent spans under
    the other resource's attributes (found in review)."""
    spans = []
    for value in (1, True, 1.0, 1):
        tracer_provider, memory = provider({"service.name": "same", "k": value})
        with tracer_provider.get_tracer("t").start_as_current_span(f"k={value!r}"):
            pass
        spans += memory.get_finished_spans()
    assert_same_bytes(spans)
    assert len(ExportTraceServiceRequest.FromString(encode_spans(spans)).resource_spans) == 3


def test_a_timestamp_it_cannot_write_goes_to_the_library_which_refuses_it() -> None:
    """A negative start time (the SDK takes what the caller passes): the library's encoder
    raises, and so does ours, with the library's error (the exporter fails that batch)."""
    tracer_provider, memory = provider({"service.name": "time"})
    with tracer_provider.get_tracer("t").start_as_current_span("early", start_time=-1):
        pass
    spans = list(memory.get_finished_spans())
    with pytest.raises(Exception) as theirs:
        library_encode_spans(spans).SerializePartialToString()
    with pytest.raises(type(theirs.value)):
        encode_spans(spans)


class _Collector:
    """An OTLP/HTTP endpoint (POST /v1/traces) that keeps each body and answers `status`."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.status = 200
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                collector.bodies.append((self.headers.get("Content-Type", ""), body))
                self.send_response(collector.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def collector() -> Iterator[_Collector]:
    running = _Collector()
    yield running
    running.server.shutdown()
    running.server.server_close()


def test_the_exporter_posts_the_encoded_batch_and_reports_failures(collector: _Collector) -> None:
    tracer_provider, memory = provider({"service.name": "export"})
    with tracer_provider.get_tracer("t").start_as_current_span(
        "GET /", kind=SpanKind.SERVER, attributes={"a": 1}
    ):
        pass
    spans = list(memory.get_finished_spans())
    exporter = WireOTLPSpanExporter(endpoint=collector.endpoint, timeout=5)

    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert collector.bodies == [
        ("application/x-protobuf", library_encode_spans(spans).SerializeToString())
    ]

    collector.status = 400  # not retryable: one attempt, then failure
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert len(collector.bodies) == 2

    exporter.shutdown()
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert len(collector.bodies) == 2  # nothing sent after shutdown


def test_the_exporter_drops_a_batch_larger_than_its_limit(collector: _Collector) -> None:
    tracer_provider, memory = provider({"service.name": "export"})
    with tracer_provider.get_tracer("t").start_as_current_span(
        "GET /", attributes={"long": "x" * 2000}
    ):
        pass
    exporter = WireOTLPSpanExporter(endpoint=collector.endpoint, timeout=5, max_request_size=1000)
    assert exporter.export(list(memory.get_finished_spans())) is SpanExportResult.FAILURE
    assert collector.bodies == []
