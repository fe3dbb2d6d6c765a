"""The `tracing` section: OpenTelemetry GenAI spans of every call (observability/tracing.py).

Off by default. On, each call is a span and each of its attempts a child span, continued
from the caller's W3C `traceparent`, sampled at `sample_ratio` (a caller's sampled or
unsampled flag is followed), and exported over OTLP HTTP/protobuf to `endpoint` by a
batch processor in its own thread, so that exporting never waits on the request path.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from tollhouse.config.secrets import resolve_secret


class TracingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`headers`: sent with every export (a collector's or vendor's credentials), each
    value a secret reference (`env:NAME` or `file:PATH`). `max_queue` spans wait for
    export at most; beyond, new spans are dropped (counted by the SDK, never blocking)."""

    enabled: bool = False
    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    headers: dict[str, str] = {}
    sample_ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    service_name: Annotated[str, msgspec.Meta(min_length=1)] = "tollhouse"
    export_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    max_queue: Annotated[int, msgspec.Meta(ge=1)] = 2048
    batch_size: Annotated[int, msgspec.Meta(ge=1)] = 512
    schedule_delay_seconds: Annotated[float, msgspec.Meta(gt=0)] = 1.0


def export_headers(config: TracingConfig) -> dict[str, str]:
    """The export's headers, their secret references resolved; SecretError (a ValueError)
    naming the key, never the value."""
    return {
        name: resolve_secret(value, key_path=f"$.tracing.headers.{name}")
        for name, value in config.headers.items()
    }


def check_tracing(config: TracingConfig) -> None:
    """ValueError naming the key when tracing is on but can't run here: the endpoint is
    no http(s) URL, or the `otel` extra is not installed."""
    if not config.enabled:
        return
    if not config.endpoint.startswith(("http://", "https://")):
        raise ValueError("$.tracing.endpoint: expected an http(s) URL of an OTLP/HTTP receiver")
    try:
        import opentelemetry.exporter.otlp.proto.http
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise ValueError(
            "$.tracing.enabled: tracing needs the OpenTelemetry SDK and OTLP exporter: "
            "pip install 'tollhouse[otel]'"
        ) from None
    export_headers(config)
