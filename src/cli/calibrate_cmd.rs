//! `cargo perfcheck calibrate`: measures the paired gate on this machine with real patches.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::calibrate::{self, patches, report, Counting, Request, Variant};
use crate::compare::measured_noise;
use crate::config::Profile;
use crate::git::{short_sha, Repo};
use crate::harness::Harness;
use crate::project::ProjectConfig;
use crate::Error;
use anyhow::Context;
use clap::Args;

use crate::cli::args::Folders;

/// Arguments of `calibrate`.
#[derive(Args)]
pub struct CalibrateArgs {
    /// Patch to calibrate with (repeatable): a name in calibration/patches/ or a patch file.
    /// Default: every shipped patch.
    #[arg(long = "patch", value_name = "NAME_OR_FILE")]
    patches: Vec<String>,
    /// Paired checks per patch.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    checks: u32,
    /// Rounds of each paired check, one base and one patched run each.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(2..=200))]
    rounds: u32,
    /// Profile name or .toml file of every run.
    #[arg(long, short = 'p', value_name = "NAME", default_value = "ab")]
    profile: String,
    /// Workload to run (repeatable). Default: the profile's list.
    #[arg(long = "workload", short = 'w', value_name = "W")]
    workloads: Vec<String>,
    #[command(flatten)]
    folders: Folders,
    /// Count instructions once per side in every check [default: on when valgrind is on PATH].
    #[arg(long, conflicts_with = "no_instructions")]
    instructions: bool,
    /// Do not count instructions.
    #[arg(long)]
    no_instructions: bool,
    /// Use this binary of unpatched HEAD as the base instead of building it.
    #[arg(long, value_name = "FILE")]
    base_bin: Option<PathBuf>,
    /// Use FILE as the binary of patch NAME instead of building it (repeatable).
    #[arg(long, value_name = "NAME=FILE")]
    variant_bin: Vec<String>,
    /// Baseline store whose folder receives noise.json, the measured floors later checks on
    /// this machine use (default: $PERFCHECK_STORE, perfcheck.toml, baselines/perfcheck.sqlite).
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Do not write the measured floors to noise.json.
    #[arg(long)]
    no_save_noise: bool,
    /// Print only the summary, no progress lines.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Runs `calibrate`; exit 0 when it finished, 2 on an error.
pub fn run(a: CalibrateArgs, harness: &Harness) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let project = ProjectConfig::load(&cwd)?;
    let mut log = crate::cli::progress::logger(a.quiet);
    let repo = Repo::discover(&cwd)
        .ok_or_else(|| Error::Usage("calibrate needs a git repository: it patches HEAD".into()))?;
    let head = repo
        .info()
        .ok_or_else(|| Error::Usage("calibrate: the repository has no commit yet".into()))?;
    let root = repo
        .workdir()
        .ok_or_else(|| Error::Usage("calibrate: a bare repository has no working tree".into()))?
        .to_path_buf();

    let variants = variants(&a, &root, &cwd)?;
    let base_bin = a
        .base_bin
        .as_deref()
        .map(|b| existing(b, "--base-bin"))
        .transpose()?;
    let absolute = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        }
    };
    let loaded = Profile::load(&a.profile, &a.folders.profiles_dir, harness.profiles())?;
    let counting = counting(&a, harness, &loaded)?;
    let mut run_args: Vec<OsString> = vec!["--profile".into()];
    let as_path = Path::new(&a.profile);
    run_args.push(if a.profile.ends_with(".toml") && as_path.exists() {
        absolute(as_path).into_os_string()
    } else {
        a.profile.clone().into()
    });
    run_args.push("--profiles-dir".into());
    run_args.push(absolute(&a.folders.profiles_dir).into_os_string());
    for w in &a.workloads {
        run_args.push("--workload".into());
        run_args.push(w.into());
    }
    // Counts are taken once per side and check, never inside the timed rounds.
    if loaded.instructions.as_ref().is_some_and(|i| i.enabled) {
        run_args.push("--no-instructions".into());
    }
    let out_dir = report_dir(&absolute(&a.folders.reports_dir))?;
    let req = Request {
        repo_root: root.clone(),
        head: head.commit.clone(),
        harness: crate::ab::build::current_target(&cwd, &project.harness).ok(),
        variants,
        base_bin,
        checks: a.checks as usize,
        rounds: a.rounds as usize,
        run_args,
        counting,
        thresholds: project.thresholds.clone(),
        seed: project.check.seed,
        out_dir: out_dir.clone(),
        work_dir: calibrate::work_dir(&root),
    };
    if head.dirty {
        log("note: the working tree is dirty; calibrate builds HEAD as committed, without it");
    }
    log(&format!(
        "calibrating at {}: {} patch(es), {} checks of {} rounds each; nothing is saved as a \
         baseline",
        short_sha(&head.commit),
        req.variants.len(),
        req.checks,
        req.rounds
    ));
    let bins = calibrate::prepare(&req, &mut log)?;
    let mut cal = calibrate::start(&req);
    let mut save = |c: &calibrate::Calibration| write_reports(c, &out_dir);
    save(&cal)?;
    let mut noise = calibrate::NoiseSamples::default();
    let started = std::time::Instant::now();
    calibrate::run(&req, &bins, &mut cal, &mut noise, &mut log, &mut save)?;
    println!();
    print!("{}", report::terminal(&cal));
    if !a.no_save_noise {
        save_noise(
            &noise,
            &cal,
            &loaded.name,
            started.elapsed().as_secs_f64() / 60.0,
            &project.store_path(a.store.as_deref()),
        )?;
    }
    println!(
        "calibration report: {} (and calibration.json; each check's runs in check-NNN/)",
        out_dir.join("calibration.md").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the floors the calibration measured into noise.json beside the store, replacing
/// this machine's and profile's previous entry.
fn save_noise(
    noise: &calibrate::NoiseSamples,
    cal: &calibrate::Calibration,
    profile: &str,
    span_minutes: f64,
    store: &Path,
) -> Result<(), Error> {
    let Some(machine) = &cal.machine else {
        return Ok(());
    };
    let entry = noise.entry(
        machine,
        profile,
        &cal.head,
        &crate::run::now_rfc3339(),
        span_minutes,
    );
    if entry.metrics.is_empty() {
        println!(
            "noise floors: too few runs to measure any (need {} base runs, {} comment-only rounds)",
            calibrate::noise::MIN_RUNS,
            calibrate::noise::MIN_PAIRS
        );
        return Ok(());
    }
    let path = measured_noise::path_beside(store);
    let mut file = measured_noise::NoiseFile::load(&path)?.unwrap_or_default();
    let (drift, paired) = entry.metrics.values().fold((0, 0), |(d, p), m| {
        (
            d + usize::from(m.drift.is_some()),
            p + usize::from(m.paired.is_some()),
        )
    });
    file.upsert(entry);
    file.save(&path)?;
    println!(
        "noise floors: {drift} metric(s) between runs, {paired} between paired sides, written to \
         {} (later checks of profile {profile} on this machine use them)",
        path.display()
    );
    Ok(())
}

/// The variants asked for (default: all shipped), with their given binaries.
fn variants(a: &CalibrateArgs, root: &Path, cwd: &Path) -> Result<Vec<Variant>, Error> {
    let chosen = if a.patches.is_empty() {
        let all = patches::shipped(root)?;
        if all.is_empty() {
            return Err(Error::Usage(format!(
                "calibrate: no patches in {} and no --patch given (expected NAME.patch files)",
                root.join(patches::SHIPPED_DIR).display()
            )));
        }
        all
    } else {
        a.patches
            .iter()
            .map(|s| patches::resolve(s, root, cwd))
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut out: Vec<Variant> = chosen
        .into_iter()
        .map(|patch| Variant { patch, bin: None })
        .collect();
    for spec in &a.variant_bin {
        let (name, file) = spec.split_once('=').ok_or_else(|| {
            Error::Usage(format!(
                "--variant-bin {spec}: expected NAME=FILE, e.g. comment-only=path/to/cargo-perfcheck"
            ))
        })?;
        let names: Vec<&str> = out.iter().map(|v| v.patch.name.as_str()).collect();
        let known = names.join(", ");
        let v = out.iter_mut().find(|v| v.patch.name == name).ok_or_else(|| {
            Error::Usage(format!(
                "--variant-bin {spec}: no patch named {name} is calibrated (expected one of: {known})"
            ))
        })?;
        v.bin = Some(existing(Path::new(file), "--variant-bin")?);
    }
    Ok(out)
}

/// An existing file, made absolute; the error names the flag.
fn existing(file: &Path, flag: &str) -> Result<PathBuf, Error> {
    if !file.is_file() {
        return Err(Error::Usage(format!(
            "{flag} {}: no such file (expected a cargo-perfcheck binary)",
            file.display()
        )));
    }
    file.canonicalize().map_err(|e| Error::Io {
        context: format!("{flag} {}", file.display()),
        source: e,
    })
}

/// Instruction counting: the flags, else on when valgrind is on PATH.
fn counting(
    a: &CalibrateArgs,
    harness: &Harness,
    profile: &Profile,
) -> Result<Option<Counting>, Error> {
    let on = if a.no_instructions {
        false
    } else if a.instructions {
        crate::profile::instructions::find_valgrind()?;
        true
    } else {
        crate::profile::instructions::find_valgrind().is_ok()
    };
    if !on {
        return Ok(None);
    }
    let settings = profile.instructions.clone().unwrap_or_default();
    let configured = harness.resolve(profile, &a.workloads)?;
    Ok(Some(Counting {
        profile: profile.clone(),
        workloads: crate::run::Counted::plan(&configured, &settings),
        settings,
    }))
}

/// A new `calibrate-<time>` folder under the reports folder.
fn report_dir(reports: &Path) -> Result<PathBuf, Error> {
    let stamp: String = crate::run::now_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect::<String>()
        .replace('T', "-");
    let mut dir = reports.join(format!("calibrate-{stamp}"));
    let mut n = 2;
    while dir.exists() {
        dir = reports.join(format!("calibrate-{stamp}-{n}"));
        n += 1;
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
        context: format!("cannot create {}", dir.display()),
        source: e,
    })?;
    Ok(dir)
}

/// Writes calibration.json and calibration.md (after every check, so a stopped run keeps
/// what finished).
fn write_reports(c: &calibrate::Calibration, dir: &Path) -> Result<(), Error> {
    let json = serde_json::to_string_pretty(c).map_err(|e| Error::Json {
        context: "cannot encode calibration.json".into(),
        source: e,
    })?;
    for (name, text) in [
        ("calibration.json", format!("{json}\n")),
        ("calibration.md", report::markdown(c)),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, text).map_err(|e| Error::Io {
            context: format!("cannot write {}", file.display()),
            source: e,
        })?;
    }
    Ok(())
}
