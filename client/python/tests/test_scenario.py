"""The scenario every client runs against a live brain-server (synchronous client)."""

from __future__ import annotations

import threading
import time
from typing import Iterator, List

import grpc
import pytest

from brain_client import BrainClient, BrainError, RetryPolicy
from brain_client.v1 import errors_pb2, image_facts_pb2, performance_pb2, project_pb2
from support import PURGE_TENANT, SUNSET_PNG, TENANT, BrainServer, Proxy


@pytest.fixture(scope="module")
def client(server: BrainServer) -> Iterator[BrainClient]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def project_id(client: BrainClient) -> str:
    project = client.create_project("Launch video", "Client scenario (Python)")
    assert project.project_id
    assert project.name == "Launch video"
    assert project.HasField("create_time")
    fetched = client.get_project(project.project_id)
    assert fetched.description == "Client scenario (Python)"
    renamed = client.update_project(project.project_id, name="Launch video v2")
    assert (renamed.name, renamed.description) == ("Launch video v2", "Client scenario (Python)")
    assert client.get_project(project.project_id).name == "Launch video v2"
    return project.project_id


def test_wrong_or_missing_api_key_is_unauthenticated(server: BrainServer) -> None:
    with BrainClient(server.addr, api_key="brk_not_a_real_key") as wrong:
        with pytest.raises(BrainError) as caught:
            wrong.list_projects()
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.reason == "API_KEY_INVALID"
    assert caught.value.domain == "brain.v1"
    assert caught.value.error_reason == errors_pb2.ERROR_REASON_API_KEY_INVALID

    with BrainClient(server.addr) as anonymous:
        with pytest.raises(BrainError) as caught:
            anonymous.list_projects()
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.reason == "API_KEY_MISSING"


def test_scenes_are_paginated(client: BrainClient, project_id: str) -> None:
    scenes = [
        ("intro", "Intro", "Logo fades in over a dark blue background"),
        ("demo", "Demo", "Product walkthrough"),
        ("outro", "Outro", "Call to action"),
    ]
    for position, (scene_id, name, summary) in enumerate(scenes):
        response = client.upsert_scene(project_id, name, scene_id=scene_id, summary=summary, duration_seconds=4.0)
        assert response.created
        assert response.scene.position == position
        assert response.scene.summary_tokens > 0

    first = client.list_scenes(project_id, page_size=2)
    assert [s.scene_id for s in first.scenes] == ["intro", "demo"]
    assert first.next_page_token
    second = client.list_scenes(project_id, page_size=2, page_token=first.next_page_token)
    assert [s.scene_id for s in second.scenes] == ["outro"]
    assert second.next_page_token == ""


def test_memory_is_keyed_by_type_and_key(client: BrainClient, project_id: str) -> None:
    for key, value in [("style", "minimal"), ("pace", "fast")]:
        response = client.put_memory(project_id, key, value, confidence=0.9)
        assert response.created
        assert response.memory.value == value
        assert response.memory.source == project_pb2.MEMORY_SOURCE_API
        assert response.memory.token_count > 0
    replaced = client.put_memory(project_id, "style", "bold")
    assert not replaced.created

    listed = client.list_memories(project_id, type=project_pb2.MEMORY_TYPE_USER_PREFERENCE)
    assert sorted((m.key, m.value) for m in listed.memories) == [("pace", "fast"), ("style", "bold")]


def test_bad_input_is_invalid_argument_with_a_reason(client: BrainClient, project_id: str) -> None:
    with pytest.raises(BrainError) as caught:
        client.get_project("")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == "MISSING_FIELD"
    assert caught.value.field == "project_id"

    with pytest.raises(BrainError) as caught:
        client.list_scenes(project_id, page_size=-1)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == "INVALID_PAGE_SIZE"

    with pytest.raises(BrainError) as caught:
        client.get_project("no-such-project")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert caught.value.reason == "PROJECT_NOT_FOUND"


def _orchestrate_with_image(client: BrainClient, project_id: str) -> str:
    """Orchestrates with the test image attached; returns its id."""
    image = image_facts_pb2.ImageInput(data=SUNSET_PNG.read_bytes(), mime_type="image/png", image_id="sunset")
    kwargs = dict(images=[image], request_id=f"python-scenario-{project_id}")
    prompt = "Make the intro dark blue like this photo"
    response = client.orchestrate(project_id, prompt, **kwargs)  # type: ignore[arg-type]
    assert not response.replayed
    orchestration = response.orchestration
    assert orchestration.decision.WhichOneof("outcome") is not None
    tokens = orchestration.token_report
    assert tokens.encoding == "o200k_base"
    assert 0 < tokens.total_after <= tokens.budget
    assert "dark blue like this photo" in orchestration.enhanced_prompt
    assert [i.image_id for i in orchestration.images] == ["sunset"]

    replay = client.orchestrate(project_id, prompt, **kwargs)  # type: ignore[arg-type]
    assert replay.replayed
    assert replay.orchestration.orchestration_id == orchestration.orchestration_id
    return "sunset"


def test_orchestrate_then_watch_late_facts_across_a_disconnect(
    server: BrainServer, client: BrainClient, project_id: str
) -> None:
    image_id = _orchestrate_with_image(client, project_id)
    proxy = Proxy(server.addr)
    fast = RetryPolicy(max_attempts=0, initial_backoff=0.05, max_backoff=1.0)
    try:
        with server.client(watch_backoff=fast) as direct, BrainClient(
            proxy.addr, api_key=server.api_key, watch_backoff=fast
        ) as via_proxy:
            _watch_with_cut(proxy, via_proxy, direct, project_id, image_id)
    finally:
        proxy.close()


def _watch_with_cut(proxy: Proxy, via_proxy: BrainClient, direct: BrainClient, project_id: str, image_id: str) -> None:
    final_types = (image_facts_pb2.EVENT_TYPE_IMAGE_FACTS_PROCESSED, image_facts_pb2.EVENT_TYPE_IMAGE_FACTS_FAILED)
    with via_proxy.watch_image_facts(project_id) as watch:
        timer = threading.Timer(30, watch.close)  # bound the wait for events
        timer.start()
        try:
            events: List[image_facts_pb2.ImageFactsEvent] = [next(watch)]
            proxy.cut()
            # The first image's events may all be stored already (analysis is
            # fast), so they could arrive before the cut and need no reconnect.
            # A second image analysed after the cut has events the cut stream
            # cannot carry: receiving them proves the watch reconnected and resumed.
            later = image_facts_pb2.ImageInput(
                data=SUNSET_PNG.read_bytes(), mime_type="image/png", image_id=f"{image_id}-2"
            )
            later_id = direct.analyze_images(project_id, [later]).analyses[0].image_id
            assert later_id != image_id
            while not all(
                any(e.image_id == wanted and e.type in final_types for e in events) for wanted in (image_id, later_id)
            ):
                events.append(next(watch))
        finally:
            timer.cancel()
        assert watch.reconnects >= 1, "the cut forced a reconnect"
        cursors = [e.cursor for e in events]
        assert all(a < b for a, b in zip(cursors, cursors[1:])), f"strictly increasing, no duplicates: {cursors}"
        assert watch.cursor == cursors[-1]
    ready = [e for e in events if e.image_id == image_id and e.type == image_facts_pb2.EVENT_TYPE_IMAGE_FACTS_READY]
    assert ready, events
    assert (ready[0].facts.width, ready[0].facts.height) == (96, 64)
    assert len(ready[0].facts.palette) == 5

    with direct.watch_image_facts(project_id) as replay:
        assert [next(replay).cursor for _ in cursors] == cursors
    with direct.watch_image_facts(project_id, cursors[0]) as resumed:
        assert next(resumed).cursor == cursors[1]
    analysis = direct.get_image_facts(project_id, image_id)
    assert analysis.status == image_facts_pb2.IMAGE_ANALYSIS_STATUS_READY


def test_performance_report(client: BrainClient, project_id: str) -> None:
    report = client.get_performance_report(window=performance_pb2.REPORT_WINDOW_SINCE_START)
    assert report.HasField("generate_time")
    assert report.requests.total > 0
    assert report.requests.errors > 0, "the scenario's refused calls are counted"
    assert any(latency.count > 0 for latency in report.rpc_latencies)
    scoped = client.get_performance_report(window=performance_pb2.REPORT_WINDOW_SINCE_START, project_id=project_id)
    assert scoped.project_id == project_id


def test_delete_project_removes_everything_in_it(client: BrainClient, project_id: str) -> None:
    # The scenario above wrote 3 scenes, 2 preferences, one orchestration (one turn) and 2 images.
    deleted = client.delete_project(project_id)
    assert deleted.scenes >= 3, deleted
    assert deleted.memory_items >= 2, deleted
    assert deleted.orchestrations >= 1 and deleted.conversation_turns >= 1, deleted
    assert deleted.image_analyses >= 2 and deleted.events >= 1, deleted

    with pytest.raises(BrainError) as caught:
        client.get_project(project_id)
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.NOT_FOUND, "PROJECT_NOT_FOUND")
    with pytest.raises(BrainError) as caught:
        client.list_scenes(project_id)
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.NOT_FOUND, "PROJECT_NOT_FOUND")
    # Deleting it again is NOT_FOUND too (a replayed delete would answer the same, so it is not retried).
    with pytest.raises(BrainError) as caught:
        client.delete_project(project_id)
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.NOT_FOUND, "PROJECT_NOT_FOUND")


def test_admin_service_needs_an_admin_key(server: BrainServer, client: BrainClient) -> None:
    # A tenant's key cannot call AdminService; an admin key can call nothing else.
    with pytest.raises(BrainError) as caught:
        client.run_retention(tenant=TENANT)
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_KEY_REQUIRED")
    assert caught.value.error_reason == errors_pb2.ERROR_REASON_ADMIN_KEY_REQUIRED
    with pytest.raises(BrainError) as caught:
        client.purge_tenant(PURGE_TENANT)
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_KEY_REQUIRED")
    with BrainClient(server.addr, api_key=server.admin_key) as admin:
        with pytest.raises(BrainError) as caught:
            admin.list_projects()
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.PERMISSION_DENIED, "TENANT_KEY_REQUIRED")
        assert caught.value.error_reason == errors_pb2.ERROR_REASON_TENANT_KEY_REQUIRED

        # Retention names its tenant (only local mode has an implicit one).
        assert admin.run_retention(tenant=TENANT, dry_run=True).dry_run
        with pytest.raises(BrainError) as caught:
            admin.run_retention(dry_run=True)
        assert (caught.value.code, caught.value.reason, caught.value.field) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "MISSING_FIELD",
            "tenant",
        )

        with pytest.raises(BrainError) as caught:
            admin.purge_tenant("no-such-tenant")
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.NOT_FOUND, "TENANT_NOT_FOUND")
        assert caught.value.error_reason == errors_pb2.ERROR_REASON_TENANT_NOT_FOUND

        # Purge a tenant holding one project with one scene.
        with BrainClient(server.addr, api_key=server.purge_key) as doomed:
            project = doomed.create_project("Doomed")
            doomed.upsert_scene(project.project_id, "Only scene")
            purged = admin.purge_tenant(PURGE_TENANT)
            assert (purged.projects, purged.api_keys, purged.deleted.scenes) == (1, 1, 1), purged
            # Its key stops working at once; purging it again (what a replay would do) is NOT_FOUND.
            with pytest.raises(BrainError) as caught:
                doomed.list_projects()
            assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID")
        with pytest.raises(BrainError) as caught:
            admin.purge_tenant(PURGE_TENANT)
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.NOT_FOUND, "TENANT_NOT_FOUND")
    client.list_projects()  # the other tenant is untouched


def test_retries_only_idempotent_calls_within_the_deadline(server: BrainServer) -> None:
    proxy = Proxy(server.addr)
    patient = RetryPolicy(max_attempts=50, initial_backoff=0.05, max_backoff=0.1, jitter=0.1)
    try:
        with BrainClient(proxy.addr, api_key=server.api_key, retry=patient) as client:
            project = client.create_project("Retries")

            # The server is unreachable: a non-idempotent call fails at once.
            proxy.refuse()
            started = time.monotonic()
            with pytest.raises(BrainError) as caught:
                client.create_project("Never")
            assert caught.value.retryable, caught.value
            assert time.monotonic() - started < 0.5, "not retried"

            # An idempotent call is retried until the server is back.
            restorer = threading.Timer(0.4, proxy.restore)
            restorer.start()
            started = time.monotonic()
            assert client.get_project(project.project_id).project_id == project.project_id
            assert time.monotonic() - started >= 0.3, "it waited for the outage"
            restorer.join()

            # Retries stop at the deadline.
            proxy.refuse()
            started = time.monotonic()
            with pytest.raises(BrainError) as caught:
                client.list_projects(timeout=0.3)
            assert caught.value.retryable or caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - started < 1.0

        # A server that never answers fails with DEADLINE_EXCEEDED at the deadline.
        proxy.restore()
        proxy.stall()
        with BrainClient(proxy.addr, api_key=server.api_key, timeout=0.3) as stalled:
            started = time.monotonic()
            with pytest.raises(BrainError) as caught:
                stalled.list_projects()
            elapsed = time.monotonic() - started
        # gRPC core gives up on a handshake that never completes when the call's
        # deadline comes and reports it as UNAVAILABLE; the retry loop then stops
        # early when no further attempt could start before the deadline.
        assert caught.value.code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE), caught.value
        assert elapsed < 2.0, elapsed

        with server.client() as direct:
            names = [p.name for p in direct.list_projects(page_size=500).projects]
        assert "Never" not in names, "the refused CreateProject wrote nothing"
    finally:
        proxy.close()
