//! Process-wide resources set once at start and read by whoever sizes against them: the
//! open-file limit and the allocator's treatment of big freed buffers.

/// Files this process may open: the soft `RLIMIT_NOFILE` (raised to the hard limit at start, see
/// [`raise_descriptor_limit`]); `u64::MAX` when it cannot be read.
pub fn descriptor_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// glibc's malloc serves a freed response body (up to `max_response_bytes`, 4 MiB by default)
/// from the heap next time instead of unmapping it once its adaptive mmap threshold has grown
/// past that size, so a few hostile targets would keep their largest bodies mapped for good. A
/// fixed threshold of 128 KiB (its default before adapting) gives big buffers back when freed
/// (measured in tests/hostile/hostile_lists.rs and docs/reliability.md). `MALLOC_MMAP_THRESHOLD_` in the
/// environment still wins; other C libraries are left alone.
pub fn return_freed_bodies_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before any other thread runs.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (a run holds a connection per session; the
/// usual soft default of 1,024 would cap it far below what the host allows). Returns the new
/// soft limit.
pub fn raise_descriptor_limit() -> std::io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        setrlimit(Resource::Nofile, rustix::process::Rlimit { current: limit.maximum, ..limit })?;
    }
    Ok(descriptor_limit())
}
