"""BrainError reads ErrorInfo and RetryInfo from the status details (no server needed)."""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from brain_client import BrainError


def _trailers(*details: object) -> list[tuple[str, bytes]]:
    status = status_pb2.Status(code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message="slow down")
    for detail in details:
        status.details.add().Pack(detail)
    return [("grpc-status-details-bin", status.SerializeToString())]


def test_rate_limits_are_retryable_after_the_servers_delay() -> None:
    info = error_details_pb2.ErrorInfo(reason="RATE_LIMITED", domain="brain.v1", metadata={"limit": "5/s"})
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=750_000_000))
    error = BrainError._from_parts(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", _trailers(info, retry))
    assert error.reason == "RATE_LIMITED"
    assert error.limit == "5/s"
    assert error.retryable
    assert error.retry_delay == 0.75


def test_other_exhaustion_is_not_retryable_and_has_no_delay() -> None:
    info = error_details_pb2.ErrorInfo(reason="TOO_MANY_IMAGES", domain="brain.v1")
    error = BrainError._from_parts(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many", _trailers(info))
    assert not error.retryable
    assert error.retry_delay is None
