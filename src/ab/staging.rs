//! Fresh copies of both sides' binaries for every round of an A/B session.
//!
//! Earlier A/A checks on the 2-core VM whose two sides were two files (a rebuild, a
//! byte-identical copy) put the head slower in 7 of 7 checks (about +3% on `recall/total`),
//! while checks whose two sides were the same file centred on zero; and the head side was
//! always the orchestrating process's own executable. Whatever the mechanism (that
//! executable being mapped by the orchestrator, where each file's pages sit in the page cache
//! and so in the physically indexed caches, how the file was written), it is tied to a file:
//! so both sides run from copies made here, the same way, at the same moment, once per round,
//! neither being the orchestrator's executable. A file-bound effect then varies from round to
//! round like any other noise and averages out, instead of favouring one side all session.
//!
//! Copies go to `/dev/shm` when it exists (memory: no disk writeback racing the runs), else
//! to the system temporary folder.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The session's copy folder and the binaries it copies; the folder is deleted when this is
/// dropped.
pub struct Staging {
    dir: tempfile::TempDir,
    base: PathBuf,
    head: PathBuf,
}

/// The copies for one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copies {
    /// Copy of the base binary.
    pub base: PathBuf,
    /// Copy of the head binary.
    pub head: PathBuf,
}

impl Staging {
    /// A new copy folder for binaries `base` and `head` (checked to be files).
    pub fn new(base: &Path, head: &Path) -> Result<Staging, Error> {
        for (label, p) in [("base", base), ("head", head)] {
            if !p.is_file() {
                return Err(Error::Paired(format!(
                    "the {label} binary {} is not a file",
                    p.display()
                )));
            }
        }
        let shm = Path::new("/dev/shm");
        let mut builder = tempfile::Builder::new();
        builder.prefix("perfcheck-ab-");
        let dir = if shm.is_dir() {
            builder.tempdir_in(shm).or_else(|_| builder.tempdir())
        } else {
            builder.tempdir()
        }
        .map_err(|e| Error::Io {
            context: "cannot create a temporary folder for the A/B binaries".into(),
            source: e,
        })?;
        Ok(Staging {
            dir,
            base: base.to_path_buf(),
            head: head.to_path_buf(),
        })
    }

    /// The folder holding the copies.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Fresh copies of both binaries for round `round` (0-based), at
    /// `<dir>/<round+1>/{base,head}/cargo-perfcheck`: the same file name and path length on
    /// both sides, so their argv and environment are the same size. The previous round's
    /// copies are removed first, so at most one pair occupies memory.
    pub fn fresh(&self, round: usize) -> Result<Copies, Error> {
        if round > 0 {
            let old = self.dir.path().join(round.to_string());
            // A leftover costs memory only; it goes with the folder at the end.
            let _ = std::fs::remove_dir_all(old);
        }
        let name = format!("cargo-perfcheck{}", std::env::consts::EXE_SUFFIX);
        let round_dir = self.dir.path().join((round + 1).to_string());
        let copy = |label: &str, from: &Path| -> Result<PathBuf, Error> {
            let sub = round_dir.join(label);
            std::fs::create_dir_all(&sub).map_err(|e| Error::Io {
                context: format!("cannot create {}", sub.display()),
                source: e,
            })?;
            let to = sub.join(&name);
            // fs::copy keeps the permission bits, so the copy stays executable.
            std::fs::copy(from, &to).map_err(|e| Error::Io {
                context: format!(
                    "cannot copy the {label} binary {} to {}",
                    from.display(),
                    to.display()
                ),
                source: e,
            })?;
            Ok(to)
        };
        let copies = Copies {
            base: copy("base", &self.base)?,
            head: copy("head", &self.head)?,
        };
        not_running_executable(&copies)?;
        Ok(copies)
    }
}

/// A copy that resolved to the running executable would bring back the asymmetry the copies
/// exist to remove (possible only through a link planted in the copy folder).
fn not_running_executable(c: &Copies) -> Result<(), Error> {
    let Ok(me) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return Ok(());
    };
    for p in [&c.base, &c.head] {
        if p.canonicalize().is_ok_and(|x| x == me) {
            return Err(Error::Paired(format!(
                "the copied binary {} is the running executable",
                p.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_gets_its_own_identical_copies_and_the_old_ones_go() {
        let tmp = tempfile::tempdir().unwrap();
        let (b, h) = (tmp.path().join("b"), tmp.path().join("h"));
        std::fs::write(&b, b"base bytes").unwrap();
        std::fs::write(&h, b"head bytes").unwrap();
        let s = Staging::new(&b, &h).unwrap();
        let r1 = s.fresh(0).unwrap();
        assert_ne!(r1.base, r1.head);
        assert_eq!(std::fs::read(&r1.base).unwrap(), b"base bytes");
        assert_eq!(std::fs::read(&r1.head).unwrap(), b"head bytes");
        assert_eq!(
            r1.base.as_os_str().len(),
            r1.head.as_os_str().len(),
            "{r1:?}"
        );
        let r2 = s.fresh(1).unwrap();
        assert_ne!(r1.base, r2.base);
        assert!(!r1.base.exists() && r2.base.is_file() && r2.head.is_file());
        let dir = s.dir().to_path_buf();
        drop(s);
        assert!(!dir.exists());
        assert!(Staging::new(&tmp.path().join("missing"), &h).is_err());
    }
}
