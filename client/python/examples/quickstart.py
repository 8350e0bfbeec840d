import os

from brain_client import BrainClient, BrainError

with BrainClient(os.environ.get("BRAIN_ADDR", "127.0.0.1:50051"), api_key=os.environ.get("BRAIN_API_KEY")) as brain:
    project = brain.create_project("Launch video")
    brain.upsert_scene(project.project_id, "Intro", summary="Logo on dark blue")
    brain.put_memory(project.project_id, "style", "minimal")
    scenes = brain.list_scenes(project.project_id).scenes
    print(f"project {project.project_id} has {len(scenes)} scene(s)")
    deleted = brain.delete_project(project.project_id)  # the project and everything in it
    print(f"deleted {deleted.scenes} scene(s), {deleted.memory_items} memory item(s)")
    try:
        brain.get_project(project.project_id)
    except BrainError as error:
        print(f"{error.code.name} {error.reason}")  # NOT_FOUND PROJECT_NOT_FOUND
