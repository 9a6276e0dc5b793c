//! `cargo perfcheck check --ab`: the paired A/B gate (build the base, interleave the runs).

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use crate::ab::{self, session};
use crate::check::metric_set;
use crate::compare::{compare_paired, measured_noise};
use crate::git::{short_sha, Repo};
use crate::project::ProjectConfig;
use crate::Error;
use anyhow::Context;

use crate::cli::check_cmd::{report, CheckArgs};

/// Runs a paired A/B check; exit 0 = no regression, 1 = regression, 2 = error.
pub fn run(
    a: &CheckArgs,
    harness: &crate::harness::Harness,
    project: &ProjectConfig,
    cwd: &Path,
) -> anyhow::Result<ExitCode> {
    let mut log = crate::cli::progress::logger(a.measure.quiet);
    let repo = Repo::discover(cwd).ok_or_else(|| {
        Error::Usage("--ab needs a git repository: the base is built from a commit".into())
    })?;
    let head = repo.info().ok_or_else(|| {
        Error::Usage("--ab: the repository has no commit yet to build a base from".into())
    })?;
    let root = repo
        .workdir()
        .ok_or_else(|| Error::Usage("--ab: a bare repository has no working tree".into()))?
        .to_path_buf();
    let base = match &a.base {
        Some(rev) => repo.resolve(rev, "--base")?,
        None => {
            let branch = repo.default_branch(project.check.default_branch.as_deref());
            repo.search_start(&head.commit, branch.as_deref())
        }
    };
    if base == head.commit && !head.dirty {
        log(&format!(
            "note: the base is HEAD ({}) and the tree is clean: an A/A check, which measures \
             the noise floor",
            short_sha(&base)
        ));
    }

    let work = ab::work_dir(&root);
    let worktree = work.join("src");
    log(&format!(
        "checking out base {} in {}",
        short_sha(&base),
        worktree.display()
    ));
    ab::worktree::checkout(&root, &base, &worktree)?;
    let base_bin = match &a.base_bin {
        Some(bin) => {
            if !bin.is_file() {
                return Err(Error::Usage(format!(
                    "--base-bin {}: no such file (expected a perfcheck harness binary)",
                    bin.display()
                ))
                .into());
            }
            bin.canonicalize()
                .with_context(|| format!("--base-bin {}", bin.display()))?
        }
        None => {
            let target = ab::build::current_target(cwd, &project.harness)?;
            log(&format!(
                "building the base's {} ({}); later checks reuse this build folder",
                target.describe(),
                target.cargo_profile
            ));
            ab::build::build_base(&target, &root, &worktree, &work.join("target"))?
        }
    };
    let head_bin = std::env::current_exe().context("cannot find the running binary")?;

    let profile = a
        .measure
        .profile
        .clone()
        .unwrap_or_else(|| project.check.profile.clone());
    let absolute = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        }
    };
    // Both sides must read the same profile: the head's, by absolute path.
    let mut run_args: Vec<OsString> = vec!["--profile".into()];
    let as_path = Path::new(&profile);
    run_args.push(if profile.ends_with(".toml") && as_path.exists() {
        absolute(as_path).into_os_string()
    } else {
        profile.clone().into()
    });
    run_args.push("--profiles-dir".into());
    run_args.push(absolute(&a.measure.folders.profiles_dir).into_os_string());
    for w in &a.measure.workloads {
        run_args.push("--workload".into());
        run_args.push(w.into());
    }
    // Instruction counts need no repetition: one pass per side after the rounds, none in them.
    let loaded = crate::config::Profile::load(
        &profile,
        &a.measure.folders.profiles_dir,
        harness.profiles(),
    )?;
    let configured = harness.resolve(&loaded, &a.measure.workloads)?;
    let instructions = a.measure.instructions_plan(&loaded)?;
    if loaded.instructions.as_ref().is_some_and(|i| i.enabled) {
        run_args.push("--no-instructions".into());
    }

    let (_, out_dir) = crate::run::create_run_dir(
        &absolute(&a.measure.folders.reports_dir).join("ab"),
        &crate::run::now_rfc3339(),
        Some(&head),
    )?;
    let plan = session::Plan {
        base: session::Side {
            label: "base",
            bin: base_bin.clone(),
            dir: worktree,
            env_remove: vec!["PERFCHECK_SLOW_STAGE"],
        },
        head: session::Side {
            label: "head",
            bin: head_bin.clone(),
            dir: cwd.to_path_buf(),
            env_remove: Vec::new(),
        },
        rounds: a.rounds as usize,
        order_seed: order_seed()?,
        env: session::run_env(std::env::var("GLIBC_TUNABLES").ok().as_deref()),
        run_args,
        out_dir: out_dir.clone(),
    };
    log(&format!(
        "paired A/B: base {} vs head {}{}, profile {profile}, {} rounds, order seed {}",
        short_sha(&base),
        short_sha(&head.commit),
        if head.dirty { " (dirty)" } else { "" },
        plan.rounds,
        plan.order_seed
    ));
    let mut rounds = session::run(&plan, &mut log)?;
    let session_json = serde_json::to_value(&rounds.log).context("session record")?;
    write_json(&out_dir.join("session.json"), &session_json)?;
    if let Some(ip) = &instructions {
        let workloads = crate::run::Counted::plan(&configured, &ip.settings);
        for (label, bin, records) in [
            ("base", &base_bin, &mut rounds.base),
            ("head", &head_bin, &mut rounds.head),
        ] {
            log(&format!("{label}: instructions pass"));
            let dir = out_dir.join(format!("{label}-instructions"));
            let counts = ab::instructions::count_side(
                bin,
                &loaded,
                &workloads,
                &ip.settings,
                &dir,
                &mut log,
            )
            .with_context(|| format!("the {label} side's instructions pass"))?;
            ab::instructions::attach(records, &counts);
        }
    }
    let base_sets = rounds
        .base
        .iter()
        .map(metric_set)
        .collect::<Result<Vec<_>, _>>()?;
    let head_sets = rounds
        .head
        .iter()
        .map(metric_set)
        .collect::<Result<Vec<_>, _>>()?;
    // Floors `calibrate` measured for this machine and profile replace the built-in ones.
    let machine = rounds
        .base
        .first()
        .map(|r| r.machine.key())
        .unwrap_or_default();
    let (thresholds, noise_floors) = measured_noise::apply(
        &project.thresholds,
        &measured_noise::path_beside(&project.store_path(a.store.as_deref())),
        &machine,
        &loaded.name,
        true,
    )?;
    let mut comparison = compare_paired(&base_sets, &head_sets, &thresholds, project.check.seed);
    comparison.noise_floors = noise_floors;
    if let Some(head_run) = rounds.head.first() {
        let bases: Vec<&crate::record::RunRecord> = rounds.base.iter().collect();
        crate::compare::attribution::explain(&mut comparison, &bases, head_run);
        crate::report::diff_flame::write_for_attribution(
            &mut comparison,
            &bases,
            head_run,
            &out_dir,
        )?;
    }

    println!();
    let code = report(
        &comparison,
        &out_dir,
        a.all,
        "; the runs are in base-N/ and head-N/ beside it, the order in session.json",
    )?;
    add_session(&out_dir.join("check.json"), session_json)?;
    Ok(ExitCode::from(code as u8))
}

/// The variable that fixes the order of the sides (to repeat a session's order, give the
/// `order_seed` its `session.json` records).
const ORDER_SEED_VAR: &str = "PERFCHECK_AB_ORDER_SEED";

/// The order seed: `PERFCHECK_AB_ORDER_SEED` when set, else a fresh one (recorded either way).
fn order_seed() -> anyhow::Result<u64> {
    match std::env::var(ORDER_SEED_VAR) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
            Error::Usage(format!(
                "{ORDER_SEED_VAR}={v}: expected an unsigned integer (the order_seed of a \
                 session.json)"
            ))
            .into()
        }),
        _ => Ok(ab::order::fresh_seed()),
    }
}

fn write_json(path: &Path, v: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v).context("session record")?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// Adds the session record to check.json as its last key, `ab_session`, so the check's one
/// JSON file says which side ran first in every round. Spliced into the text rather than
/// re-serialised, so the report's own key order is kept.
fn add_session(check_json: &Path, session: serde_json::Value) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(check_json)
        .with_context(|| format!("cannot read {}", check_json.display()))?;
    let body = text.trim_end();
    let Some(open) = body.strip_suffix('}') else {
        anyhow::bail!("{} does not end with a JSON object", check_json.display());
    };
    let open = open.trim_end();
    let sep = if open.ends_with('{') { "" } else { "," };
    let block = serde_json::to_string_pretty(&session).context("session record")?;
    let spliced = format!(
        "{open}{sep}\n  \"ab_session\": {}\n}}\n",
        block.replace('\n', "\n  ")
    );
    serde_json::from_str::<serde_json::Value>(&spliced)
        .with_context(|| format!("{} is not a JSON object", check_json.display()))?;
    std::fs::write(check_json, spliced)
        .with_context(|| format!("cannot write {}", check_json.display()))
}
