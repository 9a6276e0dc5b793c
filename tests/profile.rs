//! End-to-end tests of `cargo perfcheck profile` through the real binary: every output file is
//! read back with an independent reader (quick-xml, a hand-written protobuf decoder, png).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

mod common;

use common::{git_repo, only_run, perfcheck};
use serde_json::Value;

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A profile whose recalls all run every stage: the built-in ones repeat queries, and once a
/// query is cached its recall runs no stage at all.
const UNCACHED: &str = r#"
description = "profile tests: recall without its cache"
workloads = ["recall"]

[corpus]
seed = 7
events = 1500
topics = 8
sessions = 40
queries = 300

[engine]
cache_capacity = 0

[run]
warmup_ops = 10
ops = 200
"#;

/// Runs a CPU-only profile of uncached recall in `dir` and returns the workload folder.
fn cpu_profile(dir: &Path, extra: &[&str], slow: Option<&str>) -> PathBuf {
    std::fs::write(dir.join("uncached.toml"), UNCACHED).unwrap();
    let mut cmd = perfcheck(dir);
    cmd.args([
        "perfcheck",
        "profile",
        "--cpu",
        "-p",
        "./uncached.toml",
        "-w",
        "recall",
    ])
    // 200 Hz stays under the 250 Hz kernel tick; 8,000 test-build recalls take about a
    // second of CPU: about 200 samples.
    .args([
        "--ops",
        "8000",
        "--frequency",
        "200",
        "--reports-dir",
        "reports",
    ])
    .args(extra);
    if let Some(s) = slow {
        cmd.env("PERFCHECK_SLOW_STAGE", s);
    }
    cmd.assert().success();
    only_run(&dir.join("reports")).join("recall")
}

/// Samples per stage from `cpu.folded`, summed the way a script would: each line's count goes
/// to the innermost `agent_memory::<module>::<stage>` frame.
fn stage_samples(folded: &str, stages: &[&str]) -> (BTreeMap<String, u64>, u64) {
    let mut by = BTreeMap::new();
    let mut total = 0;
    for line in folded.lines() {
        let (stack, count) = line.rsplit_once(' ').expect("`stack count` lines");
        let count: u64 = count.parse().expect("a sample count");
        total += count;
        let stage = stack.split(';').rev().find_map(|f| {
            let rest = f.strip_prefix("agent_memory::")?;
            let (module, name) = rest.split_once("::")?;
            (!module.contains("::") && stages.contains(&name)).then(|| name.to_owned())
        });
        *by.entry(stage.unwrap_or_else(|| "-".into())).or_default() += count;
    }
    (by, total)
}

const RECALL: &[&str] = &["embed_query", "vector_search", "rerank", "format"];

#[test]
fn cpu_profile_writes_folded_stacks_flamegraph_and_pprof_with_stage_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let sha = git_repo(tmp.path());
    let dir = cpu_profile(tmp.path(), &[], None);

    // cpu.folded: stage frames present, and they hold most of the samples.
    let folded = std::fs::read_to_string(dir.join("cpu.folded")).unwrap();
    assert!(folded.contains("agent_memory::recall::vector_search"));
    assert!(folded.contains("agent_memory::recall::rerank"));
    let (by, total) = stage_samples(&folded, RECALL);
    assert!(total >= 100, "{total} samples");
    let staged: u64 = by.iter().filter(|(k, _)| *k != "-").map(|(_, v)| v).sum();
    assert!(staged * 2 > total, "stages hold most samples: {by:?}");
    assert!(
        !folded.contains("perf_signal_handler") && !folded.contains("backtrace::trace"),
        "profiler frames are stripped"
    );

    // cpu-stages.json agrees with the folded file.
    let summary = json(&dir.join("cpu-stages.json"));
    assert_eq!(summary["samples"].as_u64().unwrap(), total);
    assert_eq!(summary["frequency_hz"], 200);
    let rerank = summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "rerank")
        .unwrap();
    assert_eq!(rerank["samples"].as_u64().unwrap(), by["rerank"]);

    // flamegraph.svg: well-formed XML whose title names workload, commit and samples.
    let svg = std::fs::read_to_string(dir.join("flamegraph.svg")).unwrap();
    let title = svg_texts(&svg).0;
    assert!(title.starts_with("recall | commit "), "{title}");
    assert!(title.contains(&sha[..10]), "{title}");
    assert!(title.ends_with(" samples at 200 Hz"), "{title}");
    assert!(
        title.contains(&total.to_string()) || total >= 1000,
        "{title}"
    );

    // profile.pb.gz: gzip + protobuf, decoded without pprof's own types.
    let prof = decode_pprof(&dir.join("profile.pb.gz"));
    assert_eq!(
        prof.sample_types,
        [
            ("samples".into(), "count".into()),
            ("cpu".into(), "nanoseconds".into())
        ]
    );
    let names: Vec<&str> = prof.functions.values().map(String::as_str).collect();
    for s in ["vector_search", "rerank"] {
        let full = format!("agent_memory::recall::{s}");
        assert!(
            names.iter().any(|n| n.starts_with(&full)),
            "{full} among {} functions",
            names.len()
        );
    }
    assert_eq!(prof.total_samples, total);
    assert_eq!(prof.period, 5_000_000, "1e9 / 200 Hz");
}

#[test]
fn a_slowed_stage_takes_a_larger_share_of_samples() {
    let base = tempfile::tempdir().unwrap();
    let slow = tempfile::tempdir().unwrap();
    let share = |dir: &Path| {
        let folded = std::fs::read_to_string(dir.join("cpu.folded")).unwrap();
        let (by, total) = stage_samples(&folded, RECALL);
        by.get("rerank").copied().unwrap_or(0) as f64 / total.max(1) as f64
    };
    let before = share(&cpu_profile(base.path(), &[], None));
    let after = share(&cpu_profile(slow.path(), &[], Some("rerank:300")));
    // rerank spins 3x its own time on top: a share b becomes 4b / (1 + 3b). Ask for at least
    // half of that rise, which sampling noise at about 200 samples stays well inside.
    let expected = 4.0 * before / (1.0 + 3.0 * before);
    assert!(
        before > 0.05 && after > before + 0.5 * (expected - before),
        "rerank share {before:.2} -> {after:.2} (expected about {expected:.2})"
    );
}

#[test]
fn cpu_profile_under_a_tokio_runtime_sees_worker_threads_and_stages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cpu_profile(tmp.path(), &["--tokio"], None);
    let folded = std::fs::read_to_string(dir.join("cpu.folded")).unwrap();
    let workers: u64 = folded
        .lines()
        .filter(|l| l.starts_with("tokio"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    let (by, total) = stage_samples(&folded, RECALL);
    assert!(
        workers * 2 > total,
        "{workers} of {total} samples on workers"
    );
    assert!(by.get("vector_search").copied().unwrap_or(0) > 0, "{by:?}");
    let rec = json(&only_run(&tmp.path().join("reports")).join("profile.json"));
    assert_eq!(rec["runtime"], "tokio (2 workers)");
}

#[test]
fn heap_profile_writes_dhat_json_and_a_heatmap_row_per_allocating_stage() {
    let tmp = tempfile::tempdir().unwrap();
    perfcheck(tmp.path())
        .args(["profile", "--heap", "-p", "tiny", "-w", "recall", "-q"])
        .assert()
        .success();
    // The stages that allocate, according to a timing run's allocation counts.
    perfcheck(tmp.path())
        .args([
            "run",
            "-p",
            "tiny",
            "-w",
            "recall",
            "-q",
            "--reports-dir",
            "runs",
        ])
        .assert()
        .success();
    let run = json(&only_run(&tmp.path().join("runs")).join("run.json"));
    let allocating: Vec<String> = run["workloads"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["stage"] != "total" && s["stage"] != "other")
        .filter(|s| s["allocs_per_op"].as_f64().unwrap() > 0.0)
        .map(|s| s["stage"].as_str().unwrap().to_owned())
        .collect();
    assert!(allocating.len() >= 3, "{allocating:?}");

    let dir = only_run(&tmp.path().join("reports")).join("recall");
    // dhat-heap.json: DHAT's format, version 2, with program points and a frame table.
    let dhat = json(&dir.join("dhat-heap.json"));
    assert_eq!(dhat["dhatFileVersion"], 2);
    assert_eq!(dhat["mode"], "rust-heap");
    for field in ["cmd", "pid", "te", "tg", "pps", "ftbl", "tu", "Mtu"] {
        assert!(!dhat[field].is_null(), "dhat field {field}");
    }
    let pps = dhat["pps"].as_array().unwrap();
    assert!(pps.len() > 10);
    for f in [
        "tb", "tbk", "tl", "mb", "mbk", "gb", "gbk", "eb", "ebk", "fs",
    ] {
        assert!(!pps[0][f].is_null(), "pp field {f}");
    }
    let ftbl = dhat["ftbl"].as_array().unwrap();
    assert!(
        ftbl.iter()
            .any(|f| f.as_str().unwrap().contains("agent_memory::recall::rerank")),
        "a backtrace reaches the rerank stage"
    );
    let rec = json(&only_run(&tmp.path().join("reports")).join("profile.json"));
    let summary = &rec["workloads"][0]["dhat"];
    let total: u64 = pps.iter().map(|p| p["tb"].as_u64().unwrap()).sum();
    assert_eq!(summary["total_bytes"].as_u64().unwrap(), total);
    assert!(summary["peak_bytes"].as_u64().unwrap() > 0);

    // heatmap.json: exactly one row per allocating stage, plus components.
    let grid = json(&dir.join("heatmap.json"));
    let rows: Vec<&str> = grid["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for s in &allocating {
        assert_eq!(
            rows.iter().filter(|r| **r == s.as_str()).count(),
            1,
            "one row for {s}: {rows:?}"
        );
    }
    for s in RECALL {
        if !allocating.iter().any(|a| a == s) {
            assert!(!rows.contains(s), "{s} allocated nothing yet has a row");
        }
    }
    for (i, row) in grid["live"].as_array().unwrap().iter().enumerate() {
        let max = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .max();
        assert!(max.unwrap_or(0) > 0, "row {} is empty", rows[i]);
    }
    // heatmap.svg: well-formed XML naming every row.
    let texts = svg_texts(&std::fs::read_to_string(dir.join("heatmap.svg")).unwrap()).1;
    for r in &rows {
        assert!(texts.iter().any(|t| t == r), "row label {r} drawn");
    }

    // heatmap.png: decodes, and is far from blank.
    let (w, h, pixels) = decode_png(&dir.join("heatmap.png"));
    assert!(w >= 1000 && h >= 300, "{w}x{h}");
    let non_white = pixels.iter().filter(|p| **p != [255, 255, 255]).count();
    let mut colours: Vec<[u8; 3]> = pixels.clone();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        non_white * 10 > pixels.len(),
        "{non_white} of {} pixels drawn",
        pixels.len()
    );
    assert!(colours.len() > 50, "{} distinct colours", colours.len());

    let growth = json(&dir.join("growth.json"));
    assert_eq!(growth["every_ops"], 1000);
    assert!(
        growth["per_every_ops"].is_null(),
        "200 ops are too few to judge"
    );
}

#[test]
fn overhead_measures_interleaved_blocks_and_the_allocator() {
    let tmp = tempfile::tempdir().unwrap();
    let out = perfcheck(tmp.path())
        .args(["profile", "--overhead", "-p", "tiny", "-w", "recall", "-q"])
        .args(["--overhead-blocks", "8"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(out).unwrap();
    assert!(stdout.contains("CPU profiler overhead"), "{stdout}");
    assert!(stdout.contains("allocator overhead"), "{stdout}");
    let run = only_run(&tmp.path().join("reports"));
    let o = json(&run.join("recall").join("overhead.json"));
    let blocks = o["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 8);
    let profiled: Vec<bool> = blocks
        .iter()
        .map(|b| b["profiled"].as_bool().unwrap())
        .collect();
    assert_eq!(
        profiled,
        [false, true, true, false, false, true, true, false]
    );
    // The ratio is what the blocks add up to: profiled wall time over unprofiled.
    let wall = |on: bool| -> f64 {
        blocks
            .iter()
            .filter(|b| b["profiled"].as_bool().unwrap() == on)
            .map(|b| b["wall_ns"].as_f64().unwrap())
            .sum()
    };
    let ratio = o["wall_ratio"].as_f64().unwrap();
    assert!(wall(false) > 0.0, "{o}");
    assert!(
        (ratio - wall(true) / wall(false)).abs() < 1e-9 * ratio.max(1.0),
        "{o}"
    );
    assert_eq!(
        o["samples"].as_u64().unwrap() > 0,
        o["coverage"].as_f64().unwrap() > 0.0,
        "{o}"
    );
    assert!(
        !run.join("recall").join("cpu.folded").exists(),
        "--overhead alone profiles nothing"
    );
    let rec = json(&run.join("profile.json"));
    let a = &rec["alloc_overhead"];
    let (system, counting) = (
        a["system_ns"].as_f64().unwrap(),
        a["counting_ns"].as_f64().unwrap(),
    );
    assert!(system > 0.0 && counting > 0.0, "{a}");
    assert!(
        (a["ratio"].as_f64().unwrap() - counting / system).abs() < 1e-9,
        "{a}"
    );
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (&["--frequency", "0"][..], "--frequency 0"),
        (&["--frequency", "5000"][..], "1 to 1000"),
        (&["--growth-threshold", "lots"][..], "--growth-threshold"),
        (&["--ops", "0"][..], "--ops 0"),
        (
            &["--overhead", "--overhead-blocks", "2"][..],
            "--overhead-blocks 2",
        ),
    ] {
        let out = perfcheck(tmp.path())
            .args(["profile", "-p", "tiny", "-w", "recall", "-q"])
            .args(args)
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone();
        let err = String::from_utf8(out).unwrap();
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(!tmp.path().join("reports").exists(), "nothing written");
}

/// Parses `svg` as XML (any malformation fails the test); returns the text of the element
/// with `id="title"` (empty when there is none) and every text node, trimmed.
fn svg_texts(svg: &str) -> (String, Vec<String>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(svg);
    reader.config_mut().check_end_names = true;
    let mut in_title = false;
    let mut title = String::new();
    let mut texts = Vec::new();
    let mut depth = 0i32;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                depth += 1;
                in_title = e
                    .try_get_attribute("id")
                    .expect("valid attributes")
                    .is_some_and(|a| a.value.as_ref() == b"title");
            }
            Event::End(_) => {
                depth -= 1;
                in_title = false;
            }
            Event::Text(t) => {
                let text = t.decode().expect("UTF-8");
                if in_title {
                    title.push_str(&text);
                }
                if !text.trim().is_empty() {
                    texts.push(text.trim().to_owned());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "every element closed");
    (title, texts)
}

struct Pprof {
    sample_types: Vec<(String, String)>,
    functions: BTreeMap<u64, String>,
    total_samples: u64,
    period: i64,
}

/// A protobuf reader for just the fields of perftools.profiles.Profile that the test needs.
fn decode_pprof(path: &Path) -> Pprof {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .expect("gzip");
    let mut strings = Vec::new();
    let mut types = Vec::new();
    let mut funcs = Vec::new();
    let mut samples = Vec::new();
    let mut period = 0;
    for (field, v) in fields(&bytes) {
        match (field, v) {
            (1, Wire::Bytes(b)) => types.push(b),
            (2, Wire::Bytes(b)) => samples.push(b),
            (5, Wire::Bytes(b)) => funcs.push(b),
            (6, Wire::Bytes(b)) => strings.push(String::from_utf8(b.to_vec()).expect("UTF-8")),
            (12, Wire::Varint(p)) => period = p as i64,
            _ => {}
        }
    }
    assert_eq!(
        strings.first().map(String::as_str),
        Some(""),
        "string 0 is empty"
    );
    let s = |i: u64| strings[i as usize].clone();
    let sample_types = types
        .iter()
        .map(|b| {
            let f = fields(b);
            let get = |n| f.iter().find(|(k, _)| *k == n).map_or(0, |(_, v)| v.int());
            (s(get(1)), s(get(2)))
        })
        .collect();
    let functions = funcs
        .iter()
        .map(|b| {
            let f = fields(b);
            let get = |n| f.iter().find(|(k, _)| *k == n).map_or(0, |(_, v)| v.int());
            (get(1), s(get(2)))
        })
        .collect();
    let mut total_samples = 0;
    for b in samples {
        // value (field 2): packed, or one varint per value.
        let values: Vec<u64> = fields(b)
            .into_iter()
            .filter(|(k, _)| *k == 2)
            .flat_map(|(_, v)| match v {
                Wire::Bytes(p) => packed(p),
                Wire::Varint(x) => vec![x],
            })
            .collect();
        total_samples += values[0];
    }
    Pprof {
        sample_types,
        functions,
        total_samples,
        period,
    }
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

impl Wire<'_> {
    fn int(&self) -> u64 {
        match self {
            Wire::Varint(v) => *v,
            Wire::Bytes(_) => panic!("expected a varint"),
        }
    }
}

fn varint(b: &[u8], i: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*i];
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn fields(b: &[u8]) -> Vec<(u64, Wire<'_>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i);
        let v = match key & 7 {
            0 => Wire::Varint(varint(b, &mut i)),
            2 => {
                let len = varint(b, &mut i) as usize;
                let s = &b[i..i + len];
                i += len;
                Wire::Bytes(s)
            }
            1 => {
                i += 8;
                continue;
            }
            5 => {
                i += 4;
                continue;
            }
            t => panic!("unexpected wire type {t}"),
        };
        out.push((key >> 3, v));
    }
    out
}

fn packed(b: &[u8]) -> Vec<u64> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        out.push(varint(b, &mut i));
    }
    out
}

/// Width, height and RGB pixels of a PNG.
fn decode_png(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected colour type {other:?}"),
    };
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}
