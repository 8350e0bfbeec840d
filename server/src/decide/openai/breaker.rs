//! A circuit breaker for the decision model.
//!
//! Closed: every call goes through; `threshold` consecutive failed calls open
//! it. Open: calls are refused at once (the rules decide) until `cooldown`
//! has passed. Half-open: exactly one call, the probe, goes through; its
//! success closes the breaker, its failure opens it for another cooldown.
//! While the probe is in flight every other call is refused.
//!
//! Only the outcome of calls admitted in the current state counts: a call
//! that started while closed and fails after the breaker opened changes
//! nothing. A probe that is dropped before reporting (its request was
//! cancelled) hands the probe to the next caller instead of wedging the
//! breaker half-open.
//!
//! Time is passed in, so the state machine is tested without sleeping.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The breaker's state, for logs, metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cooldown ends.
    Open,
    /// One trial call is in flight.
    HalfOpen,
}

impl CircuitState {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// Bumped on every transition; a permit of an older generation reports nothing.
    generation: u64,
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Until the next probe may start; zero while a probe is in flight.
    pub retry_in: Duration,
}

/// A consecutive-failure circuit breaker. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    inner: Arc<Mutex<Inner>>,
    threshold: u32,
    cooldown: Duration,
}

/// Admission to make one call; report its outcome with [`Permit::success`]
/// or [`Permit::failure`].
#[derive(Debug)]
pub struct Permit {
    breaker: CircuitBreaker,
    generation: u64,
    probe: bool,
    reported: bool,
}

/// A transition worth logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The breaker opened (from closed, or a failed probe).
    Opened,
    /// A probe succeeded and the breaker closed.
    Closed,
}

impl CircuitBreaker {
    /// Opens after `threshold` (at least 1) consecutive failures, for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner { state: State::Closed { failures: 0 }, generation: 0 })),
            threshold: threshold.max(1),
            cooldown,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is a few plain values, consistent after any panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state (an open breaker whose cooldown has passed still says open until a call probes).
    pub fn state(&self) -> CircuitState {
        match self.lock().state {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen => CircuitState::HalfOpen,
        }
    }

    /// Admits a call at `now`, or refuses it.
    pub fn try_acquire(&self, now: Instant) -> Result<Permit, Refused> {
        let mut inner = self.lock();
        let probe = match inner.state {
            State::Closed { .. } => false,
            State::Open { until } if now >= until => {
                inner.state = State::HalfOpen;
                inner.generation += 1;
                true
            }
            State::Open { until } => return Err(Refused { retry_in: until - now }),
            State::HalfOpen => return Err(Refused { retry_in: Duration::ZERO }),
        };
        Ok(Permit { breaker: self.clone(), generation: inner.generation, probe, reported: false })
    }
}

impl Permit {
    /// Whether this call is the half-open probe (it gets no retries).
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The endpoint answered well.
    pub fn success(mut self) -> Option<Transition> {
        self.reported = true;
        let mut inner = self.breaker.lock();
        if inner.generation != self.generation {
            return None;
        }
        match inner.state {
            State::Closed { ref mut failures } => {
                *failures = 0;
                None
            }
            State::HalfOpen => {
                inner.state = State::Closed { failures: 0 };
                inner.generation += 1;
                Some(Transition::Closed)
            }
            State::Open { .. } => None,
        }
    }

    /// The call failed at `now`.
    pub fn failure(mut self, now: Instant) -> Option<Transition> {
        self.reported = true;
        let threshold = self.breaker.threshold;
        let until = now + self.breaker.cooldown;
        let mut inner = self.breaker.lock();
        if inner.generation != self.generation {
            return None;
        }
        match inner.state {
            State::Closed { failures } if failures + 1 < threshold => {
                inner.state = State::Closed { failures: failures + 1 };
                None
            }
            State::Closed { .. } | State::HalfOpen => {
                inner.state = State::Open { until };
                inner.generation += 1;
                Some(Transition::Opened)
            }
            State::Open { .. } => None,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.reported || !self.probe {
            return;
        }
        // An abandoned probe proves nothing: let the next call probe at once.
        let mut inner = self.breaker.lock();
        if inner.generation == self.generation && matches!(inner.state, State::HalfOpen) {
            inner.state = State::Open { until: Instant::now() };
            inner.generation += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    fn admitted(b: &CircuitBreaker, now: Instant) -> Permit {
        b.try_acquire(now).expect("admitted")
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = CircuitBreaker::new(3, COOLDOWN);
        let t = Instant::now();
        assert_eq!(admitted(&b, t).failure(t), None);
        assert_eq!(admitted(&b, t).failure(t), None);
        // A success in between resets the count.
        assert_eq!(admitted(&b, t).success(), None);
        assert_eq!(admitted(&b, t).failure(t), None);
        assert_eq!(admitted(&b, t).failure(t), None);
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(admitted(&b, t).failure(t), Some(Transition::Opened));
        assert_eq!(b.state(), CircuitState::Open);
        let refused = b.try_acquire(t + Duration::from_secs(10)).expect_err("open");
        assert_eq!(refused.retry_in, Duration::from_secs(20));
    }

    #[test]
    fn one_probe_after_the_cooldown_and_it_decides() {
        let b = CircuitBreaker::new(1, COOLDOWN);
        let t = Instant::now();
        admitted(&b, t).failure(t);
        let later = t + COOLDOWN;
        let probe = admitted(&b, later);
        assert!(probe.is_probe());
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert_eq!(b.try_acquire(later).expect_err("probe in flight").retry_in, Duration::ZERO);

        // A failed probe opens it for another full cooldown.
        assert_eq!(probe.failure(later), Some(Transition::Opened));
        assert!(b.try_acquire(later + COOLDOWN - Duration::from_millis(1)).is_err());

        let probe = admitted(&b, later + COOLDOWN);
        assert!(probe.is_probe());
        assert_eq!(probe.success(), Some(Transition::Closed));
        assert_eq!(b.state(), CircuitState::Closed);
        assert!(!admitted(&b, later + COOLDOWN).is_probe());
    }

    #[test]
    fn stale_outcomes_change_nothing() {
        let b = CircuitBreaker::new(2, COOLDOWN);
        let t = Instant::now();
        let early_success = admitted(&b, t);
        let early_failure = admitted(&b, t);
        admitted(&b, t).failure(t);
        admitted(&b, t).failure(t);
        assert_eq!(b.state(), CircuitState::Open);
        // Started while closed, finished after the breaker opened: ignored.
        assert_eq!(early_success.success(), None);
        assert_eq!(b.state(), CircuitState::Open);

        let probe = admitted(&b, t + COOLDOWN);
        assert_eq!(probe.success(), Some(Transition::Closed));
        // Started before the breaker opened, finished after it closed again: ignored too.
        assert_eq!(early_failure.failure(t + COOLDOWN), None);
        admitted(&b, t + COOLDOWN).failure(t + COOLDOWN);
        assert_eq!(b.state(), CircuitState::Closed, "one fresh failure is below the threshold of 2");
    }

    #[test]
    fn an_abandoned_probe_hands_over() {
        let b = CircuitBreaker::new(1, COOLDOWN);
        let t = Instant::now();
        admitted(&b, t).failure(t);
        let probe = admitted(&b, t + COOLDOWN);
        drop(probe);
        assert_eq!(b.state(), CircuitState::Open);
        let next = b.try_acquire(Instant::now().max(t + COOLDOWN)).expect("next probe");
        assert!(next.is_probe());
    }
}
