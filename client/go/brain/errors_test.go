package brain_test

import (
	"testing"
	"time"

	"example.invalid/brain/client/go/brain"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// A per-tenant limit is retryable, and the error carries the server's RetryInfo delay.
func TestRateLimitsAreRetryableAfterTheServersDelay(t *testing.T) {
	st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(
		&errdetails.ErrorInfo{Reason: "RATE_LIMITED", Domain: brain.ErrorDomain, Metadata: map[string]string{"limit": "5/s"}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(750 * time.Millisecond)},
	)
	if err != nil {
		t.Fatal(err)
	}
	be := brain.AsError(st.Err())
	if be.Reason != "RATE_LIMITED" || be.Limit() != "5/s" || !be.Retryable() {
		t.Fatalf("want a retryable RATE_LIMITED with its limit, got %v (%v)", be, be.Metadata)
	}
	if be.RetryDelay != 750*time.Millisecond {
		t.Fatalf("RetryDelay = %v, want 750ms", be.RetryDelay)
	}
	other := brain.AsError(status.New(codes.ResourceExhausted, "too big").Err())
	if other.Retryable() || other.RetryDelay != 0 {
		t.Fatalf("a plain RESOURCE_EXHAUSTED is not retryable: %v", other)
	}
}
