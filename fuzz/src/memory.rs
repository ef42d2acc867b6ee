//! A memory bound per input, enforced by the allocator.
//!
//! A parser handed a few kilobytes must not allocate gigabytes because a
//! header says so. Without sanitizers libFuzzer only watches the RSS, and a
//! plain test not at all, so every binary that runs the targets installs
//! [`Bounded`] as its global allocator: inside [`bounded`], an allocation
//! that would take the live Rust heap past the bound fails, and the process
//! aborts with a message naming the bound. C libraries (zstd) allocate
//! outside it and are left to libFuzzer's `-rss_limit_mb`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Bytes currently allocated through [`Bounded`].
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Allocations may not take [`LIVE`] past this.
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
/// One bounded run at a time: the bound is process-wide.
static RUNNING: Mutex<()> = Mutex::new(());

/// The system allocator, counting live bytes against the current bound.
pub struct Bounded;

// SAFETY: every call is passed on to `System` unchanged; only counters are
// added, and a refused allocation returns null as the trait allows.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout is passed on as is.
        let ptr = unsafe { System.alloc(layout) };
        if ptr.is_null() {
            release(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout is passed on as is.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if ptr.is_null() {
            release(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        release(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_size = layout.size();
        if new_size > old_size && !reserve(new_size - old_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        match (new.is_null(), new_size > old_size) {
            (true, true) => release(new_size - old_size),
            (false, false) => release(old_size - new_size),
            _ => {}
        }
        new
    }
}

fn reserve(size: usize) -> bool {
    let live = LIVE.fetch_add(size, Ordering::Relaxed).saturating_add(size);
    if live <= LIMIT.load(Ordering::Relaxed) {
        return true;
    }
    LIVE.fetch_sub(size, Ordering::Relaxed);
    // Stderr is unbuffered: writing to it allocates nothing.
    let _ = std::io::stderr().write_all(
        b"ossify-fuzz: an allocation would exceed the memory bound of this input; aborting\n",
    );
    false
}

fn release(size: usize) {
    LIVE.fetch_sub(size, Ordering::Relaxed);
}

/// Runs `run` with at most `bytes` more of Rust heap than is live now.
/// An allocation past that aborts the process (through
/// `handle_alloc_error`), which libFuzzer reports as a crash.
pub fn bounded<T>(bytes: usize, run: impl FnOnce() -> T) -> T {
    let _one_at_a_time = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
    struct Unbound;
    impl Drop for Unbound {
        fn drop(&mut self) {
            LIMIT.store(usize::MAX, Ordering::Relaxed);
        }
    }
    let _unbound = Unbound;
    LIMIT.store(
        LIVE.load(Ordering::Relaxed).saturating_add(bytes),
        Ordering::Relaxed,
    );
    run()
}
