//! A panic hook that keeps planned panics off stderr: for programs and tests that inject
//! thousands of panics on purpose (the chaos benchmark, the simulator's faults).
//!
//! Invariant: only panics whose message starts with the given prefix are silenced; every other
//! panic is reported by the hook that was installed before.

/// Installs a panic hook that stays silent for panics whose message starts with `prefix` and
/// hands every other panic to the hook installed before it. For binaries and tests; a library
/// never calls it (the hook is process-wide).
pub fn quiet_panics_starting_with(prefix: &'static str) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !crate::agent::panic_message(info.payload()).starts_with(prefix) {
            previous(info);
        }
    }));
}
