//! Finds the harness target of the user's package: the example or bench whose `main` is
//! `perfcheck::main!(...)`, by asking `cargo metadata` what the workspace holds.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Name of the example or bench looked for when perfcheck.toml names none.
pub const DEFAULT_TARGET: &str = "perfcheck";
/// Cargo profile the harness is built with when perfcheck.toml names none.
pub const DEFAULT_CARGO_PROFILE: &str = "release";

/// The `[harness]` section of perfcheck.toml: which target to build; everything is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarnessConfig {
    /// Workspace member holding the harness (default: the package of the current directory,
    /// else the only member that has one).
    pub package: Option<String>,
    /// Name of an example target to use as the harness (at most one of `example`, `bench`).
    pub example: Option<String>,
    /// Name of a bench target (`harness = false`) to use as the harness.
    pub bench: Option<String>,
    /// Cargo profile to build it with (default `release`).
    pub cargo_profile: Option<String>,
}

/// The kind of cargo target the harness is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// An `examples/` target, built with `--example`.
    Example,
    /// A `benches/` target, built with `--bench`.
    Bench,
}

impl TargetKind {
    /// Cargo's name for the kind, as in `cargo metadata`'s `kind` and cargo's `--<kind>` flag.
    pub fn cargo_kind(&self) -> &'static str {
        match self {
            TargetKind::Example => "example",
            TargetKind::Bench => "bench",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cargo_kind())
    }
}

/// A located harness: enough to build it here, or at another revision by package name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HarnessTarget {
    /// Name of the package that holds the target.
    pub package: String,
    /// Example or bench.
    pub kind: TargetKind,
    /// The target's name.
    pub name: String,
    /// The package's Cargo.toml.
    pub manifest_path: PathBuf,
    /// Root of the cargo workspace the package belongs to.
    pub workspace_root: PathBuf,
    /// Cargo profile to build it with (`release`, `dev`, or a custom one).
    pub cargo_profile: String,
}

impl HarnessTarget {
    /// Human description for messages, e.g. "example `perfcheck` of package `agent-memory`".
    pub fn describe(&self) -> String {
        format!(
            "{} `{}` of package `{}`",
            self.kind, self.name, self.package
        )
    }
}

/// The cargo to run: the one running us (`$CARGO`) when started through cargo, so the
/// toolchain matches; `cargo` from PATH otherwise.
pub(crate) fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// What the convention is, appended to every "not found" error so the user knows what to add.
const CONVENTION: &str = "perfcheck measures a crate through an example or bench target named \
    `perfcheck` (a bench needs `harness = false` in its `[[bench]]` section) whose main is \
    `perfcheck::main!(...)`; see the README, \"Use it on your own crate\". Another target can be \
    named in perfcheck.toml with `[harness] example = \"...\"` or `bench = \"...\"`";

/// The target asked for: a named one, or the default (example, else bench, named perfcheck).
enum Wanted {
    Named(TargetKind, String),
    Default,
}

impl Wanted {
    fn from_config(config: &HarnessConfig) -> Result<Wanted, Error> {
        match (&config.example, &config.bench) {
            (Some(e), Some(b)) => Err(Error::Usage(format!(
                "perfcheck.toml: [harness] names both example `{e}` and bench `{b}`; keep one"
            ))),
            (Some(e), None) => Ok(Wanted::Named(TargetKind::Example, e.clone())),
            (None, Some(b)) => Ok(Wanted::Named(TargetKind::Bench, b.clone())),
            (None, None) => Ok(Wanted::Default),
        }
    }

    /// For messages: "an example or bench named `perfcheck`".
    fn describe(&self) -> String {
        match self {
            Wanted::Named(TargetKind::Example, name) => format!("an example named `{name}`"),
            Wanted::Named(TargetKind::Bench, name) => format!("a bench named `{name}`"),
            Wanted::Default => format!("an example or bench named `{DEFAULT_TARGET}`"),
        }
    }

    /// The matching target of `pkg`, if any: the example wins over the bench by default
    /// because an example needs no `harness = false`.
    fn find(&self, pkg: &Package) -> Option<(TargetKind, String)> {
        let has = |kind: &TargetKind, name: &str| {
            pkg.targets
                .iter()
                .any(|t| t.name == name && t.kind.iter().any(|k| k == kind.cargo_kind()))
        };
        match self {
            Wanted::Named(kind, name) => has(kind, name).then(|| (kind.clone(), name.clone())),
            Wanted::Default => [TargetKind::Example, TargetKind::Bench]
                .into_iter()
                .find(|k| has(k, DEFAULT_TARGET))
                .map(|k| (k, DEFAULT_TARGET.to_string())),
        }
    }
}

/// The part of `cargo metadata --format-version 1 --no-deps` that locating needs.
#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    workspace_root: PathBuf,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    id: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

// `cargo metadata` does not report a target's `harness` setting, so a bench with the default
// libtest harness cannot be told apart here; building and running it shows the difference.
#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

fn metadata(dir: &Path) -> Result<Metadata, Error> {
    let cargo = cargo();
    let out = Command::new(&cargo)
        .current_dir(dir)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| Error::Io {
            context: format!(
                "cannot start {} to read the cargo package at {}",
                cargo.to_string_lossy(),
                dir.display()
            ),
            source: e,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Cargo may print warnings first; its first `error:` line says what is wrong.
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error"))
            .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
            .unwrap_or("no message");
        return Err(Error::Usage(format!(
            "{} is not in a usable cargo package (`cargo metadata` failed: {line}); run perfcheck \
             from the crate to measure",
            dir.display()
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| Error::Json {
        context: format!(
            "cannot read `cargo metadata`'s output for {}",
            dir.display()
        ),
        source: e,
    })
}

/// Canonical form for prefix comparisons; the path as given when it cannot be resolved.
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// Finds the harness target for the package at `dir` (or its workspace), as `config` asks:
/// `config.package` if given, else the package containing `dir` if it has the target, else
/// the only workspace member that has one.
pub fn locate(dir: &Path, config: &HarnessConfig) -> Result<HarnessTarget, Error> {
    let wanted = Wanted::from_config(config)?;
    let cargo_profile =
        match config.cargo_profile.as_deref() {
            None => DEFAULT_CARGO_PROFILE.to_string(),
            Some(p) if p.trim().is_empty() => return Err(Error::Usage(
                "perfcheck.toml: [harness] cargo_profile is empty; name a cargo profile such as \
                 \"release\""
                    .into(),
            )),
            Some(p) => p.to_string(),
        };
    let meta = metadata(dir)?;
    let members: Vec<&Package> = meta
        .packages
        .iter()
        .filter(|p| meta.workspace_members.contains(&p.id))
        .collect();
    let names = |pkgs: &[&Package]| {
        pkgs.iter()
            .map(|p| format!("`{}`", p.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found = |pkg: &Package, (kind, name): (TargetKind, String)| HarnessTarget {
        package: pkg.name.clone(),
        kind,
        name,
        manifest_path: pkg.manifest_path.clone(),
        workspace_root: meta.workspace_root.clone(),
        cargo_profile: cargo_profile.clone(),
    };

    if let Some(wanted_pkg) = &config.package {
        let pkg = members
            .iter()
            .find(|p| &p.name == wanted_pkg)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "perfcheck.toml: [harness] package `{wanted_pkg}` is not a member of the \
                     workspace at {}; its members are {}",
                    meta.workspace_root.display(),
                    names(&members)
                ))
            })?;
        return match wanted.find(pkg) {
            Some(t) => Ok(found(pkg, t)),
            None => Err(Error::Usage(format!(
                "package `{}` ({}) has no harness target (looked for {}). {CONVENTION}",
                pkg.name,
                pkg.manifest_path.display(),
                wanted.describe()
            ))),
        };
    }

    // The package whose directory is the longest prefix of `dir`: the one being worked on.
    let here = canonical(dir);
    let containing = members
        .iter()
        .filter_map(|p| {
            let pkg_dir = canonical(p.manifest_path.parent()?);
            here.starts_with(&pkg_dir)
                .then_some((pkg_dir.components().count(), *p))
        })
        .max_by_key(|(depth, _)| *depth)
        .map(|(_, p)| p);
    if let Some(pkg) = containing {
        if let Some(t) = wanted.find(pkg) {
            return Ok(found(pkg, t));
        }
    }

    let mut with: Vec<(&Package, (TargetKind, String))> = members
        .iter()
        .filter_map(|p| wanted.find(p).map(|t| (*p, t)))
        .collect();
    match with.len() {
        1 => {
            let (pkg, t) = with.remove(0);
            Ok(found(pkg, t))
        }
        0 => {
            let place = match (containing, members.len()) {
                (Some(pkg), 1) => format!("package `{}`", pkg.name),
                _ => format!(
                    "the workspace at {} (members {})",
                    meta.workspace_root.display(),
                    names(&members)
                ),
            };
            Err(Error::Usage(format!(
                "no harness target in {place} (looked for {}). {CONVENTION}",
                wanted.describe()
            )))
        }
        _ => {
            let pkgs: Vec<&Package> = with.iter().map(|(p, _)| *p).collect();
            Err(Error::Usage(format!(
                "several workspace members have {}: {}; say which one to measure with \
                 `[harness] package = \"...\"` in perfcheck.toml",
                wanted.describe(),
                names(&pkgs)
            )))
        }
    }
}

/// Set by the launcher for the harness it runs: the target, so `check --ab` can build the same
/// target at the base revision (`package`, `example`|`bench`, `name`, `cargo profile`,
/// tab-separated).
pub const TARGET_ENV: &str = "PERFCHECK_HARNESS_TARGET";

impl HarnessTarget {
    /// The target the launcher built this harness from, if it was launched so.
    pub fn from_env() -> Option<HarnessTarget> {
        HarnessTarget::from_env_value(&std::env::var(TARGET_ENV).ok()?)
    }

    /// Parses the form [`to_env`](Self::to_env) writes.
    pub fn from_env_value(v: &str) -> Option<HarnessTarget> {
        let mut parts = v.split('\t');
        let package = parts.next()?.to_owned();
        let kind = match parts.next()? {
            "example" => TargetKind::Example,
            "bench" => TargetKind::Bench,
            _ => return None,
        };
        let name = parts.next()?.to_owned();
        let cargo_profile = parts.next()?.to_owned();
        let workspace_root = PathBuf::from(parts.next()?);
        Some(HarnessTarget {
            package,
            kind,
            name,
            manifest_path: PathBuf::new(),
            workspace_root,
            cargo_profile,
        })
    }

    /// The form [`TARGET_ENV`] carries.
    pub fn to_env(&self) -> String {
        let t = self;
        let kind = match t.kind {
            TargetKind::Example => "example",
            TargetKind::Bench => "bench",
        };
        format!(
            "{}\t{kind}\t{}\t{}\t{}",
            t.package,
            t.name,
            t.cargo_profile,
            t.workspace_root.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` (relative path, content) below `root`, creating folders.
    fn write(root: &Path, files: &[(&str, &str)]) {
        for (rel, text) in files {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
            std::fs::write(&path, text).expect("write");
        }
    }

    /// A manifest for package `name`; `extra` is appended (e.g. `[[bench]]` sections).
    fn manifest(name: &str, standalone: bool, extra: &str) -> String {
        // `[workspace]` makes a standalone package its own workspace root, so a Cargo.toml in
        // some parent of the temp folder can never claim it.
        let ws = if standalone { "[workspace]\n" } else { "" };
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{ws}{extra}"
        )
    }

    const MAIN: &str = "fn main() { println!(\"hi\"); }\n";

    /// A standalone package `name` with `files` besides its manifest and an empty lib.
    fn package(name: &str, extra: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let toml = manifest(name, true, extra);
        write(tmp.path(), &[("Cargo.toml", &toml), ("src/lib.rs", "")]);
        write(tmp.path(), files);
        tmp
    }

    /// A workspace with members `a` and `b`; `a_files`, `b_files` go below each member.
    fn workspace(a_files: &[(&str, &str)], b_files: &[(&str, &str)]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (manifest("a", false, ""), manifest("b", false, ""));
        write(
            tmp.path(),
            &[
                (
                    "Cargo.toml",
                    "[workspace]\nmembers = [\"a\", \"b\"]\nresolver = \"2\"\n",
                ),
                ("a/Cargo.toml", &a),
                ("a/src/lib.rs", ""),
                ("b/Cargo.toml", &b),
                ("b/src/lib.rs", ""),
            ],
        );
        let prefixed = |member: &str, files: &[(&str, &str)]| {
            files
                .iter()
                .map(|(p, t)| (format!("{member}/{p}"), t.to_string()))
                .collect::<Vec<_>>()
        };
        for (p, t) in prefixed("a", a_files)
            .iter()
            .chain(prefixed("b", b_files).iter())
        {
            write(tmp.path(), &[(p, t)]);
        }
        tmp
    }

    fn err_text(r: Result<HarnessTarget, Error>) -> String {
        match r {
            Ok(t) => panic!("expected an error, located {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn finds_the_example_of_a_single_package() {
        let tmp = package("tiny", "", &[("examples/perfcheck.rs", MAIN)]);
        let root = canonical(tmp.path());
        let t = locate(tmp.path(), &HarnessConfig::default()).expect("located");
        assert_eq!(
            t,
            HarnessTarget {
                package: "tiny".into(),
                kind: TargetKind::Example,
                name: "perfcheck".into(),
                manifest_path: root.join("Cargo.toml"),
                workspace_root: root.clone(),
                cargo_profile: "release".into(),
            }
        );
        assert_eq!(t.describe(), "example `perfcheck` of package `tiny`");
        // From a subfolder too: cargo walks up, and the package still contains the dir.
        let sub = locate(&tmp.path().join("src"), &HarnessConfig::default()).expect("located");
        assert_eq!(sub, t);
    }

    #[test]
    fn finds_a_bench_without_harness_and_prefers_the_example() {
        let bench = "[[bench]]\nname = \"perfcheck\"\nharness = false\n";
        let tmp = package("benched", bench, &[("benches/perfcheck.rs", MAIN)]);
        let t = locate(tmp.path(), &HarnessConfig::default()).expect("located");
        assert_eq!(
            (t.kind.clone(), t.name.as_str()),
            (TargetKind::Bench, "perfcheck")
        );
        assert_eq!(t.describe(), "bench `perfcheck` of package `benched`");

        write(tmp.path(), &[("examples/perfcheck.rs", MAIN)]);
        let t = locate(tmp.path(), &HarnessConfig::default()).expect("located");
        assert_eq!(t.kind, TargetKind::Example);
    }

    #[test]
    fn workspace_member_with_the_example_is_found_from_anywhere() {
        let tmp = workspace(&[("examples/perfcheck.rs", MAIN)], &[]);
        let root = canonical(tmp.path());
        for dir in [
            tmp.path().to_path_buf(),
            tmp.path().join("b"),
            tmp.path().join("a/src"),
        ] {
            let t = locate(&dir, &HarnessConfig::default()).expect("located");
            assert_eq!(t.package, "a", "from {}", dir.display());
            assert_eq!(t.manifest_path, root.join("a/Cargo.toml"));
            assert_eq!(t.workspace_root, root);
        }
    }

    #[test]
    fn the_package_of_the_current_dir_wins_over_other_members() {
        let tmp = workspace(
            &[("examples/perfcheck.rs", MAIN)],
            &[("examples/perfcheck.rs", MAIN)],
        );
        let t = locate(&tmp.path().join("b"), &HarnessConfig::default()).expect("located");
        assert_eq!(t.package, "b");
        let t = locate(&tmp.path().join("a/examples"), &HarnessConfig::default()).expect("a");
        assert_eq!(t.package, "a");
    }

    #[test]
    fn several_members_with_a_harness_are_an_error_naming_them() {
        let tmp = workspace(
            &[("examples/perfcheck.rs", MAIN)],
            &[("examples/perfcheck.rs", MAIN)],
        );
        let msg = err_text(locate(tmp.path(), &HarnessConfig::default()));
        assert!(msg.contains("`a`, `b`"), "{msg}");
        assert!(msg.contains("[harness] package = \"...\""), "{msg}");
        assert!(msg.contains("perfcheck.toml"), "{msg}");

        let config = HarnessConfig {
            package: Some("b".into()),
            ..Default::default()
        };
        let t = locate(tmp.path(), &config).expect("located");
        assert_eq!(t.package, "b");
        assert_eq!(t.manifest_path, canonical(tmp.path()).join("b/Cargo.toml"));
    }

    #[test]
    fn no_harness_explains_the_convention() {
        let tmp = package("plain", "", &[("examples/other.rs", MAIN)]);
        let msg = err_text(locate(tmp.path(), &HarnessConfig::default()));
        assert!(msg.contains("package `plain`"), "{msg}");
        assert!(msg.contains("named `perfcheck`"), "{msg}");
        assert!(msg.contains("perfcheck::main!(...)"), "{msg}");
        assert!(msg.contains("harness = false"), "{msg}");
        assert!(msg.contains("Use it on your own crate"), "{msg}");

        let ws = workspace(&[], &[]);
        let msg = err_text(locate(ws.path(), &HarnessConfig::default()));
        assert!(msg.contains("members `a`, `b`"), "{msg}");
        assert!(msg.contains("perfcheck::main!(...)"), "{msg}");
    }

    #[test]
    fn config_names_another_target_or_package() {
        let bench = "[[bench]]\nname = \"load\"\nharness = false\n";
        let tmp = package(
            "named",
            bench,
            &[
                ("examples/perfcheck.rs", MAIN),
                ("examples/soak.rs", MAIN),
                ("benches/load.rs", MAIN),
            ],
        );
        let example = HarnessConfig {
            example: Some("soak".into()),
            cargo_profile: Some("dev".into()),
            ..Default::default()
        };
        let t = locate(tmp.path(), &example).expect("located");
        assert_eq!(
            (t.kind.clone(), t.name.as_str(), t.cargo_profile.as_str()),
            (TargetKind::Example, "soak", "dev")
        );

        let bench = HarnessConfig {
            bench: Some("load".into()),
            ..Default::default()
        };
        let t = locate(tmp.path(), &bench).expect("located");
        assert_eq!((t.kind, t.name.as_str()), (TargetKind::Bench, "load"));

        // The kind matters: `soak` is an example, not a bench.
        let wrong_kind = HarnessConfig {
            bench: Some("soak".into()),
            ..Default::default()
        };
        let msg = err_text(locate(tmp.path(), &wrong_kind));
        assert!(msg.contains("looked for a bench named `soak`"), "{msg}");

        let both = HarnessConfig {
            example: Some("soak".into()),
            bench: Some("load".into()),
            ..Default::default()
        };
        let msg = err_text(locate(tmp.path(), &both));
        assert!(
            msg.contains("both example `soak` and bench `load`"),
            "{msg}"
        );

        let unknown = HarnessConfig {
            package: Some("nope".into()),
            ..Default::default()
        };
        let msg = err_text(locate(tmp.path(), &unknown));
        assert!(msg.contains("`nope` is not a member"), "{msg}");
        assert!(msg.contains("its members are `named`"), "{msg}");
    }

    #[test]
    fn a_named_package_without_the_target_is_an_error() {
        let tmp = workspace(&[("examples/perfcheck.rs", MAIN)], &[]);
        let config = HarnessConfig {
            package: Some("b".into()),
            ..Default::default()
        };
        let msg = err_text(locate(tmp.path(), &config));
        assert!(msg.contains("package `b`"), "{msg}");
        assert!(
            msg.contains("an example or bench named `perfcheck`"),
            "{msg}"
        );
        assert!(msg.contains("perfcheck::main!(...)"), "{msg}");
    }

    #[test]
    fn a_folder_outside_any_package_names_the_folder_and_cargos_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let msg = err_text(locate(tmp.path(), &HarnessConfig::default()));
        assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
        assert!(msg.contains("`cargo metadata` failed: error:"), "{msg}");
        assert!(msg.contains("Cargo.toml"), "{msg}");
    }

    #[test]
    fn the_launcher_s_target_survives_the_environment() {
        let t = HarnessTarget {
            package: "pipeline".into(),
            kind: TargetKind::Bench,
            name: "perfcheck".into(),
            manifest_path: PathBuf::new(),
            workspace_root: PathBuf::from("/work/my crate"),
            cargo_profile: "dev".into(),
        };
        assert_eq!(HarnessTarget::from_env_value(&t.to_env()), Some(t));
        assert_eq!(
            HarnessTarget::from_env_value("pipeline\tlib\tx\tdev\t/"),
            None
        );
    }
}
