//! WAL damage that SQLite would skip silently.
//!
//! On open SQLite replays the WAL frame by frame and stops at the first frame whose
//! checksum (cumulative over the log) or salt does not match: that frame and **every commit
//! after it** are ignored without an error, as if they had never happened. A torn final
//! frame after a crash looks the same and is harmless (its transaction never returned). The
//! difference: after damage in the middle, later frames of the same log generation are still
//! intact when checked against their predecessor's stored checksum. [`check`] looks for that
//! before any connection opens the store (a connection could checkpoint the valid prefix and
//! delete the WAL, destroying the evidence).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{EngineError, Result};

const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// What a WAL file holds, frame by frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WalScan {
    /// Whole frames in the file.
    pub frames: u64,
    /// Frames SQLite will replay (the valid prefix up to its last commit frame).
    pub replayed_frames: u64,
    /// First frame (0-based) of this log generation that fails its checksum, if any.
    pub first_bad_frame: Option<u64>,
    /// Frames after `first_bad_frame` of the same generation whose own checksum holds:
    /// committed work SQLite will drop.
    pub intact_after_bad: u64,
    /// False when the 32-byte header itself fails its checksum (SQLite then ignores the
    /// whole file).
    pub header_ok: bool,
}

impl WalScan {
    /// True when SQLite would silently drop frames that are not a torn tail.
    pub fn is_damaged(&self) -> bool {
        (!self.header_ok && self.frames > 0) || self.intact_after_bad > 0
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// SQLite's WAL checksum: Fibonacci-weighted sums over pairs of 32-bit words, continuing
/// from `(s0, s1)`.
fn checksum(data: &[u8], big_endian: bool, (mut s0, mut s1): (u32, u32)) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let word = |i: usize| {
            let w = [pair[i], pair[i + 1], pair[i + 2], pair[i + 3]];
            if big_endian {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        s0 = s0.wrapping_add(word(0)).wrapping_add(s1);
        s1 = s1.wrapping_add(word(4)).wrapping_add(s0);
    }
    (s0, s1)
}

/// Scans the WAL bytes `wal` (see [`WalScan`]); `None` when too short to hold a header.
pub fn scan_bytes(wal: &[u8]) -> Option<WalScan> {
    if wal.len() < HEADER {
        return None;
    }
    let magic = be32(wal, 0);
    let big_endian = magic & 1 == 1;
    let page = be32(wal, 8) as usize;
    let stored = (be32(wal, 24), be32(wal, 28));
    let header_sum = checksum(&wal[..24], big_endian, (0, 0));
    let valid_magic = magic & !1 == 0x377f_0682;
    let frame = FRAME_HEADER + page;
    let frames = if page >= 512 && page.is_power_of_two() {
        ((wal.len() - HEADER) / frame) as u64
    } else {
        0
    };
    let mut out = WalScan {
        frames,
        header_ok: valid_magic && header_sum == stored,
        ..WalScan::default()
    };
    if !out.header_ok || frames == 0 {
        return Some(out);
    }
    let salts = (be32(wal, 16), be32(wal, 20));
    let mut running = stored;
    let mut prev_stored = stored;
    for i in 0..frames as usize {
        let f = &wal[HEADER + i * frame..HEADER + (i + 1) * frame];
        let own = (be32(f, 16), be32(f, 20));
        let same_generation = (be32(f, 8), be32(f, 12)) == salts;
        let body = |seed| {
            checksum(
                &f[FRAME_HEADER..],
                big_endian,
                checksum(&f[..8], big_endian, seed),
            )
        };
        match out.first_bad_frame {
            None => {
                running = body(running);
                if same_generation && running == own {
                    if be32(f, 4) != 0 {
                        out.replayed_frames = i as u64 + 1;
                    }
                } else {
                    out.first_bad_frame = Some(i as u64);
                }
            }
            Some(_) => {
                // Checked against its predecessor's stored sums: intact on its own.
                if same_generation && body(prev_stored) == own {
                    out.intact_after_bad += 1;
                }
            }
        }
        prev_stored = own;
    }
    Some(out)
}

/// The WAL file of the database at `db`.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// Scans the WAL of `db`; `Ok(None)` when there is none (or it is empty).
pub fn scan(db: &Path) -> Result<Option<WalScan>> {
    let wal = wal_path(db);
    match std::fs::read(&wal) {
        Ok(bytes) => Ok(scan_bytes(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::InvalidConfig(format!(
            "cannot read the WAL {}: {e}",
            wal.display()
        ))),
    }
}

/// [`EngineError::Corrupt`] (naming the `-wal` file) when the WAL of `db` is damaged in a
/// way SQLite would skip silently.
pub fn check(db: &Path) -> Result<()> {
    match scan(db)? {
        Some(s) if s.is_damaged() => Err(EngineError::Corrupt {
            path: wal_path(db),
            detail: if s.header_ok {
                format!(
                    "WAL frame {} of {} fails its checksum while {} later frame(s) are intact: \
                     SQLite would silently drop every commit from that frame on",
                    s.first_bad_frame.unwrap_or(0),
                    s.frames,
                    s.intact_after_bad
                )
            } else {
                format!(
                    "the WAL header fails its checksum: SQLite would silently ignore all {} frame(s)",
                    s.frames
                )
            },
        }),
        _ => Ok(()),
    }
}
