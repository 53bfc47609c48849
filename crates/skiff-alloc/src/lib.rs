//! The `skiff` process's allocator: mimalloc (the default `mimalloc` feature), tuned for a
//! long-running server's resident memory; without the feature, the system allocator.
//!
//! A crate of its own so that the workspace's other crates keep forbidding unsafe code: the
//! only unsafe code is the constructor that sets mimalloc's options before anything allocates.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps the constructor that tunes mimalloc in the binary (a linker drops an archive member
/// nothing refers to); call it from `main`. The options were set before `main` started.
pub fn link_tuning() {
    #[cfg(all(feature = "mimalloc", target_os = "linux"))]
    std::hint::black_box(&tuning::TUNE_BEFORE_FIRST_ALLOCATION);
}

/// mimalloc reserves its first arena, which serves the process from then on, at the first
/// allocation (before `main`), with the options of that moment; so they are set by a
/// constructor. An entry in `.init_array.00101` (the first priority not reserved to the C
/// implementation) runs before the constructors without a priority (mimalloc's own, and the
/// standard library's).
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
#[allow(unsafe_code, reason = "a constructor and mimalloc's C API")]
mod tuning {
    /// `mi_option_arena_eager_commit` in mimalloc.h's `mi_option_e` (the Rust bindings name
    /// only some of the options).
    pub(crate) const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

    #[used]
    #[unsafe(link_section = ".init_array.00101")]
    pub(crate) static TUNE_BEFORE_FIRST_ALLOCATION: extern "C" fn() = tune;

    /// Sets defaults only: a `MIMALLOC_<OPTION>` environment variable still wins, for
    /// experiments. Nothing here may allocate.
    extern "C" fn tune() {
        // mimalloc commits whole arenas up front where the OS overcommits (Linux); committing
        // as pages are used, and decommitting what it purges, kept `skiff bench cluster`'s
        // server ~28 MiB smaller at 10,000 pods (~30 MiB idle) at the same throughput.
        // SAFETY: `mi_option_set_default` stores one option's default; it neither allocates
        // nor reads anything that is not initialised yet.
        unsafe {
            libmimalloc_sys::mi_option_set_default(ARENA_EAGER_COMMIT, 0);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn arena_eager_commit_is_off_before_main_unless_the_environment_sets_it() {
            // SAFETY: reads one option's value.
            let value = unsafe { libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT) };
            if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
                assert_eq!(value, 0, "the constructor did not run");
            }
        }
    }
}
