//! Retry policy: exponential backoff with jitter, for idempotent calls only.

use std::time::Duration;

use rand::Rng;

/// How idempotent calls are retried when the server or the connection is
/// unavailable (see [`BrainError::is_retryable`](crate::BrainError::is_retryable)).
///
/// Attempt `n` (1-based) that fails waits `min(initial_backoff * multiplier^(n-1), max_backoff)`,
/// spread by ±`jitter` (a fraction), before attempt `n + 1`. Retries stop at
/// `max_attempts` or when the next attempt could not start before the call's
/// deadline. Non-idempotent calls are never retried, whatever the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first; 1 disables retries.
    pub max_attempts: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of any wait.
    pub max_backoff: Duration,
    /// Growth of the wait per attempt.
    pub multiplier: f64,
    /// Random spread of each wait, from 0 (none) to 1 (0 to 2x).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 4 attempts, waiting about 100 ms, 200 ms, 400 ms (±20%).
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The wait after failed attempt `attempt` (1-based), with jitter applied.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max_backoff.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = if jitter > 0.0 { rand::rng().random_range(1.0 - jitter..=1.0 + jitter) } else { 1.0 };
        Duration::from_secs_f64((capped * factor).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy { jitter: 0.0, ..RetryPolicy::default() };
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(200));
        assert_eq!(policy.backoff(3), Duration::from_millis(400));
        assert_eq!(policy.backoff(30), Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        let policy = RetryPolicy::default();
        for _ in 0..200 {
            let wait = policy.backoff(2);
            assert!(wait >= Duration::from_millis(160) && wait <= Duration::from_millis(240), "{wait:?}");
        }
    }
}
