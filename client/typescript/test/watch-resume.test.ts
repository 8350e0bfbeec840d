/**
 * The watch's resume logic against a stand-in WatchImageFacts server that
 * misbehaves on purpose: it fails mid-stream, ends a stream cleanly, and sends
 * an event the client already has. The live scenario proves resume against the
 * real server through a proxy that cuts the connection; this pins the cases a
 * real server cannot be made to produce on demand.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { describe, it } from "node:test";
import {
  BrainClient,
  BrainError,
  EventType,
  ImageFactsService,
  type RetryPolicy,
  type WatchImageFactsResponse,
  WatchImageFactsResponseSchema,
} from "../src/index.js";

function event(cursor: bigint): WatchImageFactsResponse {
  return create(WatchImageFactsResponseSchema, {
    message: {
      case: "event",
      value: { cursor, type: EventType.IMAGE_FACTS_READY, projectId: "p", imageId: `image-${cursor}` },
    },
  });
}

/**
 * A five-event log (cursors 1 to 5) served over three connections:
 * 1. events after the cursor up to 2, then UNAVAILABLE;
 * 2. event 2 again (a duplicate), then 3, then a clean end of stream;
 * 3. a heartbeat (latest 5), events 4 and 5, then nothing until cancelled.
 * Project "forbidden" fails with NOT_FOUND (not retryable).
 */
async function serveStandIn(): Promise<{ addr: string; requests: bigint[]; close: () => Promise<void> }> {
  const requests: bigint[] = [];
  const routes = (router: ConnectRouter) =>
    router.service(ImageFactsService, {
      async *watchImageFacts(request, context) {
        if (request.projectId === "forbidden") throw new ConnectError("no such project", Code.NotFound);
        requests.push(request.afterCursor);
        const connection = requests.length;
        if (connection === 1) {
          for (let cursor = request.afterCursor + 1n; cursor <= 2n; cursor++) yield event(cursor);
          throw new ConnectError("connection lost", Code.Unavailable);
        } else if (connection === 2) {
          yield event(request.afterCursor);
          yield event(3n);
        } else {
          yield create(WatchImageFactsResponseSchema, { message: { case: "heartbeat", value: { latestCursor: 5n } } });
          yield event(4n);
          yield event(5n);
          await new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
        }
      },
    });
  const server = http2.createServer(connectNodeAdapter({ routes }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  return {
    addr: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

const fast: RetryPolicy = { maxAttempts: 0, initialBackoffMs: 20, maxBackoffMs: 200, multiplier: 2, jitter: 0 };

describe("image-facts watch against a stand-in server", () => {
  it("resumes from its cursor and never repeats an event", async () => {
    const standIn = await serveStandIn();
    const client = new BrainClient(standIn.addr, { watchBackoff: fast });
    try {
      const watch = client.watchImageFacts("p", 0n, { signal: AbortSignal.timeout(10_000) });
      const cursors: bigint[] = [];
      for await (const e of watch) {
        cursors.push(e.cursor);
        if (cursors.length === 5) break;
      }
      assert.deepEqual(cursors, [1n, 2n, 3n, 4n, 5n], "every event once, in order");
      assert.deepEqual(standIn.requests, [0n, 2n, 3n], "each reconnect resumes after the last cursor");
      assert.equal(watch.reconnects, 2);
      assert.equal(watch.cursor, 5n);
      assert.equal(watch.latestCursor, 5n, "heartbeats are consumed, not yielded");
    } finally {
      client.close();
      await standIn.close();
    }
  });

  it("ends on an error that is not a disconnect", async () => {
    const standIn = await serveStandIn();
    const client = new BrainClient(standIn.addr);
    try {
      const watch = client.watchImageFacts("forbidden");
      const iterator = watch[Symbol.asyncIterator]();
      await assert.rejects(iterator.next(), (error: unknown) => error instanceof BrainError && error.code === Code.NotFound);
      assert.deepEqual(await iterator.next(), { done: true, value: undefined });
      assert.equal(watch.reconnects, 0);
    } finally {
      client.close();
      await standIn.close();
    }
  });

  it("gives up after its reconnect budget, keeping its cursor", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve())); // nothing listens there now
    const bounded: RetryPolicy = { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 100, multiplier: 2, jitter: 0 };
    const client = new BrainClient(`127.0.0.1:${port}`, { watchBackoff: bounded });
    try {
      const watch = client.watchImageFacts("p", 7n);
      await assert.rejects(watch[Symbol.asyncIterator]().next(), (error: unknown) => error instanceof BrainError && error.retryable);
      assert.equal(watch.reconnects, 2, "three attempts: the first and two reconnects");
      assert.equal(watch.cursor, 7n, "the cursor is kept for a later resume");
    } finally {
      client.close();
    }
  });
});
