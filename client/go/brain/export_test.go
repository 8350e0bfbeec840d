package brain_test

// ExportProject and ImportProject against a live brain-server: an export
// imports as a new project with the same scenes and memory.

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"testing"

	"example.invalid/brain/client/go/brain"
	brainv1 "example.invalid/brain/client/go/gen/brain/v1"
	"google.golang.org/grpc/codes"
)

func scenesOf(t *testing.T, client *brain.Client, projectID string) []string {
	t.Helper()
	listed := ok(client.ListScenes(context.Background(), &brainv1.ListScenesRequest{ProjectId: projectID})).get(t)
	var scenes []string
	for _, s := range listed.GetScenes() {
		scenes = append(scenes, fmt.Sprintf("%s/%s/%d/%s", s.GetSceneId(), s.GetName(), s.GetPosition(), s.GetSummary()))
	}
	return scenes
}

func memoriesOf(t *testing.T, client *brain.Client, projectID string) []string {
	t.Helper()
	listed := ok(client.ListMemories(context.Background(), &brainv1.ListMemoriesRequest{ProjectId: projectID})).get(t)
	var memories []string
	for _, m := range listed.GetMemories() {
		memories = append(memories, fmt.Sprintf("%s/%s/%s", m.GetType(), m.GetKey(), m.GetValue()))
	}
	slices.Sort(memories)
	return memories
}

func collect(t *testing.T, records iter.Seq2[*brainv1.ProjectRecord, error]) []*brainv1.ProjectRecord {
	t.Helper()
	var all []*brainv1.ProjectRecord
	for record, err := range records {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, record)
	}
	return all
}

func TestExportThenImportCopiesTheProject(t *testing.T) {
	ctx := context.Background()
	client := newClient(t, server.addr)
	project := ok(client.CreateProject(ctx, &brainv1.CreateProjectRequest{Name: "Export me", Description: "export and import (Go)"})).get(t)
	projectID := project.GetProjectId()
	ok(client.UpsertScene(ctx, &brainv1.UpsertSceneRequest{ProjectId: projectID, SceneId: "intro", Name: "Intro", Summary: "Logo on dark blue"})).get(t)
	confidence := 0.9
	ok(client.PutMemory(ctx, &brainv1.PutMemoryRequest{
		ProjectId: projectID, Type: brainv1.MemoryType_MEMORY_TYPE_USER_PREFERENCE, Key: "style", Value: "minimal, flat colours", Confidence: &confidence,
	})).get(t)

	records := collect(t, client.ExportProject(ctx, projectID))
	if len(records) != 3 || records[0].GetHeader() == nil || records[1].GetScene() == nil || records[2].GetMemory() == nil {
		t.Fatalf("want header, scene, memory; got %v", records)
	}
	header := records[0].GetHeader()
	if header.GetFormatVersion() != 1 || header.GetProject().GetProjectId() != projectID {
		t.Fatalf("header: %v", header)
	}
	if counts := header.GetCounts(); counts.GetScenes() != 1 || counts.GetMemoryItems() != 1 {
		t.Fatalf("header counts: %v", counts)
	}

	imported := ok(client.ImportProject(ctx, brain.Records(records...))).get(t)
	copied := imported.GetProject()
	if copied.GetProjectId() == "" || copied.GetProjectId() == projectID {
		t.Fatalf("the import has a new id: %q (exported %q)", copied.GetProjectId(), projectID)
	}
	if copied.GetName() != "Export me" || copied.GetDescription() != "export and import (Go)" {
		t.Fatalf("imported project: %v", copied)
	}
	if n := imported.GetImported(); n.GetScenes() != 1 || n.GetMemoryItems() != 1 {
		t.Fatalf("imported counts: %v", n)
	}
	if got := ok(client.GetProject(ctx, copied.GetProjectId())).get(t).GetName(); got != "Export me" {
		t.Fatalf("GetProject of the import: name %q", got)
	}
	scenes := scenesOf(t, client, copied.GetProjectId())
	if want := []string{"intro/Intro/0/Logo on dark blue"}; !slices.Equal(scenes, want) {
		t.Fatalf("imported scenes %v, want %v", scenes, want)
	}
	if original := scenesOf(t, client, projectID); !slices.Equal(scenes, original) {
		t.Fatalf("imported scenes %v, exported %v", scenes, original)
	}
	memories := memoriesOf(t, client, copied.GetProjectId())
	if want := []string{"MEMORY_TYPE_USER_PREFERENCE/style/minimal, flat colours"}; !slices.Equal(memories, want) {
		t.Fatalf("imported memory %v, want %v", memories, want)
	}
	if original := memoriesOf(t, client, projectID); !slices.Equal(memories, original) {
		t.Fatalf("imported memory %v, exported %v", memories, original)
	}

	// Streamed straight through, export to import, without holding the records.
	again := ok(client.ImportProject(ctx, client.ExportProject(ctx, copied.GetProjectId()))).get(t)
	if id := again.GetProject().GetProjectId(); id == projectID || id == copied.GetProjectId() {
		t.Fatalf("a second import has a new id too: %q", id)
	}
	if got := scenesOf(t, client, again.GetProject().GetProjectId()); !slices.Equal(got, scenes) {
		t.Fatalf("scenes of the second import %v, want %v", got, scenes)
	}
}

func TestExportOfAMissingProjectIsNotFound(t *testing.T) {
	client := newClient(t, server.addr)
	var failure error
	for record, err := range client.ExportProject(context.Background(), "no-such-project") {
		if err == nil {
			t.Fatalf("a record of a missing project: %v", record)
		}
		failure = err
	}
	be := brainErr(t, failure)
	if be.Code != codes.NotFound || be.Reason != "PROJECT_NOT_FOUND" {
		t.Fatalf("want NOT_FOUND PROJECT_NOT_FOUND, got %v %q", be.Code, be.Reason)
	}
}

func countNamed(t *testing.T, client *brain.Client, name string) int {
	t.Helper()
	count, token := 0, ""
	for {
		page := ok(client.ListProjects(context.Background(), &brainv1.ListProjectsRequest{PageSize: 100, PageToken: token})).get(t)
		for _, p := range page.GetProjects() {
			if p.GetName() == name {
				count++
			}
		}
		if token = page.GetNextPageToken(); token == "" {
			return count
		}
	}
}

func TestImportReturnsTheRecordsOwnErrorAndKeepsNothing(t *testing.T) {
	ctx := context.Background()
	client := newClient(t, server.addr)
	// An empty project's export is its header alone: had the client ended the
	// stream instead of cancelling it, the server would have imported it.
	const name = "Broken import (Go)"
	project := ok(client.CreateProject(ctx, &brainv1.CreateProjectRequest{Name: name})).get(t)
	records := collect(t, client.ExportProject(ctx, project.GetProjectId()))
	if len(records) != 1 {
		t.Fatalf("an empty project's export is its header alone, got %v", records)
	}
	corrupt := errors.New("the export file is corrupt")
	broken := func(yield func(*brainv1.ProjectRecord, error) bool) {
		if yield(records[0], nil) {
			yield(nil, corrupt)
		}
	}
	if _, err := client.ImportProject(ctx, broken); !errors.Is(err, corrupt) {
		t.Fatalf("want the records' own error, got %v", err)
	}
	if n := countNamed(t, client, name); n != 1 {
		t.Fatalf("the cancelled import left a project: %d named %q", n, name)
	}
}
