//! Renderings of a [`Comparison`]: a terminal table, a markdown PR comment, check.json and
//! GitHub Actions annotation lines. Each takes the comparison and returns text; writing it
//! somewhere is the caller's business.

use std::fmt::Write as _;

use crate::compare::{Comparison, Level, Status, Verdict};
use crate::metrics::{Direction, MetricKind, RunInfo, Unit};
use crate::report::format::{bytes, count, duration_ns, group_digits, trim};
use crate::report::{detect, escape};

/// A value in its unit: `61.2µs`, `3`, `1.5KiB`, `1,234/s`.
pub fn value(unit: Unit, v: Option<f64>) -> String {
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return "-".into();
    };
    match unit {
        Unit::Nanoseconds => duration_ns(v),
        Unit::Count => count(v),
        Unit::Bytes => bytes(v),
        Unit::OpsPerSecond if v >= 100.0 => format!("{}/s", group_digits(v.round() as u64)),
        Unit::OpsPerSecond => format!("{v:.1}/s"),
        Unit::Ratio => format!("{:.2}%", 100.0 * v),
        Unit::BytesPerHour => format!("{}/h", bytes(v)),
        Unit::Milliseconds => format!("{v:.1} ms"),
        Unit::Writes => format!("{} writes", group_digits(v.round().max(0.0) as u64)),
    }
}

/// A relative change as a signed percentage: `+23.4%`, `-5.0%`, `0.0%`.
pub fn percent(change: f64) -> String {
    let p = 100.0 * change;
    if p.abs() < 0.05 {
        "0.0%".into()
    } else if p.abs() >= 1000.0 {
        format!("{:+.0}%", p)
    } else {
        format!("{:+.1}%", p)
    }
}

fn change_cell(v: &Verdict) -> String {
    match (v.change, v.status) {
        (Some(c), _) => percent(c),
        (None, Status::New) => "new".into(),
        (None, Status::Missing) => "gone".into(),
        (None, _) if v.base == Some(0.0) && v.head.is_some_and(|h| h > 0.0) => "from 0".into(),
        _ => "-".into(),
    }
}

fn interval_cell(v: &Verdict) -> String {
    match (v.kind, v.ci_low, v.ci_high) {
        (MetricKind::Deterministic, Some(_), _) => "exact".into(),
        (_, Some(lo), Some(hi)) => format!("{} … {}", percent(lo), percent(hi)),
        _ => "-".into(),
    }
}

fn threshold_cell(v: &Verdict) -> String {
    let sign = match v.direction {
        Direction::LowerIsBetter => '+',
        Direction::HigherIsBetter => '-',
    };
    format!("{sign}{}% / {sign}{}%", trim(v.warn), trim(v.fail))
}

fn q_cell(v: &Verdict) -> String {
    match v.q_value {
        Some(q) if q < 1e-4 => format!("{q:.0e}"),
        Some(q) => format!("{q:.4}"),
        None => "-".into(),
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Regression(Level::Fail) => "FAIL",
        Status::Regression(Level::Warn) => "warn",
        Status::Improvement => "better",
        Status::Unchanged => "ok",
        Status::InsufficientData => "few data",
        Status::Ignored => "info",
        Status::New => "new",
        Status::Missing => "missing",
    }
}

fn status_icon(s: Status) -> &'static str {
    match s {
        Status::Regression(Level::Fail) => "❌",
        Status::Regression(Level::Warn) => "⚠️",
        Status::Improvement => "🚀",
        Status::Unchanged => "✅",
        Status::InsufficientData => "❔",
        Status::Ignored => "ℹ️",
        Status::New => "🆕",
        Status::Missing => "➖",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `abc1234`, `abc1234 (3 runs)`, or several commits joined; `tick` makes each commit a
/// markdown code span, else it is escaped for a terminal (a record's commit is untrusted).
fn base_label(base: &[RunInfo], tick: bool) -> String {
    let mut commits: Vec<String> = Vec::new();
    for b in base {
        let s = if tick {
            escape::md_code(&b.short())
        } else {
            escape::terminal(&b.short())
        };
        if !commits.contains(&s) {
            commits.push(s);
        }
    }
    let list = commits.join(", ");
    if base.len() > 1 {
        format!("{list} ({} runs)", base.len())
    } else if list.is_empty() {
        "no baseline".into()
    } else {
        list
    }
}

/// The one-line summary without decoration: `2 regressions (1 fail, 1 warn), 1 improvement in
/// 86 metrics`.
pub fn summary(c: &Comparison) -> String {
    let n = &c.counts;
    let mut s = if n.regressions() == 0 {
        "no regressions".to_owned()
    } else {
        let mut parts = Vec::new();
        if n.fail > 0 {
            parts.push(format!("{} fail", n.fail));
        }
        if n.warn > 0 {
            parts.push(format!("{} warn", n.warn));
        }
        format!(
            "{} ({})",
            plural(n.regressions(), "regression", "regressions"),
            parts.join(", ")
        )
    };
    if n.improvements > 0 {
        let _ = write!(
            s,
            ", {}",
            plural(n.improvements, "improvement", "improvements")
        );
    }
    let _ = write!(s, " in {}", plural(n.metrics, "metric", "metrics"));
    s
}

fn confidence_pct(c: &Comparison) -> String {
    trim(100.0 * c.confidence)
}

// ---------------------------------------------------------------------------------------------
// Terminal

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const GREEN: &str = "\x1b[32m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn status_color(s: Status) -> &'static str {
    match s {
        Status::Regression(Level::Fail) => RED,
        Status::Regression(Level::Warn) => YELLOW,
        Status::Improvement => GREEN,
        _ => DIM,
    }
}

/// A terminal table: a headline, then regressions and improvements (or, with `all`, every
/// metric in run order), then a tally of the rest. `color` adds ANSI colours; pass false for
/// `NO_COLOR` or when the output is not a terminal.
pub fn terminal(c: &Comparison, color: bool, all: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    };
    let mut out = String::new();
    let verdict_word = match c.exit_code() {
        1 => paint(RED, "FAIL"),
        _ if c.counts.warn > 0 => paint(YELLOW, "WARN"),
        _ => paint(GREEN, "PASS"),
    };
    let _ = writeln!(
        out,
        "{} {}: {} | head {} vs base {}{} | {}% confidence",
        paint(BOLD, "perfcheck check"),
        verdict_word,
        summary(c),
        escape::terminal(&c.head.short()),
        base_label(&c.base, false),
        c.paired
            .as_ref()
            .map(|p| format!(" | paired A/B, {} rounds", p.rounds))
            .unwrap_or_default(),
        confidence_pct(c),
    );
    if let Some(line) = detect::summary(c, &|m| escape::terminal(m)) {
        let _ = writeln!(out, "  {}", paint(DIM, &line));
    }
    if let Some(n) = &c.noise_floors {
        let line = format!(
            "noise floors of {} metric(s) measured by calibrate at {} ({})",
            n.metrics,
            escape::terminal(&n.measured_at),
            escape::terminal(&n.file)
        );
        let _ = writeln!(out, "  {}", paint(DIM, &line));
    }
    out.push_str(&super::attribution::terminal(c));
    let rows: Vec<&Verdict> = if all {
        c.verdicts.iter().collect()
    } else {
        let mut r = c.regressions();
        r.extend(c.improvements());
        r
    };
    if !rows.is_empty() {
        let header = [
            "status",
            "metric",
            "base",
            "head",
            "change",
            &format!("{}% interval", confidence_pct(c)),
            "threshold",
            "could detect",
        ]
        .map(|s| s.to_owned());
        let cells: Vec<[String; 8]> = rows
            .iter()
            .map(|v| {
                [
                    status_word(v.status).to_owned(),
                    escape::terminal(&v.metric.to_string()),
                    value(v.unit, v.base),
                    value(v.unit, v.head),
                    change_cell(v),
                    interval_cell(v),
                    threshold_cell(v),
                    detect::terminal_cell(v),
                ]
            })
            .collect();
        let mut width = header.clone().map(|h| h.chars().count());
        for r in &cells {
            for (i, cell) in r.iter().enumerate() {
                width[i] = width[i].max(cell.chars().count());
            }
        }
        // Left-align status and metric, right-align numbers; colour after padding so escape
        // codes do not count as width.
        let line = |cells: &[String; 8], status: Option<Status>| {
            let mut s = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let pad = " ".repeat(width[i].saturating_sub(cell.chars().count()));
                let text = if i < 2 {
                    format!("{cell}{pad}")
                } else {
                    format!("{pad}{cell}")
                };
                s.push_str("  ");
                match (i, status) {
                    (0, Some(st)) | (4, Some(st))
                        if st.is_regression() || st == Status::Improvement =>
                    {
                        s.push_str(&paint(status_color(st), &text));
                    }
                    (0, Some(_)) => s.push_str(&paint(DIM, &text)),
                    _ => s.push_str(&text),
                }
            }
            s.trim_end().to_owned() + "\n"
        };
        out.push_str(&line(&header, None));
        for (v, r) in rows.iter().zip(&cells) {
            out.push_str(&line(r, Some(v.status)));
        }
    }
    let n = &c.counts;
    let mut rest = Vec::new();
    if !all {
        rest.push(format!("{} unchanged", n.unchanged));
    }
    if n.insufficient_data > 0 {
        rest.push(format!("{} with too few samples", n.insufficient_data));
    }
    if n.ignored > 0 {
        rest.push(format!("{} reported only (not gated)", n.ignored));
    }
    if n.new > 0 {
        rest.push(format!("{} new", n.new));
    }
    if n.missing > 0 {
        rest.push(format!("{} missing", n.missing));
    }
    if !rest.is_empty() {
        let _ = writeln!(out, "  {}", paint(DIM, &rest.join(", ")));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Markdown

fn md_table(out: &mut String, rows: &[&Verdict], c: &Comparison, with_q: bool) {
    let _ = write!(
        out,
        "| | metric | base | head | change | {}% interval | threshold (warn / fail) | could detect |",
        confidence_pct(c)
    );
    out.push_str(if with_q { " q |\n" } else { "\n" });
    out.push_str("|---|---|--:|--:|--:|:-:|:-:|--:|");
    out.push_str(if with_q { "--:|\n" } else { "\n" });
    for v in rows {
        let change = match v.status {
            Status::Regression(_) | Status::Improvement => format!("**{}**", change_cell(v)),
            _ => change_cell(v),
        };
        let note = v
            .note
            .as_deref()
            .map(|n| format!(" ({})", escape::md_text(n)))
            .unwrap_or_default();
        let _ = write!(
            out,
            "| {} {} | {}{note} | {} | {} | {} | {} | {} | {} |",
            status_icon(v.status),
            status_word(v.status),
            escape::md_code_cell(&v.metric.to_string()),
            value(v.unit, v.base),
            value(v.unit, v.head),
            change,
            interval_cell(v),
            threshold_cell(v),
            detect::md_cell(v),
        );
        if with_q {
            let _ = write!(out, " {} |", q_cell(v));
        }
        out.push('\n');
    }
}

/// Markdown for a pull request comment or `$GITHUB_STEP_SUMMARY`: a headline, the regressions,
/// the improvements, a collapsed table of every metric, and what was compared on which machine.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let icon = match (c.counts.fail, c.counts.warn) {
        (f, _) if f > 0 => "❌",
        (_, w) if w > 0 => "⚠️",
        _ => "✅",
    };
    let mut headline = summary(c);
    if let Some(first) = headline.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let _ = writeln!(
        out,
        "### {icon} perfcheck: {headline} vs {}\n",
        base_label(&c.base, true)
    );
    if let Some(line) = detect::summary(c, &|m| escape::md_code(m)) {
        let _ = writeln!(out, "{line}\n");
    }
    out.push_str(&super::attribution::markdown_headlines(c));
    let regressions = c.regressions();
    if !regressions.is_empty() {
        out.push_str("#### Regressions\n\n");
        md_table(&mut out, &regressions, c, false);
        out.push('\n');
    }
    let improvements = c.improvements();
    if !improvements.is_empty() {
        out.push_str("#### Improvements\n\n");
        md_table(&mut out, &improvements, c, false);
        out.push('\n');
    }
    out.push_str(&super::attribution::markdown_section(c));
    let _ = writeln!(
        out,
        "<details><summary>All {} metrics</summary>\n",
        c.counts.metrics
    );
    let all: Vec<&Verdict> = c.verdicts.iter().collect();
    md_table(&mut out, &all, c, true);
    out.push_str("\n</details>\n\n");
    let head_branch = c
        .head
        .branch
        .as_deref()
        .map(|b| format!(" ({})", escape::md_text(b)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Head {}{head_branch} vs base {} · profile {} · machine {}  ",
        escape::md_code(&c.head.short()),
        base_label(&c.base, true),
        escape::md_code(&c.head.profile),
        escape::md_code(&c.head.machine),
    );
    match &c.paired {
        None => {
            let _ = writeln!(
                out,
                "Timings: median per run, {}% intervals with run-to-run noise, false discovery \
                 rate {}% (Benjamini-Hochberg); allocations compared exactly. Flagged only when \
                 clear *and* the whole interval is beyond the threshold.",
                confidence_pct(c),
                trim(100.0 * (1.0 - c.confidence)),
            );
        }
        Some(p) => {
            let _ = writeln!(
                out,
                "Paired A/B: base and head built from their commits and run alternately, {} \
                 rounds in one session. Timings: per-round change of the run medians, {}% \
                 t intervals, false discovery rate {}% (Benjamini-Hochberg); allocations \
                 compared exactly. Flagged only when clear *and* the whole interval is beyond \
                 the threshold.",
                p.rounds,
                confidence_pct(c),
                trim(100.0 * (1.0 - c.confidence)),
            );
        }
    }
    if detect::summary(c, &|m| m.to_owned()).is_some() {
        out.push_str(
            "Could detect: the smallest true regression this check flags (warn) 4 times in 5, \
             given the noise it measured; it is the threshold plus what the test resolves, \
             and (noise) or (threshold) says which is larger.\n",
        );
    }
    if let Some(n) = &c.noise_floors {
        let _ = writeln!(
            out,
            "Noise floors: {} metric(s) use the floors `cargo perfcheck calibrate` measured on \
             this machine for this profile ({}, at {}, in {}); the rest use the configured \
             floors. The spread a check measures still widens them.",
            n.metrics,
            escape::md_text(&n.measured_at),
            escape::md_code(crate::git::short_sha(&n.commit)),
            escape::md_code(&n.file),
        );
    }
    out
}

/// A paragraph for check.md naming each recent step of a gated metric's history ("`m`
/// stepped +14.0% [+9.0%, +19.0%] at `abc1234`, 3 commits ago"); empty when there is none.
pub fn change_points_markdown(steps: &[crate::trend::recent::RecentStep]) -> String {
    if steps.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n#### Recent change points\n\n");
    for s in steps {
        let c = &s.change;
        let ago = match c.commits_ago {
            0 => "at the checked commit".to_owned(),
            1 => "1 commit ago".to_owned(),
            n => format!("{n} commits ago"),
        };
        let subject = c
            .summary
            .as_deref()
            .map(|t| format!(" ({})", escape::md_text(t)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- {} stepped {} [{}, {}] at {}{subject}, {ago} (p = {:.3})",
            escape::md_code(&s.metric.to_string()),
            percent(c.step),
            percent(c.step_low),
            percent(c.step_high),
            escape::md_code(&c.short),
            c.p_value,
        );
    }
    let _ = writeln!(
        out,
        "\nSteps in the stored runs along first parents (the last {} commits with runs; a \
         split kept at p <= {}, {}% intervals): see `cargo perfcheck trend --change-points`.",
        crate::trend::recent::RECENT_HISTORY,
        crate::trend::changepoint::ALPHA,
        trim(100.0 * steps[0].change.confidence),
    );
    out
}

// ---------------------------------------------------------------------------------------------
// JSON

/// check.json: the comparison as pretty JSON (its `schema` field versions the layout).
pub fn json(c: &Comparison) -> String {
    // A Comparison holds only strings, numbers and options: encoding cannot fail.
    let mut s = serde_json::to_string_pretty(c).unwrap_or_default();
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------------------------
// GitHub annotations

/// Escapes an annotation message (GitHub's workflow command encoding).
fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes an annotation property value (additionally `:` and `,`).
fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::error`/`::warning` workflow command lines, one per regression, for `GITHUB_ACTIONS=true`.
pub fn annotations(c: &Comparison) -> String {
    let mut out = String::new();
    for v in c.regressions() {
        let level = match v.status {
            Status::Regression(Level::Fail) => "error",
            _ => "warning",
        };
        let (limit, limit_name) = match v.status {
            Status::Regression(Level::Fail) => (v.fail, "fail"),
            _ => (v.warn, "warn"),
        };
        let interval = match (v.kind, v.ci_low, v.ci_high) {
            (MetricKind::Deterministic, ..) => "exact count".to_owned(),
            (_, Some(lo), Some(hi)) => format!(
                "{}% interval {} to {}",
                confidence_pct(c),
                percent(lo),
                percent(hi)
            ),
            _ => "no interval".to_owned(),
        };
        let sign = match v.direction {
            Direction::LowerIsBetter => '+',
            Direction::HigherIsBetter => '-',
        };
        let title = format!("perfcheck: {} regressed", v.metric);
        let message = format!(
            "{} {} vs base {}: {} -> {} ({}), {limit_name} threshold {sign}{}%",
            v.metric,
            change_cell(v),
            base_label(&c.base, false),
            value(v.unit, v.base),
            value(v.unit, v.head),
            interval,
            trim(limit),
        );
        let _ = writeln!(
            out,
            "::{level} title={}::{}",
            gh_property(&title),
            gh_data(&message)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(percent(0.234), "+23.4%");
        assert_eq!(percent(-0.05), "-5.0%");
        assert_eq!(percent(0.0001), "0.0%");
        assert_eq!(percent(12.5), "+1250%");
        assert_eq!(value(Unit::OpsPerSecond, Some(1234.4)), "1,234/s");
        assert_eq!(value(Unit::OpsPerSecond, Some(459.98)), "460/s");
        assert_eq!(value(Unit::OpsPerSecond, Some(15.04)), "15.0/s");
        assert_eq!(value(Unit::Ratio, Some(0.0123)), "1.23%");
        assert_eq!(value(Unit::Nanoseconds, None), "-");
        assert_eq!(trim(25.0), "25");
        assert_eq!(trim(2.5), "2.5");
    }

    #[test]
    fn annotation_values_are_escaped() {
        assert_eq!(gh_data("50% a\nb"), "50%25 a%0Ab");
        assert_eq!(gh_property("a: b, c"), "a%3A b%2C c");
    }

    #[test]
    fn change_point_lines_name_the_step_and_escape_the_subject() {
        use crate::trend::{recent::RecentStep, ChangePoint};
        assert_eq!(change_points_markdown(&[]), "");
        let step = RecentStep {
            metric: crate::metrics::MetricName::parse("recall/vector_search/wall_ns").unwrap(),
            change: ChangePoint {
                index: 4,
                commit: "abc1234def".repeat(4),
                short: "abc1234def".into(),
                summary: Some("<script>alert(1)</script>".into()),
                previous_commit: "0".repeat(40),
                commits_ago: 3,
                before: 100.0,
                after: 114.0,
                step: 0.14,
                step_low: 0.09,
                step_high: 0.19,
                confidence: 0.99,
                p_value: 0.002,
            },
        };
        let md = change_points_markdown(&[step]);
        assert!(
            md.contains(
                "- `recall/vector_search/wall_ns` stepped +14.0% [+9.0%, +19.0%] at `abc1234def` \
                 (&lt;script&gt;alert(1)&lt;/script&gt;), 3 commits ago (p = 0.002)"
            ),
            "{md}"
        );
        assert!(!md.contains("<script>"));
    }
}
