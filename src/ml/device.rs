//! Device choice and thread counts for tch.

use tch::Device;

/// The GPU when libtorch sees one, else the CPU.
pub fn best() -> Device {
    if tch::Cuda::is_available() {
        Device::Cuda(0)
    } else {
        Device::Cpu
    }
}

/// Runs `f` with libtorch's intra-op pool set to `threads`, restoring the previous count.
///
/// Small head fits are 10-20x slower with 2 threads than 1 on these VMs (thread wake-up
/// dominates), while encoder forwards want every core: callers say which they are.
pub fn with_threads<T>(threads: i32, f: impl FnOnce() -> T) -> T {
    let before = tch::get_num_threads();
    tch::set_num_threads(threads.max(1));
    let out = f();
    tch::set_num_threads(before);
    out
}

pub fn cores() -> i32 {
    std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(1)
}

/// Background work (embedding a data set, fits, re-scoring the pool) yields the CPU to the
/// threads that answer people: on 2 cores a fit would otherwise add its time slices to the
/// latency of every label submitted meanwhile. Threads started later by the calling thread
/// (libtorch's intra-op pool) inherit the niceness. Best effort: a failure only costs latency.
#[allow(unsafe_code)]
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: two plain syscalls about the calling thread; no memory is passed to the kernel.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 19) != 0 {
            tracing::debug!("could not lower the background thread's priority");
        }
    }
}
