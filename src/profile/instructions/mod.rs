//! The instructions pass: a workload's measured operations counted under callgrind, per stage
//! and per function, in a process of its own (never during the timing pass).
//!
//! The parent starts `valgrind --tool=callgrind` on the very binary being measured, with the
//! environment cleared but for a fixed `PATH`, `LC_ALL` and a temporary directory, and fixed
//! arguments, so the same binary and inputs give the same counts. The child
//! ([`child::run`]) switches instrumentation on for the measured operations only; the
//! recorder ends a callgrind segment at every stage boundary ([`segments`]); the parent reads
//! the output ([`callgrind_out`]) into an [`InstructionCounts`] for the run record.

pub mod callgrind_out;
pub mod child;
pub mod segments;
pub mod stacks;

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::{InstructionsSettings, Profile};
use crate::error::Error;
use crate::record::{FunctionCost, InstructionCounts};

use self::child::ChildReport;

/// The hidden subcommand of `cargo-perfcheck` that is the child of a pass.
pub const CHILD_COMMAND: &str = "__instructions-pass";

/// Functions kept in the record per stage: those with at least this share of the stage's
/// instructions, inclusive (enough to attribute a 0.5% change), at most
/// [`MAX_FUNCTIONS_PER_STAGE`].
const MIN_FUNCTION_SHARE: f64 = 0.0005;
/// Most functions kept per stage.
const MAX_FUNCTIONS_PER_STAGE: usize = 80;

/// Call paths lighter than this share of all instructions are folded into their caller in the
/// stored stacks (keeps a record's stacks to a few hundred lines).
const MIN_STACK_SHARE: f64 = 0.001;

/// What one pass writes beside the counts.
#[derive(Clone, Debug)]
pub struct PassFiles {
    /// The measured operations' profile in callgrind's format (for `callgrind_annotate` or
    /// kcachegrind), all segments merged into one part.
    pub callgrind_out: PathBuf,
}

/// Finds valgrind on `PATH`; the error says how to install it.
pub fn find_valgrind() -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("valgrind"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Usage(
                "instruction counts need valgrind, which is not on PATH: install it (Debian and \
                 Ubuntu: `apt-get install valgrind`) or run without --instructions"
                    .into(),
            )
        })
}

/// Runs the instructions pass of `ops` operations of `workload` with the binary `exe` (a
/// harness binary: the one being measured) and returns its counts; the raw output is copied
/// into `out_dir`.
pub fn count_workload(
    exe: &Path,
    profile: &Profile,
    workload: &str,
    ops: u64,
    settings: &InstructionsSettings,
    out_dir: &Path,
) -> Result<(InstructionCounts, PassFiles), Error> {
    let valgrind = find_valgrind()?;
    let tmp = tempfile::Builder::new()
        .prefix("perfcheck-ir-")
        .tempdir()
        .map_err(|e| Error::Io {
            context: "cannot create a temporary directory for the instructions pass".into(),
            source: e,
        })?;
    let profile_json = tmp.path().join("profile.json");
    let json = serde_json::to_vec(profile).map_err(|e| Error::Json {
        context: "cannot encode the profile for the instructions pass".into(),
        source: e,
    })?;
    std::fs::write(&profile_json, json).map_err(|e| Error::Io {
        context: format!("cannot write {}", profile_json.display()),
        source: e,
    })?;
    // The binary under a name of fixed length: argv, the environment and the auxiliary vector
    // sit at the top of the stack, so a longer path shifts every stack buffer, and with the
    // alignment the cost of glibc's memcpy and memset (seen: 0.02% on a stage between two
    // copies of one binary at different paths).
    let link = tmp.path().join("pc");
    std::os::unix::fs::symlink(exe, &link).map_err(|e| Error::Io {
        context: format!("cannot link {} into the pass's folder", exe.display()),
        source: e,
    })?;
    let out_file = tmp.path().join("callgrind.out");
    let log_file = tmp.path().join("valgrind.log");
    let mut cmd = Command::new(&valgrind);
    cmd.arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg("--instr-atstart=no")
        .arg("--combine-dumps=yes")
        .arg("--dump-line=no")
        .arg(format!(
            "--cache-sim={}",
            if settings.cache_sim { "yes" } else { "no" }
        ))
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(format!("--log-file={}", log_file.display()))
        .arg(&link)
        .arg(CHILD_COMMAND)
        .arg("--profile-json")
        .arg(&profile_json)
        .arg("--workload")
        .arg(workload)
        .arg("--ops")
        .arg(ops.to_string())
        // A fixed environment: nothing of the caller's shell can change what is counted.
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LC_ALL", "C")
        .env("TMPDIR", tmp.path())
        .current_dir(tmp.path());
    let started = std::time::Instant::now();
    let output = cmd.output().map_err(|e| Error::Io {
        context: format!("cannot start {}", valgrind.display()),
        source: e,
    })?;
    if !output.status.success() {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        return Err(Error::Profiler(format!(
            "the instructions pass of {workload} failed ({}): {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    let report: ChildReport = String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            Error::Profiler(format!(
                "the instructions pass of {workload} printed no report (is {} a perfcheck harness \
                 binary of this version?)",
                exe.display()
            ))
        })?;
    let pass_ms = started.elapsed().as_millis() as u64;
    let (mut counts, out) = read_counts(&out_file, workload, &report, settings.cache_sim)?;
    counts.pass_ms = Some(pass_ms);
    let kept = out_dir.join(format!("callgrind-{workload}.out"));
    let note = format!(
        "{} {CHILD_COMMAND} --workload {workload} --ops {ops} (measured operations only, merged by perfcheck)",
        exe.display()
    );
    let write = std::fs::File::create(&kept).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        out.write_merged(&mut w, &note)?;
        std::io::Write::flush(&mut w)
    });
    write.map_err(|e| Error::Io {
        context: format!("cannot write {}", kept.display()),
        source: e,
    })?;
    Ok((
        counts,
        PassFiles {
            callgrind_out: kept,
        },
    ))
}

/// Reads a pass's callgrind output and checks it against what the child says it ran: every
/// stage it entered must have counts (a missing stage is an error, never a zero).
pub fn read_counts(
    out_file: &Path,
    workload: &str,
    report: &ChildReport,
    cache_sim: bool,
) -> Result<(InstructionCounts, callgrind_out::CallgrindOutput), Error> {
    let file = std::fs::File::open(out_file).map_err(|e| Error::Io {
        context: format!("cannot read callgrind output {}", out_file.display()),
        source: e,
    })?;
    let out = callgrind_out::parse(BufReader::new(file), &segments::stage_of_segment)
        .map_err(|e| Error::Profiler(format!("{}: {e}", out_file.display())))?;
    let segs = segments::per_stage(&out.events, &out.parts)
        .map_err(|e| Error::Profiler(format!("{}: {e}", out_file.display())))?;
    if segs.ops != report.ops {
        return Err(Error::Profiler(format!(
            "the instructions pass of {workload} ran {} operations but callgrind counted {}: \
             the recorder's marks did not reach callgrind",
            report.ops, segs.ops
        )));
    }
    if let Some(missing) = report
        .stages
        .iter()
        .find(|s| segs.stages.iter().all(|r| &r.stage != *s))
    {
        return Err(Error::Profiler(format!(
            "stage {missing} of {workload} ran but has no instruction count"
        )));
    }
    let mut functions: Vec<FunctionCost> = Vec::new();
    for (g, stage) in out.groups.iter().enumerate() {
        let Some(row) = segs.stages.iter().find(|r| &r.stage == stage) else {
            continue;
        };
        let ops = row.instructions.len().max(1) as f64;
        let total: u64 = row.instructions.iter().sum();
        let mut kept: Vec<FunctionCost> = out
            .functions
            .iter()
            .filter(|f| f.group == g)
            .filter(|f| f.inclusive[0] as f64 >= MIN_FUNCTION_SHARE * total as f64)
            .map(|f| FunctionCost {
                stage: stage.clone(),
                function: f.name.clone(),
                file: if f.file == "???" {
                    String::new()
                } else {
                    f.file.clone()
                },
                inclusive: f.inclusive[0] as f64 / ops,
                own: f.own[0] as f64 / ops,
            })
            .collect();
        kept.sort_by(|a, b| b.inclusive.total_cmp(&a.inclusive));
        kept.truncate(MAX_FUNCTIONS_PER_STAGE);
        functions.extend(kept);
    }
    let stacks = stacks::folded(&out, MIN_STACK_SHARE);
    Ok((
        InstructionCounts {
            ops: segs.ops,
            tool: out.creator.clone(),
            cache_sim,
            stages: segs.stages,
            functions,
            stacks,
            pass_ms: None,
        },
        out,
    ))
}
