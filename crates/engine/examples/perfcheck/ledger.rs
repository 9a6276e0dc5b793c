//! Which remembers were acknowledged, checked against the database file by an independent
//! reader: the data check of `cargo perfcheck chaos`.
//!
//! Every remember of the load target carries a tag `op:<n>` unique to the operation (the
//! event stream repeats from run to run, so its text cannot identify an operation). An
//! operation is acknowledged when `remember` returned `Ok`. Afterwards a connection of its own
//! reads every tag stored since setup: an acknowledged `n` missing is a lost write, an `n`
//! stored twice a duplicated one (a retry that had in fact committed), and an `n` stored but
//! never acknowledged is a write the client was told had failed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use agent_memory::corpus::NewEvent;
use perfcheck::harness::{BoxError, WriteCheck};
use rusqlite::{Connection, OpenFlags};

/// The acknowledged operations of one system.
#[derive(Debug)]
pub struct Ledger {
    db: PathBuf,
    /// Events with ids above this were written after setup.
    setup_max_id: i64,
    next: AtomicU64,
    acked: Mutex<Vec<u64>>,
}

const PREFIX: &str = "op:";

impl Ledger {
    /// A ledger for the store at `db`, whose setup wrote ids up to `setup_max_id`.
    pub fn new(db: PathBuf, setup_max_id: i64) -> Ledger {
        Ledger {
            db,
            setup_max_id,
            next: AtomicU64::new(0),
            acked: Mutex::new(Vec::new()),
        }
    }

    /// Tags `event` with a fresh operation number and returns it.
    pub fn tag(&self, event: &mut NewEvent) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        event.tags.push(format!("{PREFIX}{n}"));
        n
    }

    /// Operation `n` was acknowledged.
    pub fn ack(&self, n: u64) {
        self.acked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(n);
    }

    /// Compares the acknowledged operations with the tags stored in the database file.
    pub fn check(&self) -> Result<WriteCheck, BoxError> {
        let conn = Connection::open_with_flags(
            &self.db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mut stored: HashMap<u64, u32> = HashMap::new();
        let mut st = conn.prepare("SELECT tags FROM events WHERE id > ?1")?;
        let mut rows = st.query([self.setup_max_id])?;
        while let Some(row) = rows.next()? {
            let tags: String = row.get(0)?;
            let tags: Vec<String> = serde_json::from_str(&tags)?;
            for t in tags {
                if let Some(n) = t.strip_prefix(PREFIX).and_then(|n| n.parse::<u64>().ok()) {
                    *stored.entry(n).or_insert(0) += 1;
                }
            }
        }
        let acked = self
            .acked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let lost = acked.iter().filter(|n| !stored.contains_key(n)).count() as u64;
        let duplicated: u64 = stored
            .values()
            .map(|&c| u64::from(c.saturating_sub(1)))
            .sum();
        let acked_set: std::collections::HashSet<u64> = acked.iter().copied().collect();
        let unacked = stored.keys().filter(|n| !acked_set.contains(n)).count();
        Ok(WriteCheck {
            acknowledged: acked.len() as u64,
            lost,
            duplicated,
            detail: format!(
                "{} acknowledged remembers looked up by their op tag in the database file by a \
                 reader of its own; {} tagged events stored, {unacked} of them never acknowledged \
                 (the client was told they failed)",
                acked.len(),
                stored.len()
            ),
        })
    }
}
