// Package brain is the Go client of brain: a thin wrapper over the generated
// brain.v1 stubs (package brainv1) with auth, deadlines, retries and an
// image-facts watch that resumes across disconnects.
//
//	client, err := brain.New("127.0.0.1:50051", brain.WithAPIKey(key))
//	if err != nil { ... }
//	defer client.Close()
//	project, err := client.CreateProject(ctx, &brainv1.CreateProjectRequest{Name: "Launch video"})
//
// Unary calls run under the context's deadline, or the client's default
// timeout (10 s) when the context has none. Idempotent calls are retried with
// backoff on transient failures (see the README for which calls). Every
// failure is an *Error carrying the gRPC code and the server's ErrorInfo reason.
package brain

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"iter"
	"strings"
	"time"

	brainv1 "example.invalid/brain/client/go/gen/brain/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// DefaultTimeout is the deadline of unary calls whose context has none.
const DefaultTimeout = 10 * time.Second

// maxResponseBytes bounds responses (context packets and reports can be large).
const maxResponseBytes = 64 << 20

// Client calls every brain RPC over one gRPC connection. It is safe for
// concurrent use; Close it when done.
type Client struct {
	conn         *grpc.ClientConn
	owner        bool
	timeout      time.Duration
	retry        RetryPolicy
	watchBackoff RetryPolicy

	projects     brainv1.ProjectServiceClient
	orchestrator brainv1.OrchestratorServiceClient
	imageFacts   brainv1.ImageFactsServiceClient
	performance  brainv1.PerformanceServiceClient
	admin        brainv1.AdminServiceClient
	health       healthpb.HealthClient
}

type options struct {
	apiKey       string
	timeout      time.Duration
	retry        RetryPolicy
	watchBackoff RetryPolicy
	dialOptions  []grpc.DialOption
	tls          *tls.Config
}

// Option configures New.
type Option func(*options)

// WithAPIKey sends "authorization: Bearer <key>" on every call.
func WithAPIKey(key string) Option { return func(o *options) { o.apiKey = key } }

// WithTimeout sets the deadline of unary calls whose context has none (0: no deadline).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithRetry sets the retry policy of idempotent unary calls.
func WithRetry(p RetryPolicy) Option { return func(o *options) { o.retry = p } }

// WithWatchBackoff sets the reconnect backoff of watches; MaxAttempts > 0 bounds consecutive failures.
func WithWatchBackoff(p RetryPolicy) Option { return func(o *options) { o.watchBackoff = p } }

// WithTLS connects with TLS (also implied by an https:// target).
func WithTLS(config *tls.Config) Option { return func(o *options) { o.tls = config } }

// WithDialOptions adds gRPC dial options.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOptions = append(o.dialOptions, opts...) }
}

type bearer struct {
	value  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.value}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// New creates a client for target ("host:port", "http://host:port" or
// "https://host[:port]"). It connects lazily, on the first call.
func New(target string, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout, retry: DefaultRetry, watchBackoff: WatchBackoff}
	for _, opt := range opts {
		opt(&o)
	}
	address := target
	switch {
	case strings.HasPrefix(target, "https://"):
		address = strings.TrimSuffix(strings.TrimPrefix(target, "https://"), "/")
		if !strings.Contains(address, ":") {
			address += ":443"
		}
		if o.tls == nil {
			o.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	case strings.HasPrefix(target, "http://"):
		address = strings.TrimSuffix(strings.TrimPrefix(target, "http://"), "/")
	}
	dial := []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResponseBytes)),
		// Notice a dead connection under a long watch.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	}
	if o.tls != nil {
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(o.tls)))
	} else {
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if o.apiKey != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer{value: "Bearer " + o.apiKey, secure: o.tls != nil}))
	}
	dial = append(dial, o.dialOptions...)
	conn, err := grpc.NewClient(address, dial...)
	if err != nil {
		return nil, &Error{Code: codes.InvalidArgument, Message: err.Error(), Metadata: map[string]string{}}
	}
	return &Client{
		conn:         conn,
		owner:        true,
		timeout:      o.timeout,
		retry:        o.retry,
		watchBackoff: o.watchBackoff,
		projects:     brainv1.NewProjectServiceClient(conn),
		orchestrator: brainv1.NewOrchestratorServiceClient(conn),
		imageFacts:   brainv1.NewImageFactsServiceClient(conn),
		performance:  brainv1.NewPerformanceServiceClient(conn),
		admin:        brainv1.NewAdminServiceClient(conn),
		health:       healthpb.NewHealthClient(conn),
	}, nil
}

// Close closes the connection (a no-op for clients made by WithRetryPolicy).
func (c *Client) Close() error {
	if !c.owner {
		return nil
	}
	return c.conn.Close()
}

// WithRetryPolicy returns this client (same connection) with another retry policy.
func (c *Client) WithRetryPolicy(p RetryPolicy) *Client {
	clone := *c
	clone.owner = false
	clone.retry = p
	return &clone
}

// Conn is the underlying connection, for calling the generated stubs directly.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// unary runs call under the deadline, retrying it when it is idempotent.
func unary[T any](ctx context.Context, c *Client, idempotent bool, call func(context.Context) (T, error)) (T, error) {
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	maxAttempts := 1
	if idempotent {
		maxAttempts = max(c.retry.MaxAttempts, 1)
	}
	for attempt := 1; ; attempt++ {
		response, err := call(ctx)
		if err == nil {
			return response, nil
		}
		failure := AsError(err)
		var zero T
		if attempt >= maxAttempts || !failure.Retryable() || ctx.Err() != nil {
			return zero, failure
		}
		// Never sooner than the server asked (a per-tenant limit says when it admits again).
		wait := max(c.retry.Backoff(attempt), failure.RetryDelay)
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(deadline) {
			return zero, failure
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return zero, failure
		case <-timer.C:
		}
	}
}

// Health is the server's overall health (no API key needed).
func (c *Client) Health(ctx context.Context) (healthpb.HealthCheckResponse_ServingStatus, error) {
	response, err := unary(ctx, c, true, func(ctx context.Context) (*healthpb.HealthCheckResponse, error) {
		return c.health.Check(ctx, &healthpb.HealthCheckRequest{})
	})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, err
	}
	return response.GetStatus(), nil
}

// ---- ProjectService ---------------------------------------------------------

// CreateProject creates a project (not retried: a retry could create a second one).
func (c *Client) CreateProject(ctx context.Context, req *brainv1.CreateProjectRequest) (*brainv1.Project, error) {
	response, err := unary(ctx, c, false, func(ctx context.Context) (*brainv1.CreateProjectResponse, error) {
		return c.projects.CreateProject(ctx, req)
	})
	return response.GetProject(), err
}

// GetProject returns one project.
func (c *Client) GetProject(ctx context.Context, projectID string) (*brainv1.Project, error) {
	response, err := unary(ctx, c, true, func(ctx context.Context) (*brainv1.GetProjectResponse, error) {
		return c.projects.GetProject(ctx, &brainv1.GetProjectRequest{ProjectId: projectID})
	})
	return response.GetProject(), err
}

// UpdateProject changes a project's name or description (UpdateMask paths "name",
// "description"; AIP-134) and returns it. Retried like a read: writing the same
// values again changes nothing.
func (c *Client) UpdateProject(ctx context.Context, req *brainv1.UpdateProjectRequest) (*brainv1.Project, error) {
	response, err := unary(ctx, c, true, func(ctx context.Context) (*brainv1.UpdateProjectResponse, error) {
		return c.projects.UpdateProject(ctx, req)
	})
	return response.GetProject(), err
}

// DeleteProject deletes a project and everything in it and returns how many
// rows of each kind were removed. Not retried: a replay would answer NOT_FOUND
// (PROJECT_NOT_FOUND), so after a lost response NOT_FOUND means it is gone.
func (c *Client) DeleteProject(ctx context.Context, projectID string) (*brainv1.DeletedRows, error) {
	response, err := unary(ctx, c, false, func(ctx context.Context) (*brainv1.DeleteProjectResponse, error) {
		return c.projects.DeleteProject(ctx, &brainv1.DeleteProjectRequest{ProjectId: projectID})
	})
	return response.GetDeleted(), err
}

// ExportProject streams everything a project holds, as records in the order
// ImportProject takes them: the header first (GetHeader: the project and the
// counts that follow), then scenes, memory items, conversation turns and image
// analyses. Like every stream it has no default deadline: it runs under ctx's
// deadline, if any; cancel ctx, or leave the loop, to stop it. Not retried. The
// error that ends it (an *Error: a missing project is NOT_FOUND,
// PROJECT_NOT_FOUND) is yielded last.
//
//	for record, err := range client.ExportProject(ctx, projectID) { ... }
func (c *Client) ExportProject(ctx context.Context, projectID string) iter.Seq2[*brainv1.ProjectRecord, error] {
	return func(yield func(*brainv1.ProjectRecord, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.projects.ExportProject(ctx, &brainv1.ExportProjectRequest{ProjectId: projectID})
		if err != nil {
			yield(nil, AsError(err))
			return
		}
		for {
			response, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, AsError(err))
				return
			}
			if !yield(response.GetRecord(), nil) {
				return
			}
		}
	}
}

// ImportProject creates a new project from the records of an export (in export
// order: ExportProject's, as in ImportProject(ctx, client.ExportProject(ctx, id)),
// or Records(saved...)) and returns it (GetProject, with a new id) with the
// records stored by kind (GetImported). Records are sent as they are iterated.
// Like every stream it has no default deadline: it runs under ctx's deadline,
// if any. Not retried: a retry would create a second copy. When records yields
// an error, the call is cancelled (the server keeps nothing of it) and that
// error is returned as is.
func (c *Client) ImportProject(ctx context.Context, records iter.Seq2[*brainv1.ProjectRecord, error]) (*brainv1.ImportProjectResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.projects.ImportProject(ctx)
	if err != nil {
		return nil, AsError(err)
	}
	for record, err := range records {
		if err != nil {
			return nil, err // the deferred cancel cancels the call
		}
		if err := stream.Send(&brainv1.ImportProjectRequest{Record: record}); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the call: CloseAndRecv returns its status
			}
			return nil, AsError(err)
		}
	}
	response, err := stream.CloseAndRecv()
	if err != nil {
		return nil, AsError(err)
	}
	return response, nil
}

// Records iterates over records already in memory, for ImportProject.
func Records(records ...*brainv1.ProjectRecord) iter.Seq2[*brainv1.ProjectRecord, error] {
	return func(yield func(*brainv1.ProjectRecord, error) bool) {
		for _, record := range records {
			if !yield(record, nil) {
				return
			}
		}
	}
}

// ListProjects returns one page of the caller's projects, oldest first.
func (c *Client) ListProjects(ctx context.Context, req *brainv1.ListProjectsRequest) (*brainv1.ListProjectsResponse, error) {
	return unary(ctx, c, true, func(ctx context.Context) (*brainv1.ListProjectsResponse, error) {
		return c.projects.ListProjects(ctx, req)
	})
}

// UpsertScene creates or replaces a scene; retried only with a SceneId.
func (c *Client) UpsertScene(ctx context.Context, req *brainv1.UpsertSceneRequest) (*brainv1.UpsertSceneResponse, error) {
	return unary(ctx, c, req.GetSceneId() != "", func(ctx context.Context) (*brainv1.UpsertSceneResponse, error) {
		return c.projects.UpsertScene(ctx, req)
	})
}

// DeleteScene deletes a scene (not retried: a replay would answer SCENE_NOT_FOUND).
func (c *Client) DeleteScene(ctx context.Context, projectID, sceneID string) error {
	_, err := unary(ctx, c, false, func(ctx context.Context) (*brainv1.DeleteSceneResponse, error) {
		return c.projects.DeleteScene(ctx, &brainv1.DeleteSceneRequest{ProjectId: projectID, SceneId: sceneID})
	})
	return err
}

// ListScenes returns one page of a project's scenes, in position order.
func (c *Client) ListScenes(ctx context.Context, req *brainv1.ListScenesRequest) (*brainv1.ListScenesResponse, error) {
	return unary(ctx, c, true, func(ctx context.Context) (*brainv1.ListScenesResponse, error) {
		return c.projects.ListScenes(ctx, req)
	})
}

// PutMemory creates or replaces the item with the request's type and key;
// retried (the last write wins; a replay may count one extra occurrence).
func (c *Client) PutMemory(ctx context.Context, req *brainv1.PutMemoryRequest) (*brainv1.PutMemoryResponse, error) {
	return unary(ctx, c, true, func(ctx context.Context) (*brainv1.PutMemoryResponse, error) {
		return c.projects.PutMemory(ctx, req)
	})
}

// DeleteMemory deletes an item by id or by type and key (not retried).
func (c *Client) DeleteMemory(ctx context.Context, req *brainv1.DeleteMemoryRequest) error {
	_, err := unary(ctx, c, false, func(ctx context.Context) (*brainv1.DeleteMemoryResponse, error) {
		return c.projects.DeleteMemory(ctx, req)
	})
	return err
}

// ListMemories returns one page of a project's memory items, oldest first.
func (c *Client) ListMemories(ctx context.Context, req *brainv1.ListMemoriesRequest) (*brainv1.ListMemoriesResponse, error) {
	return unary(ctx, c, true, func(ctx context.Context) (*brainv1.ListMemoriesResponse, error) {
		return c.projects.ListMemories(ctx, req)
	})
}

// ---- OrchestratorService ----------------------------------------------------

// Orchestrate orchestrates one prompt; retried only with a RequestId (the server replays it).
func (c *Client) Orchestrate(ctx context.Context, req *brainv1.OrchestrateRequest) (*brainv1.OrchestrateResponse, error) {
	return unary(ctx, c, req.GetRequestId() != "", func(ctx context.Context) (*brainv1.OrchestrateResponse, error) {
		return c.orchestrator.Orchestrate(ctx, req)
	})
}

// OrchestrateStream orchestrates one prompt and streams its progress (never
// retried; no default deadline: cancel ctx to stop). Read it with Recv until io.EOF.
func (c *Client) OrchestrateStream(ctx context.Context, req *brainv1.OrchestrateStreamRequest) (grpc.ServerStreamingClient[brainv1.OrchestrateStreamResponse], error) {
	stream, err := c.orchestrator.OrchestrateStream(ctx, req)
	if err != nil {
		return nil, AsError(err)
	}
	return stream, nil
}

// GetContextPacket returns the context Orchestrate would build, without deciding or writing.
func (c *Client) GetContextPacket(ctx context.Context, req *brainv1.GetContextPacketRequest) (*brainv1.GetContextPacketResponse, error) {
	return unary(ctx, c, true, func(ctx context.Context) (*brainv1.GetContextPacketResponse, error) {
		return c.orchestrator.GetContextPacket(ctx, req)
	})
}

// ---- ImageFactsService ------------------------------------------------------

// AnalyzeImages accepts images for background analysis (not retried).
func (c *Client) AnalyzeImages(ctx context.Context, req *brainv1.AnalyzeImagesRequest) (*brainv1.AnalyzeImagesResponse, error) {
	return unary(ctx, c, false, func(ctx context.Context) (*brainv1.AnalyzeImagesResponse, error) {
		return c.imageFacts.AnalyzeImages(ctx, req)
	})
}

// GetImageFacts returns one image's analysis.
func (c *Client) GetImageFacts(ctx context.Context, projectID, imageID string) (*brainv1.ImageAnalysis, error) {
	response, err := unary(ctx, c, true, func(ctx context.Context) (*brainv1.GetImageFactsResponse, error) {
		return c.imageFacts.GetImageFacts(ctx, &brainv1.GetImageFactsRequest{ProjectId: projectID, ImageId: imageID})
	})
	return response.GetAnalysis(), err
}

// ListImageFacts returns one page of a project's image analyses, oldest first.
func (c *Client) ListImageFacts(ctx context.Context, req *brainv1.ListImageFactsRequest) (*brainv1.ListImageFactsResponse, error) {
	return unary(ctx, c, true, func(ctx context.Context) (*brainv1.ListImageFactsResponse, error) {
		return c.imageFacts.ListImageFacts(ctx, req)
	})
}

// ---- PerformanceService -----------------------------------------------------

// GetPerformanceReport returns one performance report.
func (c *Client) GetPerformanceReport(ctx context.Context, req *brainv1.GetPerformanceReportRequest) (*brainv1.PerformanceReport, error) {
	response, err := unary(ctx, c, true, func(ctx context.Context) (*brainv1.GetPerformanceReportResponse, error) {
		return c.performance.GetPerformanceReport(ctx, req)
	})
	return response.GetReport(), err
}

// WatchPerformanceReport streams a fresh report every interval until ctx is
// cancelled (not resumed on disconnect).
func (c *Client) WatchPerformanceReport(ctx context.Context, req *brainv1.WatchPerformanceReportRequest) (grpc.ServerStreamingClient[brainv1.WatchPerformanceReportResponse], error) {
	stream, err := c.performance.WatchPerformanceReport(ctx, req)
	if err != nil {
		return nil, AsError(err)
	}
	return stream, nil
}

// ---- AdminService -----------------------------------------------------------

// RunRetention applies the retention policy to req.Tenant (the tenant's name;
// required with an admin key, empty for the implicit tenant in local mode);
// retried (a second run finds nothing more). It needs an admin key outside local
// mode: a tenant's key gets PERMISSION_DENIED (ADMIN_KEY_REQUIRED).
func (c *Client) RunRetention(ctx context.Context, req *brainv1.RunRetentionRequest) (*brainv1.RunRetentionResponse, error) {
	return unary(ctx, c, true, func(ctx context.Context) (*brainv1.RunRetentionResponse, error) {
		return c.admin.RunRetention(ctx, req)
	})
}

// PurgeTenant erases a tenant: its API keys, every project with everything in
// it, and the tenant itself, and returns what was erased. It needs an admin key
// (or local mode). Not retried: a replay would answer NOT_FOUND
// (TENANT_NOT_FOUND), so after a lost response NOT_FOUND means it is gone.
func (c *Client) PurgeTenant(ctx context.Context, tenant string) (*brainv1.PurgeTenantResponse, error) {
	return unary(ctx, c, false, func(ctx context.Context) (*brainv1.PurgeTenantResponse, error) {
		return c.admin.PurgeTenant(ctx, &brainv1.PurgeTenantRequest{Tenant: tenant})
	})
}
