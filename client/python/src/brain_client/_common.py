"""What the sync and asyncio clients share: targets, channel options, request builders."""

from __future__ import annotations

import datetime
import os
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import grpc
from google.protobuf import duration_pb2

from .v1 import image_facts_pb2, orchestrator_pb2, performance_pb2, project_pb2

#: Default deadline of unary calls, in seconds.
DEFAULT_TIMEOUT = 10.0

#: Largest response accepted (context packets and reports can be large).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024

#: Channel options: reconnect quickly after an outage (gRPC's default first
#: backoff is a full second, longer than a retry budget), keep long watches alive.
CHANNEL_OPTIONS: Tuple[Tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
    ("grpc.max_send_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 30000),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)

#: An image for Orchestrate/AnalyzeImages: bytes (inline), a ``str`` http(s) URL,
#: a ``os.PathLike`` file to read, or a ready ``ImageInput``.
ImageLike = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", image_facts_pb2.ImageInput]

#: A time-to-live: seconds, or a ``datetime.timedelta``.
Seconds = Union[float, int, datetime.timedelta]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: Marks a keyword the caller did not pass (``None`` means "no deadline").
UNSET = _Unset()


def parse_target(target: str) -> Tuple[str, bool]:
    """``host:port``, ``http://host:port`` or ``https://host[:port]`` -> (address, use TLS)."""
    if target.startswith("https://"):
        address = target[len("https://"):].rstrip("/")
        return (address if ":" in address else address + ":443"), True
    if target.startswith("http://"):
        return target[len("http://"):].rstrip("/"), False
    return target, False


def auth_metadata(api_key: Optional[str]) -> Tuple[Tuple[str, str], ...]:
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


def duration(value: Optional[Seconds]) -> Optional[duration_pb2.Duration]:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)
    result = duration_pb2.Duration()
    result.FromNanoseconds(int(round(seconds * 1e9)))
    return result


def image(source: ImageLike, *, image_id: str = "", mime_type: str = "") -> image_facts_pb2.ImageInput:
    """An ``ImageInput`` from bytes, an http(s) URL, a file path, or an ``ImageInput``."""
    if isinstance(source, image_facts_pb2.ImageInput):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return image_facts_pb2.ImageInput(data=bytes(source), image_id=image_id, mime_type=mime_type)
    if isinstance(source, str):
        return image_facts_pb2.ImageInput(url=source, image_id=image_id, mime_type=mime_type)
    with open(os.fspath(source), "rb") as handle:
        return image_facts_pb2.ImageInput(data=handle.read(), image_id=image_id, mime_type=mime_type)


def images(sources: Iterable[ImageLike]) -> List[image_facts_pb2.ImageInput]:
    return [image(source) for source in sources]


def upsert_scene_request(
    project_id: str,
    name: str,
    *,
    scene_id: str,
    position: Optional[int],
    summary: str,
    duration_seconds: Optional[float],
    status: project_pb2.SceneStatus,
) -> project_pb2.UpsertSceneRequest:
    request = project_pb2.UpsertSceneRequest(
        project_id=project_id, scene_id=scene_id, name=name, summary=summary, status=status
    )
    if position is not None:
        request.position = position
    if duration_seconds is not None:
        request.duration_seconds = duration_seconds
    return request


def put_memory_request(
    project_id: str,
    key: str,
    value: str,
    *,
    type: project_pb2.MemoryType,
    confidence: Optional[float],
    ttl: Optional[Seconds],
) -> project_pb2.PutMemoryRequest:
    request = project_pb2.PutMemoryRequest(project_id=project_id, type=type, key=key, value=value)
    if confidence is not None:
        request.confidence = confidence
    ttl_value = duration(ttl)
    if ttl_value is not None:
        request.ttl.CopyFrom(ttl_value)
    return request


def delete_memory_request(
    project_id: str, *, memory_id: Optional[str], type: Optional[project_pb2.MemoryType], key: Optional[str]
) -> project_pb2.DeleteMemoryRequest:
    if memory_id:
        return project_pb2.DeleteMemoryRequest(project_id=project_id, memory_id=memory_id)
    if key is None:
        raise ValueError("delete_memory needs memory_id, or key (and type)")
    memory_key = project_pb2.MemoryKey(type=type or project_pb2.MEMORY_TYPE_USER_PREFERENCE, key=key)
    return project_pb2.DeleteMemoryRequest(project_id=project_id, memory_key=memory_key)


def orchestrate_request(
    project_id: str,
    prompt: str,
    *,
    images_: Sequence[ImageLike],
    request_id: str,
    token_budget: int,
) -> orchestrator_pb2.OrchestrateRequest:
    return orchestrator_pb2.OrchestrateRequest(
        project_id=project_id,
        prompt=prompt,
        images=images(images_),
        request_id=request_id,
        token_budget=token_budget,
    )


def orchestrate_stream_request(
    project_id: str,
    prompt: str,
    *,
    images_: Sequence[ImageLike],
    request_id: str,
    token_budget: int,
    image_wait: Optional[Seconds],
) -> orchestrator_pb2.OrchestrateStreamRequest:
    request = orchestrator_pb2.OrchestrateStreamRequest(
        project_id=project_id,
        prompt=prompt,
        images=images(images_),
        request_id=request_id,
        token_budget=token_budget,
    )
    wait = duration(image_wait)
    if wait is not None:
        request.image_wait.CopyFrom(wait)
    return request


def watch_performance_request(
    window: performance_pb2.ReportWindow, project_id: str, interval: Optional[Seconds]
) -> performance_pb2.WatchPerformanceReportRequest:
    request = performance_pb2.WatchPerformanceReportRequest(window=window, project_id=project_id)
    every = duration(interval)
    if every is not None:
        request.interval.CopyFrom(every)
    return request


def credentials_for(use_tls: bool, credentials: Optional[grpc.ChannelCredentials]) -> Optional[grpc.ChannelCredentials]:
    if credentials is not None:
        return credentials
    return grpc.ssl_channel_credentials() if use_tls else None
