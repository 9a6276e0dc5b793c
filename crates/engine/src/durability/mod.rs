//! Durability: surviving a crash mid-write, detecting damage at rest, and recovering from it.
//!
//! # Guarantees
//!
//! - **Crash (SIGKILL, panic) mid-write.** Every `remember` that returned `Ok` is in the store
//!   after a restart: it is one SQLite transaction, committed to the WAL before it returns,
//!   and `synchronous=NORMAL` loses committed transactions only on power loss, never on a
//!   process crash. A consolidation batch is one transaction: after a crash either all of its
//!   facts and event marks are there or none, and events it had loaded are pending again.
//!   A client that retries a remember whose outcome it never saw uses
//!   [`Engine::remember_once`](crate::Engine::remember_once) with an idempotency key, so the
//!   retry can never store the event twice.
//! - **Damage at rest is never served.** [`Engine::open`](crate::Engine::open) reads every
//!   event row to rebuild the vector index and verifies each row's checksum
//!   ([`checksum`]); SQLite reports damaged b-tree pages it meets, and [`wal`] checks the WAL
//!   for damaged frames that SQLite would silently skip (with every commit after them). Any
//!   of these makes `open` fail with [`EngineError::Corrupt`](crate::EngineError::Corrupt).
//! - **Recovery** ([`recover::recover`]) moves the damaged file aside, rebuilds a store from
//!   the verified rows still readable in it plus the last [`snapshot`], and counts what is
//!   lost ([`recover::RecoveryReport`] states exactly how).

pub mod checksum;
pub mod exactly_once;
pub mod recover;
pub mod salvage;
pub mod snapshot;
pub mod verify;
pub mod wal;

pub use checksum::row_checksum;
pub use exactly_once::Remembered;
pub use recover::{recover, RecoveryReport};
pub use snapshot::{snapshot_path, SnapshotInfo};

/// Schema version 2: row checksums and idempotency keys. Both columns are NULL in rows
/// written before the migration (those rows are not verified), and the unique index is
/// partial, so a plain `remember` (no key) pays nothing for it.
pub(crate) const SCHEMA_V2: &str = "
ALTER TABLE events ADD COLUMN crc INTEGER;
ALTER TABLE events ADD COLUMN idem_key TEXT;
CREATE UNIQUE INDEX events_idem ON events(idem_key) WHERE idem_key IS NOT NULL;
";
