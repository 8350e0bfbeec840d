import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorReason } from "./gen/brain/v1/errors_pb.js";
import { ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** RESOURCE_EXHAUSTED reasons worth retrying: the concurrency limit and the per-tenant limits. */
const RETRYABLE_EXHAUSTION = new Set(["OVERLOADED", "RATE_LIMITED", "QUOTA_EXCEEDED"]);

/** The `google.rpc.ErrorInfo` domain of every error brain returns. */
export const ERROR_DOMAIN = "brain.v1";

/**
 * A failed brain call.
 *
 * `code` is the gRPC status code (Connect's `Code` enum; `codeName` spells it
 * the gRPC way, e.g. `"NOT_FOUND"`). Errors the server returns carry a
 * `google.rpc.ErrorInfo` (domain `brain.v1`): `reason` is its UPPER_SNAKE
 * reason, for example `"PROJECT_NOT_FOUND"` (one of `ErrorReason` without the
 * `ERROR_REASON_` prefix), and `field` / `limit` come from its metadata. Errors
 * raised by the client itself (deadline, no connection) have no reason.
 * Branch on the code and the reason, never on the message.
 */
export class BrainError extends Error {
  override readonly name = "BrainError";
  readonly code: Code;
  readonly reason: string | undefined;
  readonly domain: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  /** The status message, without the code prefix. */
  readonly rawMessage: string;
  /** True when the connection failed rather than the server answering. */
  readonly transport: boolean;
  /**
   * The server's `google.rpc.RetryInfo` delay in milliseconds (undefined when it sent none):
   * how long to wait before retrying a call refused by a per-tenant limit.
   */
  readonly retryDelayMs: number | undefined;

  constructor(
    code: Code,
    message: string,
    info?: {
      reason?: string;
      domain?: string;
      metadata?: Record<string, string>;
      transport?: boolean;
      retryDelayMs?: number;
    },
    options?: { cause?: unknown },
  ) {
    super(describe(code, message, info?.reason, info?.metadata?.field), options);
    this.code = code;
    this.transport = info?.transport ?? false;
    this.rawMessage = message;
    this.reason = info?.reason;
    this.domain = info?.domain;
    this.metadata = { ...(info?.metadata ?? {}) };
    this.retryDelayMs = info?.retryDelayMs;
  }

  /** The gRPC name of the code, e.g. `"INVALID_ARGUMENT"`. */
  get codeName(): string {
    return codeName(this.code);
  }

  /** The request field at fault, when the server named one. */
  get field(): string | undefined {
    return this.metadata.field;
  }

  /** The limit that was exceeded, when the server named one. */
  get limit(): string | undefined {
    return this.metadata.limit;
  }

  /** The reason as the contract's `ErrorReason` enum (`UNSPECIFIED` when unknown). */
  get errorReason(): ErrorReason {
    const value = this.reason ? (ErrorReason as unknown as Record<string, number>)[this.reason] : undefined;
    return value === undefined ? ErrorReason.UNSPECIFIED : (value as ErrorReason);
  }

  /**
   * True when the failure is transient: the server is unavailable, the
   * connection failed or broke (a request caught by a dying connection fails
   * as CANCELED, UNKNOWN or INTERNAL without a server status), the server is
   * at its concurrency limit (RESOURCE_EXHAUSTED with reason OVERLOADED), or the
   * tenant is over a per-tenant limit (RATE_LIMITED, QUOTA_EXCEEDED: retried no
   * sooner than `retryDelayMs`).
   */
  get retryable(): boolean {
    switch (this.code) {
      case Code.Unavailable:
        return true;
      case Code.ResourceExhausted:
        return this.reason !== undefined && RETRYABLE_EXHAUSTION.has(this.reason);
      case Code.Canceled:
      case Code.Unknown:
      case Code.Internal:
        return this.transport;
      default:
        return false;
    }
  }

  /** Converts anything a Connect call throws into a BrainError. */
  static from(error: unknown): BrainError {
    if (error instanceof BrainError) return error;
    const connect = ConnectError.from(error);
    const info = connect.findDetails(ErrorInfoSchema)[0];
    const delay = connect.findDetails(RetryInfoSchema)[0]?.retryDelay;
    const retryDelayMs = delay ? Number(delay.seconds) * 1000 + delay.nanos / 1e6 : undefined;
    // A status the server sent arrives with grpc-status; anything else failed on the way.
    const transport = !connect.metadata.has("grpc-status");
    return new BrainError(
      connect.code,
      connect.rawMessage,
      { reason: info?.reason, domain: info?.domain, metadata: { ...(info?.metadata ?? {}) }, transport, retryDelayMs },
      { cause: error },
    );
  }
}

/** The gRPC name of a status code, e.g. `codeName(Code.NotFound) === "NOT_FOUND"`. */
export function codeName(code: Code): string {
  if (code === Code.Canceled) return "CANCELLED";
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

function describe(code: Code, message: string, reason?: string, field?: string): string {
  let text = codeName(code);
  if (reason) text += ` (${reason})`;
  if (message) text += `: ${message}`;
  if (field) text += ` [field: ${field}]`;
  return text;
}
