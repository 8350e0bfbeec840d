/**
 * TypeScript client for brain: generated stubs (protobuf-es + Connect, speaking
 * gRPC over HTTP/2) and `BrainClient`, a thin wrapper with auth, deadlines,
 * retries and a resuming image-facts watch.
 *
 * Messages and enums are re-exported from the generated `brain.v1` modules;
 * build messages with `create(Schema, init)` from `@bufbuild/protobuf`, or
 * pass plain init objects to the client's methods.
 */
export { BrainClient, type BrainCallOptions, type BrainClientOptions, type BrainStreamOptions, DEFAULT_TIMEOUT_MS } from "./client.js";
export { BrainError, codeName, ERROR_DOMAIN } from "./errors.js";
export { backoffMs, DEFAULT_RETRY, NO_RETRY, type RetryPolicy, WATCH_BACKOFF } from "./retry.js";
export { ImageFactsWatch } from "./watch.js";
export { Code } from "@connectrpc/connect";
export * from "./gen/brain/v1/admin_pb.js";
export * from "./gen/brain/v1/errors_pb.js";
export * from "./gen/brain/v1/image_facts_pb.js";
export * from "./gen/brain/v1/orchestrator_pb.js";
export * from "./gen/brain/v1/performance_pb.js";
export * from "./gen/brain/v1/project_pb.js";
export * from "./gen/brain/v1/project_service_pb.js";
