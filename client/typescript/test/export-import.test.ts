/** ExportProject and ImportProject against a live brain-server: an export imports as a new project. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  BrainClient,
  BrainError,
  Code,
  type ListMemoriesResponse,
  type ListScenesResponse,
  MemoryType,
  type ProjectRecord,
} from "../src/index.js";
import { BrainServer } from "./support.js";

const scenesOf = (response: ListScenesResponse) => response.scenes.map((s) => [s.sceneId, s.name, s.position, s.summary]);
const memoriesOf = (response: ListMemoriesResponse) =>
  response.memories.map((m) => [m.type, m.key, m.value]).sort((a, b) => String(a[1]).localeCompare(String(b[1])));

async function collect(records: AsyncIterable<ProjectRecord>): Promise<ProjectRecord[]> {
  const all: ProjectRecord[] = [];
  for await (const record of records) all.push(record);
  return all;
}

async function countNamed(client: BrainClient, name: string): Promise<number> {
  let count = 0;
  let pageToken = "";
  do {
    const page = await client.listProjects({ pageSize: 100, pageToken });
    count += page.projects.filter((p) => p.name === name).length;
    pageToken = page.nextPageToken;
  } while (pageToken);
  return count;
}

describe("export and import against a live server", () => {
  let server: BrainServer;
  let client: BrainClient;

  before(async () => {
    server = await BrainServer.start();
    client = server.client();
  });

  after(async () => {
    client?.close();
    await server?.stop();
  });

  it("imports an export as a new project with the same scenes and memory", async () => {
    const project = await client.createProject({ name: "Export me", description: "export and import (TypeScript)" });
    const projectId = project.projectId;
    await client.upsertScene({ projectId, sceneId: "intro", name: "Intro", summary: "Logo on dark blue" });
    await client.putMemory({ projectId, type: MemoryType.USER_PREFERENCE, key: "style", value: "minimal, flat colours", confidence: 0.9 });

    const records = await collect(client.exportProject(projectId));
    assert.deepEqual(
      records.map((r) => r.record.case),
      ["header", "scene", "memory"],
    );
    const header = records[0]!.record;
    assert.ok(header.case === "header");
    assert.equal(header.value.formatVersion, 1);
    assert.equal(header.value.project?.projectId, projectId);
    assert.equal(header.value.counts?.scenes, 1n);
    assert.equal(header.value.counts?.memoryItems, 1n);

    const imported = await client.importProject(records);
    const copy = imported.project!;
    assert.ok(copy.projectId && copy.projectId !== projectId, `a new id: ${copy.projectId}`);
    assert.equal(copy.name, "Export me");
    assert.equal(copy.description, "export and import (TypeScript)");
    assert.equal(imported.imported?.scenes, 1n);
    assert.equal(imported.imported?.memoryItems, 1n);
    assert.equal((await client.getProject(copy.projectId)).name, "Export me");

    const scenes = scenesOf(await client.listScenes({ projectId: copy.projectId }));
    assert.deepEqual(scenes, [["intro", "Intro", 0, "Logo on dark blue"]]);
    assert.deepEqual(scenes, scenesOf(await client.listScenes({ projectId })));
    const memories = memoriesOf(await client.listMemories({ projectId: copy.projectId }));
    assert.deepEqual(memories, [[MemoryType.USER_PREFERENCE, "style", "minimal, flat colours"]]);
    assert.deepEqual(memories, memoriesOf(await client.listMemories({ projectId })));

    // Streamed straight through, export to import, without holding the records.
    const again = await client.importProject(client.exportProject(copy.projectId));
    assert.ok(![projectId, copy.projectId].includes(again.project!.projectId));
    assert.deepEqual(scenesOf(await client.listScenes({ projectId: again.project!.projectId })), scenes);
  });

  it("refuses to export a missing project with NOT_FOUND", async () => {
    try {
      await collect(client.exportProject("no-such-project"));
      assert.fail("the export should have failed");
    } catch (error) {
      assert.ok(error instanceof BrainError, `a BrainError, got ${String(error)}`);
      assert.equal(error.code, Code.NotFound);
      assert.equal(error.reason, "PROJECT_NOT_FOUND");
    }
  });

  it("rethrows the records' own failure and cancels the import", async () => {
    // An empty project's export is its header alone: had the client ended the stream
    // instead of cancelling it, the server would have imported it.
    const name = "Broken import (TypeScript)";
    const project = await client.createProject({ name });
    const records = await collect(client.exportProject(project.projectId));
    assert.equal(records.length, 1);
    async function* broken(): AsyncGenerator<ProjectRecord> {
      yield records[0]!;
      throw new Error("the export file is corrupt");
    }
    await assert.rejects(client.importProject(broken()), /corrupt/);
    assert.equal(await countNamed(client, name), 1, "the cancelled import left nothing");
  });
});
