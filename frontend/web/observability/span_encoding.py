"""Finished spans to OTLP protobuf bytes, written straight to the wire format, and the
OTLP/HTTP exporter that sends them (docs/observability.md, docs/performance.md section 12).

Why this is written by hand: the OpenTelemetry exporter's encoder
(opentelemetry-exporter-otlp-proto-common, `trace_encoder._encode_span`) builds one protobuf
message object per span, attribute and value and then serialises them. Under load that was
the largest single part of what telemetry costs a request (measured in docs/performance.md);
no maintained library encodes OTLP faster from Python. This module produces the same bytes:
`encode_spans(spans)` equals `trace_encoder.encode_spans(spans).SerializeToString()` byte for
byte (the tests compare them over every kind of span the SDK makes). On anything it does not
handle (an attribute value of another type, an integer beyond 64 bits, a string that is not
valid UTF-8, a timestamp that is not a 64-bit unsigned integer) it hands the whole batch to
the library's encoder, so the output, and the library's own handling of such values (it logs
and drops the attribute, or refuses the batch), stay the library's.

The message layout is opentelemetry-proto's `trace/v1/trace.proto`, `common/v1/common.proto`,
`resource/v1/resource.proto` and `collector/trace/v1/trace_service.proto`; fields are written
in field-number order, as protobuf serialises them, and proto3 defaults (0, "", empty bytes)
are left out except inside `AnyValue`'s oneof and for message fields that are set.

This file is identical in both services (`tests/test_shared_files.py`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as library_encode_spans,
)
from opentelemetry.exporter.otlp.proto.http._common import (
    RequestPayloadTooLargeError,
    _is_request_too_large,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter, _logger
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import SpanKind

_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_double = struct.Struct("<d").pack
_SMALL = tuple(bytes((n,)) for n in range(128))
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

# trace.proto Span.SpanKind: the SDK's enum starts at INTERNAL = 0, the protocol's at 1.
_KIND = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
# SpanFlags: the context's is-remote bit is known (always), and set when the parent is remote.
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200


class _Unsupported(Exception):
    """A value this encoder leaves to the library's (see the module doc)."""


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): tag, length, payload."""
    return tag + _varint(len(payload)) + payload


def _utf8(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as error:  # lone surrogates: the library decides
        raise _Unsupported from error


def _string(tag: bytes, value: str | None) -> bytes:
    """A string field, left out when empty or unset (a proto3 default)."""
    return _field(tag, _utf8(value)) if value else b""


def _ids(context: Any) -> bytes:
    """The trace_id (field 1, 16 bytes) and span_id (field 2, 8 bytes) of a Span or Link."""
    trace_id: bytes = context.trace_id.to_bytes(16, "big")
    span_id: bytes = context.span_id.to_bytes(8, "big")
    return b"\x0a\x10" + trace_id + b"\x12\x08" + span_id


def _any_value(value: Any) -> bytes:
    """common.proto AnyValue, the same choice of field as the library's `_encode_value`."""
    if value is None:
        return b""
    if isinstance(value, bool):  # before int: bool is an int
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):  # written even when empty: a oneof member is set
        return _field(b"\x0a", _utf8(value))
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _Unsupported
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _double(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, (tuple, list)):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    raise _Unsupported  # mappings and other types: the library's rules


def _key_value(key: str, value: Any) -> bytes:
    """common.proto KeyValue, framed as field 1 (the caller swaps in its own tag)."""
    return _field(b"\x0a", _string(b"\x0a", key) + _field(b"\x12", _any_value(value)))


# `kind` keeps 1 and True apart (equal dict keys). Floats are not cached: 0.0 == -0.0 with
# one hash, but their bytes differ. Nor are long strings: a cached entry keeps its value.
_cached_key_value = lru_cache(maxsize=4096)(lambda key, value, kind: _key_value(key, value))
_CACHED_STRING_LENGTH = 256


def _attributes(tag: bytes, attributes: Any) -> bytes:
    """Each attribute as a KeyValue field `tag`. Short string, int and bool pairs repeat from
    span to span (the method, the route, the status), so their encoding is cached."""
    if not attributes:
        return b""
    parts = []
    for key, value in attributes.items():
        kind: Any = type(value)
        if kind is int or kind is bool or (kind is str and len(value) <= _CACHED_STRING_LENGTH):
            encoded = _cached_key_value(key, value, kind)
        else:
            encoded = _key_value(key, value)
        parts.append(tag + encoded[1:])  # the cached KeyValue was framed with tag 0x0a
    return b"".join(parts)


def _flags(parent: Any) -> bytes:
    return _fixed32(
        _HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE
    )


def _span(span: ReadableSpan) -> bytes:
    """trace.proto Span (fields 1-16), as the library's `_encode_span` fills them."""
    context = span.context
    if context is None:  # a span the SDK made always has one
        raise _Unsupported
    parent = span.parent
    out = [_ids(context)]
    if context.trace_state is not None:
        out.append(_string(b"\x1a", ",".join(f"{k}={v}" for k, v in context.trace_state.items())))
    if parent:
        out.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    out.append(_string(b"\x2a", span.name))
    out.append(b"\x30" + _SMALL[_KIND[span.kind]])
    if span.start_time:
        out.append(b"\x39" + _fixed64(span.start_time))
    if span.end_time:
        out.append(b"\x41" + _fixed64(span.end_time))
    out.append(_attributes(b"\x4a", span.attributes))
    if span.dropped_attributes:
        out.append(b"\x50" + _varint(span.dropped_attributes))
    for event in span.events:
        body = [b"\x09" + _fixed64(event.timestamp)] if event.timestamp else []
        body.append(_string(b"\x12", event.name))
        body.append(_attributes(b"\x1a", event.attributes))
        if event.dropped_attributes:
            body.append(b"\x20" + _varint(event.dropped_attributes))
        out.append(_field(b"\x5a", b"".join(body)))
    if span.dropped_events:
        out.append(b"\x60" + _varint(span.dropped_events))
    for link in span.links:
        body = [_ids(link.context), _attributes(b"\x22", link.attributes)]
        if link.dropped_attributes:
            body.append(b"\x28" + _varint(link.dropped_attributes))
        body.append(b"\x35" + _flags(link.context))
        out.append(_field(b"\x6a", b"".join(body)))
    if span.dropped_links:
        out.append(b"\x70" + _varint(span.dropped_links))
    status = span.status
    if status is not None:  # a set message field is written even when empty
        code = status.status_code.value
        out.append(
            _field(
                b"\x7a",
                _string(b"\x12", status.description) + (b"\x18" + _SMALL[code] if code else b""),
            )
        )
    out.append(b"\x85\x01" + _flags(parent))
    return b"".join(out)


def _scope(scope: Any) -> bytes:
    """common.proto InstrumentationScope (always set, empty when the span has none)."""
    if scope is None:
        return b""
    return (
        _string(b"\x0a", scope.name)
        + _string(b"\x12", scope.version)
        + _attributes(b"\x1a", scope.attributes)
    )


def _encode(spans: Sequence[ReadableSpan]) -> bytes:
    # Grouped as the library groups them, in the order of first appearance: in a dict keyed
    # by the resource (resources that are equal AND hash alike are one), then by scope.
    # `Resource.__hash__` dumps the attributes to JSON: computed once per resource object of
    # the batch here, not once per span.
    groups: dict[Any, dict[Any, list[bytes]]] = {}
    by_object: dict[int, dict[Any, list[bytes]]] = {}
    for span in spans:
        resource = span.resource
        scopes = by_object.get(id(resource))
        if scopes is None:
            scopes = by_object[id(resource)] = groups.setdefault(resource, {})
        scopes.setdefault(span.instrumentation_scope or None, []).append(_span(span))
    out = []
    for resource, by_scope in groups.items():
        body = [_field(b"\x0a", _attributes(b"\x0a", resource.attributes))]
        for scope, encoded in by_scope.items():
            scope_spans = [_field(b"\x0a", _scope(scope))]
            scope_spans.extend(_field(b"\x12", span) for span in encoded)
            scope_spans.append(_string(b"\x1a", scope.schema_url if scope else None))
            body.append(_field(b"\x12", b"".join(scope_spans)))
        body.append(_string(b"\x1a", resource.schema_url))
        out.append(_field(b"\x0a", b"".join(body)))
    return b"".join(out)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """An OTLP `ExportTraceServiceRequest` holding `spans`, serialised (protobuf bytes).

    The bytes are those of the library's `encode_spans(spans).SerializeToString()`; a batch
    with a value this encoder does not handle is encoded by the library instead.
    """
    try:
        return _encode(spans)
    except (_Unsupported, struct.error):  # struct.error: a negative or float timestamp
        encoded: bytes = library_encode_spans(spans).SerializePartialToString()
        return encoded


class WireOTLPSpanExporter(OTLPSpanExporter):
    """opentelemetry-exporter-otlp-proto-http's exporter (endpoint, headers, TLS, timeout,
    compression, retries and its own metrics from the standard `OTEL_EXPORTER_OTLP_*`
    variables, all unchanged), with the batch encoded by `encode_spans`.

    `export` is the library's `OTLPSpanExporter.export` (1.45, `trace_exporter/__init__.py`)
    line for line, except for the encoding call. It reads the exporter's private attributes
    (`_client`, `_metrics`, ...): the versions are pinned, and the tests export through it to
    a receiver, so an upgrade that renames them fails there.
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            _logger.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE

        with self._metrics.export_operation(len(spans)) as result:
            try:
                serialized_data = encode_spans(spans)
            except Exception as error:  # the library's: a failed encoding fails the batch only
                _logger.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE

            if _is_request_too_large(serialized_data, self._max_request_size):
                _logger.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size %d "
                    "bytes.",
                    len(serialized_data),
                    self._max_request_size,
                )
                result.error = RequestPayloadTooLargeError(
                    f"Serialized span request size {len(serialized_data)} "
                    f"bytes exceeds max_request_size "
                    f"{self._max_request_size} bytes."
                )
                return SpanExportResult.FAILURE

            export_result = self._client.export(serialized_data)
            if not export_result.success:
                result.error = export_result.error
                result.error_attrs = (
                    {HTTP_RESPONSE_STATUS_CODE: export_result.status_code}
                    if export_result.status_code is not None
                    else None
                )
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
