package brain

import (
	"math"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how idempotent calls are retried on transient failures.
//
// Failed attempt n (1-based) waits min(InitialBackoff * Multiplier^(n-1), MaxBackoff),
// spread by ±Jitter (a fraction), before attempt n+1. Retries stop after
// MaxAttempts attempts in total, or when the next attempt could not start
// before the call's deadline. Non-idempotent calls are never retried.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt; 1 disables retries (0 means unlimited, for watches).
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	Multiplier     float64
	// Jitter is the random spread of each wait, from 0 (none) to 1.
	Jitter float64
}

// DefaultRetry makes 4 attempts, waiting about 100, 200 and 400 ms (±20%).
var DefaultRetry = RetryPolicy{MaxAttempts: 4, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second, Multiplier: 2, Jitter: 0.2}

// NoRetry never retries.
var NoRetry = RetryPolicy{MaxAttempts: 1, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second, Multiplier: 2, Jitter: 0.2}

// WatchBackoff reconnects image-facts watches after 100 ms doubling to 5 s, never giving up.
var WatchBackoff = RetryPolicy{MaxAttempts: 0, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, Multiplier: 2, Jitter: 0.2}

// Backoff is the wait after failed attempt attempt (1-based), jitter applied.
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	exponent := math.Max(float64(attempt-1), 0)
	base := float64(p.InitialBackoff) * math.Pow(math.Max(p.Multiplier, 1), exponent)
	capped := math.Min(base, float64(p.MaxBackoff))
	jitter := math.Min(math.Max(p.Jitter, 0), 1)
	factor := 1 - jitter + rand.Float64()*2*jitter
	return time.Duration(math.Max(capped*factor, 0))
}
