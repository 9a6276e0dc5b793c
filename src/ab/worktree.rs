//! The base revision's source: a linked git worktree, detached at the base commit, so that
//! it builds on its own and its runs report their own commit (clean).

use std::path::Path;

use git2::{BranchType, Oid, Repository, WorktreeAddOptions, WorktreePruneOptions};

use crate::error::Error;

/// Name of the linked worktree at `dir` in the repository's administrative files (and of the
/// temporary branch that creates it): one per folder, so `check --ab`'s base worktree and
/// `calibrate`'s scratch checkout never prune each other.
fn name_for(dir: &Path) -> String {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let hash = crate::compare::stats::stable_hash(&abs.to_string_lossy());
    format!("perfcheck-{:012x}", hash & 0xffff_ffff_ffff)
}

fn git_err(what: &str, e: git2::Error) -> Error {
    Error::Paired(format!("{what}: {}", e.message()))
}

/// Checks out `commit` of the repository at `repo_dir` into the linked worktree at `dir`:
/// created on first use (pruning a stale one of the same name), reused and moved to `commit`
/// afterwards. Tracked files are forced to the commit's content; the worktree's HEAD is
/// detached, so no branch is left behind.
pub fn checkout(repo_dir: &Path, commit: &str, dir: &Path) -> Result<(), Error> {
    let main = Repository::discover(repo_dir).map_err(|e| {
        git_err(
            &format!("{} is not in a git repository", repo_dir.display()),
            e,
        )
    })?;
    let oid = Oid::from_str(commit).map_err(|e| git_err(&format!("commit {commit}"), e))?;
    main.find_commit(oid)
        .map_err(|e| git_err(&format!("commit {commit}"), e))?;

    let reusable = Repository::open(dir).is_ok_and(|r| r.is_worktree());
    if !reusable {
        create(&main, oid, dir)?;
    }
    let wt = Repository::open(dir)
        .map_err(|e| git_err(&format!("cannot open the worktree {}", dir.display()), e))?;
    wt.set_head_detached(oid)
        .map_err(|e| git_err(&format!("cannot move {} to {commit}", dir.display()), e))?;
    let mut co = git2::build::CheckoutBuilder::new();
    co.force().remove_untracked(true);
    wt.checkout_head(Some(&mut co)).map_err(|e| {
        git_err(
            &format!("cannot check out {commit} in {}", dir.display()),
            e,
        )
    })?;
    Ok(())
}

/// Adds the worktree through a temporary branch (libgit2 needs one), deleted again as soon as
/// the new worktree's HEAD is detached.
fn create(main: &Repository, oid: Oid, dir: &Path) -> Result<(), Error> {
    let name = name_for(dir);
    let name = name.as_str();
    if let Ok(old) = main.find_worktree(name) {
        // A worktree of this name whose folder was deleted or moved: forget it first, or adding
        // fails with "already exists".
        let mut opts = WorktreePruneOptions::new();
        opts.valid(true).working_tree(true);
        old.prune(Some(&mut opts))
            .map_err(|e| git_err(&format!("cannot prune the stale {name} worktree"), e))?;
    }
    if let Ok(mut b) = main.find_branch(name, BranchType::Local) {
        b.delete()
            .map_err(|e| git_err(&format!("cannot delete the stale {name} branch"), e))?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::Io {
            context: format!("cannot clear {} for the base worktree", dir.display()),
            source: e,
        })?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::Io {
            context: format!("cannot create {}", parent.display()),
            source: e,
        })?;
    }
    let commit = main
        .find_commit(oid)
        .map_err(|e| git_err("base commit", e))?;
    let branch = main
        .branch(name, &commit, true)
        .map_err(|e| git_err(&format!("cannot create the {name} branch"), e))?;
    let mut opts = WorktreeAddOptions::new();
    opts.reference(Some(branch.get()));
    main.worktree(name, dir, Some(&opts))
        .map_err(|e| git_err(&format!("cannot add a worktree at {}", dir.display()), e))?;
    // Detach at once so the branch can go: users should not find a stray branch.
    let wt = Repository::open(dir)
        .map_err(|e| git_err(&format!("cannot open the worktree {}", dir.display()), e))?;
    wt.set_head_detached(oid)
        .map_err(|e| git_err("cannot detach the worktree", e))?;
    drop(branch);
    if let Ok(mut b) = main.find_branch(name, BranchType::Local) {
        b.delete()
            .map_err(|e| git_err(&format!("cannot delete the {name} branch"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_file(repo: &Repository, name: &str, text: &str) -> Oid {
        let root = repo.workdir().unwrap();
        std::fs::write(root.join(name), text).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new(name)).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parent = repo.head().ok().map(|h| h.peel_to_commit().unwrap());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, name, &tree, &parents)
            .unwrap()
    }

    #[test]
    fn checks_out_a_commit_reuses_the_worktree_and_leaves_no_branch() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path().join("r")).unwrap();
        let first = commit_file(&repo, "a.txt", "one");
        let second = commit_file(&repo, "a.txt", "two");
        let wt = tmp.path().join("r/target/perfcheck-ab/src");

        checkout(repo.workdir().unwrap(), &first.to_string(), &wt).unwrap();
        assert_eq!(std::fs::read_to_string(wt.join("a.txt")).unwrap(), "one");
        let opened = Repository::open(&wt).unwrap();
        assert_eq!(opened.head().unwrap().target(), Some(first));
        assert!(opened.head_detached().unwrap());
        assert!(repo.find_branch(&name_for(&wt), BranchType::Local).is_err());

        // Reused, moved, and local edits in the worktree do not survive.
        std::fs::write(wt.join("a.txt"), "edited").unwrap();
        std::fs::write(wt.join("junk.txt"), "x").unwrap();
        checkout(repo.workdir().unwrap(), &second.to_string(), &wt).unwrap();
        assert_eq!(std::fs::read_to_string(wt.join("a.txt")).unwrap(), "two");
        assert!(!wt.join("junk.txt").exists());

        // The folder deleted behind git's back: pruned and made again.
        std::fs::remove_dir_all(&wt).unwrap();
        checkout(repo.workdir().unwrap(), &first.to_string(), &wt).unwrap();
        assert_eq!(std::fs::read_to_string(wt.join("a.txt")).unwrap(), "one");
        // The main checkout is untouched throughout.
        let main_file = repo.workdir().unwrap().join("a.txt");
        assert_eq!(std::fs::read_to_string(main_file).unwrap(), "two");
        assert_eq!(repo.head().unwrap().target(), Some(second));
    }

    #[test]
    fn two_worktrees_in_two_folders_live_side_by_side() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path().join("r")).unwrap();
        let first = commit_file(&repo, "a.txt", "one");
        let second = commit_file(&repo, "a.txt", "two");
        let ab = tmp.path().join("r/target/perfcheck-ab/src");
        let cal = tmp.path().join("r/target/perfcheck-calibrate/src");
        checkout(repo.workdir().unwrap(), &first.to_string(), &ab).unwrap();
        checkout(repo.workdir().unwrap(), &second.to_string(), &cal).unwrap();
        // Making the second did not prune the first, folder and all (it did when both had
        // one name).
        assert_eq!(std::fs::read_to_string(ab.join("a.txt")).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(cal.join("a.txt")).unwrap(), "two");
        assert!(Repository::open(&ab).unwrap().is_worktree());
        assert!(Repository::open(&cal).unwrap().is_worktree());
        assert_eq!(repo.worktrees().unwrap().len(), 2);
    }

    #[test]
    fn an_unknown_commit_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        commit_file(&repo, "a.txt", "one");
        let err = checkout(tmp.path(), &"1".repeat(40), &tmp.path().join("wt")).unwrap_err();
        assert!(err.to_string().contains("commit 1111"), "{err}");
    }
}
