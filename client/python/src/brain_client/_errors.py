"""BrainError: a failed call, with the gRPC code and brain's ErrorInfo reason."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Tuple

import grpc
from google.rpc import error_details_pb2, status_pb2

from .v1 import errors_pb2

#: The ``google.rpc.ErrorInfo`` domain of every error brain returns.
ERROR_DOMAIN = "brain.v1"

_STATUS_DETAILS_KEY = "grpc-status-details-bin"

#: RESOURCE_EXHAUSTED reasons that pass: the concurrency limit and the per-tenant limits.
_RETRYABLE_EXHAUSTION = frozenset({"OVERLOADED", "RATE_LIMITED", "QUOTA_EXCEEDED"})


class BrainError(Exception):
    """A failed brain call.

    ``code`` is the ``grpc.StatusCode``. Errors the server returns carry a
    ``google.rpc.ErrorInfo`` (domain ``brain.v1``): ``reason`` is its
    UPPER_SNAKE reason (for example ``"PROJECT_NOT_FOUND"``, one of
    ``brain.v1.ErrorReason`` without the ``ERROR_REASON_`` prefix), and
    ``field`` / ``limit`` come from its metadata. Errors raised by the client
    itself (no connection, deadline) have a code and no reason. Branch on the
    code and the reason, never on the message.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: Optional[str] = None,
        domain: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
        retry_delay: Optional[float] = None,
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        #: The server's ``google.rpc.RetryInfo`` delay in seconds (None when it sent none):
        #: how long to wait before retrying a call refused by a per-tenant limit.
        self.retry_delay = retry_delay
        super().__init__(str(self))

    @property
    def field(self) -> Optional[str]:
        """The request field at fault, when the server named one."""
        return self.metadata.get("field")

    @property
    def limit(self) -> Optional[str]:
        """The limit that was exceeded, when the server named one."""
        return self.metadata.get("limit")

    @property
    def error_reason(self) -> int:
        """The reason as a ``brain.v1.ErrorReason`` value (0, UNSPECIFIED, when unknown)."""
        if not self.reason:
            return errors_pb2.ERROR_REASON_UNSPECIFIED
        try:
            return int(errors_pb2.ErrorReason.Value("ERROR_REASON_" + self.reason))
        except ValueError:
            return errors_pb2.ERROR_REASON_UNSPECIFIED

    @property
    def retryable(self) -> bool:
        """True when the failure is transient: the server or the connection is
        unavailable, the server is at its concurrency limit (RESOURCE_EXHAUSTED
        with reason OVERLOADED), or the tenant is over a per-tenant limit
        (RATE_LIMITED, QUOTA_EXCEEDED: retried no sooner than ``retry_delay``)."""
        if self.code == grpc.StatusCode.UNAVAILABLE:
            return True
        return self.code == grpc.StatusCode.RESOURCE_EXHAUSTED and self.reason in _RETRYABLE_EXHAUSTION

    def __str__(self) -> str:
        text = self.code.name
        if self.reason:
            text += f" ({self.reason})"
        if self.message:
            text += f": {self.message}"
        if self.field:
            text += f" [field: {self.field}]"
        return text

    def __repr__(self) -> str:
        return f"BrainError({self.code.name}, reason={self.reason!r}, field={self.field!r}, message={self.message!r})"

    @classmethod
    def from_rpc_error(cls, error: Any) -> "BrainError":
        """Builds the error from a ``grpc.RpcError`` or ``grpc.aio.AioRpcError``."""
        code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
        message = error.details() if callable(getattr(error, "details", None)) else str(error)
        trailers = error.trailing_metadata() if callable(getattr(error, "trailing_metadata", None)) else None
        return cls._from_parts(code or grpc.StatusCode.UNKNOWN, message or "", trailers)

    @classmethod
    def _from_parts(
        cls, code: grpc.StatusCode, message: str, trailers: Optional[Sequence[Tuple[str, Any]]]
    ) -> "BrainError":
        for key, value in trailers or ():
            if key != _STATUS_DETAILS_KEY or not isinstance(value, (bytes, bytearray)):
                continue
            status = status_pb2.Status.FromString(bytes(value))
            info: Optional[error_details_pb2.ErrorInfo] = None
            retry_delay: Optional[float] = None
            for detail in status.details:
                if info is None and detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    retry = error_details_pb2.RetryInfo()
                    detail.Unpack(retry)
                    retry_delay = retry.retry_delay.ToTimedelta().total_seconds()
            if info is not None:
                return cls(
                    code,
                    message,
                    reason=info.reason,
                    domain=info.domain,
                    metadata=dict(info.metadata),
                    retry_delay=retry_delay,
                )
            return cls(code, message, retry_delay=retry_delay)
        return cls(code, message)
