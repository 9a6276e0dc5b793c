//! Checksums that let the store notice damage: one over a run's record (its content identity)
//! and one over the searchable columns, so a flipped bit in either is caught when it is read.

use sha2::{Digest, Sha256};

use crate::baseline::StoredRun;
use crate::error::Error;
use crate::record::RunRecord;

/// A record's canonical bytes (compact JSON, fields in declaration order) and their SHA-256 in
/// hex: the run's content identity, the same for the same run in any store.
pub fn canonical(record: &RunRecord) -> Result<(Vec<u8>, String), Error> {
    let json = serde_json::to_vec(record).map_err(|e| Error::Json {
        context: format!("cannot encode run {}", record.run_id),
        source: e,
    })?;
    let sum = sha256_hex(&json);
    Ok((json, sum))
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        out.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    out
}

/// Checksum of a row's searchable columns together with its record checksums (of the record
/// and of its compressed form): a damaged commit, profile, machine or dirty flag would
/// otherwise silently hide a run from a search.
pub fn meta_sum(meta: &StoredRun, record_schema: i64, record_sha: &str, gz_sha: &str) -> String {
    // A JSON array is an unambiguous encoding of the fields (no separator can be forged).
    let fields = serde_json::json!([
        meta.run_id,
        meta.commit,
        meta.branch,
        meta.dirty,
        meta.profile,
        meta.machine_key,
        meta.created_at,
        record_schema,
        record_sha,
        gz_sha
    ]);
    sha256_hex(fields.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> StoredRun {
        StoredRun {
            run_id: "20261127-065012-1a2b3c4-abcdefgh".into(),
            commit: Some("1a2b3c4".into()),
            branch: Some("main".into()),
            dirty: false,
            profile: "quick".into(),
            machine_key: "m".into(),
            created_at: "2026-11-27T06:50:12Z".into(),
        }
    }

    #[test]
    fn sha256_matches_the_published_test_vector() {
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn every_searchable_column_changes_the_meta_sum() {
        let base = meta_sum(&meta(), 1, "x", "z");
        let variants = [
            StoredRun {
                run_id: "other".into(),
                ..meta()
            },
            StoredRun {
                commit: Some("1a2b3c5".into()),
                ..meta()
            },
            StoredRun {
                commit: None,
                ..meta()
            },
            StoredRun {
                branch: None,
                ..meta()
            },
            StoredRun {
                dirty: true,
                ..meta()
            },
            StoredRun {
                profile: "quic".into(),
                ..meta()
            },
            StoredRun {
                machine_key: "n".into(),
                ..meta()
            },
            StoredRun {
                created_at: "2026-11-27T06:50:13Z".into(),
                ..meta()
            },
        ];
        for v in &variants {
            assert_ne!(meta_sum(v, 1, "x", "z"), base, "{v:?}");
        }
        assert_ne!(meta_sum(&meta(), 2, "x", "z"), base);
        assert_ne!(meta_sum(&meta(), 1, "y", "z"), base);
        assert_ne!(meta_sum(&meta(), 1, "x", "w"), base);
        assert_eq!(meta_sum(&meta(), 1, "x", "z"), base);
    }
}
