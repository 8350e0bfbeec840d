//! Gives memory the process freed back to the operating system.
//!
//! glibc's allocator keeps freed memory in its arenas (one per thread that allocated, up to
//! eight per core) and returns it only from the top of each heap. A burst of thousands of calls
//! (HTTP/2 stream state, request and response buffers, the tasks of admitted calls) leaves the
//! arenas fragmented: after 5,000 concurrent Orchestrate calls the server stayed at ~290 MiB
//! resident for good, though `malloc_trim` showed all but ~90 MiB of it free. So every
//! [`TRIM_INTERVAL`] the server asks glibc to release free pages in every arena; resident memory
//! then follows what is in use (see docs/OPERATIONS.md, "Memory").

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often free memory is released.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Releases free memory every [`TRIM_INTERVAL`] until `shutdown`.
pub async fn trim_periodically(shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(TRIM_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // It walks every arena under its lock (a few ms at most); off the async threads.
        let _ = tokio::task::spawn_blocking(release_free_memory).await;
    }
}

/// Returns free pages of every allocator arena to the operating system; true if any were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim only inspects and trims the allocator's own free lists (under its
    // locks); it has no preconditions.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators return memory by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn freed_memory_is_released() {
        fn resident_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        }
        // Many small blocks, every other one kept: freed memory in the middle of the heap,
        // which glibc does not return by itself.
        let mut blocks: Vec<Vec<u8>> = (0..100_000).map(|i| vec![i as u8; 1000]).collect();
        let mut kept = Vec::new();
        for (i, block) in blocks.drain(..).enumerate() {
            if i % 64 == 0 {
                kept.push(block);
            }
        }
        let before = resident_kib();
        release_free_memory();
        let after = resident_kib();
        assert!(after + 50_000 < before, "resident {before} KiB before, {after} KiB after");
        drop(kept);
    }
}
