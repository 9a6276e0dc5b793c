//! SQLite's own heap, which the counting allocator never sees (SQLite allocates with its own
//! `malloc`): read by the heap profile's SQLite row and by the load run's resource sampler.

/// Bytes SQLite holds right now, process-wide.
pub fn memory_used() -> i64 {
    // SAFETY: a plain read of SQLite's memory statistics; thread-safe by SQLite's contract.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}
