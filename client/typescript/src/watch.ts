import { Code } from "@connectrpc/connect";
import type { ImageFactsEvent, WatchImageFactsRequest, WatchImageFactsResponse } from "./gen/brain/v1/image_facts_pb.js";
import { BrainError } from "./errors.js";
import { backoffMs, type RetryPolicy, sleep } from "./retry.js";

type Open = (request: WatchImageFactsRequest, signal: AbortSignal) => AsyncIterable<WatchImageFactsResponse>;

/**
 * A `WatchImageFacts` subscription that survives disconnects:
 * `for await (const event of client.watchImageFacts(projectId)) { ... }`.
 *
 * It yields each `ImageFactsEvent` once, in cursor order. When the connection
 * drops (any retryable failure, or the server ending the stream while it
 * drains), it reconnects with backoff and asks for the events after the last
 * cursor it yielded, so nothing is lost or repeated. Heartbeats are consumed
 * (`latestCursor`). Any other error is thrown once and ends the watch; so does
 * `maxAttempts` consecutive failed reconnects when the backoff policy sets it
 * above 0. `close()`, breaking out of the loop, or the caller's signal stops it.
 */
export class ImageFactsWatch implements AsyncIterable<ImageFactsEvent> {
  /** Cursor of the last event yielded (or the starting cursor): resume from it. */
  cursor: bigint;
  /** The project's latest committed cursor, per the last heartbeat. */
  latestCursor = 0n;
  /** How many times the watch has reconnected. */
  reconnects = 0;
  private readonly abort = new AbortController();

  constructor(
    private readonly open: Open,
    private readonly request: WatchImageFactsRequest,
    private readonly backoff: RetryPolicy,
    signal?: AbortSignal,
  ) {
    this.cursor = request.afterCursor;
    if (signal) {
      if (signal.aborted) this.abort.abort(signal.reason);
      else signal.addEventListener("abort", () => this.abort.abort(signal.reason), { once: true });
    }
  }

  /** Stops the watch; a pending iteration ends. */
  close(): void {
    this.abort.abort();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ImageFactsEvent> {
    const signal = this.abort.signal;
    let failures = 0;
    try {
      while (!signal.aborted) {
        let failure: BrainError;
        try {
          const stream = this.open({ ...this.request, afterCursor: this.cursor }, signal);
          for await (const response of stream) {
            failures = 0;
            if (response.message.case === "event") {
              const event = response.message.value;
              if (event.cursor > this.cursor) {
                this.cursor = event.cursor;
                yield event;
              }
            } else if (response.message.case === "heartbeat") {
              this.latestCursor = response.message.value.latestCursor;
            }
          }
          // A watch never ends by itself: the server closed it (draining), so resume.
          failure = new BrainError(Code.Unavailable, "the server ended the watch");
        } catch (error) {
          if (signal.aborted) return;
          failure = BrainError.from(error);
        }
        failures += 1;
        const exhausted = this.backoff.maxAttempts > 0 && failures >= this.backoff.maxAttempts;
        if (!failure.retryable || exhausted) throw failure;
        this.reconnects += 1;
        try {
          await sleep(Math.max(backoffMs(this.backoff, failures), failure.retryDelayMs ?? 0), signal);
        } catch {
          return;
        }
      }
    } finally {
      // Breaking out of `for await` lands here: end the current stream too.
      this.abort.abort();
    }
  }
}
