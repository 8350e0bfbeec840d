import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { type CallOptions, type Client, Code, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  AdminService,
  type PurgeTenantResponse,
  type RunRetentionRequestSchema,
  type RunRetentionResponse,
} from "./gen/brain/v1/admin_pb.js";
import {
  type AnalyzeImagesRequestSchema,
  type AnalyzeImagesResponse,
  type ImageAnalysis,
  ImageFactsService,
  type ListImageFactsRequestSchema,
  type ListImageFactsResponse,
  WatchImageFactsRequestSchema,
} from "./gen/brain/v1/image_facts_pb.js";
import {
  type GetContextPacketRequestSchema,
  type GetContextPacketResponse,
  type OrchestrateRequestSchema,
  type OrchestrateResponse,
  type OrchestrateStreamRequestSchema,
  type OrchestrateStreamResponse,
  OrchestratorService,
} from "./gen/brain/v1/orchestrator_pb.js";
import {
  type GetPerformanceReportRequestSchema,
  type PerformanceReport,
  PerformanceService,
  type WatchPerformanceReportRequestSchema,
  type WatchPerformanceReportResponse,
} from "./gen/brain/v1/performance_pb.js";
import {
  type CreateProjectRequestSchema,
  type DeletedRows,
  type DeleteMemoryRequestSchema,
  type ListMemoriesRequestSchema,
  type ListMemoriesResponse,
  type ListProjectsRequestSchema,
  type UpdateProjectRequestSchema,
  type ListProjectsResponse,
  type ListScenesRequestSchema,
  type ListScenesResponse,
  type Project,
  type PutMemoryRequestSchema,
  type PutMemoryResponse,
  type UpsertSceneRequestSchema,
  type UpsertSceneResponse,
} from "./gen/brain/v1/project_pb.js";
import {
  type ImportProjectRequestSchema,
  type ImportProjectResponse,
  type ProjectRecord,
  type ProjectRecordSchema,
  ProjectService,
} from "./gen/brain/v1/project_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "./gen/grpc/health/v1/health_pb.js";
import { BrainError } from "./errors.js";
import { backoffMs, DEFAULT_RETRY, type RetryPolicy, sleep, WATCH_BACKOFF } from "./retry.js";
import { ImageFactsWatch } from "./watch.js";

/** Default deadline of unary calls, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Largest response accepted (context packets and reports can be large). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** Options of a BrainClient. */
export interface BrainClientOptions {
  /** API key (`brk_...`), sent as `authorization: Bearer <key>`. */
  apiKey?: string;
  /** Default deadline of unary calls in ms (10 s); `null` for none. Streams have none. */
  timeoutMs?: number | null;
  /** Retry policy of idempotent unary calls. */
  retry?: RetryPolicy;
  /** Reconnect backoff of `watchImageFacts`; `maxAttempts > 0` bounds consecutive failures. */
  watchBackoff?: RetryPolicy;
  /** HTTP/2 keep-alive ping interval in ms (30 s), so a dead connection under a long watch is noticed. */
  pingIntervalMs?: number;
}

/** Options of one stream: no deadline unless `timeoutMs` is given. */
export interface BrainStreamOptions {
  /** Deadline of the whole stream in ms; none by default (a stream lasts as long as its data). */
  timeoutMs?: number;
  /** Cancels the stream. */
  signal?: AbortSignal;
}

/** Options of one call. */
export interface BrainCallOptions {
  /** Deadline of this call in ms; `null` for none. */
  timeoutMs?: number | null;
  /** Retry policy of this call (idempotent calls only). */
  retry?: RetryPolicy;
  /** Cancels the call. */
  signal?: AbortSignal;
}

type Init<S extends Parameters<typeof create>[0]> = MessageInitShape<S>;

/**
 * A client for every brain RPC over gRPC (HTTP/2).
 *
 * Unary calls run under a deadline (10 s unless configured) and idempotent
 * ones are retried with backoff on transient failures (see README for which
 * calls). Failures reject with `BrainError`. `close()` ends the connection.
 */
export class BrainClient {
  readonly target: string;
  readonly timeoutMs: number | null;
  readonly retry: RetryPolicy;
  readonly watchBackoff: RetryPolicy;
  private readonly session: Http2SessionManager;
  private readonly transport: Transport;
  private readonly projects: Client<typeof ProjectService>;
  private readonly orchestrator: Client<typeof OrchestratorService>;
  private readonly imageFacts: Client<typeof ImageFactsService>;
  private readonly performance: Client<typeof PerformanceService>;
  private readonly admin: Client<typeof AdminService>;
  private readonly health: Client<typeof Health>;

  /** `target`: `host:port`, `http://host:port` or `https://host[:port]`. */
  constructor(target: string, options: BrainClientOptions = {}) {
    const baseUrl = /^https?:\/\//.test(target) ? target : `http://${target}`;
    this.target = baseUrl;
    this.timeoutMs = options.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : options.timeoutMs;
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.watchBackoff = options.watchBackoff ?? WATCH_BACKOFF;
    const interceptors: Interceptor[] = [];
    if (options.apiKey) {
      const authorization = `Bearer ${options.apiKey}`;
      interceptors.push((next) => (request) => {
        request.header.set("authorization", authorization);
        return next(request);
      });
    }
    this.session = new Http2SessionManager(baseUrl, {
      pingIntervalMs: options.pingIntervalMs ?? 30_000,
      pingTimeoutMs: 10_000,
    });
    this.transport = createGrpcTransport({
      baseUrl,
      sessionManager: this.session,
      interceptors,
      readMaxBytes: MAX_RESPONSE_BYTES,
    });
    this.projects = createClient(ProjectService, this.transport);
    this.orchestrator = createClient(OrchestratorService, this.transport);
    this.imageFacts = createClient(ImageFactsService, this.transport);
    this.performance = createClient(PerformanceService, this.transport);
    this.admin = createClient(AdminService, this.transport);
    this.health = createClient(Health, this.transport);
  }

  /** Closes the HTTP/2 connection and any open streams. */
  close(): void {
    this.session.abort();
  }

  /** Runs a unary call under the deadline, retrying it when it is idempotent. */
  private async unary<T>(
    idempotent: boolean,
    options: BrainCallOptions | undefined,
    call: (callOptions: CallOptions) => Promise<T>,
  ): Promise<T> {
    const budget = options?.timeoutMs === undefined ? this.timeoutMs : options.timeoutMs;
    const deadline = budget === null ? undefined : Date.now() + budget;
    const policy = options?.retry ?? this.retry;
    const maxAttempts = idempotent ? Math.max(policy.maxAttempts, 1) : 1;
    for (let attempt = 1; ; attempt++) {
      const remaining = deadline === undefined ? undefined : deadline - Date.now();
      if (remaining !== undefined && remaining <= 0) {
        throw new BrainError(Code.DeadlineExceeded, "the deadline passed before the call started");
      }
      let failure: BrainError;
      try {
        return await call({ timeoutMs: remaining, signal: options?.signal });
      } catch (error) {
        failure = BrainError.from(error);
      }
      if (attempt >= maxAttempts || !failure.retryable || options?.signal?.aborted) throw failure;
      // Never sooner than the server asked (a per-tenant limit says when it admits again).
      const wait = Math.max(backoffMs(policy, attempt), failure.retryDelayMs ?? 0);
      if (deadline !== undefined && Date.now() + wait >= deadline) throw failure;
      await sleep(wait, options?.signal);
    }
  }

  /** Opens a server stream (no default deadline, never retried). */
  private async *stream<T>(
    open: (callOptions: CallOptions) => AsyncIterable<T>,
    signal?: AbortSignal,
    timeoutMs?: number,
  ): AsyncGenerator<T> {
    try {
      for await (const message of open({ signal, timeoutMs })) yield message;
    } catch (error) {
      throw BrainError.from(error);
    }
  }

  // ---- health ---------------------------------------------------------------

  /** The server's overall health: `"SERVING"`, `"NOT_SERVING"`, ... (no API key needed). */
  async healthCheck(options?: BrainCallOptions): Promise<string> {
    const response = await this.unary(true, options, (o) => this.health.check({ service: "" }, o));
    return HealthCheckResponse_ServingStatus[response.status] ?? "UNKNOWN";
  }

  // ---- ProjectService -------------------------------------------------------

  /** Creates a project (not retried: a retry could create a second one). */
  async createProject(request: Init<typeof CreateProjectRequestSchema>, options?: BrainCallOptions): Promise<Project> {
    const response = await this.unary(false, options, (o) => this.projects.createProject(request, o));
    return required(response.project, "project");
  }

  /** Returns one project. */
  async getProject(projectId: string, options?: BrainCallOptions): Promise<Project> {
    const response = await this.unary(true, options, (o) => this.projects.getProject({ projectId }, o));
    return required(response.project, "project");
  }

  /**
   * Changes a project's name or description (`updateMask` paths "name", "description"; AIP-134)
   * and returns it. Retried like a read: writing the same values again changes nothing.
   */
  async updateProject(request: Init<typeof UpdateProjectRequestSchema>, options?: BrainCallOptions): Promise<Project> {
    const response = await this.unary(true, options, (o) => this.projects.updateProject(request, o));
    return required(response.project, "project");
  }

  /**
   * Deletes a project and everything in it; returns how many rows of each kind were removed.
   * Not retried: a replay would answer PROJECT_NOT_FOUND (after a lost response, NOT_FOUND means it is gone).
   */
  async deleteProject(projectId: string, options?: BrainCallOptions): Promise<DeletedRows> {
    const response = await this.unary(false, options, (o) => this.projects.deleteProject({ projectId }, o));
    return required(response.deleted, "deleted");
  }

  /**
   * Yields everything a project holds, as `ProjectRecord`s in the order `importProject` takes
   * them: the header first (`record.case === "header"`: the project and the counts that follow),
   * then scenes, memory items, conversation turns and image analyses. Like every stream it has no
   * deadline unless `timeoutMs` is given; `signal` (or leaving the loop) cancels it. Not retried;
   * a missing project rejects with NOT_FOUND (PROJECT_NOT_FOUND) when iterated.
   */
  async *exportProject(projectId: string, options: BrainStreamOptions = {}): AsyncGenerator<ProjectRecord> {
    const responses = this.stream((o) => this.projects.exportProject({ projectId }, o), options.signal, options.timeoutMs);
    for await (const response of responses) yield required(response.record, "record");
  }

  /**
   * Creates a new project from the records of an export (`exportProject`'s, in that order, for
   * example `importProject(brain.exportProject(id))`, or an array read back from a file); returns
   * it (`project`, with a new id) and the records stored by kind (`imported`). The records are
   * streamed as they are iterated. Like every stream it has no deadline unless `timeoutMs` is
   * given. Not retried: a retry would create a second copy. If `records` throws, the call is
   * cancelled (the server keeps nothing of it) and that error is rethrown.
   */
  async importProject(
    records: AsyncIterable<ProjectRecord | Init<typeof ProjectRecordSchema>> | Iterable<ProjectRecord | Init<typeof ProjectRecordSchema>>,
    options: BrainStreamOptions = {},
  ): Promise<ImportProjectResponse> {
    const failed: { error?: unknown } = {};
    const abort = new AbortController();
    const outer = options.signal;
    const cancel = (): void => abort.abort(outer?.reason);
    if (outer?.aborted) cancel();
    outer?.addEventListener("abort", cancel, { once: true });
    async function* requests(): AsyncGenerator<Init<typeof ImportProjectRequestSchema>> {
      try {
        for await (const record of records) yield { record };
      } catch (error) {
        failed.error = error;
        // Node's HTTP/2 client ends a request body (END_STREAM) before it resets the stream,
        // so a cancel alone could reach the server as a complete import. An empty record
        // first makes the server refuse it: a malformed record is INVALID_ARGUMENT, and
        // nothing of a refused import stays.
        yield { record: {} };
        abort.abort();
        throw error;
      }
    }
    try {
      return await this.projects.importProject(requests(), { signal: abort.signal, timeoutMs: options.timeoutMs });
    } catch (error) {
      if ("error" in failed) throw failed.error;
      throw BrainError.from(error);
    } finally {
      outer?.removeEventListener("abort", cancel);
    }
  }

  /** One page of the caller's projects, oldest first. */
  listProjects(request: Init<typeof ListProjectsRequestSchema> = {}, options?: BrainCallOptions): Promise<ListProjectsResponse> {
    return this.unary(true, options, (o) => this.projects.listProjects(request, o));
  }

  /** Creates or replaces a scene; retried only with a `sceneId`. */
  upsertScene(request: Init<typeof UpsertSceneRequestSchema>, options?: BrainCallOptions): Promise<UpsertSceneResponse> {
    return this.unary(Boolean(request.sceneId), options, (o) => this.projects.upsertScene(request, o));
  }

  /** Deletes a scene (not retried: a replay would answer SCENE_NOT_FOUND). */
  async deleteScene(projectId: string, sceneId: string, options?: BrainCallOptions): Promise<void> {
    await this.unary(false, options, (o) => this.projects.deleteScene({ projectId, sceneId }, o));
  }

  /** One page of a project's scenes, in position order. */
  listScenes(request: Init<typeof ListScenesRequestSchema>, options?: BrainCallOptions): Promise<ListScenesResponse> {
    return this.unary(true, options, (o) => this.projects.listScenes(request, o));
  }

  /** Creates or replaces the item with this type and key; retried (last write wins). */
  putMemory(request: Init<typeof PutMemoryRequestSchema>, options?: BrainCallOptions): Promise<PutMemoryResponse> {
    return this.unary(true, options, (o) => this.projects.putMemory(request, o));
  }

  /** Deletes an item by id or by type and key (not retried). */
  async deleteMemory(request: Init<typeof DeleteMemoryRequestSchema>, options?: BrainCallOptions): Promise<void> {
    await this.unary(false, options, (o) => this.projects.deleteMemory(request, o));
  }

  /** One page of a project's memory items, oldest first, optionally of one type. */
  listMemories(request: Init<typeof ListMemoriesRequestSchema>, options?: BrainCallOptions): Promise<ListMemoriesResponse> {
    return this.unary(true, options, (o) => this.projects.listMemories(request, o));
  }

  // ---- OrchestratorService --------------------------------------------------

  /** Orchestrates one prompt; retried only with a `requestId` (the server replays it). */
  orchestrate(request: Init<typeof OrchestrateRequestSchema>, options?: BrainCallOptions): Promise<OrchestrateResponse> {
    return this.unary(Boolean(request.requestId), options, (o) => this.orchestrator.orchestrate(request, o));
  }

  /** Orchestrates one prompt and yields its progress (never retried). */
  orchestrateStream(
    request: Init<typeof OrchestrateStreamRequestSchema>,
    options?: { signal?: AbortSignal },
  ): AsyncGenerator<OrchestrateStreamResponse> {
    return this.stream((o) => this.orchestrator.orchestrateStream(request, o), options?.signal);
  }

  /** The context Orchestrate would build, without deciding or writing. */
  getContextPacket(request: Init<typeof GetContextPacketRequestSchema>, options?: BrainCallOptions): Promise<GetContextPacketResponse> {
    return this.unary(true, options, (o) => this.orchestrator.getContextPacket(request, o));
  }

  // ---- ImageFactsService ----------------------------------------------------

  /** Accepts images for background analysis (not retried). */
  analyzeImages(request: Init<typeof AnalyzeImagesRequestSchema>, options?: BrainCallOptions): Promise<AnalyzeImagesResponse> {
    return this.unary(false, options, (o) => this.imageFacts.analyzeImages(request, o));
  }

  /** One image's analysis. */
  async getImageFacts(projectId: string, imageId: string, options?: BrainCallOptions): Promise<ImageAnalysis> {
    const response = await this.unary(true, options, (o) => this.imageFacts.getImageFacts({ projectId, imageId }, o));
    return required(response.analysis, "analysis");
  }

  /** One page of a project's image analyses, oldest first. */
  listImageFacts(request: Init<typeof ListImageFactsRequestSchema>, options?: BrainCallOptions): Promise<ListImageFactsResponse> {
    return this.unary(true, options, (o) => this.imageFacts.listImageFacts(request, o));
  }

  /**
   * Yields a project's image events after `afterCursor` (0: from the start),
   * each once, reconnecting from the last cursor whenever the connection drops.
   */
  watchImageFacts(
    projectId: string,
    afterCursor: bigint = 0n,
    options: { orchestrationId?: string; signal?: AbortSignal } = {},
  ): ImageFactsWatch {
    const request = create(WatchImageFactsRequestSchema, {
      projectId,
      afterCursor,
      orchestrationId: options.orchestrationId ?? "",
    });
    return new ImageFactsWatch(
      (req, signal) => this.imageFacts.watchImageFacts(req, { signal }),
      request,
      this.watchBackoff,
      options.signal,
    );
  }

  // ---- PerformanceService ---------------------------------------------------

  /** One performance report. */
  async getPerformanceReport(
    request: Init<typeof GetPerformanceReportRequestSchema> = {},
    options?: BrainCallOptions,
  ): Promise<PerformanceReport> {
    const response = await this.unary(true, options, (o) => this.performance.getPerformanceReport(request, o));
    return required(response.report, "report");
  }

  /** A fresh report every interval until the iterator is closed (not resumed on disconnect). */
  watchPerformanceReport(
    request: Init<typeof WatchPerformanceReportRequestSchema> = {},
    options?: { signal?: AbortSignal },
  ): AsyncGenerator<WatchPerformanceReportResponse> {
    return this.stream((o) => this.performance.watchPerformanceReport(request, o), options?.signal);
  }

  // ---- AdminService ---------------------------------------------------------

  /**
   * Applies the retention policy to `tenant` (its name; required with an admin key, empty for the
   * implicit tenant in local mode); retried (a second run finds nothing more). Needs an admin key
   * outside local mode (a tenant's key gets PERMISSION_DENIED, ADMIN_KEY_REQUIRED).
   */
  runRetention(request: Init<typeof RunRetentionRequestSchema> = {}, options?: BrainCallOptions): Promise<RunRetentionResponse> {
    return this.unary(true, options, (o) => this.admin.runRetention(request, o));
  }

  /**
   * Erases a tenant: its API keys, every project with everything in it, and the tenant; returns
   * what was erased. Needs an admin key (or local mode). Not retried: a replay would answer
   * NOT_FOUND, TENANT_NOT_FOUND (after a lost response, it means the tenant is gone).
   */
  purgeTenant(tenant: string, options?: BrainCallOptions): Promise<PurgeTenantResponse> {
    return this.unary(false, options, (o) => this.admin.purgeTenant({ tenant }, o));
  }
}

function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw new BrainError(Code.Internal, `the server's response has no ${field}`);
  return value;
}
