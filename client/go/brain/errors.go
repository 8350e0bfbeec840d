package brain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	brainv1 "example.invalid/brain/client/go/gen/brain/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every error brain returns.
const ErrorDomain = "brain.v1"

// Error is a failed brain call.
//
// Code is the gRPC status code. Errors the server returns carry a
// google.rpc.ErrorInfo (domain "brain.v1"): Reason is its UPPER_SNAKE reason,
// for example "PROJECT_NOT_FOUND" (one of brainv1.ErrorReason without the
// ERROR_REASON_ prefix), and Field / Limit come from its metadata. Errors raised
// by the client itself (deadline, no connection) have a code and no reason.
// Branch on the code and the reason, never on the message.
//
//	var be *brain.Error
//	if errors.As(err, &be) && be.Reason == "PROJECT_NOT_FOUND" { ... }
type Error struct {
	Code     codes.Code
	Message  string
	Reason   string
	Domain   string
	Metadata map[string]string
	// RetryDelay is the server's google.rpc.RetryInfo delay (0 when it sent none): how long
	// to wait before retrying a call refused by a per-tenant limit.
	RetryDelay time.Duration
	status     *status.Status
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(CodeName(e.Code))
	if e.Reason != "" {
		fmt.Fprintf(&b, " (%s)", e.Reason)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if field := e.Field(); field != "" {
		fmt.Fprintf(&b, " [field: %s]", field)
	}
	return b.String()
}

// GRPCStatus lets status.FromError and status.Code read the error.
func (e *Error) GRPCStatus() *status.Status {
	if e.status != nil {
		return e.status
	}
	return status.New(e.Code, e.Message)
}

// Field is the request field at fault, when the server named one.
func (e *Error) Field() string { return e.Metadata["field"] }

// Limit is the limit that was exceeded, when the server named one.
func (e *Error) Limit() string { return e.Metadata["limit"] }

// ErrorReason is the reason as the contract's enum (UNSPECIFIED when unknown).
func (e *Error) ErrorReason() brainv1.ErrorReason {
	if value, ok := brainv1.ErrorReason_value["ERROR_REASON_"+e.Reason]; ok && e.Reason != "" {
		return brainv1.ErrorReason(value)
	}
	return brainv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

// Retryable reports whether the failure is transient: the server or the
// connection is unavailable, the server is at its concurrency limit
// (RESOURCE_EXHAUSTED with reason OVERLOADED), or the tenant is over a
// per-tenant limit (RATE_LIMITED, QUOTA_EXCEEDED: retried no sooner than RetryDelay).
func (e *Error) Retryable() bool {
	switch e.Code {
	case codes.Unavailable:
		return true
	case codes.ResourceExhausted:
		return e.Reason == "OVERLOADED" || e.Reason == "RATE_LIMITED" || e.Reason == "QUOTA_EXCEEDED"
	default:
		return false
	}
}

// CodeName is the canonical UPPER_SNAKE name of a code, e.g. "NOT_FOUND".
func CodeName(code codes.Code) string {
	switch code {
	case codes.OK:
		return "OK"
	case codes.Canceled:
		return "CANCELLED"
	case codes.InvalidArgument:
		return "INVALID_ARGUMENT"
	case codes.DeadlineExceeded:
		return "DEADLINE_EXCEEDED"
	case codes.NotFound:
		return "NOT_FOUND"
	case codes.AlreadyExists:
		return "ALREADY_EXISTS"
	case codes.PermissionDenied:
		return "PERMISSION_DENIED"
	case codes.ResourceExhausted:
		return "RESOURCE_EXHAUSTED"
	case codes.FailedPrecondition:
		return "FAILED_PRECONDITION"
	case codes.Aborted:
		return "ABORTED"
	case codes.OutOfRange:
		return "OUT_OF_RANGE"
	case codes.Unimplemented:
		return "UNIMPLEMENTED"
	case codes.Internal:
		return "INTERNAL"
	case codes.Unavailable:
		return "UNAVAILABLE"
	case codes.DataLoss:
		return "DATA_LOSS"
	case codes.Unauthenticated:
		return "UNAUTHENTICATED"
	default:
		return "UNKNOWN"
	}
}

// AsError converts any error from a gRPC call into an *Error (nil stays nil).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var be *Error
	if errors.As(err, &be) {
		return be
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: codes.DeadlineExceeded, Message: err.Error(), Metadata: map[string]string{}}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Code: codes.Canceled, Message: err.Error(), Metadata: map[string]string{}}
	}
	st := status.Convert(err)
	out := &Error{Code: st.Code(), Message: st.Message(), Metadata: map[string]string{}, status: st}
	seenInfo := false
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			if seenInfo {
				continue
			}
			seenInfo = true
			out.Reason = d.GetReason()
			out.Domain = d.GetDomain()
			for k, v := range d.GetMetadata() {
				out.Metadata[k] = v
			}
		case *errdetails.RetryInfo:
			out.RetryDelay = d.GetRetryDelay().AsDuration()
		}
	}
	return out
}
