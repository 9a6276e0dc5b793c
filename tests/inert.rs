//! Untrusted text (branch names, commit subjects and strings of imported records) stays inert
//! in every output: SVG charts, check.md, the terminal, and `baseline list`.

mod common;

use common::{perfcheck, Project, MINI_REMEMBER};
use perfcheck::metrics::{MetricName, Unit};
use perfcheck::trend::{TrendPoint, TrendSeries};

/// A branch name git accepts (`git check-ref-format --branch` allows `<`, `>` and `|`).
const BRANCH: &str = "feat/<b>a|b</b>";
/// A commit subject with markup, a title-setting OSC sequence, a screen clear and a pipe.
const SUBJECT: &str = "<script>alert(1)</script> \x1b]0;pwned\x07\x1b[2J | done";

/// Element names and the text of every `<text>` element (entities resolved) of an SVG; any
/// malformation fails the test.
fn svg_parse(svg: &str) -> (Vec<String>, Vec<String>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(svg);
    reader.config_mut().check_end_names = true;
    let (mut elements, mut texts) = (Vec::new(), Vec::new());
    let mut current: Option<String> = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                if name == "text" {
                    current = Some(String::new());
                }
                elements.push(name);
            }
            Event::Text(t) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(&t.decode().expect("UTF-8"));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(c) = current.as_mut() {
                    let raw = format!("&{};", r.decode().expect("UTF-8"));
                    c.push_str(&quick_xml::escape::unescape(&raw).expect("known entity"));
                }
            }
            Event::End(e) if e.name().as_ref() == b"text" => {
                texts.extend(current.take().map(|t| t.trim().to_owned()));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (elements, texts)
}

#[test]
fn hostile_text_in_a_trend_chart_arrives_as_svg_text() {
    let tmp = tempfile::tempdir().unwrap();
    // Chart labels show a commit's first 7 characters: make them all markup.
    let commit = "<b>&'\"x\x1bzzz";
    let point = |value: f64| TrendPoint {
        commit: commit.into(),
        summary: Some(SUBJECT.into()),
        runs: 1,
        value,
        low: value * 0.9,
        high: value * 1.1,
        status: None,
    };
    let series = TrendSeries {
        metric: MetricName::parse("recall/total/wall_ns").unwrap(),
        unit: Unit::Nanoseconds,
        points: vec![point(100.0), point(120.0)],
        change_points: Vec::new(),
    };
    let subtitle = "profile <script>alert(1)</script> & 'q' \"d\" \x1b]0;pwned\x07";
    let (svg, _png) =
        perfcheck::report::trend_chart::render(&series, subtitle, tmp.path()).unwrap();
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(
        !svg.contains(['\x1b', '\x07']),
        "control characters in the SVG"
    );
    let (elements, texts) = svg_parse(&svg);
    for e in &elements {
        assert!(
            !["b", "script"].contains(&e.as_str()),
            "element <{e}> injected"
        );
    }
    let title = "recall/total/wall_ns  (profile <script>alert(1)</script> & 'q' \"d\" \u{FFFD}]0;pwned\u{FFFD})".to_owned();
    assert!(texts.contains(&title), "{texts:?}");
    assert!(texts.iter().any(|t| t == "<b>&'\"x"), "{texts:?}");
}

/// The binary's stdout as text.
fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(a.get_output().stdout.clone()).unwrap()
}

#[test]
fn a_hostile_branch_and_subject_stay_inert_end_to_end() {
    let p = Project::new(MINI_REMEMBER, None);
    // The baseline on the default branch, then the hostile branch and commit on top.
    p.save();
    let head = p.head();
    p.checkout_new_branch(BRANCH, &head);
    p.commit(SUBJECT);
    p.save();
    let check = p.cmd().args(["check", "-p", "mini", "-q"]).assert();
    let out = stdout(&check);
    assert!(!out.contains("no baseline"), "{out}");
    assert!(!out.contains(['\x1b', '\x07']), "{out:?}");
    let md_path = out
        .lines()
        .find_map(|l| l.strip_prefix("check report: "))
        .and_then(|l| l.split(" (and").next())
        .expect("check report line");
    let md = std::fs::read_to_string(p.path().join(md_path)).unwrap();
    assert!(md.contains("(feat/&lt;b&gt;a\\|b&lt;/b&gt;)"), "{md}");
    assert!(!md.contains("<b>") && !md.contains('\x1b'), "{md}");

    // `baseline list` prints the branch; `trend` prints the subject.
    let list = p.list(&[]);
    assert!(list.contains(BRANCH), "{list}");
    let trend = p
        .cmd()
        .args(["trend", "-p", "mini", "-m", "remember/total/allocs"])
        .assert()
        .success();
    let out = stdout(&trend);
    assert!(!out.contains(['\x1b', '\x07']), "{out:?}");
    assert!(
        out.contains("<script>alert(1)</script> \u{FFFD}]0;pwned\u{FFFD}\u{FFFD}[2J | done"),
        "{out}"
    );
}

/// A run.json from `run` outside git, with `git` replaced by `git` (as another machine or a
/// hand edit could write it).
fn record_with_git(dir: &std::path::Path, git: serde_json::Value) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::write(dir.join("profiles/mini.toml"), MINI_REMEMBER).unwrap();
    perfcheck(dir)
        .args(["run", "-p", "mini", "-q"])
        .assert()
        .success();
    let run = common::only_run(&dir.join("reports")).join("run.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&run).unwrap()).unwrap();
    json["git"] = git;
    let file = dir.join("imported.json");
    std::fs::write(&file, serde_json::to_string(&json).unwrap()).unwrap();
    file
}

#[test]
fn an_imported_record_with_non_ascii_and_control_characters_lists_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let file = record_with_git(
        tmp.path(),
        serde_json::json!({
            // Byte 10 falls inside an `é`.
            "commit": format!("a{}", "é".repeat(39)),
            "branch": "main\u{1b}]0;pwned\u{7}\u{1b}[2J",
            "dirty": false,
        }),
    );
    let store = tmp.path().join("s/store.sqlite");
    perfcheck(tmp.path())
        .args(["baseline", "import"])
        .arg(&file)
        .arg("--store")
        .arg(&store)
        .assert()
        .success();
    let list = perfcheck(tmp.path())
        .args(["baseline", "list", "--store"])
        .arg(&store)
        .assert()
        .success();
    let out = stdout(&list);
    let line = out.lines().next().expect("one stored run");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[1], format!("a{}", "é".repeat(9)), "{line}");
    assert_eq!(cols[2], "main\u{FFFD}]0;pwned\u{FFFD}\u{FFFD}[2J", "{line}");
    assert!(!out.contains(['\x1b', '\x07']), "{out:?}");
}
