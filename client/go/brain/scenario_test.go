package brain_test

// The scenario every client runs against a live brain-server.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"example.invalid/brain/client/go/brain"
	brainv1 "example.invalid/brain/client/go/gen/brain/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

var server *brainServer

func TestMain(m *testing.M) {
	var err error
	server, err = startServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start brain-server:", err)
		os.Exit(1)
	}
	code := m.Run()
	server.stop()
	os.Exit(code)
}

func newClient(t *testing.T, addr string, opts ...brain.Option) *brain.Client {
	t.Helper()
	client, err := brain.New(addr, append([]brain.Option{brain.WithAPIKey(server.apiKey)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// brainErr asserts err is a *brain.Error and returns it.
func brainErr(t *testing.T, err error) *brain.Error {
	t.Helper()
	var be *brain.Error
	if !errors.As(err, &be) {
		t.Fatalf("want a *brain.Error, got %v", err)
	}
	return be
}

// result holds a call's two return values, so `ok(call()).get(t)` fails the test on error.
type result[T any] struct {
	value T
	err   error
}

func ok[T any](value T, err error) result[T] { return result[T]{value, err} }

func (r result[T]) get(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.value
}

var fastReconnect = brain.RetryPolicy{MaxAttempts: 0, InitialBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, Multiplier: 2, Jitter: 0.2}

func TestScenario(t *testing.T) {
	ctx := context.Background()
	client := newClient(t, server.addr)

	t.Run("wrong or missing API key is UNAUTHENTICATED", func(t *testing.T) {
		wrong, err := brain.New(server.addr, brain.WithAPIKey("brk_not_a_real_key"))
		if err != nil {
			t.Fatal(err)
		}
		defer wrong.Close()
		_, err = wrong.ListProjects(ctx, &brainv1.ListProjectsRequest{})
		be := brainErr(t, err)
		if be.Code != codes.Unauthenticated || be.Reason != "API_KEY_INVALID" || be.Domain != brain.ErrorDomain {
			t.Fatalf("got %v", be)
		}
		if be.ErrorReason() != brainv1.ErrorReason_ERROR_REASON_API_KEY_INVALID {
			t.Fatalf("enum reason %v", be.ErrorReason())
		}
		anonymous, err := brain.New(server.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer anonymous.Close()
		_, err = anonymous.ListProjects(ctx, &brainv1.ListProjectsRequest{})
		if be := brainErr(t, err); be.Code != codes.Unauthenticated || be.Reason != "API_KEY_MISSING" {
			t.Fatalf("got %v", be)
		}
	})

	project := ok(client.CreateProject(ctx, &brainv1.CreateProjectRequest{Name: "Launch video", Description: "Client scenario (Go)"})).get(t)
	projectID := project.GetProjectId()
	if projectID == "" || project.GetName() != "Launch video" || project.GetCreateTime() == nil {
		t.Fatalf("project %v", project)
	}
	renamed := ok(client.UpdateProject(ctx, &brainv1.UpdateProjectRequest{
		Project:    &brainv1.Project{ProjectId: projectID, Name: "Launch video v2"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}},
	})).get(t)
	if renamed.GetName() != "Launch video v2" || renamed.GetDescription() != "Client scenario (Go)" {
		t.Fatalf("renamed %v", renamed)
	}
	if fetched := ok(client.GetProject(ctx, projectID)).get(t); fetched.GetDescription() != "Client scenario (Go)" || fetched.GetName() != "Launch video v2" {
		t.Fatalf("fetched %v", fetched)
	}

	t.Run("scenes are paginated", func(t *testing.T) {
		scenes := [][3]string{
			{"intro", "Intro", "Logo fades in over a dark blue background"},
			{"demo", "Demo", "Product walkthrough"},
			{"outro", "Outro", "Call to action"},
		}
		for position, scene := range scenes {
			response := ok(client.UpsertScene(ctx, &brainv1.UpsertSceneRequest{
				ProjectId: projectID, SceneId: scene[0], Name: scene[1], Summary: scene[2], DurationSeconds: proto.Float64(4),
			})).get(t)
			if !response.GetCreated() || int(response.GetScene().GetPosition()) != position || response.GetScene().GetSummaryTokens() == 0 {
				t.Fatalf("upsert %s: %v", scene[0], response)
			}
		}
		first := ok(client.ListScenes(ctx, &brainv1.ListScenesRequest{ProjectId: projectID, PageSize: 2})).get(t)
		if ids := sceneIDs(first.GetScenes()); !slices.Equal(ids, []string{"intro", "demo"}) || first.GetNextPageToken() == "" {
			t.Fatalf("first page %v, token %q", ids, first.GetNextPageToken())
		}
		second := ok(client.ListScenes(ctx, &brainv1.ListScenesRequest{ProjectId: projectID, PageSize: 2, PageToken: first.GetNextPageToken()})).get(t)
		if ids := sceneIDs(second.GetScenes()); !slices.Equal(ids, []string{"outro"}) || second.GetNextPageToken() != "" {
			t.Fatalf("second page %v, token %q", ids, second.GetNextPageToken())
		}
	})

	t.Run("memory is keyed by type and key", func(t *testing.T) {
		for _, kv := range [][2]string{{"style", "minimal"}, {"pace", "fast"}} {
			response := ok(client.PutMemory(ctx, &brainv1.PutMemoryRequest{
				ProjectId: projectID, Type: brainv1.MemoryType_MEMORY_TYPE_USER_PREFERENCE, Key: kv[0], Value: kv[1], Confidence: proto.Float64(0.9),
			})).get(t)
			memory := response.GetMemory()
			if !response.GetCreated() || memory.GetValue() != kv[1] || memory.GetSource() != brainv1.MemorySource_MEMORY_SOURCE_API || memory.GetTokenCount() == 0 {
				t.Fatalf("put %s: %v", kv[0], response)
			}
		}
		replaced := ok(client.PutMemory(ctx, &brainv1.PutMemoryRequest{
			ProjectId: projectID, Type: brainv1.MemoryType_MEMORY_TYPE_USER_PREFERENCE, Key: "style", Value: "bold",
		})).get(t)
		if replaced.GetCreated() {
			t.Fatal("the same key is replaced, not created")
		}
		listed := ok(client.ListMemories(ctx, &brainv1.ListMemoriesRequest{ProjectId: projectID, Type: brainv1.MemoryType_MEMORY_TYPE_USER_PREFERENCE})).get(t)
		var pairs []string
		for _, m := range listed.GetMemories() {
			pairs = append(pairs, m.GetKey()+"="+m.GetValue())
		}
		slices.Sort(pairs)
		if !slices.Equal(pairs, []string{"pace=fast", "style=bold"}) {
			t.Fatalf("memories %v", pairs)
		}
	})

	t.Run("bad input is INVALID_ARGUMENT with a reason", func(t *testing.T) {
		_, err := client.GetProject(ctx, "")
		if be := brainErr(t, err); be.Code != codes.InvalidArgument || be.Reason != "MISSING_FIELD" || be.Field() != "project_id" {
			t.Fatalf("got %v", be)
		}
		_, err = client.ListScenes(ctx, &brainv1.ListScenesRequest{ProjectId: projectID, PageSize: -1})
		if be := brainErr(t, err); be.Code != codes.InvalidArgument || be.Reason != "INVALID_PAGE_SIZE" {
			t.Fatalf("got %v", be)
		}
		_, err = client.GetProject(ctx, "no-such-project")
		if be := brainErr(t, err); be.Code != codes.NotFound || be.Reason != "PROJECT_NOT_FOUND" {
			t.Fatalf("got %v", be)
		}
	})

	// Attached by the orchestrate step; its late facts are what the watch step waits for.
	const imageID = "sunset"
	t.Run("orchestrate with an attached image", func(t *testing.T) {
		request := &brainv1.OrchestrateRequest{
			ProjectId: projectID,
			Prompt:    "Make the intro dark blue like this photo",
			Images:    []*brainv1.ImageInput{{Source: &brainv1.ImageInput_Data{Data: sunsetPNG()}, MimeType: "image/png", ImageId: imageID}},
			RequestId: "go-scenario-" + projectID,
		}
		response := ok(client.Orchestrate(ctx, request)).get(t)
		orchestration := response.GetOrchestration()
		tokens := orchestration.GetTokenReport()
		switch {
		case response.GetReplayed():
			t.Fatal("the first call is not a replay")
		case orchestration.GetDecision().GetOutcome() == nil:
			t.Fatalf("a decision has an outcome: %v", orchestration.GetDecision())
		case tokens.GetEncoding() != "o200k_base" || tokens.GetTotalAfter() == 0 || tokens.GetTotalAfter() > tokens.GetBudget():
			t.Fatalf("token report %v", tokens)
		case !strings.Contains(orchestration.GetEnhancedPrompt(), "dark blue like this photo"):
			t.Fatal("the enhanced prompt carries the prompt")
		case len(orchestration.GetImages()) != 1 || orchestration.GetImages()[0].GetImageId() != imageID:
			t.Fatalf("images %v", orchestration.GetImages())
		}
		replay := ok(client.Orchestrate(ctx, request)).get(t)
		if !replay.GetReplayed() || replay.GetOrchestration().GetOrchestrationId() != orchestration.GetOrchestrationId() {
			t.Fatalf("replay %v", replay)
		}
	})

	t.Run("late facts over a watch that is cut and resumed", func(t *testing.T) {
		p, err := startProxy(server.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer p.refuse()
		viaProxy := newClient(t, p.addr, brain.WithWatchBackoff(fastReconnect))
		watchCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		isFinal := func(e *brainv1.ImageFactsEvent) bool {
			return e.GetType() == brainv1.EventType_EVENT_TYPE_IMAGE_FACTS_PROCESSED || e.GetType() == brainv1.EventType_EVENT_TYPE_IMAGE_FACTS_FAILED
		}
		// Analysis is fast, so the first image's events may all be stored before
		// the watch opens and arrive in one burst. A second image sent after the
		// cut commits events the cut stream cannot carry: only a reconnected,
		// resumed watch can deliver them.
		const laterImageID = "sunset-2"
		watch := viaProxy.WatchImageFacts(watchCtx, projectID, 0)
		defer watch.Close()
		var events []*brainv1.ImageFactsEvent
		firstDone, laterDone := false, false
		for !firstDone || !laterDone {
			event := ok(watch.Next()).get(t)
			events = append(events, event)
			if len(events) == 1 {
				p.cut()
				accepted := ok(client.AnalyzeImages(ctx, &brainv1.AnalyzeImagesRequest{
					ProjectId: projectID,
					Images:    []*brainv1.ImageInput{{Source: &brainv1.ImageInput_Data{Data: sunsetPNG()}, MimeType: "image/png", ImageId: laterImageID}},
				})).get(t)
				if got := accepted.GetAnalyses(); len(got) != 1 || got[0].GetImageId() != laterImageID {
					t.Fatalf("accepted %v", got)
				}
			}
			if isFinal(event) {
				firstDone = firstDone || event.GetImageId() == imageID
				laterDone = laterDone || event.GetImageId() == laterImageID
			}
		}
		if watch.Reconnects() < 1 {
			t.Fatal("the cut forced a reconnect")
		}
		var cursors []uint64
		for _, e := range events {
			cursors = append(cursors, e.GetCursor())
		}
		for i := 1; i < len(cursors); i++ {
			if cursors[i] <= cursors[i-1] {
				t.Fatalf("cursors strictly increase, no duplicates: %v", cursors)
			}
		}
		if watch.Cursor() != cursors[len(cursors)-1] {
			t.Fatalf("cursor %d", watch.Cursor())
		}
		var ready *brainv1.ImageFactsEvent
		for _, e := range events {
			if e.GetImageId() == imageID && e.GetType() == brainv1.EventType_EVENT_TYPE_IMAGE_FACTS_READY {
				ready = e
			}
		}
		if ready == nil || ready.GetFacts().GetWidth() != 96 || ready.GetFacts().GetHeight() != 64 || len(ready.GetFacts().GetPalette()) != 5 {
			t.Fatalf("a READY event with the image's facts: %v", ready)
		}
		replay := client.WatchImageFacts(watchCtx, projectID, 0)
		defer replay.Close()
		for _, want := range cursors {
			if got := ok(replay.Next()).get(t).GetCursor(); got != want {
				t.Fatalf("replayed cursor %d, want %d", got, want)
			}
		}
		resumed := client.WatchImageFacts(watchCtx, projectID, cursors[0])
		defer resumed.Close()
		if got := ok(resumed.Next()).get(t).GetCursor(); got != cursors[1] {
			t.Fatalf("resumed at %d, want %d", got, cursors[1])
		}
		analysis := ok(client.GetImageFacts(ctx, projectID, imageID)).get(t)
		if analysis.GetStatus() != brainv1.ImageAnalysisStatus_IMAGE_ANALYSIS_STATUS_READY {
			t.Fatalf("analysis %v", analysis)
		}
	})

	t.Run("performance report", func(t *testing.T) {
		request := &brainv1.GetPerformanceReportRequest{Window: brainv1.ReportWindow_REPORT_WINDOW_SINCE_START}
		report := ok(client.GetPerformanceReport(ctx, request)).get(t)
		if report.GetGenerateTime() == nil || report.GetRequests().GetTotal() == 0 || report.GetRequests().GetErrors() == 0 {
			t.Fatalf("report %v", report)
		}
		if !slices.ContainsFunc(report.GetRpcLatencies(), func(l *brainv1.LatencySummary) bool { return l.GetCount() > 0 }) {
			t.Fatalf("latencies %v", report.GetRpcLatencies())
		}
		scoped := ok(client.GetPerformanceReport(ctx, &brainv1.GetPerformanceReportRequest{
			Window: brainv1.ReportWindow_REPORT_WINDOW_SINCE_START, ProjectId: projectID,
		})).get(t)
		if scoped.GetProjectId() != projectID {
			t.Fatalf("scoped report for %q", scoped.GetProjectId())
		}
	})

	t.Run("delete the project and everything in it", func(t *testing.T) {
		// The steps above wrote 3 scenes, 2 preferences, one orchestration (one turn) and 2 images.
		deleted := ok(client.DeleteProject(ctx, projectID)).get(t)
		switch {
		case deleted.GetScenes() < 3 || deleted.GetMemoryItems() < 2:
			t.Fatalf("scenes and memory items: %v", deleted)
		case deleted.GetOrchestrations() < 1 || deleted.GetConversationTurns() < 1:
			t.Fatalf("the orchestration and its turn: %v", deleted)
		case deleted.GetImageAnalyses() < 2 || deleted.GetEvents() < 1:
			t.Fatalf("the images and their events: %v", deleted)
		}
		_, err := client.GetProject(ctx, projectID)
		if be := brainErr(t, err); be.Code != codes.NotFound || be.Reason != "PROJECT_NOT_FOUND" {
			t.Fatalf("get after delete: %v", be)
		}
		_, err = client.ListScenes(ctx, &brainv1.ListScenesRequest{ProjectId: projectID})
		if be := brainErr(t, err); be.Code != codes.NotFound || be.Reason != "PROJECT_NOT_FOUND" {
			t.Fatalf("list scenes after delete: %v", be)
		}
		// Deleting it again is NOT_FOUND too (a replayed delete would answer the same, so it is not retried).
		_, err = client.DeleteProject(ctx, projectID)
		if be := brainErr(t, err); be.Code != codes.NotFound || be.Reason != "PROJECT_NOT_FOUND" {
			t.Fatalf("second delete: %v", be)
		}
	})
}

// AdminService needs an admin key, and an admin key calls nothing else; retention
// names its tenant; purging erases one tenant, and an unknown (or already purged)
// one is TENANT_NOT_FOUND.
func TestAdminService(t *testing.T) {
	ctx := context.Background()
	client := newClient(t, server.addr)
	withKey := func(key string) *brain.Client {
		c, err := brain.New(server.addr, brain.WithAPIKey(key))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	admin, doomed := withKey(server.adminKey), withKey(server.purgeKey)

	_, err := client.RunRetention(ctx, &brainv1.RunRetentionRequest{Tenant: testTenant})
	if be := brainErr(t, err); be.Code != codes.PermissionDenied || be.Reason != "ADMIN_KEY_REQUIRED" ||
		be.ErrorReason() != brainv1.ErrorReason_ERROR_REASON_ADMIN_KEY_REQUIRED {
		t.Fatalf("retention with a tenant's key: %v", be)
	}
	_, err = client.PurgeTenant(ctx, purgeTenant)
	if be := brainErr(t, err); be.Code != codes.PermissionDenied || be.Reason != "ADMIN_KEY_REQUIRED" {
		t.Fatalf("purge with a tenant's key: %v", be)
	}
	_, err = admin.ListProjects(ctx, &brainv1.ListProjectsRequest{})
	if be := brainErr(t, err); be.Code != codes.PermissionDenied || be.Reason != "TENANT_KEY_REQUIRED" ||
		be.ErrorReason() != brainv1.ErrorReason_ERROR_REASON_TENANT_KEY_REQUIRED {
		t.Fatalf("list projects with an admin key: %v", be)
	}

	// Retention names its tenant (only local mode has an implicit one).
	if run := ok(admin.RunRetention(ctx, &brainv1.RunRetentionRequest{Tenant: testTenant, DryRun: true})).get(t); !run.GetDryRun() {
		t.Fatalf("retention %v", run)
	}
	_, err = admin.RunRetention(ctx, &brainv1.RunRetentionRequest{DryRun: true})
	if be := brainErr(t, err); be.Code != codes.InvalidArgument || be.Reason != "MISSING_FIELD" || be.Field() != "tenant" {
		t.Fatalf("retention without a tenant: %v", be)
	}

	_, err = admin.PurgeTenant(ctx, "no-such-tenant")
	if be := brainErr(t, err); be.Code != codes.NotFound || be.Reason != "TENANT_NOT_FOUND" ||
		be.ErrorReason() != brainv1.ErrorReason_ERROR_REASON_TENANT_NOT_FOUND {
		t.Fatalf("purge an unknown tenant: %v", be)
	}

	// Purge a tenant holding one project with one scene.
	project := ok(doomed.CreateProject(ctx, &brainv1.CreateProjectRequest{Name: "Doomed"})).get(t)
	ok(doomed.UpsertScene(ctx, &brainv1.UpsertSceneRequest{ProjectId: project.GetProjectId(), Name: "Only scene"})).get(t)
	purged := ok(admin.PurgeTenant(ctx, purgeTenant)).get(t)
	if purged.GetProjects() != 1 || purged.GetApiKeys() != 1 || purged.GetDeleted().GetScenes() != 1 {
		t.Fatalf("purged %v", purged)
	}
	// Its key stops working at once; purging it again (what a replay would do) is NOT_FOUND.
	_, err = doomed.ListProjects(ctx, &brainv1.ListProjectsRequest{})
	if be := brainErr(t, err); be.Code != codes.Unauthenticated || be.Reason != "API_KEY_INVALID" {
		t.Fatalf("a purged tenant's key: %v", be)
	}
	_, err = admin.PurgeTenant(ctx, purgeTenant)
	if be := brainErr(t, err); be.Code != codes.NotFound || be.Reason != "TENANT_NOT_FOUND" {
		t.Fatalf("second purge: %v", be)
	}
	ok(client.ListProjects(ctx, &brainv1.ListProjectsRequest{})).get(t) // the other tenant is untouched
}

func sceneIDs(scenes []*brainv1.Scene) []string {
	var ids []string
	for _, s := range scenes {
		ids = append(ids, s.GetSceneId())
	}
	return ids
}

func TestRetriesOnlyIdempotentCallsWithinTheDeadline(t *testing.T) {
	ctx := context.Background()
	p, err := startProxy(server.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.refuse()
	patient := brain.RetryPolicy{MaxAttempts: 50, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Multiplier: 2, Jitter: 0.1}
	client := newClient(t, p.addr, brain.WithRetry(patient))
	project := ok(client.CreateProject(ctx, &brainv1.CreateProjectRequest{Name: "Retries"})).get(t)

	// The server is unreachable: a non-idempotent call fails at once.
	p.refuse()
	started := time.Now()
	_, err = client.CreateProject(ctx, &brainv1.CreateProjectRequest{Name: "Never"})
	if be := brainErr(t, err); !be.Retryable() {
		t.Fatalf("a connection failure, got %v", be)
	}
	if elapsed := time.Since(started); elapsed > 500*time.Millisecond {
		t.Fatalf("not retried, took %v", elapsed)
	}

	// An idempotent call is retried until the server is back.
	restored := make(chan error, 1)
	time.AfterFunc(400*time.Millisecond, func() { restored <- p.restore() })
	started = time.Now()
	if fetched := ok(client.GetProject(ctx, project.GetProjectId())).get(t); fetched.GetProjectId() != project.GetProjectId() {
		t.Fatalf("fetched %v", fetched)
	}
	if elapsed := time.Since(started); elapsed < 300*time.Millisecond {
		t.Fatalf("it waited for the outage, took %v", elapsed)
	}
	if err := <-restored; err != nil {
		t.Fatal(err)
	}

	// Retries stop at the deadline.
	p.refuse()
	started = time.Now()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = client.ListProjects(short, &brainv1.ListProjectsRequest{})
	cancel()
	if be := brainErr(t, err); !be.Retryable() && be.Code != codes.DeadlineExceeded {
		t.Fatalf("got %v", be)
	}
	if elapsed := time.Since(started); elapsed > time.Second {
		t.Fatalf("bounded by the deadline, took %v", elapsed)
	}

	// A server that never answers fails with DEADLINE_EXCEEDED at the deadline.
	if err := p.restore(); err != nil {
		t.Fatal(err)
	}
	p.stall()
	stalled := newClient(t, p.addr, brain.WithTimeout(300*time.Millisecond))
	started = time.Now()
	_, err = stalled.ListProjects(ctx, &brainv1.ListProjectsRequest{})
	elapsed := time.Since(started)
	if be := brainErr(t, err); be.Code != codes.DeadlineExceeded {
		t.Fatalf("got %v", be)
	}
	if elapsed < 250*time.Millisecond || elapsed > 2*time.Second {
		t.Fatalf("took %v", elapsed)
	}

	direct := newClient(t, server.addr)
	projects := ok(direct.ListProjects(ctx, &brainv1.ListProjectsRequest{PageSize: 500})).get(t)
	for _, p := range projects.GetProjects() {
		if p.GetName() == "Never" {
			t.Fatal("the refused CreateProject wrote nothing")
		}
	}
}

func TestQuickstartRunsAsShownInTheReadme(t *testing.T) {
	run := exec.Command("go", "run", "./examples/quickstart")
	run.Dir = ".."
	run.Env = append(os.Environ(), "BRAIN_ADDR="+server.addr, "BRAIN_API_KEY="+server.apiKey)
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "has 1 scene(s)") || !strings.Contains(string(out), "deleted 1 scene(s), 0 memory item(s)") ||
		!strings.Contains(string(out), "NOT_FOUND PROJECT_NOT_FOUND") {
		t.Fatalf("quickstart printed:\n%s", out)
	}
	readme := string(ok(os.ReadFile(filepath.Join("..", "README.md"))).get(t))
	source := strings.TrimSpace(string(ok(os.ReadFile(filepath.Join("..", "examples", "quickstart", "main.go"))).get(t)))
	if !strings.Contains(readme, source) {
		t.Fatal("README.md shows examples/quickstart/main.go verbatim")
	}
}
