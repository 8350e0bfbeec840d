"""AsyncBrainClient: the asyncio client (grpc.aio)."""

from __future__ import annotations

import asyncio
import time
from typing import (
    Any,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import grpc
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from . import _common
from ._common import UNSET, ImageLike, Seconds, _Unset
from ._errors import BrainError
from ._retry import WATCH_BACKOFF, RetryPolicy
from .v1 import (
    admin_pb2,
    admin_pb2_grpc,
    image_facts_pb2,
    image_facts_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    performance_pb2,
    performance_pb2_grpc,
    project_pb2,
    project_service_pb2,
    project_service_pb2_grpc,
)

T = TypeVar("T")
Timeout = Union[float, None, _Unset]


class AsyncBrainClient:
    """An asyncio client for every brain RPC, with the same behaviour as ``BrainClient``.

    ``AsyncBrainClient("127.0.0.1:50051", api_key="brk_...")`` opens a channel
    (``https://host`` for TLS). Unary calls run under a deadline (``timeout``
    seconds, 10 by default; pass ``timeout=`` to any method for one call, or
    ``None`` for no deadline) and idempotent ones are retried with backoff on
    transient failures (see ``RetryPolicy`` and the README for which calls).
    Failures raise ``BrainError``. Use it as an async context manager, or ``await close()``.
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        api_key: Optional[str] = None,
        *,
        timeout: Optional[float] = _common.DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        watch_backoff: RetryPolicy = WATCH_BACKOFF,
        credentials: Optional[grpc.ChannelCredentials] = None,
        options: Sequence[Tuple[str, Any]] = (),
        channel: Optional[grpc.aio.Channel] = None,
    ) -> None:
        address, use_tls = _common.parse_target(target)
        all_options = list(_common.CHANNEL_OPTIONS) + list(options)
        creds = _common.credentials_for(use_tls, credentials)
        self._owns_channel = channel is None
        if channel is None:
            channel = (
                grpc.aio.secure_channel(address, creds, options=all_options)
                if creds is not None
                else grpc.aio.insecure_channel(address, options=all_options)
            )
        self._channel = channel
        self._metadata = _common.auth_metadata(api_key)
        self.timeout = timeout
        self.retry = retry
        self.watch_backoff = watch_backoff
        self._projects = project_service_pb2_grpc.ProjectServiceStub(channel)
        self._orchestrator = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
        self._image_facts = image_facts_pb2_grpc.ImageFactsServiceStub(channel)
        self._performance = performance_pb2_grpc.PerformanceServiceStub(channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)

    # ---- lifecycle ----------------------------------------------------------

    async def close(self) -> None:
        """Closes the channel (a no-op for clients made by ``with_options``)."""
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> "AsyncBrainClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def with_options(self, *, timeout: Timeout = UNSET, retry: Optional[RetryPolicy] = None) -> "AsyncBrainClient":
        """This client (same channel) with another default deadline or retry policy."""
        clone = object.__new__(AsyncBrainClient)
        clone.__dict__.update(self.__dict__)
        clone._owns_channel = False
        if not isinstance(timeout, _Unset):
            clone.timeout = timeout
        if retry is not None:
            clone.retry = retry
        return clone

    # ---- plumbing -----------------------------------------------------------

    async def _unary(
        self, method: Callable[..., Awaitable[T]], request: Any, *, idempotent: bool, timeout: Timeout
    ) -> T:
        budget = self.timeout if isinstance(timeout, _Unset) else timeout
        deadline = None if budget is None else time.monotonic() + budget
        max_attempts = max(self.retry.max_attempts, 1) if idempotent else 1
        attempt = 1
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise BrainError(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the call started")
            try:
                return await method(request, timeout=remaining, metadata=self._metadata)
            except grpc.RpcError as error:
                failure = BrainError.from_rpc_error(error)
            if attempt >= max_attempts or not failure.retryable:
                raise failure
            # Never sooner than the server asked (a per-tenant limit says when it admits again).
            wait = max(self.retry.backoff(attempt), failure.retry_delay or 0.0)
            if deadline is not None and time.monotonic() + wait >= deadline:
                raise failure
            await asyncio.sleep(wait)
            attempt += 1

    async def _stream(
        self, method: Callable[..., Any], request: Any, timeout: Optional[float] = None
    ) -> AsyncIterator[Any]:
        call = method(request, timeout=timeout, metadata=self._metadata)
        try:
            async for message in call:
                yield message
        except grpc.RpcError as error:
            raise BrainError.from_rpc_error(error) from None
        finally:
            call.cancel()

    # ---- health -------------------------------------------------------------

    async def health(self, *, timeout: Timeout = UNSET) -> str:
        """The server's overall health: ``"SERVING"``, ``"NOT_SERVING"``, ... (no API key needed)."""
        response = await self._unary(
            self._health.Check, health_pb2.HealthCheckRequest(service=""), idempotent=True, timeout=timeout
        )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    # ---- ProjectService -----------------------------------------------------

    async def create_project(self, name: str, description: str = "", *, timeout: Timeout = UNSET) -> project_pb2.Project:
        """Creates a project (not retried: a retry could create a second one)."""
        request = project_pb2.CreateProjectRequest(name=name, description=description)
        return (await self._unary(self._projects.CreateProject, request, idempotent=False, timeout=timeout)).project

    async def get_project(self, project_id: str, *, timeout: Timeout = UNSET) -> project_pb2.Project:
        """Returns one project."""
        request = project_pb2.GetProjectRequest(project_id=project_id)
        return (await self._unary(self._projects.GetProject, request, idempotent=True, timeout=timeout)).project

    async def update_project(
        self,
        project_id: str,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        timeout: Timeout = UNSET,
    ) -> project_pb2.Project:
        """Changes the fields given (name, description; an empty description clears it) and
        returns the project. Retried like a read: writing the same values again changes nothing."""
        paths = [field for field, value in (("name", name), ("description", description)) if value is not None]
        if not paths:
            raise ValueError("update_project needs a name or a description")
        request = project_pb2.UpdateProjectRequest(
            project=project_pb2.Project(project_id=project_id, name=name or "", description=description or ""),
            update_mask=field_mask_pb2.FieldMask(paths=paths),
        )
        return (await self._unary(self._projects.UpdateProject, request, idempotent=True, timeout=timeout)).project

    async def delete_project(self, project_id: str, *, timeout: Timeout = UNSET) -> project_pb2.DeletedRows:
        """Deletes a project and everything in it; returns how many rows of each kind went.
        Not retried: a replay would answer PROJECT_NOT_FOUND (after a lost response, NOT_FOUND
        means the project is gone)."""
        request = project_pb2.DeleteProjectRequest(project_id=project_id)
        return (await self._unary(self._projects.DeleteProject, request, idempotent=False, timeout=timeout)).deleted

    async def export_project(
        self, project_id: str, *, timeout: Optional[float] = None
    ) -> AsyncIterator[project_service_pb2.ProjectRecord]:
        """Yields everything a project holds, as ``ProjectRecord``s in the order ``import_project``
        takes them: the header first (``record.header``: the project and the counts that follow),
        then scenes, memory items, conversation turns and image analyses. Like every stream it has
        no deadline unless ``timeout`` (seconds, for the whole export) is given; closing the
        iterator cancels it. Not retried (an export of a missing project is NOT_FOUND,
        PROJECT_NOT_FOUND, when iterated)."""
        request = project_service_pb2.ExportProjectRequest(project_id=project_id)
        async for response in self._stream(self._projects.ExportProject, request, timeout):
            yield response.record

    async def import_project(
        self,
        records: Union[AsyncIterable[project_service_pb2.ProjectRecord], Iterable[project_service_pb2.ProjectRecord]],
        *,
        timeout: Optional[float] = None,
    ) -> project_service_pb2.ImportProjectResponse:
        """Creates a new project from the records of an export (``export_project``'s, in that
        order, for example ``await import_project(export_project(id))``, or a list read back from
        a file); returns it (``.project``, with a new id) and the records stored by kind
        (``.imported``). The records are streamed as they are iterated. Like every stream it has
        no deadline unless ``timeout`` (seconds, for the whole import) is given. Not retried: a
        retry would create a second copy. If ``records`` raises, the call is cancelled (the server
        keeps nothing of it) and that exception is raised."""
        failed: List[BaseException] = []

        async def requests() -> AsyncIterator[project_service_pb2.ImportProjectRequest]:
            try:
                if isinstance(records, AsyncIterable):
                    async for record in records:
                        yield project_service_pb2.ImportProjectRequest(record=record)
                else:
                    for record in records:
                        yield project_service_pb2.ImportProjectRequest(record=record)
            except Exception as error:
                failed.append(error)
                raise  # gRPC cancels the call

        try:
            return await self._projects.ImportProject(requests(), timeout=timeout, metadata=self._metadata)
        except asyncio.CancelledError:
            if failed:
                raise failed[0] from None
            raise
        except grpc.RpcError as error:
            if failed:
                raise failed[0] from None
            raise BrainError.from_rpc_error(error) from None

    async def list_projects(
        self, *, page_size: int = 0, page_token: str = "", timeout: Timeout = UNSET
    ) -> project_pb2.ListProjectsResponse:
        """One page of the caller's projects, oldest first."""
        request = project_pb2.ListProjectsRequest(page_size=page_size, page_token=page_token)
        return await self._unary(self._projects.ListProjects, request, idempotent=True, timeout=timeout)

    async def upsert_scene(
        self,
        project_id: str,
        name: str,
        *,
        scene_id: str = "",
        position: Optional[int] = None,
        summary: str = "",
        duration_seconds: Optional[float] = None,
        status: project_pb2.SceneStatus = project_pb2.SCENE_STATUS_OK,
        timeout: Timeout = UNSET,
    ) -> project_pb2.UpsertSceneResponse:
        """Creates or replaces a scene; retried only with a ``scene_id``."""
        request = _common.upsert_scene_request(
            project_id,
            name,
            scene_id=scene_id,
            position=position,
            summary=summary,
            duration_seconds=duration_seconds,
            status=status,
        )
        return await self._unary(self._projects.UpsertScene, request, idempotent=bool(scene_id), timeout=timeout)

    async def delete_scene(self, project_id: str, scene_id: str, *, timeout: Timeout = UNSET) -> None:
        """Deletes a scene (not retried: a replay would answer SCENE_NOT_FOUND)."""
        request = project_pb2.DeleteSceneRequest(project_id=project_id, scene_id=scene_id)
        await self._unary(self._projects.DeleteScene, request, idempotent=False, timeout=timeout)

    async def list_scenes(
        self, project_id: str, *, page_size: int = 0, page_token: str = "", timeout: Timeout = UNSET
    ) -> project_pb2.ListScenesResponse:
        """One page of a project's scenes, in position order."""
        request = project_pb2.ListScenesRequest(project_id=project_id, page_size=page_size, page_token=page_token)
        return await self._unary(self._projects.ListScenes, request, idempotent=True, timeout=timeout)

    async def put_memory(
        self,
        project_id: str,
        key: str,
        value: str,
        *,
        type: project_pb2.MemoryType = project_pb2.MEMORY_TYPE_USER_PREFERENCE,
        confidence: Optional[float] = None,
        ttl: Optional[Seconds] = None,
        timeout: Timeout = UNSET,
    ) -> project_pb2.PutMemoryResponse:
        """Creates or replaces the item with this type and key; retried (last write wins)."""
        request = _common.put_memory_request(project_id, key, value, type=type, confidence=confidence, ttl=ttl)
        return await self._unary(self._projects.PutMemory, request, idempotent=True, timeout=timeout)

    async def delete_memory(
        self,
        project_id: str,
        *,
        memory_id: Optional[str] = None,
        type: Optional[project_pb2.MemoryType] = None,
        key: Optional[str] = None,
        timeout: Timeout = UNSET,
    ) -> None:
        """Deletes an item by ``memory_id``, or by ``type`` and ``key`` (not retried)."""
        request = _common.delete_memory_request(project_id, memory_id=memory_id, type=type, key=key)
        await self._unary(self._projects.DeleteMemory, request, idempotent=False, timeout=timeout)

    async def list_memories(
        self,
        project_id: str,
        *,
        type: project_pb2.MemoryType = project_pb2.MEMORY_TYPE_UNSPECIFIED,
        page_size: int = 0,
        page_token: str = "",
        timeout: Timeout = UNSET,
    ) -> project_pb2.ListMemoriesResponse:
        """One page of a project's memory items, oldest first, optionally of one type."""
        request = project_pb2.ListMemoriesRequest(
            project_id=project_id, type=type, page_size=page_size, page_token=page_token
        )
        return await self._unary(self._projects.ListMemories, request, idempotent=True, timeout=timeout)

    # ---- OrchestratorService ------------------------------------------------

    async def orchestrate(
        self,
        project_id: str,
        prompt: str,
        *,
        images: Sequence[ImageLike] = (),
        request_id: str = "",
        token_budget: int = 0,
        timeout: Timeout = UNSET,
    ) -> orchestrator_pb2.OrchestrateResponse:
        """Orchestrates one prompt; retried only with a ``request_id`` (the server replays it)."""
        request = _common.orchestrate_request(
            project_id, prompt, images_=images, request_id=request_id, token_budget=token_budget
        )
        return await self._unary(self._orchestrator.Orchestrate, request, idempotent=bool(request_id), timeout=timeout)

    def orchestrate_stream(
        self,
        project_id: str,
        prompt: str,
        *,
        images: Sequence[ImageLike] = (),
        request_id: str = "",
        token_budget: int = 0,
        image_wait: Optional[Seconds] = None,
    ) -> AsyncIterator[orchestrator_pb2.OrchestrateStreamResponse]:
        """Orchestrates one prompt and yields its progress (never retried)."""
        request = _common.orchestrate_stream_request(
            project_id, prompt, images_=images, request_id=request_id, token_budget=token_budget, image_wait=image_wait
        )
        return self._stream(self._orchestrator.OrchestrateStream, request)

    async def get_context_packet(
        self, project_id: str, prompt: str = "", *, token_budget: int = 0, timeout: Timeout = UNSET
    ) -> orchestrator_pb2.GetContextPacketResponse:
        """The context Orchestrate would build, without deciding or writing."""
        request = orchestrator_pb2.GetContextPacketRequest(
            project_id=project_id, prompt=prompt, token_budget=token_budget
        )
        return await self._unary(self._orchestrator.GetContextPacket, request, idempotent=True, timeout=timeout)

    # ---- ImageFactsService --------------------------------------------------

    async def analyze_images(
        self, project_id: str, images: Sequence[ImageLike], *, timeout: Timeout = UNSET
    ) -> image_facts_pb2.AnalyzeImagesResponse:
        """Accepts images for background analysis (not retried)."""
        request = image_facts_pb2.AnalyzeImagesRequest(project_id=project_id, images=_common.images(images))
        return await self._unary(self._image_facts.AnalyzeImages, request, idempotent=False, timeout=timeout)

    async def get_image_facts(
        self, project_id: str, image_id: str, *, timeout: Timeout = UNSET
    ) -> image_facts_pb2.ImageAnalysis:
        """One image's analysis."""
        request = image_facts_pb2.GetImageFactsRequest(project_id=project_id, image_id=image_id)
        return (await self._unary(self._image_facts.GetImageFacts, request, idempotent=True, timeout=timeout)).analysis

    async def list_image_facts(
        self, project_id: str, *, page_size: int = 0, page_token: str = "", timeout: Timeout = UNSET
    ) -> image_facts_pb2.ListImageFactsResponse:
        """One page of a project's image analyses, oldest first."""
        request = image_facts_pb2.ListImageFactsRequest(
            project_id=project_id, page_size=page_size, page_token=page_token
        )
        return await self._unary(self._image_facts.ListImageFacts, request, idempotent=True, timeout=timeout)

    def watch_image_facts(
        self, project_id: str, after_cursor: int = 0, *, orchestration_id: str = ""
    ) -> "AsyncImageFactsWatch":
        """Yields a project's image events after ``after_cursor``, each once,
        reconnecting from the last cursor whenever the connection drops."""
        request = image_facts_pb2.WatchImageFactsRequest(
            project_id=project_id, after_cursor=after_cursor, orchestration_id=orchestration_id
        )
        return AsyncImageFactsWatch(self, request)

    # ---- PerformanceService -------------------------------------------------

    async def get_performance_report(
        self,
        *,
        window: performance_pb2.ReportWindow = performance_pb2.REPORT_WINDOW_LAST_5_MINUTES,
        project_id: str = "",
        timeout: Timeout = UNSET,
    ) -> performance_pb2.PerformanceReport:
        """One performance report."""
        request = performance_pb2.GetPerformanceReportRequest(window=window, project_id=project_id)
        return (await self._unary(self._performance.GetPerformanceReport, request, idempotent=True, timeout=timeout)).report

    async def watch_performance_report(
        self,
        *,
        window: performance_pb2.ReportWindow = performance_pb2.REPORT_WINDOW_LAST_5_MINUTES,
        project_id: str = "",
        interval: Optional[Seconds] = None,
    ) -> AsyncIterator[performance_pb2.PerformanceReport]:
        """A fresh report every ``interval`` until the iterator is closed (not resumed)."""
        request = _common.watch_performance_request(window, project_id, interval)
        async for response in self._stream(self._performance.WatchPerformanceReport, request):
            yield response.report

    # ---- AdminService -------------------------------------------------------

    async def run_retention(
        self, *, dry_run: bool = False, project_id: str = "", tenant: str = "", timeout: Timeout = UNSET
    ) -> admin_pb2.RunRetentionResponse:
        """Applies the retention policy to ``tenant`` (its name; required with an admin key,
        empty for the implicit tenant in local mode); retried (a second run finds nothing more).
        Needs an admin key outside local mode (a tenant's key gets PERMISSION_DENIED,
        ADMIN_KEY_REQUIRED)."""
        request = admin_pb2.RunRetentionRequest(dry_run=dry_run, project_id=project_id, tenant=tenant)
        return await self._unary(self._admin.RunRetention, request, idempotent=True, timeout=timeout)

    async def purge_tenant(self, tenant: str, *, timeout: Timeout = UNSET) -> admin_pb2.PurgeTenantResponse:
        """Erases a tenant: its API keys, every project with everything in it, and the tenant;
        returns what was erased. Needs an admin key (or local mode). Not retried: a replay would
        answer NOT_FOUND, TENANT_NOT_FOUND (after a lost response, it means the tenant is gone)."""
        request = admin_pb2.PurgeTenantRequest(tenant=tenant)
        return await self._unary(self._admin.PurgeTenant, request, idempotent=False, timeout=timeout)

    # ---- internal, for ImageFactsWatch -------------------------------------

    def _open_watch(self, request: image_facts_pb2.WatchImageFactsRequest) -> Any:
        return self._image_facts.WatchImageFacts(request, metadata=self._metadata)


class AsyncImageFactsWatch(AsyncIterator[image_facts_pb2.ImageFactsEvent]):
    """The asyncio twin of ``ImageFactsWatch``: ``async for event in watch``.

    Yields each ``ImageFactsEvent`` once, in cursor order, reconnecting from
    the last cursor whenever the connection drops (see ``ImageFactsWatch``).
    ``close()`` (or leaving an ``async with`` block) stops it.
    """

    def __init__(self, client: AsyncBrainClient, request: image_facts_pb2.WatchImageFactsRequest) -> None:
        self._client = client
        self._request = request
        self.cursor: int = request.after_cursor
        self.latest_cursor: int = 0
        self.reconnects: int = 0
        self._failures = 0
        self._call: Any = None
        self._closed = False

    def __aiter__(self) -> "AsyncImageFactsWatch":
        return self

    async def __anext__(self) -> image_facts_pb2.ImageFactsEvent:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._call is None:
                request = image_facts_pb2.WatchImageFactsRequest()
                request.CopyFrom(self._request)
                request.after_cursor = self.cursor
                self._call = self._client._open_watch(request)
            try:
                response = await self._call.read()
            except asyncio.CancelledError:
                self.close()
                raise
            except grpc.RpcError as error:
                self._call = None
                if self._closed:
                    raise StopAsyncIteration from None
                await self._after_failure(BrainError.from_rpc_error(error))
                continue
            if response is grpc.aio.EOF:
                self._call = None
                await self._after_failure(BrainError(grpc.StatusCode.UNAVAILABLE, "the server ended the watch"))
                continue
            self._failures = 0
            kind = response.WhichOneof("message")
            if kind == "event":
                if response.event.cursor > self.cursor:
                    self.cursor = response.event.cursor
                    return response.event
            elif kind == "heartbeat":
                self.latest_cursor = response.heartbeat.latest_cursor

    async def _after_failure(self, failure: BrainError) -> None:
        policy = self._client.watch_backoff
        self._failures += 1
        exhausted = policy.max_attempts > 0 and self._failures >= policy.max_attempts
        if not failure.retryable or exhausted:
            self._closed = True
            raise failure
        self.reconnects += 1
        await asyncio.sleep(max(policy.backoff(self._failures), failure.retry_delay or 0.0))

    def close(self) -> None:
        """Stops the watch."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> "AsyncImageFactsWatch":
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()
