"""The scenario with the asyncio client (AsyncBrainClient)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from brain_client import AsyncBrainClient, BrainError, RetryPolicy
from brain_client.v1 import image_facts_pb2, performance_pb2, project_pb2
from support import SUNSET_PNG, TENANT, BrainServer, Proxy


def test_async_scenario(server: BrainServer) -> None:
    asyncio.run(_scenario(server))


async def _scenario(server: BrainServer) -> None:
    async with AsyncBrainClient(server.addr, api_key="brk_not_a_real_key") as wrong:
        with pytest.raises(BrainError) as caught:
            await wrong.list_projects()
        assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert caught.value.reason == "API_KEY_INVALID"

    async with AsyncBrainClient(server.addr, api_key=server.api_key) as client:
        project = await client.create_project("Async launch video")
        project_id = project.project_id
        assert (await client.get_project(project_id)).name == "Async launch video"
        updated = await client.update_project(project_id, description="edited")
        assert (updated.name, updated.description) == ("Async launch video", "edited")

        for scene_id in ["intro", "demo", "outro"]:
            response = await client.upsert_scene(project_id, scene_id.title(), scene_id=scene_id, summary="A scene")
            assert response.created
        first = await client.list_scenes(project_id, page_size=2)
        second = await client.list_scenes(project_id, page_size=2, page_token=first.next_page_token)
        assert [s.scene_id for s in first.scenes] + [s.scene_id for s in second.scenes] == ["intro", "demo", "outro"]
        assert second.next_page_token == ""

        await client.put_memory(project_id, "style", "minimal")
        await client.put_memory(project_id, "summary", "weekly", type=project_pb2.MEMORY_TYPE_CONVERSATION_CONTEXT)
        only = await client.list_memories(project_id, type=project_pb2.MEMORY_TYPE_USER_PREFERENCE)
        assert [(m.key, m.value) for m in only.memories] == [("style", "minimal")]
        await client.delete_memory(project_id, type=project_pb2.MEMORY_TYPE_USER_PREFERENCE, key="style")
        assert len((await client.list_memories(project_id)).memories) == 1

        with pytest.raises(BrainError) as caught:
            await client.get_project("")
        assert (caught.value.code, caught.value.reason, caught.value.field) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "MISSING_FIELD",
            "project_id",
        )

        response = await client.orchestrate(project_id, "Make it blue", images=[SUNSET_PNG])
        assert len(response.orchestration.images) == 1
        assert response.orchestration.token_report.total_after > 0

        await _watch_with_cut(server, client, project_id)

        report = await client.get_performance_report(window=performance_pb2.REPORT_WINDOW_SINCE_START)
        assert report.requests.total > 0

        # 3 scenes, 1 memory item left, one orchestration (one turn) and 2 images.
        deleted = await client.delete_project(project_id)
        assert deleted.scenes >= 3, deleted
        assert deleted.memory_items >= 1, deleted
        assert deleted.orchestrations >= 1 and deleted.conversation_turns >= 1, deleted
        assert deleted.image_analyses >= 2 and deleted.events >= 1, deleted
        with pytest.raises(BrainError) as caught:
            await client.get_project(project_id)
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.NOT_FOUND, "PROJECT_NOT_FOUND")
        with pytest.raises(BrainError) as caught:
            await client.delete_project(project_id)
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.NOT_FOUND, "PROJECT_NOT_FOUND")

        # AdminService needs an admin key.
        with pytest.raises(BrainError) as caught:
            await client.purge_tenant("no-such-tenant")
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_KEY_REQUIRED")

    async with AsyncBrainClient(server.addr, api_key=server.admin_key) as admin:
        assert (await admin.run_retention(tenant=TENANT, dry_run=True)).dry_run
        with pytest.raises(BrainError) as caught:
            await admin.purge_tenant("no-such-tenant")
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.NOT_FOUND, "TENANT_NOT_FOUND")
        with pytest.raises(BrainError) as caught:
            await admin.get_project("anything")
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.PERMISSION_DENIED, "TENANT_KEY_REQUIRED")


async def _watch_with_cut(server: BrainServer, client: AsyncBrainClient, project_id: str) -> None:
    final_types = (image_facts_pb2.EVENT_TYPE_IMAGE_FACTS_PROCESSED, image_facts_pb2.EVENT_TYPE_IMAGE_FACTS_FAILED)
    proxy = Proxy(server.addr)
    fast = RetryPolicy(max_attempts=0, initial_backoff=0.05, max_backoff=1.0)
    try:
        async with AsyncBrainClient(proxy.addr, api_key=server.api_key, watch_backoff=fast) as via_proxy:
            async with via_proxy.watch_image_facts(project_id) as watch:
                events = [await asyncio.wait_for(watch.__anext__(), 30)]
                proxy.cut()
                # Events already stored may all arrive before the cut; a second
                # image analysed after the cut has events the cut stream cannot
                # carry, so receiving them proves the watch reconnected and resumed.
                later = image_facts_pb2.ImageInput(
                    data=SUNSET_PNG.read_bytes(), mime_type="image/png", image_id="sunset-2"
                )
                later_id = (await client.analyze_images(project_id, [later])).analyses[0].image_id
                while not any(e.image_id == later_id and e.type in final_types for e in events):
                    events.append(await asyncio.wait_for(watch.__anext__(), 30))
                cursors = [e.cursor for e in events]
                assert all(a < b for a, b in zip(cursors, cursors[1:])), f"strictly increasing, no duplicates: {cursors}"
                assert watch.reconnects >= 1, "the cut forced a reconnect"
    finally:
        proxy.close()


def test_async_retries_and_deadlines(server: BrainServer) -> None:
    asyncio.run(_retries(server))


async def _retries(server: BrainServer) -> None:
    proxy = Proxy(server.addr)
    patient = RetryPolicy(max_attempts=50, initial_backoff=0.05, max_backoff=0.1, jitter=0.1)
    try:
        async with AsyncBrainClient(proxy.addr, api_key=server.api_key, retry=patient) as client:
            project = await client.create_project("Async retries")
            proxy.refuse()
            started = time.monotonic()
            with pytest.raises(BrainError) as caught:
                await client.create_project("Never (async)")
            assert caught.value.retryable
            assert time.monotonic() - started < 0.5, "not retried"

            asyncio.get_running_loop().call_later(0.4, proxy.restore)
            started = time.monotonic()
            assert (await client.get_project(project.project_id)).project_id == project.project_id
            assert time.monotonic() - started >= 0.3

        proxy.stall()
        async with AsyncBrainClient(proxy.addr, api_key=server.api_key, timeout=0.3) as stalled:
            started = time.monotonic()
            with pytest.raises(BrainError) as caught:
                await stalled.list_projects()
            # gRPC core reports a handshake cut short by the deadline as UNAVAILABLE.
            assert caught.value.code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
            assert time.monotonic() - started < 2.0
    finally:
        proxy.close()
