import asyncio
import os

from brain_client import AsyncBrainClient


async def main() -> None:
    addr, key = os.environ.get("BRAIN_ADDR", "127.0.0.1:50051"), os.environ.get("BRAIN_API_KEY")
    async with AsyncBrainClient(addr, api_key=key) as brain:
        project = await brain.create_project("Launch video")
        await brain.upsert_scene(project.project_id, "Intro", summary="Logo on dark blue")
        scenes = (await brain.list_scenes(project.project_id)).scenes
        print(f"project {project.project_id} has {len(scenes)} scene(s)")


asyncio.run(main())
