//! Lets the serving threads have the CPU first when it is saturated.
//!
//! The operating system shares the cores between runnable threads by weight. Under overload the
//! process has many: the work runtime's workers, one SQLite thread per pooled connection, the
//! writer, the blocking pool; at equal weight the two serving threads got a small share and a
//! refusal waited for it (docs/PERFORMANCE.md, "Overload"). So once the serving runtime has
//! started, every other thread of the process is set to nice [`WORK_NICE`]; threads started
//! later inherit their creator's value, so admitted work stays behind and the serving runtime's
//! threads stay at the process's own priority. A process can always lower its own threads'
//! priority; nothing here needs privileges. In a container (its own cgroup) this orders only the
//! server's own threads; on a shared host it also lets other processes ahead of the work.

/// Niceness of every thread but the serving runtime's (0 is normal, 19 the lowest priority):
/// 10 weighs about a tenth of normal, enough that serving threads win any contention.
pub const WORK_NICE: i32 = 10;

/// Sets [`WORK_NICE`] on every thread of the process whose name does not start with `serving`;
/// returns how many threads were changed. Failures are logged, never fatal.
#[cfg(target_os = "linux")]
pub fn lower_all_but(serving: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    let mut lowered = 0;
    for task in tasks.flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<libc::id_t>().ok()) else { continue };
        if name.trim_end().starts_with(serving) {
            continue;
        }
        // SAFETY: setpriority has no memory-safety preconditions; with PRIO_PROCESS and a thread
        // id, Linux changes that one thread.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, WORK_NICE) } == 0 {
            lowered += 1;
        } else {
            tracing::warn!(tid, error = %std::io::Error::last_os_error(), "cannot lower a work thread's priority");
        }
    }
    lowered
}

/// Elsewhere threads keep their priority.
#[cfg(not(target_os = "linux"))]
pub fn lower_all_but(_serving: &str) -> usize {
    0
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn nice_of(tid: libc::id_t) -> i32 {
        // SAFETY: as above.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) }
    }

    fn current_tid() -> libc::id_t {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() as libc::id_t }
    }

    #[test]
    fn every_thread_but_the_named_ones_is_lowered_and_new_threads_inherit() {
        // Runs in a child process: lowering a priority cannot be undone without privileges, and
        // the test harness's other threads must not be changed.
        if std::env::var_os("BRAIN_PRIORITY_CHILD").is_none() {
            let exe = std::env::current_exe().expect("the test binary"); // ok: unit test only (#[cfg(test)]), not on a request path
            let child = std::process::Command::new(exe)
                .args([
                    "--exact",
                    "startup::priority::tests::every_thread_but_the_named_ones_is_lowered_and_new_threads_inherit",
                    "--test-threads=1",
                ])
                .env("BRAIN_PRIORITY_CHILD", "1")
                .output()
                .expect("run the child"); // ok: unit test only (#[cfg(test)]), not on a request path
            assert!(child.status.success(), "{}", String::from_utf8_lossy(&child.stdout));
            return;
        }
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let serving = std::thread::Builder::new()
            .name("test-serving".into())
            .spawn(move || {
                let _ = tid_tx.send(current_tid());
                let _ = stop_rx.recv();
            })
            .expect("a thread"); // ok: unit test only (#[cfg(test)]), not on a request path
        let serving_tid = tid_rx.recv().expect("its id"); // ok: unit test only (#[cfg(test)]), not on a request path
        assert!(lower_all_but("test-serving") >= 1);
        assert_eq!(nice_of(current_tid()), WORK_NICE);
        assert_eq!(nice_of(serving_tid), 0, "the serving thread keeps its priority");
        let inherited = std::thread::spawn(|| nice_of(current_tid())).join().expect("joined"); // ok: unit test only (#[cfg(test)]), not on a request path
        assert_eq!(inherited, WORK_NICE, "threads started later inherit");
        let _ = stop_tx.send(());
        let _ = serving.join();
    }
}
