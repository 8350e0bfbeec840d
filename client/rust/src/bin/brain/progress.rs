//! A one-line progress bar on stderr for `projects export|import`, redrawn ten times a
//! second; drawn only when stderr is a terminal, so pipes and logs get nothing.

use std::{
    io::{IsTerminal, Write},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;

/// Erases the current terminal line and returns the cursor to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";

/// The progress of one transfer; dropping it without [`finish`](Self::finish) erases the line.
pub struct Progress {
    counter: Counter,
    ticker: Option<JoinHandle<()>>,
}

/// Counts records from any task (the import's records are pulled by the HTTP/2 connection's).
#[derive(Clone, Default)]
pub struct Counter(Option<Arc<State>>);

struct State {
    verb: &'static str,
    done: AtomicU64,
    /// 0 while unknown (before the header).
    total: AtomicU64,
    started: Instant,
}

impl Progress {
    /// A bar labelled `verb` ("Exporting"), drawn when `wanted` and stderr is a terminal.
    pub fn start(verb: &'static str, wanted: bool) -> Self {
        if !(wanted && std::io::stderr().is_terminal()) {
            return Self { counter: Counter(None), ticker: None };
        }
        let state =
            Arc::new(State { verb, done: AtomicU64::new(0), total: AtomicU64::new(0), started: Instant::now() });
        let ticker = tokio::spawn({
            let state = Arc::clone(&state);
            async move {
                let mut interval = tokio::time::interval(Duration::from_millis(100));
                loop {
                    interval.tick().await;
                    state.draw("");
                }
            }
        });
        Self { counter: Counter(Some(state)), ticker: Some(ticker) }
    }

    /// A handle that counts records; cheap to clone.
    pub fn counter(&self) -> Counter {
        self.counter.clone()
    }

    /// Draws the final state and ends the line.
    pub fn finish(mut self) {
        self.stop();
        if let Some(state) = self.counter.0.take() {
            state.draw("\n");
        }
    }

    fn stop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
        if self.counter.0.take().is_some() {
            eprint!("{CLEAR_LINE}");
        }
    }
}

impl Counter {
    /// The number of records the transfer will have in all.
    pub fn set_total(&self, total: u64) {
        if let Some(state) = &self.0 {
            state.total.store(total, Ordering::Relaxed);
        }
    }

    /// One more record done.
    pub fn inc(&self) {
        if let Some(state) = &self.0 {
            state.done.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl State {
    fn draw(&self, end: &str) {
        let line = render(
            self.verb,
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
            self.started.elapsed(),
        );
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{CLEAR_LINE}{line}{end}");
        let _ = stderr.flush();
    }
}

/// `Exporting [#########...........] 450/1000 records  45%  1.2s`; without a total, a count.
pub fn render(verb: &str, done: u64, total: u64, elapsed: Duration) -> String {
    const WIDTH: u64 = 30;
    let seconds = elapsed.as_secs_f64();
    if total == 0 {
        return format!("{verb} {done} records  {seconds:.1}s");
    }
    let shown = done.min(total);
    let filled = (shown * WIDTH / total) as usize;
    let bar = format!("{}{}", "#".repeat(filled), ".".repeat(WIDTH as usize - filled));
    format!("{verb} [{bar}] {done}/{total} records {:>3}%  {seconds:.1}s", shown * 100 / total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_bar_or_a_count() {
        let half = render("Exporting", 5, 10, Duration::from_millis(1500));
        assert_eq!(half, format!("Exporting [{}{}] 5/10 records  50%  1.5s", "#".repeat(15), ".".repeat(15)));
        let over = render("Importing", 12, 10, Duration::ZERO);
        assert!(over.contains(&"#".repeat(30)) && over.contains("12/10") && over.contains("100%"), "{over}");
        assert_eq!(render("Importing", 3, 0, Duration::ZERO), "Importing 3 records  0.0s");
    }
}
