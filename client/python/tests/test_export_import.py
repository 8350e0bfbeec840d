"""ExportProject and ImportProject against a live brain-server (sync and asyncio clients):
a project's export imports as a new project with the same scenes and memory."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import AsyncIterator, Iterator, List, Set, Tuple

import grpc
import pytest

from brain_client import AsyncBrainClient, BrainClient, BrainError
from brain_client.v1 import project_pb2, project_service_pb2
from support import BrainServer

Scenes = List[Tuple[str, str, int, str]]
Memories = Set[Tuple[int, str, str]]


def _scenes(response: project_pb2.ListScenesResponse) -> Scenes:
    return [(s.scene_id, s.name, s.position, s.summary) for s in response.scenes]


def _memories(response: project_pb2.ListMemoriesResponse) -> Memories:
    return {(m.type, m.key, m.value) for m in response.memories}


def _check_export(records: List[project_service_pb2.ProjectRecord], project_id: str) -> None:
    kinds = [r.WhichOneof("record") for r in records]
    assert kinds == ["header", "scene", "memory"], kinds
    header = records[0].header
    assert header.format_version == 1
    assert header.project.project_id == project_id
    assert header.project.name == "Export me"
    assert (header.counts.scenes, header.counts.memory_items) == (1, 1), header.counts
    assert (header.counts.conversation_turns, header.counts.image_analyses) == (0, 0), header.counts
    assert (records[1].scene.scene_id, records[1].scene.name) == ("intro", "Intro")
    assert (records[2].memory.key, records[2].memory.value) == ("style", "minimal, flat colours")


def test_export_then_import_copies_the_project(server: BrainServer) -> None:
    with server.client() as client:
        project = client.create_project("Export me", "export and import (Python)")
        client.upsert_scene(project.project_id, "Intro", scene_id="intro", summary="Logo on dark blue")
        client.put_memory(project.project_id, "style", "minimal, flat colours", confidence=0.9)

        records = list(client.export_project(project.project_id))
        _check_export(records, project.project_id)

        imported = client.import_project(records)
        copy = imported.project
        assert copy.project_id and copy.project_id != project.project_id
        assert (copy.name, copy.description) == ("Export me", "export and import (Python)")
        assert (imported.imported.scenes, imported.imported.memory_items) == (1, 1), imported.imported
        assert client.get_project(copy.project_id).name == "Export me"
        assert _scenes(client.list_scenes(copy.project_id)) == _scenes(client.list_scenes(project.project_id))
        assert _scenes(client.list_scenes(copy.project_id)) == [("intro", "Intro", 0, "Logo on dark blue")]
        assert _memories(client.list_memories(copy.project_id)) == _memories(client.list_memories(project.project_id))
        assert _memories(client.list_memories(copy.project_id)) == {
            (project_pb2.MEMORY_TYPE_USER_PREFERENCE, "style", "minimal, flat colours")
        }

        # Streamed straight through, export to import, without holding the records.
        again = client.import_project(client.export_project(copy.project_id))
        assert again.project.project_id not in (project.project_id, copy.project_id)
        assert _scenes(client.list_scenes(again.project.project_id)) == _scenes(client.list_scenes(copy.project_id))


def test_export_of_a_missing_project_is_not_found(server: BrainServer) -> None:
    with server.client() as client:
        with pytest.raises(BrainError) as caught:
            list(client.export_project("no-such-project"))
        assert caught.value.code == grpc.StatusCode.NOT_FOUND
        assert caught.value.reason == "PROJECT_NOT_FOUND"


def test_the_readme_export_example_runs(server: BrainServer, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Export, import and delete", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "README.md has an export/import example"
    with server.client() as brain:
        project = brain.create_project("Export me")
        brain.upsert_scene(project.project_id, "Intro", summary="Logo on dark blue")
        exec(found.group(1), {"brain": brain, "project_id": project.project_id})
        with pytest.raises(BrainError) as caught:
            brain.get_project(project.project_id)
        assert caught.value.reason == "PROJECT_NOT_FOUND"
    printed = capsys.readouterr().out
    assert " 1 0\n" in printed, printed
    assert "deleted 1 scene(s); restored as " in printed, printed


def _named(client: BrainClient, name: str) -> int:
    count, token = 0, ""
    while True:
        page = client.list_projects(page_size=100, page_token=token)
        count += sum(1 for p in page.projects if p.name == name)
        token = page.next_page_token
        if not token:
            return count


def test_import_raises_the_records_own_failure_and_keeps_nothing(server: BrainServer) -> None:
    with server.client() as client:
        # An empty project's export is its header alone: had the client ended the stream
        # instead of cancelling it, the server would have imported it.
        project = client.create_project("Broken import (sync)")
        [header] = list(client.export_project(project.project_id))

        def broken() -> Iterator[project_service_pb2.ProjectRecord]:
            yield header
            raise ValueError("the export file is corrupt")

        with pytest.raises(ValueError, match="corrupt"):
            client.import_project(broken())
        assert _named(client, "Broken import (sync)") == 1, "the cancelled import left nothing"


def test_async_export_then_import(server: BrainServer) -> None:
    asyncio.run(_async_export_then_import(server))


async def _async_export_then_import(server: BrainServer) -> None:
    async with AsyncBrainClient(server.addr, api_key=server.api_key) as client:
        project = await client.create_project("Export me", "export and import (asyncio)")
        await client.upsert_scene(project.project_id, "Intro", scene_id="intro", summary="Logo on dark blue")
        await client.put_memory(project.project_id, "style", "minimal, flat colours", confidence=0.9)

        records = [record async for record in client.export_project(project.project_id)]
        _check_export(records, project.project_id)

        imported = await client.import_project(records)
        copy = imported.project
        assert copy.project_id and copy.project_id != project.project_id
        assert (imported.imported.scenes, imported.imported.memory_items) == (1, 1), imported.imported
        assert _scenes(await client.list_scenes(copy.project_id)) == [("intro", "Intro", 0, "Logo on dark blue")]
        assert _memories(await client.list_memories(copy.project_id)) == _memories(
            await client.list_memories(project.project_id)
        )

        # An async iterable goes straight through, export to import.
        again = await client.import_project(client.export_project(copy.project_id))
        assert again.project.project_id not in (project.project_id, copy.project_id)
        assert _scenes(await client.list_scenes(again.project.project_id)) == _scenes(
            await client.list_scenes(copy.project_id)
        )

        with pytest.raises(BrainError) as caught:
            async for _ in client.export_project("no-such-project"):
                pass
        assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.NOT_FOUND, "PROJECT_NOT_FOUND")

        empty = await client.create_project("Broken import (asyncio)")
        [header] = [record async for record in client.export_project(empty.project_id)]

        async def broken() -> AsyncIterator[project_service_pb2.ProjectRecord]:
            yield header
            raise ValueError("the export file is corrupt")

        with pytest.raises(ValueError, match="corrupt"):
            await client.import_project(broken())
        with server.client() as sync:
            assert _named(sync, "Broken import (asyncio)") == 1, "the cancelled import left nothing"
