import { BrainClient, BrainError, MemoryType } from "brain-client";

const brain = new BrainClient(process.env.BRAIN_ADDR ?? "127.0.0.1:50051", { apiKey: process.env.BRAIN_API_KEY });
const project = await brain.createProject({ name: "Launch video" });
await brain.upsertScene({ projectId: project.projectId, name: "Intro", summary: "Logo on dark blue" });
await brain.putMemory({ projectId: project.projectId, type: MemoryType.USER_PREFERENCE, key: "style", value: "minimal" });
const { scenes } = await brain.listScenes({ projectId: project.projectId });
console.log(`project ${project.projectId} has ${scenes.length} scene(s)`);
const deleted = await brain.deleteProject(project.projectId); // the project and everything in it
console.log(`deleted ${deleted.scenes} scene(s), ${deleted.memoryItems} memory item(s)`);
try {
  await brain.getProject(project.projectId);
} catch (error) {
  if (error instanceof BrainError) console.log(`${error.codeName} ${error.reason}`); // NOT_FOUND PROJECT_NOT_FOUND
}
brain.close();
