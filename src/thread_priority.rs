//! The one way a background thread steps aside for the request workers: it raises its own
//! nice value. `forward` (the spool writer) and `tokens` (the snapshot writer) both use it
//! and must not import each other, so it imports nothing from the crate.

/// Raises a nice value to 19, the lowest priority, from anywhere in its range (-20..=19).
pub const TO_LOWEST: i32 = 39;

/// Raises the calling thread's nice value by `by` (clamped at 19, the lowest priority): on
/// Linux the nice value is per thread, and `nice` changes the caller's. Raising it needs no
/// privilege; best effort, so a failure leaves the thread at the priority it inherited
/// (logged at debug, naming `thread`).
pub fn lower_this_threads_priority(by: i32, thread: &str) {
    if let Err(e) = rustix::process::nice(by) {
        tracing::debug!(error = %e, thread, "could not lower the thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's nice value, read in that thread.
    fn nice_after(by: i32) -> (i32, i32) {
        std::thread::spawn(move || {
            let before = rustix::process::getpriority_process(None).unwrap();
            lower_this_threads_priority(by, "test");
            (before, rustix::process::getpriority_process(None).unwrap())
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_thread_lowers_only_its_own_priority_by_the_step_or_to_the_lowest() {
        let (before, after) = nice_after(5);
        assert_eq!(after, (before + 5).min(19));
        assert_eq!(nice_after(TO_LOWEST).1, 19);
        let here = rustix::process::getpriority_process(None).unwrap();
        assert_eq!(
            here, before,
            "the thread that spawned them kept its nice value"
        );
    }
}
