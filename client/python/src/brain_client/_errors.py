"""BrainError: a failed call, with the gRPC code and brain's ErrorInfo reason."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Tuple

import grpc
from google.rpc import error_details_pb2, status_pb2

from .v1 import errors_pb2

#: The ``google.rpc.ErrorInfo`` domain of every error brain returns.
ERROR_DOMAIN = "brain.v1"

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


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
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
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
        unavailable, or the server is at its concurrency limit
        (RESOURCE_EXHAUSTED with reason OVERLOADED)."""
        if self.code == grpc.StatusCode.UNAVAILABLE:
            return True
        return self.code == grpc.StatusCode.RESOURCE_EXHAUSTED and self.reason == "OVERLOADED"

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
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return cls(code, message, reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
        return cls(code, message)
