//! CPU time used by this process, for a figure that background load on a
//! shared machine disturbs less than wall-clock throughput does.

/// Nanoseconds all live threads of this process have spent on a CPU, from
/// `/proc/self/task/*/schedstat`; `None` where that is not available.
pub(crate) fn process_cpu_ns() -> Option<u64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut total = 0_u64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue; // the thread ended meanwhile
        };
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())?;
    }
    Some(total)
}
