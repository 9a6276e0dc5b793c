//! Remember with an idempotency key: a client that lost the answer to a remember (its
//! process or connection died) retries with the same key and gets the original id back
//! instead of a second copy of the event.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::corpus::NewEvent;
use crate::error::{EngineError, Result};
use crate::store::{encode_row, Store};
use crate::{remember, Engine};

/// What [`Engine::remember_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Remembered {
    /// Id of the event stored under the key.
    pub id: i64,
    /// False when the key was already stored (a retry): nothing was written.
    pub inserted: bool,
}

impl Store {
    /// Inserts `ev` under the idempotency `key` unless an event with that key exists;
    /// returns its id and whether this call inserted it. One statement, so atomic even
    /// between processes sharing the file.
    pub fn insert_event_once(
        &self,
        key: &str,
        ev: &NewEvent,
        embedding: &[f32],
    ) -> Result<Remembered> {
        let (tags, blob, crc) = encode_row(ev, embedding)?;
        let conn = self.writer()?;
        let inserted = conn
            .prepare_cached(
                "INSERT INTO events(session, ts, text, tags, embedding, crc, idem_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT(idem_key) WHERE idem_key IS NOT NULL DO NOTHING",
            )?
            .execute(params![ev.session, ev.ts, ev.text, tags, blob, crc, key])?;
        if inserted == 1 {
            return Ok(Remembered {
                id: conn.last_insert_rowid(),
                inserted: true,
            });
        }
        let id: Option<i64> = conn
            .prepare_cached("SELECT id FROM events WHERE idem_key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        match id {
            Some(id) => Ok(Remembered {
                id,
                inserted: false,
            }),
            None => Err(EngineError::InvalidConfig(format!(
                "idempotency key {key:?}: the insert was skipped but no event holds the key"
            ))),
        }
    }
}

impl Engine {
    /// [`Engine::remember`] under an idempotency key: the first call with `key` stores the
    /// event, later calls (retries after a crash or a lost reply) return the same id and
    /// write nothing. Keys are compared exactly; choose them unique per event.
    pub fn remember_once(&self, key: &str, event: &NewEvent) -> Result<Remembered> {
        self.guards.precheck_write()?;
        let v = self.embed_document(&event.text)?;
        let done = self.guards.write("remember", || {
            let _s = perfcheck_stage::stage!("persist");
            self.store.insert_event_once(key, event, &v)
        })?;
        if done.inserted {
            remember::index_insert(&self.index, done.id, &v);
            self.now_ts
                .fetch_max(event.ts, std::sync::atomic::Ordering::AcqRel);
            self.cache().invalidate();
        }
        Ok(done)
    }
}
