/** The scenario every client runs against a live brain-server. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
  BrainClient,
  BrainError,
  Code,
  ErrorReason,
  EventType,
  type ImageFactsEvent,
  ImageAnalysisStatus,
  MemorySource,
  MemoryType,
  ReportWindow,
  type RetryPolicy,
} from "../src/index.js";
import { BrainServer, PACKAGE_DIR, Proxy, PURGE_TENANT, SUNSET_PNG, TENANT } from "./support.js";

const run = promisify(execFile);

async function rejection(promise: Promise<unknown>): Promise<BrainError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof BrainError, `a BrainError, got ${String(error)}`);
    return error;
  }
  assert.fail("the call should have failed");
}

const fastReconnect: RetryPolicy = { maxAttempts: 0, initialBackoffMs: 50, maxBackoffMs: 1000, multiplier: 2, jitter: 0.2 };

describe("brain client against a live server", () => {
  let server: BrainServer;
  let client: BrainClient;
  let projectId = "";

  before(async () => {
    server = await BrainServer.start();
    client = server.client();
  });

  after(async () => {
    client?.close();
    await server?.stop();
  });

  it("refuses a wrong or missing API key with UNAUTHENTICATED", async () => {
    const wrong = new BrainClient(server.addr, { apiKey: "brk_not_a_real_key" });
    let err = await rejection(wrong.listProjects());
    wrong.close();
    assert.equal(err.code, Code.Unauthenticated);
    assert.equal(err.codeName, "UNAUTHENTICATED");
    assert.equal(err.reason, "API_KEY_INVALID");
    assert.equal(err.domain, "brain.v1");
    assert.equal(err.errorReason, ErrorReason.API_KEY_INVALID);

    const anonymous = new BrainClient(server.addr);
    err = await rejection(anonymous.listProjects());
    anonymous.close();
    assert.equal(err.code, Code.Unauthenticated);
    assert.equal(err.reason, "API_KEY_MISSING");
  });

  it("creates a project", async () => {
    const project = await client.createProject({ name: "Launch video", description: "Client scenario (TypeScript)" });
    assert.ok(project.projectId);
    assert.equal(project.name, "Launch video");
    assert.ok(project.createTime);
    projectId = project.projectId;
    const renamed = await client.updateProject({ project: { projectId, name: "Launch video v2" }, updateMask: { paths: ["name"] } });
    assert.equal(renamed.name, "Launch video v2");
    assert.equal(renamed.description, "Client scenario (TypeScript)");
    const fetched = await client.getProject(projectId);
    assert.equal(fetched.description, "Client scenario (TypeScript)");
    assert.equal(fetched.name, "Launch video v2");
  });

  it("adds scenes and pages through them", async () => {
    const scenes = [
      ["intro", "Intro", "Logo fades in over a dark blue background"],
      ["demo", "Demo", "Product walkthrough"],
      ["outro", "Outro", "Call to action"],
    ] as const;
    for (const [position, [sceneId, name, summary]] of scenes.entries()) {
      const response = await client.upsertScene({ projectId, sceneId, name, summary, durationSeconds: 4 });
      assert.equal(response.created, true);
      assert.equal(response.scene?.position, position);
      assert.ok((response.scene?.summaryTokens ?? 0) > 0);
    }
    const first = await client.listScenes({ projectId, pageSize: 2 });
    assert.deepEqual(first.scenes.map((s) => s.sceneId), ["intro", "demo"]);
    assert.ok(first.nextPageToken);
    const second = await client.listScenes({ projectId, pageSize: 2, pageToken: first.nextPageToken });
    assert.deepEqual(second.scenes.map((s) => s.sceneId), ["outro"]);
    assert.equal(second.nextPageToken, "");
  });

  it("remembers preferences by type and key", async () => {
    for (const [key, value] of [["style", "minimal"], ["pace", "fast"]] as const) {
      const response = await client.putMemory({ projectId, type: MemoryType.USER_PREFERENCE, key, value, confidence: 0.9 });
      assert.equal(response.created, true);
      assert.equal(response.memory?.value, value);
      assert.equal(response.memory?.source, MemorySource.API);
      assert.ok((response.memory?.tokenCount ?? 0) > 0);
    }
    const replaced = await client.putMemory({ projectId, type: MemoryType.USER_PREFERENCE, key: "style", value: "bold" });
    assert.equal(replaced.created, false);
    const listed = await client.listMemories({ projectId, type: MemoryType.USER_PREFERENCE });
    assert.deepEqual(
      listed.memories.map((m) => [m.key, m.value]).sort(),
      [["pace", "fast"], ["style", "bold"]],
    );
  });

  it("answers bad input with INVALID_ARGUMENT and a reason", async () => {
    let err = await rejection(client.getProject(""));
    assert.equal(err.code, Code.InvalidArgument);
    assert.equal(err.reason, "MISSING_FIELD");
    assert.equal(err.field, "project_id");

    err = await rejection(client.listScenes({ projectId, pageSize: -1 }));
    assert.equal(err.code, Code.InvalidArgument);
    assert.equal(err.reason, "INVALID_PAGE_SIZE");

    err = await rejection(client.getProject("no-such-project"));
    assert.equal(err.code, Code.NotFound);
    assert.equal(err.reason, "PROJECT_NOT_FOUND");
  });

  // Attached by the orchestrate step; its late facts are what the watch step waits for.
  const imageId = "sunset";

  it("orchestrates a prompt with an attached image", async () => {
    const request = {
      projectId,
      prompt: "Make the intro dark blue like this photo",
      images: [{ source: { case: "data" as const, value: SUNSET_PNG }, mimeType: "image/png", imageId }],
      requestId: `ts-scenario-${projectId}`,
    };
    const response = await client.orchestrate(request);
    assert.equal(response.replayed, false);
    const orchestration = response.orchestration;
    assert.ok(orchestration?.decision?.outcome.case, "a decision has an outcome");
    const tokens = orchestration.tokenReport;
    assert.equal(tokens?.encoding, "o200k_base");
    assert.ok(tokens && tokens.totalAfter > 0 && tokens.totalAfter <= tokens.budget);
    assert.ok(orchestration.enhancedPrompt.includes("dark blue like this photo"));
    assert.deepEqual(orchestration.images.map((i) => i.imageId), [imageId]);
    const replay = await client.orchestrate(request);
    assert.equal(replay.replayed, true);
    assert.equal(replay.orchestration?.orchestrationId, orchestration.orchestrationId);
  });

  it("receives the image's late facts over a watch that is cut and resumed", async () => {
    const proxy = await Proxy.start(server.addr);
    const viaProxy = new BrainClient(proxy.addr, { apiKey: server.apiKey, watchBackoff: fastReconnect });
    try {
      // Analysis is fast: the first image's events may all be stored before the
      // watch opens and arrive in one burst. A second image, requested only after
      // the cut, has events a cut stream cannot deliver: the watch must reconnect
      // and resume to see them.
      const secondId = "sunset-2";
      const isFinalOf = (id: string) => (e: ImageFactsEvent) =>
        e.imageId === id && (e.type === EventType.IMAGE_FACTS_PROCESSED || e.type === EventType.IMAGE_FACTS_FAILED);
      const isFinal = isFinalOf(imageId);
      const isSecondFinal = isFinalOf(secondId);
      const watch = viaProxy.watchImageFacts(projectId, 0n, { signal: AbortSignal.timeout(30_000) });
      const events: ImageFactsEvent[] = [];
      for await (const event of watch) {
        events.push(event);
        if (events.length === 1) {
          proxy.cut();
          const accepted = await client.analyzeImages({
            projectId,
            images: [{ source: { case: "data", value: SUNSET_PNG }, mimeType: "image/png", imageId: secondId }],
          });
          assert.deepEqual(accepted.analyses.map((a) => a.imageId), [secondId]);
        }
        if (isSecondFinal(event)) break;
      }
      assert.ok(events.some(isFinal), `a final event for ${imageId}: ${events.length} events`);
      assert.ok(events.some(isSecondFinal), `a final event for ${secondId}, committed after the cut: ${events.length} events`);
      assert.ok(watch.reconnects >= 1, "the cut forced a reconnect");
      const cursors = events.map((e) => e.cursor);
      assert.ok(cursors.every((c, i) => i === 0 || c > (cursors[i - 1] ?? 0n)), "strictly increasing, no duplicates");
      assert.equal(watch.cursor, cursors.at(-1));
      const ready = events.find((e) => e.imageId === imageId && e.type === EventType.IMAGE_FACTS_READY);
      assert.ok(ready?.facts, "a READY event with facts");
      assert.deepEqual([ready.facts.width, ready.facts.height], [96, 64]);
      assert.equal(ready.facts.palette.length, 5);

      const replayed: bigint[] = [];
      for await (const event of client.watchImageFacts(projectId, 0n, { signal: AbortSignal.timeout(30_000) })) {
        replayed.push(event.cursor);
        if (replayed.length === cursors.length) break;
      }
      assert.deepEqual(replayed, cursors);
      for await (const event of client.watchImageFacts(projectId, cursors[0], { signal: AbortSignal.timeout(30_000) })) {
        assert.equal(event.cursor, cursors[1]);
        break;
      }
      const analysis = await client.getImageFacts(projectId, imageId);
      assert.equal(analysis.status, ImageAnalysisStatus.READY);
    } finally {
      viaProxy.close();
      await proxy.close();
    }
  });

  it("reports performance", async () => {
    const report = await client.getPerformanceReport({ window: ReportWindow.SINCE_START });
    assert.ok(report.generateTime);
    assert.ok((report.requests?.total ?? 0n) > 0n);
    assert.ok((report.requests?.errors ?? 0n) > 0n, "the scenario's refused calls are counted");
    assert.ok(report.rpcLatencies.some((l) => l.count > 0n));
    const scoped = await client.getPerformanceReport({ window: ReportWindow.SINCE_START, projectId });
    assert.equal(scoped.projectId, projectId);
  });

  it("deletes the project and everything in it", async () => {
    // The steps above wrote 3 scenes, 2 preferences, one orchestration (one turn) and 2 images.
    const deleted = await client.deleteProject(projectId);
    assert.ok(deleted.scenes >= 3n, `scenes: ${deleted.scenes}`);
    assert.ok(deleted.memoryItems >= 2n, `memory items: ${deleted.memoryItems}`);
    assert.ok(deleted.orchestrations >= 1n && deleted.conversationTurns >= 1n, "the orchestration and its turn");
    assert.ok(deleted.imageAnalyses >= 2n && deleted.events >= 1n, "the images and their events");

    let err = await rejection(client.getProject(projectId));
    assert.equal(err.code, Code.NotFound);
    assert.equal(err.reason, "PROJECT_NOT_FOUND");
    err = await rejection(client.listScenes({ projectId }));
    assert.equal(err.code, Code.NotFound);
    assert.equal(err.reason, "PROJECT_NOT_FOUND");
    // Deleting it again is NOT_FOUND too (a replayed delete would answer the same, so it is not retried).
    err = await rejection(client.deleteProject(projectId));
    assert.equal(err.code, Code.NotFound);
    assert.equal(err.reason, "PROJECT_NOT_FOUND");
  });

  it("calls AdminService with an admin key only", async () => {
    // A tenant's key cannot call AdminService; an admin key can call nothing else.
    let err = await rejection(client.runRetention({ tenant: TENANT }));
    assert.equal(err.code, Code.PermissionDenied);
    assert.equal(err.reason, "ADMIN_KEY_REQUIRED");
    assert.equal(err.errorReason, ErrorReason.ADMIN_KEY_REQUIRED);
    err = await rejection(client.purgeTenant(PURGE_TENANT));
    assert.equal(err.code, Code.PermissionDenied);
    assert.equal(err.reason, "ADMIN_KEY_REQUIRED");
    const admin = new BrainClient(server.addr, { apiKey: server.adminKey });
    const doomed = new BrainClient(server.addr, { apiKey: server.purgeKey });
    try {
      err = await rejection(admin.listProjects());
      assert.equal(err.code, Code.PermissionDenied);
      assert.equal(err.reason, "TENANT_KEY_REQUIRED");
      assert.equal(err.errorReason, ErrorReason.TENANT_KEY_REQUIRED);

      // Retention names its tenant (only local mode has an implicit one).
      assert.equal((await admin.runRetention({ tenant: TENANT, dryRun: true })).dryRun, true);
      err = await rejection(admin.runRetention({ dryRun: true }));
      assert.equal(err.code, Code.InvalidArgument);
      assert.equal(err.reason, "MISSING_FIELD");
      assert.equal(err.field, "tenant");

      err = await rejection(admin.purgeTenant("no-such-tenant"));
      assert.equal(err.code, Code.NotFound);
      assert.equal(err.reason, "TENANT_NOT_FOUND");
      assert.equal(err.errorReason, ErrorReason.TENANT_NOT_FOUND);

      // Purge a tenant holding one project with one scene.
      const project = await doomed.createProject({ name: "Doomed" });
      await doomed.upsertScene({ projectId: project.projectId, name: "Only scene" });
      const purged = await admin.purgeTenant(PURGE_TENANT);
      assert.equal(purged.projects, 1n);
      assert.equal(purged.apiKeys, 1n);
      assert.equal(purged.deleted?.scenes, 1n);
      // Its key stops working at once; purging it again (what a replay would do) is NOT_FOUND.
      err = await rejection(doomed.listProjects());
      assert.equal(err.code, Code.Unauthenticated);
      assert.equal(err.reason, "API_KEY_INVALID");
      err = await rejection(admin.purgeTenant(PURGE_TENANT));
      assert.equal(err.code, Code.NotFound);
      assert.equal(err.reason, "TENANT_NOT_FOUND");
      await client.listProjects(); // the other tenant is untouched
    } finally {
      admin.close();
      doomed.close();
    }
  });

  it("retries only idempotent calls, within the deadline", async () => {
    const proxy = await Proxy.start(server.addr);
    const patient: RetryPolicy = { maxAttempts: 50, initialBackoffMs: 50, maxBackoffMs: 100, multiplier: 2, jitter: 0.1 };
    const viaProxy = new BrainClient(proxy.addr, { apiKey: server.apiKey, retry: patient });
    try {
      const project = await viaProxy.createProject({ name: "Retries" });

      // The server is unreachable: a non-idempotent call fails at once.
      await proxy.refuse();
      let started = Date.now();
      let err = await rejection(viaProxy.createProject({ name: "Never" }));
      assert.ok(err.retryable, `a connection failure: ${err.message}`);
      assert.ok(Date.now() - started < 500, "not retried");

      // An idempotent call is retried until the server is back.
      setTimeout(() => void proxy.restore(), 400);
      started = Date.now();
      const fetched = await viaProxy.getProject(project.projectId);
      assert.equal(fetched.projectId, project.projectId);
      assert.ok(Date.now() - started >= 300, "it waited for the outage");

      // Retries stop at the deadline.
      await proxy.refuse();
      started = Date.now();
      err = await rejection(viaProxy.listProjects({}, { timeoutMs: 300 }));
      assert.ok(err.retryable || err.code === Code.DeadlineExceeded, err.message);
      assert.ok(Date.now() - started < 1000);

      // A server that never answers fails with DEADLINE_EXCEEDED at the deadline.
      await proxy.restore();
      proxy.stall();
      const stalled = new BrainClient(proxy.addr, { apiKey: server.apiKey, timeoutMs: 300 });
      started = Date.now();
      err = await rejection(stalled.listProjects());
      const elapsed = Date.now() - started;
      stalled.close();
      assert.equal(err.code, Code.DeadlineExceeded, err.message);
      assert.ok(elapsed >= 250 && elapsed < 2000, `${elapsed} ms`);

      const names = (await client.listProjects({ pageSize: 500 })).projects.map((p) => p.name);
      assert.ok(!names.includes("Never"), "the refused CreateProject wrote nothing");
    } finally {
      viaProxy.close();
      await proxy.close();
    }
  });

  it("runs the README's quickstart as shown", async () => {
    const example = path.join(PACKAGE_DIR, ".build-test/examples/quickstart.js");
    const { stdout } = await run(process.execPath, [example], {
      env: { ...process.env, BRAIN_ADDR: server.addr, BRAIN_API_KEY: server.apiKey },
      timeout: 60_000,
    });
    assert.match(stdout, /has 1 scene\(s\)/);
    assert.match(stdout, /deleted 1 scene\(s\), 1 memory item\(s\)/);
    assert.match(stdout, /NOT_FOUND PROJECT_NOT_FOUND/);
    const readme = readFileSync(path.join(PACKAGE_DIR, "README.md"), "utf8");
    const source = readFileSync(path.join(PACKAGE_DIR, "examples/quickstart.ts"), "utf8").trim();
    assert.ok(readme.includes(source), "README.md shows examples/quickstart.ts verbatim");
  });
});
