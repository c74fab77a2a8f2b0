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
