package brain_test

// The watch's resume logic against a stand-in WatchImageFacts server that
// misbehaves on purpose: it fails mid-stream, ends a stream cleanly, and sends
// an event the client already has. The live scenario proves resume against the
// real server through a proxy that cuts the connection; this pins the cases a
// real server cannot be made to produce on demand.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"example.invalid/brain/client/go/brain"
	brainv1 "example.invalid/brain/client/go/gen/brain/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// standIn serves a five-event log (cursors 1 to 5) over three connections:
//  1. events after the cursor up to 2, then UNAVAILABLE;
//  2. event 2 again (a duplicate), then 3, then a clean end of stream;
//  3. a heartbeat (latest 5), events 4 and 5, then nothing until cancelled.
//
// Project "forbidden" fails with NOT_FOUND (not retryable).
type standIn struct {
	brainv1.UnimplementedImageFactsServiceServer
	mu       sync.Mutex
	requests []uint64
}

func standInEvent(cursor uint64) *brainv1.WatchImageFactsResponse {
	return &brainv1.WatchImageFactsResponse{Message: &brainv1.WatchImageFactsResponse_Event{Event: &brainv1.ImageFactsEvent{
		Cursor: cursor, Type: brainv1.EventType_EVENT_TYPE_IMAGE_FACTS_READY, ProjectId: "p", ImageId: fmt.Sprintf("image-%d", cursor),
	}}}
}

func (s *standIn) WatchImageFacts(req *brainv1.WatchImageFactsRequest, stream grpc.ServerStreamingServer[brainv1.WatchImageFactsResponse]) error {
	if req.GetProjectId() == "forbidden" {
		return status.Error(codes.NotFound, "no such project")
	}
	s.mu.Lock()
	s.requests = append(s.requests, req.GetAfterCursor())
	connection := len(s.requests)
	s.mu.Unlock()
	switch connection {
	case 1:
		for cursor := req.GetAfterCursor() + 1; cursor <= 2; cursor++ {
			if err := stream.Send(standInEvent(cursor)); err != nil {
				return err
			}
		}
		return status.Error(codes.Unavailable, "connection lost")
	case 2:
		_ = stream.Send(standInEvent(req.GetAfterCursor()))
		_ = stream.Send(standInEvent(3))
		return nil
	default:
		_ = stream.Send(&brainv1.WatchImageFactsResponse{Message: &brainv1.WatchImageFactsResponse_Heartbeat{Heartbeat: &brainv1.Heartbeat{LatestCursor: 5}}})
		_ = stream.Send(standInEvent(4))
		_ = stream.Send(standInEvent(5))
		<-stream.Context().Done()
		return nil
	}
}

func serveStandIn(t *testing.T) (string, *standIn) {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	service := &standIn{}
	server := grpc.NewServer()
	brainv1.RegisterImageFactsServiceServer(server, service)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return listener.Addr().String(), service
}

func TestWatchResumesFromItsCursorAndNeverRepeatsAnEvent(t *testing.T) {
	addr, service := serveStandIn(t)
	fast := brain.RetryPolicy{MaxAttempts: 0, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Multiplier: 2}
	client, err := brain.New(addr, brain.WithWatchBackoff(fast))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	watch := client.WatchImageFacts(ctx, "p", 0)
	defer watch.Close()
	var cursors []uint64
	for event, err := range watch.Events() {
		if err != nil {
			t.Fatal(err)
		}
		cursors = append(cursors, event.GetCursor())
		if len(cursors) == 5 {
			break
		}
	}
	if !slices.Equal(cursors, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("every event once, in order: %v", cursors)
	}
	service.mu.Lock()
	requests := slices.Clone(service.requests)
	service.mu.Unlock()
	if !slices.Equal(requests, []uint64{0, 2, 3}) {
		t.Fatalf("each reconnect resumes after the last cursor: %v", requests)
	}
	if watch.Reconnects() != 2 || watch.Cursor() != 5 || watch.LatestCursor() != 5 {
		t.Fatalf("reconnects %d, cursor %d, latest %d", watch.Reconnects(), watch.Cursor(), watch.LatestCursor())
	}
}

func TestWatchEndsOnAnErrorThatIsNotADisconnect(t *testing.T) {
	addr, _ := serveStandIn(t)
	client, err := brain.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	watch := client.WatchImageFacts(context.Background(), "forbidden", 0)
	_, err = watch.Next()
	var be *brain.Error
	if !errors.As(err, &be) || be.Code != codes.NotFound {
		t.Fatalf("got %v", err)
	}
	if _, again := watch.Next(); !errors.Is(again, err) || watch.Reconnects() != 0 {
		t.Fatalf("the watch ended: %v, %d reconnects", again, watch.Reconnects())
	}
}

func TestWatchGivesUpAfterItsReconnectBudget(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	_ = listener.Close() // nothing listens there now
	bounded := brain.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Multiplier: 2}
	client, err := brain.New(addr, brain.WithWatchBackoff(bounded))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	watch := client.WatchImageFacts(context.Background(), "p", 7)
	_, err = watch.Next()
	var be *brain.Error
	if !errors.As(err, &be) || !be.Retryable() {
		t.Fatalf("got %v", err)
	}
	if watch.Reconnects() != 2 || watch.Cursor() != 7 {
		t.Fatalf("three attempts (two reconnects), cursor kept: %d, %d", watch.Reconnects(), watch.Cursor())
	}
}
