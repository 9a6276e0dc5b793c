//! The code changes a calibration measures: unified diffs that `git apply` accepts, shipped in
//! `calibration/patches/` or given as files. A patch's first line may be a `# description`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Error;

/// Folder of the shipped patches, relative to the repository root.
pub const SHIPPED_DIR: &str = "calibration/patches";

/// One patch: its name (the file stem), description and file.
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    /// File name without `.patch`: the variant's name in reports and `--variant-bin`.
    pub name: String,
    /// The first line's `# ...` text, or empty.
    pub description: String,
    /// Absolute path of the diff.
    pub file: PathBuf,
    /// Functions the patch adds (`fn name` on added lines): the ones attribution should name.
    pub planted: Vec<String>,
}

impl Patch {
    /// Reads a patch file; the error names it.
    pub fn read(file: &Path) -> Result<Patch, Error> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::Io {
            context: format!("cannot read the patch {}", file.display()),
            source: e,
        })?;
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let description = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix('#'))
            .map(|l| l.trim().to_owned())
            .unwrap_or_default();
        Ok(Patch {
            name,
            description,
            file: file.to_path_buf(),
            planted: added_functions(&text),
        })
    }
}

/// Names of functions defined on the added lines of a diff.
fn added_functions(diff: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in diff.lines() {
        let Some(added) = line.strip_prefix('+').filter(|_| !line.starts_with("+++")) else {
            continue;
        };
        let Some(pos) = added.find("fn ") else {
            continue;
        };
        // `fn` as a word: at the start or after a space (`pub fn`, `pub(crate) fn`).
        if pos > 0 && !added[..pos].ends_with(' ') {
            continue;
        }
        let name: String = added[pos + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The shipped patches under `repo_root`, by name.
pub fn shipped(repo_root: &Path) -> Result<Vec<Patch>, Error> {
    let dir = repo_root.join(SHIPPED_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    files.sort();
    files.iter().map(|f| Patch::read(f)).collect()
}

/// Resolves `--patch SPEC`: a shipped patch's name, else a path to a patch file (relative to
/// `cwd`).
pub fn resolve(spec: &str, repo_root: &Path, cwd: &Path) -> Result<Patch, Error> {
    let shipped = shipped(repo_root)?;
    if let Some(p) = shipped.iter().find(|p| p.name == spec) {
        return Ok(p.clone());
    }
    let path = cwd.join(spec);
    if path.is_file() {
        let abs = path.canonicalize().map_err(|e| Error::Io {
            context: format!("--patch {spec}"),
            source: e,
        })?;
        return Patch::read(&abs);
    }
    let names: Vec<&str> = shipped.iter().map(|p| p.name.as_str()).collect();
    Err(Error::Usage(format!(
        "--patch {spec}: neither a shipped patch (expected one of: {}, in {}) nor a patch file",
        if names.is_empty() {
            "none found".to_owned()
        } else {
            names.join(", ")
        },
        repo_root.join(SHIPPED_DIR).display()
    )))
}

fn git_apply(patch: &Path, dir: &Path, check_only: bool) -> Result<(), Error> {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).arg("apply");
    if check_only {
        cmd.arg("--check");
    }
    let out = cmd.arg(patch).output().map_err(|e| Error::Io {
        context: "cannot start git to apply a calibration patch".into(),
        source: e,
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "--patch {}: does not apply to {} (expected a unified diff that `git apply` accepts \
         against HEAD): {}",
        patch.display(),
        dir.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Checks, without changing anything, that `patch` applies to the tree at `dir`.
pub fn check_applies(patch: &Path, dir: &Path) -> Result<(), Error> {
    git_apply(patch, dir, true)
}

/// Applies `patch` to the tree at `dir`.
pub fn apply(patch: &Path, dir: &Path) -> Result<(), Error> {
    git_apply(patch, dir, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_description_and_the_added_functions() {
        let diff = "# Adds work.\n\ndiff --git a/x.rs b/x.rs\n--- a/x.rs\n+++ b/x.rs\n@@ -1 +1,3 @@\n fn old() {}\n+#[inline(never)]\n+fn calibration_extra_work(n: usize) {}\n+    let f = buffer(1);\n";
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("extra.patch");
        std::fs::write(&f, diff).unwrap();
        let p = Patch::read(&f).unwrap();
        assert_eq!(p.name, "extra");
        assert_eq!(p.description, "Adds work.");
        assert_eq!(p.planted, ["calibration_extra_work"]);
    }

    #[test]
    fn an_unknown_name_lists_the_shipped_ones() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let err = resolve("no-such", root, root).unwrap_err().to_string();
        assert!(err.contains("--patch no-such"), "{err}");
        assert!(err.contains("comment-only"), "{err}");
    }

    /// A refactor that breaks a shipped patch must fail here, naming the patch.
    #[test]
    fn every_shipped_patch_applies_to_the_current_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let patches = shipped(root).unwrap();
        let names: Vec<&str> = patches.iter().map(|p| p.name.as_str()).collect();
        for needed in ["comment-only", "vector-search-1pct", "recall-extra-alloc"] {
            assert!(names.contains(&needed), "{needed} missing from {names:?}");
        }
        for p in &patches {
            assert!(!p.description.is_empty(), "{}: no # description", p.name);
            if let Err(e) = check_applies(&p.file, root) {
                panic!(
                    "calibration patch {} no longer applies: regenerate it against HEAD \
                     (edit a checkout, `git diff > {}`): {e}",
                    p.name,
                    p.file.display()
                );
            }
        }
        let planted = patches.iter().find(|p| p.name == "vector-search-1pct");
        assert_eq!(planted.unwrap().planted, ["calibration_extra_work"]);
    }
}
