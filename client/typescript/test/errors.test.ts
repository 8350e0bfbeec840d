// BrainError reads ErrorInfo and RetryInfo from a status (no server needed).
import assert from "node:assert/strict";
import { it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { BrainError, Code, ErrorReason } from "../src/index.js";
import { ErrorInfoSchema, RetryInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";

function refused(reason: string, retryDelay?: { seconds: bigint; nanos: number }): ConnectError {
  const details = [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: "brain.v1" }) }];
  const error = new ConnectError("refused", Code.ResourceExhausted, undefined, details);
  if (retryDelay) {
    error.details.push({ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay }) });
  }
  error.metadata.set("grpc-status", "8");
  return error;
}

it("rate limits are retryable after the server's delay", () => {
  const error = BrainError.from(refused("RATE_LIMITED", { seconds: 1n, nanos: 250_000_000 }));
  assert.equal(error.reason, "RATE_LIMITED");
  assert.equal(error.errorReason, ErrorReason.RATE_LIMITED);
  assert.equal(error.retryable, true);
  assert.equal(error.retryDelayMs, 1250);
});

it("other exhaustion is not retryable and has no delay", () => {
  const error = BrainError.from(refused("TOO_MANY_IMAGES"));
  assert.equal(error.retryable, false);
  assert.equal(error.retryDelayMs, undefined);
});
