package brain

import (
	"context"
	"errors"
	"io"
	"iter"
	"sync"
	"time"

	brainv1 "example.invalid/brain/client/go/gen/brain/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// ImageFactsWatch is a WatchImageFacts subscription that survives disconnects.
//
// Next returns each ImageFactsEvent once, in cursor order. When the connection
// drops (any retryable failure, or the server ending the stream while it
// drains), the watch reconnects with backoff and asks for the events after the
// last cursor it returned, so nothing is lost or repeated. Heartbeats are
// consumed (LatestCursor). Any other error is returned once and ends the watch;
// so do MaxAttempts consecutive failed reconnects when the backoff sets it
// above 0. Cancel the context, or call Close, to stop it.
type ImageFactsWatch struct {
	client  *Client
	ctx     context.Context
	cancel  context.CancelFunc
	request *brainv1.WatchImageFactsRequest
	stream  grpc.ServerStreamingClient[brainv1.WatchImageFactsResponse]

	mu         sync.Mutex
	cursor     uint64
	latest     uint64
	reconnects int
	failures   int
	err        error
}

// WatchImageFacts watches a project's image events after afterCursor (0: from
// the start of the log). The watch has no deadline; it lives until ctx ends or Close.
func (c *Client) WatchImageFacts(ctx context.Context, projectID string, afterCursor uint64) *ImageFactsWatch {
	return c.WatchImageFactsWith(ctx, &brainv1.WatchImageFactsRequest{ProjectId: projectID, AfterCursor: afterCursor})
}

// WatchImageFactsWith is WatchImageFacts with every request field, for example
// OrchestrationId to follow one orchestration's images.
func (c *Client) WatchImageFactsWith(ctx context.Context, req *brainv1.WatchImageFactsRequest) *ImageFactsWatch {
	ctx, cancel := context.WithCancel(ctx)
	return &ImageFactsWatch{client: c, ctx: ctx, cancel: cancel, request: req, cursor: req.GetAfterCursor()}
}

// Next blocks for the next event. After the watch ends it returns the error
// that ended it: an *Error, or io.EOF once closed or its context is done.
func (w *ImageFactsWatch) Next() (*brainv1.ImageFactsEvent, error) {
	for {
		if w.err != nil {
			return nil, w.err
		}
		if w.ctx.Err() != nil {
			w.err = io.EOF
			continue
		}
		if w.stream == nil {
			request := proto.Clone(w.request).(*brainv1.WatchImageFactsRequest)
			request.AfterCursor = w.Cursor()
			stream, err := w.client.imageFacts.WatchImageFacts(w.ctx, request)
			if err != nil {
				w.afterFailure(err)
				continue
			}
			w.stream = stream
		}
		response, err := w.stream.Recv()
		if err != nil {
			w.stream = nil
			if errors.Is(err, io.EOF) {
				// A watch never ends by itself: the server closed it (draining), so resume.
				err = &Error{Code: codes.Unavailable, Message: "the server ended the watch", Metadata: map[string]string{}}
			}
			w.afterFailure(err)
			continue
		}
		w.mu.Lock()
		w.failures = 0
		switch message := response.GetMessage().(type) {
		case *brainv1.WatchImageFactsResponse_Event:
			if message.Event.GetCursor() > w.cursor {
				w.cursor = message.Event.GetCursor()
				w.mu.Unlock()
				return message.Event, nil
			}
		case *brainv1.WatchImageFactsResponse_Heartbeat:
			w.latest = message.Heartbeat.GetLatestCursor()
		}
		w.mu.Unlock()
	}
}

// afterFailure waits before the next reconnect, or records the error that ends the watch.
func (w *ImageFactsWatch) afterFailure(err error) {
	if w.ctx.Err() != nil {
		w.err = io.EOF
		return
	}
	failure := AsError(err)
	w.mu.Lock()
	w.failures++
	failures := w.failures
	w.mu.Unlock()
	policy := w.client.watchBackoff
	if !failure.Retryable() || (policy.MaxAttempts > 0 && failures >= policy.MaxAttempts) {
		w.err = failure
		w.cancel()
		return
	}
	w.mu.Lock()
	w.reconnects++
	w.mu.Unlock()
	timer := time.NewTimer(max(policy.Backoff(failures), failure.RetryDelay))
	defer timer.Stop()
	select {
	case <-w.ctx.Done():
	case <-timer.C:
	}
}

// Events iterates over the events until the watch ends; the error that ended
// it (other than closing) is yielded last.
//
//	for event, err := range watch.Events() { ... }
func (w *ImageFactsWatch) Events() iter.Seq2[*brainv1.ImageFactsEvent, error] {
	return func(yield func(*brainv1.ImageFactsEvent, error) bool) {
		for {
			event, err := w.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(event, err) || err != nil {
				return
			}
		}
	}
}

// Cursor is the cursor of the last event returned (or the starting cursor): resume from it.
func (w *ImageFactsWatch) Cursor() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cursor
}

// LatestCursor is the project's latest committed cursor, per the last heartbeat.
func (w *ImageFactsWatch) LatestCursor() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

// Reconnects is how many times the watch has reconnected.
func (w *ImageFactsWatch) Reconnects() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reconnects
}

// Close stops the watch; a blocked Next returns io.EOF.
func (w *ImageFactsWatch) Close() { w.cancel() }
