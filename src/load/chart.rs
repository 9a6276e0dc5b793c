//! Charts of a load run (plotters, bundled font, SVG and PNG): latency percentiles over time
//! with phase boundaries, the latency distribution per phase, offered vs achieved throughput,
//! memory over time, and for `--find-max` p99 against the offered rate.

use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::combinators::{BindKeyPoints, IntoLogRange, LogCoord, WithKeyPoints};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{FindMaxResult, GeneratorResult, LoadReport};
use crate::error::Error;
use crate::report::escape::svg_text;

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 520;
pub(crate) const COLORS: [RGBColor; 6] = [
    RGBColor(31, 94, 168),
    RGBColor(230, 120, 20),
    RGBColor(200, 30, 30),
    RGBColor(20, 140, 60),
    RGBColor(120, 60, 170),
    RGBColor(90, 90, 90),
];
pub(crate) const BOUNDARY: RGBColor = RGBColor(150, 150, 150);

pub(crate) type Drawn = Result<(), String>;
/// A chart's plotting area with value axes `X` and `Y`.
pub(crate) type Plot<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;
/// Formats a tick label.
pub(crate) type Format = fn(&f64) -> String;
/// A line of a chart: name, value of a tick, colour.
type TickLine = (&'static str, fn(&super::Tick) -> f64, RGBColor);
/// A latency line: name, percentile of a second, colour, width.
type LatencyLine = (&'static str, fn(&super::Latency) -> u64, RGBColor, u32);

/// One chart and the data it shows.
enum Chart<'a> {
    LatencyOverTime(&'a GeneratorResult),
    Throughput(&'a GeneratorResult),
    Memory(&'a GeneratorResult),
    Distribution(&'a GeneratorResult),
    FindMax(&'a FindMaxResult),
}

impl Chart<'_> {
    /// File name without extension.
    fn stem(&self) -> &'static str {
        match self {
            Chart::LatencyOverTime(_) => "latency-over-time",
            Chart::Throughput(_) => "throughput",
            Chart::Memory(_) => "memory",
            Chart::Distribution(_) => "latency-distribution",
            Chart::FindMax(_) => "find-max",
        }
    }
}

/// Draws every chart that applies to `r` into `dir`; returns the files written.
pub fn render_all(r: &LoadReport, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut charts = Vec::new();
    if let Some(run) = &r.run {
        if !run.timeline.is_empty() {
            charts.extend([
                Chart::LatencyOverTime(run),
                Chart::Throughput(run),
                Chart::Memory(run),
            ]);
        }
        if !run.total.spectrum.is_empty() {
            charts.push(Chart::Distribution(run));
        }
    }
    if let Some(f) = &r.find_max {
        if !f.steps.is_empty() {
            charts.push(Chart::FindMax(f));
        }
    }
    let mut out = Vec::new();
    for chart in &charts {
        let (svg, png) = crate::report::chart::write_svg_and_png(chart, &dir.join(chart.stem()))?;
        out.extend([svg, png]);
    }
    Ok(out)
}

impl crate::report::chart::Chart for Chart<'_> {
    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        match *self {
            Chart::LatencyOverTime(run) => latency_over_time(root, run),
            Chart::Throughput(run) => throughput(root, run),
            Chart::Memory(run) => memory(root, run),
            Chart::Distribution(run) => distribution(root, run),
            Chart::FindMax(f) => find_max(root, f),
        }
    }
}

pub(crate) fn ms(ns: u64) -> f64 {
    // Log axes need positive values: 1 µs is the histograms' resolution anyway.
    (ns.max(1_000)) as f64 / 1e6
}

/// Milliseconds with as many decimals as the magnitude needs: 250, 12, 1.5, 0.25, 0.012.
/// A logarithmic axis over `lo..hi` labelled at 1, 2 and 5 times each power of ten (plotters'
/// own choice crowds the top decade and can leave a decade bare), with a light grid line at
/// every integer multiple.
pub(crate) fn log_axis(lo: f64, hi: f64) -> WithKeyPoints<LogCoord<f64>> {
    let mut bold = Vec::new();
    let mut light = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in 1..10 {
            let v = decade * m as f64;
            if v >= lo && v <= hi {
                light.push(v);
                if matches!(m, 1 | 2 | 5) {
                    bold.push(v);
                }
            }
        }
        decade *= 10.0;
    }
    (lo..hi)
        .log_scale()
        .with_key_points(bold)
        .with_light_points(light)
}

pub(crate) fn ms_label(v: &f64) -> String {
    let v = *v;
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub(crate) fn whole(v: &f64) -> String {
    format!("{v:.0}")
}

pub(crate) fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Axis descriptions and tick labels of a chart (`None`: plotters' defaults).
pub(crate) struct Axes {
    pub(crate) x_desc: &'static str,
    pub(crate) y_desc: &'static str,
    pub(crate) x_labels: Option<usize>,
    pub(crate) x_format: Option<Format>,
    pub(crate) y_format: Option<Format>,
}

/// Clears `root` and draws the caption, grid and axes of a chart over `x` and `y`.
pub(crate) fn frame<'a, DB, X, Y>(
    root: &'a DrawingArea<DB, Shift>,
    caption: &str,
    x: X,
    y: Y,
    axes: &Axes,
) -> Result<Plot<'a, DB, X::CoordDescType, Y::CoordDescType>, String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    root.fill(&WHITE).map_err(err)?;
    let mut c = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    let mut mesh = c.configure_mesh();
    mesh.x_desc(axes.x_desc).y_desc(axes.y_desc);
    if let Some(n) = axes.x_labels {
        mesh.x_labels(n);
    }
    if let Some(f) = &axes.x_format {
        mesh.x_label_formatter(f);
    }
    if let Some(f) = &axes.y_format {
        mesh.y_label_formatter(f);
    }
    mesh.draw().map_err(err)?;
    Ok(c)
}

/// Draws a line `width` wide with a legend entry (a short stroke `legend_width` wide).
pub(crate) fn line<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    c: &mut Plot<'_, DB, X, Y>,
    name: impl Into<String>,
    points: impl IntoIterator<Item = (f64, f64)>,
    color: RGBColor,
    width: u32,
    legend_width: u32,
) -> Drawn {
    c.draw_series(LineSeries::new(points, color.stroke_width(width)))
        .map_err(err)?
        .label(name)
        .legend(move |(x, y)| {
            PathElement::new([(x, y), (x + 18, y)], color.stroke_width(legend_width))
        });
    Ok(())
}

/// Draws the legend box at `position`.
pub(crate) fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    c: &mut Plot<'a, DB, X, Y>,
    position: SeriesLabelPosition,
) -> Drawn {
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(err)
}

/// [`frame`] over the run's seconds with a line at each phase start, named at `names_y` if given.
fn over_time<'a, DB, Y>(
    root: &'a DrawingArea<DB, Shift>,
    run: &GeneratorResult,
    caption: &str,
    y: Y,
    (y_desc, y_format): (&'static str, Option<Format>),
    names_y: Option<f64>,
) -> Result<Plot<'a, DB, RangedCoordf64, Y::CoordDescType>, String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let t_max = run.timeline.last().map_or(1.0, |t| t.t_s).max(1.0);
    let axes = Axes {
        x_desc: "seconds",
        y_desc,
        x_labels: None,
        x_format: None,
        y_format,
    };
    let mut c = frame(root, caption, 0.0..t_max, y, &axes)?;
    let Range { start: lo, end: hi } = c.y_range();
    for p in &run.phases {
        let x = p.start_s;
        c.draw_series(LineSeries::new(
            [(x, lo), (x, hi)],
            BOUNDARY.stroke_width(1),
        ))
        .map_err(err)?;
        if let Some(y) = names_y {
            c.draw_series([Text::new(
                svg_text(&p.name),
                (x + t_max * 0.005, y),
                ("sans-serif", 14),
            )])
            .map_err(err)?;
        }
    }
    Ok(c)
}

fn latency_over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &GeneratorResult,
) -> Drawn {
    let lat: Vec<_> = run
        .timeline
        .iter()
        .filter(|t| t.latency.count > 0)
        .collect();
    let hi = lat
        .iter()
        .map(|t| ms(t.latency.max_ns))
        .fold(0.01, f64::max)
        * 3.0;
    // Room above the data for the legend and below it for the phase names, so neither hides a
    // line (or the other).
    let lo = lat
        .iter()
        .map(|t| ms(t.latency.p50_ns))
        .fold(hi, f64::min)
        .max(0.001)
        / 3.0;
    let mut c = over_time(
        root,
        run,
        "Latency from intended start, per second",
        log_axis(lo, hi),
        ("latency (ms, log)", Some(ms_label)),
        Some(lo * 1.45),
    )?;
    // Slowest first and thinnest, so the lower percentiles stay visible on top (at low rates
    // p99.9 of one second is its maximum).
    let series: [LatencyLine; 4] = [
        ("max", |l| l.max_ns, RGBColor(170, 170, 170), 1),
        ("p99.9", |l| l.p999_ns, COLORS[2], 1),
        ("p99", |l| l.p99_ns, COLORS[1], 2),
        ("p50", |l| l.p50_ns, COLORS[0], 2),
    ];
    for (name, f, color, width) in series {
        let points = lat.iter().map(|t| (t.t_s, ms(f(&t.latency))));
        line(&mut c, name, points, color, width, 2)?;
    }
    legend(&mut c, SeriesLabelPosition::UpperRight)
}

fn throughput<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, run: &GeneratorResult) -> Drawn {
    let hi = run
        .timeline
        .iter()
        .map(|t| t.offered_ops_per_s.max(t.achieved_ops_per_s))
        .fold(1.0, f64::max)
        * 1.15;
    let mut c = over_time(
        root,
        run,
        "Offered vs achieved throughput",
        0.0..hi,
        ("operations per second", Some(whole)),
        Some(hi * 0.97),
    )?;
    let lines: [TickLine; 2] = [
        ("offered", |t| t.offered_ops_per_s, RGBColor(180, 180, 180)),
        (
            "achieved (ok within timeout)",
            |t| t.achieved_ops_per_s,
            COLORS[0],
        ),
    ];
    // Offered wide and light underneath, so it stays visible where achieved matches it.
    for (i, (name, f, color)) in lines.into_iter().enumerate() {
        let width = if i == 0 { 6 } else { 2 };
        let points = run.timeline.iter().map(|t| (t.t_s, f(t)));
        line(&mut c, name, points, color, width, 2)?;
    }
    legend(&mut c, SeriesLabelPosition::LowerRight)
}

fn memory<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, run: &GeneratorResult) -> Drawn {
    let mib = |b: f64| b / (1024.0 * 1024.0);
    let lines: [TickLine; 4] = [
        ("RSS", |t| t.resources.rss_bytes as f64, COLORS[5]),
        ("Rust heap", |t| t.resources.heap_bytes as f64, COLORS[0]),
        (
            "vector index",
            |t| t.resources.index_bytes as f64,
            COLORS[3],
        ),
        (
            "retained (heap - index + SQLite)",
            |t| t.resources.retained_bytes() as f64,
            COLORS[2],
        ),
    ];
    let hi = run
        .timeline
        .iter()
        .flat_map(|t| lines.iter().map(move |l| mib((l.1)(t))))
        .fold(1.0, f64::max)
        // Headroom for the legend: lines end at the right edge, where a legend would hide them.
        * 1.45;
    let mut c = over_time(root, run, "Memory over time", 0.0..hi, ("MiB", None), None)?;
    for (name, f, color) in lines {
        let points = run.timeline.iter().map(|t| (t.t_s, mib(f(t))));
        line(&mut c, name, points, color, 2, 2)?;
    }
    legend(&mut c, SeriesLabelPosition::UpperRight)
}

/// Percentile `p` (0..=100) on the "nines" axis: x = log10(1 / (1 - p/100)), capped at 5.
fn nines(p: f64) -> f64 {
    let tail = (1.0 - p / 100.0).max(1e-5);
    (-tail.log10()).min(5.0)
}

/// Label of a tick on the "nines" axis.
fn nines_label(x: &f64) -> String {
    match x.round() as i64 {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        3 => "99.9%".into(),
        4 => "99.99%".into(),
        _ => "99.999%".into(),
    }
}

fn distribution<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, run: &GeneratorResult) -> Drawn {
    // With one phase, `total` is the same curve.
    let total = (run.phases.len() > 1).then_some(&run.total);
    let all = run.phases.iter().chain(total);
    let (mut lo, mut hi) = (f64::MAX, 0.01f64);
    for p in all.clone() {
        for &(_, v) in &p.spectrum {
            lo = lo.min(ms(v));
            hi = hi.max(ms(v));
        }
    }
    let (lo, hi) = (lo.min(hi) / 1.5, hi * 1.5);
    let axes = Axes {
        x_desc: "percentile",
        y_desc: "latency (ms, log)",
        x_labels: Some(6),
        x_format: Some(nines_label),
        y_format: Some(ms_label),
    };
    let mut c = frame(
        root,
        "Latency distribution (percentile spectrum)",
        0.0..5.0,
        log_axis(lo, hi),
        &axes,
    )?;
    for (i, p) in all.enumerate() {
        let color = COLORS[i % COLORS.len()];
        let width = if p.name == "total" { 3 } else { 2 };
        let points = p
            .spectrum
            .iter()
            .filter(|(q, _)| *q < 100.0)
            .map(|&(q, v)| (nines(q), ms(v)));
        line(&mut c, svg_text(&p.name), points, color, width, 2)?;
    }
    legend(&mut c, SeriesLabelPosition::UpperLeft)
}

fn find_max<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, f: &FindMaxResult) -> Drawn {
    let x_hi = f
        .steps
        .iter()
        .map(|s| s.offered_ops_per_s)
        .fold(1.0, f64::max)
        * 1.1;
    let limit = ms(f.p99_limit_ns);
    let hi = f
        .steps
        .iter()
        .map(|s| ms(s.latency.p99_ns))
        .fold(limit, f64::max)
        * 2.0;
    let lo = f
        .steps
        .iter()
        .map(|s| ms(s.latency.p50_ns))
        .fold(limit, f64::min)
        / 2.0;
    let caption = format!(
        "Saturation search: highest sustainable {:.0} ops/s",
        f.max_sustainable_ops_per_s
    );
    let axes = Axes {
        x_desc: "offered operations per second",
        y_desc: "latency (ms, log)",
        x_labels: None,
        x_format: Some(whole),
        y_format: Some(ms_label),
    };
    let mut c = frame(root, &caption, 0.0..x_hi, log_axis(lo, hi), &axes)?;
    let limit_line = [(0.0, limit), (x_hi, limit)];
    line(&mut c, "p99 limit", limit_line, COLORS[2], 1, 1)?;
    let mut sorted = f.steps.clone();
    sorted.sort_by(|a, b| a.offered_ops_per_s.total_cmp(&b.offered_ops_per_s));
    for (name, color, get) in [
        (
            "p50",
            COLORS[0],
            (|s: &super::FindMaxStep| s.latency.p50_ns) as fn(&super::FindMaxStep) -> u64,
        ),
        ("p99", COLORS[1], |s: &super::FindMaxStep| s.latency.p99_ns),
    ] {
        let points = sorted.iter().map(|s| (s.offered_ops_per_s, ms(get(s))));
        line(&mut c, name, points, color, 2, 2)?;
    }
    c.draw_series(sorted.iter().map(|s| {
        let color = if s.pass { COLORS[3] } else { COLORS[2] };
        Circle::new(
            (s.offered_ops_per_s, ms(s.latency.p99_ns)),
            5,
            color.filled(),
        )
    }))
    .map_err(err)?;
    legend(&mut c, SeriesLabelPosition::UpperLeft)
}

#[cfg(test)]
mod tests {
    use super::super::{FindMaxStep, Latency, PhaseResult, Reconciliation, Tick};
    use super::*;
    use crate::load::resources::ResourceSample;

    /// Latency whose percentiles grow from `p50_us` microseconds.
    fn latency(count: u64, p50_us: u64) -> Latency {
        let ns = p50_us * 1_000;
        Latency {
            count,
            p50_ns: ns,
            p95_ns: ns * 3,
            p99_ns: ns * 5,
            p999_ns: ns * 9,
            max_ns: ns * 20,
            mean_ns: ns as f64 * 1.4,
        }
    }

    fn phase(name: &str, start_s: f64, duration_s: f64, p50_us: u64) -> PhaseResult {
        PhaseResult {
            name: name.into(),
            start_s,
            duration_s,
            offered_rate: (100.0, 100.0),
            offered_ops: 100 * duration_s as u64,
            offered_ops_per_s: 100.0,
            achieved_ops_per_s: 99.0,
            errors: 0,
            timeouts: 0,
            shed: 0,
            degraded: 0,
            error_rate: 0.0,
            failure_rate: 0.0,
            latency: latency(100 * duration_s as u64, p50_us),
            by_kind: Vec::new(),
            spectrum: (0..=50)
                .map(|i| {
                    let q = 100.0 * (1.0 - 10f64.powf(-(i as f64) / 10.0));
                    (q, p50_us * 1_000 * (10 + i * i) / 10)
                })
                .chain([(100.0, p50_us * 1_000 * 300)])
                .collect(),
        }
    }

    /// Three phases over 30 seconds (one second without operations) and a six-step search.
    fn synthetic() -> LoadReport {
        let timeline = (1..=30)
            .map(|s| {
                let offered = if s <= 10 {
                    20.0 * s as f64
                } else if s <= 22 {
                    200.0
                } else {
                    300.0
                };
                let achieved = if s > 22 {
                    240.0 + (s % 3) as f64 * 10.0
                } else {
                    offered
                };
                let mib = 1024 * 1024;
                Tick {
                    t_s: s as f64,
                    offered_ops_per_s: offered,
                    achieved_ops_per_s: achieved,
                    errors: 0,
                    timeouts: 0,
                    queued: 0,
                    latency: latency(if s == 15 { 0 } else { achieved as u64 }, 200 + 40 * s),
                    resources: ResourceSample {
                        rss_bytes: (40 + s) * mib,
                        heap_bytes: (12 + s as i64 / 2) * mib as i64,
                        sqlite_bytes: 3 * mib as i64,
                        index_bytes: (2 + s as i64 / 3) * mib as i64,
                        cpu_percent: 50.0,
                    },
                }
            })
            .collect();
        let phases = vec![
            phase("ramp-up", 0.0, 10.0, 250),
            phase("peak", 10.0, 12.0, 400),
            phase("stress", 22.0, 8.0, 1_500),
        ];
        let mut total = phase("total", 0.0, 30.0, 450);
        total.latency = latency(6_000, 450);
        let run = GeneratorResult {
            phases,
            total,
            timeline,
            service: latency(6_000, 300),
            start_lag: latency(6_000, 20),
            error_samples: Vec::new(),
            workers: 4,
            counts: [("remembered".to_owned(), 900)].into_iter().collect(),
            done: Vec::new(),
            trace: Vec::new(),
            actions: Vec::new(),
        };
        let steps = [
            (300.0, 300, true),
            (450.0, 420, true),
            (675.0, 900, true),
            (1012.5, 4_000, false),
            (843.75, 1_900, true),
            (928.0, 2_600, false),
        ]
        .into_iter()
        .map(|(rate, p50_us, pass)| FindMaxStep {
            offered_ops_per_s: rate,
            achieved_ops_per_s: rate * 0.99,
            latency: latency(1_000, p50_us / 5),
            failure_rate: 0.0,
            pass,
        })
        .collect();
        let find_max = FindMaxResult {
            steps,
            max_sustainable_ops_per_s: 843.75,
            first_failing_ops_per_s: Some(928.0),
            p99_limit_ns: 2_000_000,
            failure_rate_limit: 0.001,
        };
        LoadReport {
            schema: super::super::LOAD_SCHEMA_VERSION,
            run_id: "test".into(),
            profile: "test".into(),
            settings: Default::default(),
            mix: super::super::Mix::new([("recall", 80), ("remember", 20)]),
            at_start: [("events_at_start".to_owned(), 5_000)]
                .into_iter()
                .collect(),
            run: Some(run),
            find_max: Some(find_max),
            heap_growth: None,
            reconciliation: Reconciliation::default(),
            slo: Vec::new(),
        }
    }

    /// Text of every `<text>` element of an SVG.
    fn texts(svg: &Path) -> Vec<String> {
        let svg = std::fs::read_to_string(svg).unwrap();
        svg.split("<text")
            .skip(1)
            .map(|t| {
                t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()]
                    .trim()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn every_chart_is_drawn_as_svg_and_png_with_its_caption_axes_phases_and_legend() {
        let dir = std::env::temp_dir().join(format!("perfcheck-chart-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = render_all(&synthetic(), &dir).unwrap();
        let stems = [
            "latency-over-time",
            "throughput",
            "memory",
            "latency-distribution",
            "find-max",
        ];
        let expected: Vec<PathBuf> = stems
            .iter()
            .flat_map(|s| [dir.join(format!("{s}.svg")), dir.join(format!("{s}.png"))])
            .collect();
        assert_eq!(files, expected);
        let phases = ["ramp-up", "peak", "stress"];
        let wanted: [(&str, &[&str]); 5] = [
            (
                "latency-over-time",
                &[
                    "Latency from intended start, per second",
                    "seconds",
                    "latency (ms, log)",
                    "max",
                    "p99.9",
                    "p99",
                    "p50",
                ],
            ),
            (
                "throughput",
                &[
                    "Offered vs achieved throughput",
                    "seconds",
                    "operations per second",
                    "offered",
                    "achieved (ok within timeout)",
                ],
            ),
            (
                "memory",
                &[
                    "Memory over time",
                    "seconds",
                    "MiB",
                    "RSS",
                    "Rust heap",
                    "vector index",
                    "retained (heap - index + SQLite)",
                ],
            ),
            (
                "latency-distribution",
                &[
                    "Latency distribution (percentile spectrum)",
                    "percentile",
                    "latency (ms, log)",
                    "90%",
                    "99.999%",
                    "ramp-up",
                    "peak",
                    "stress",
                    "total",
                ],
            ),
            (
                "find-max",
                &[
                    "Saturation search: highest sustainable 844 ops/s",
                    "offered operations per second",
                    "latency (ms, log)",
                    "p99 limit",
                    "p50",
                    "p99",
                ],
            ),
        ];
        for (stem, words) in wanted {
            let texts = texts(&dir.join(format!("{stem}.svg")));
            for w in words {
                assert!(
                    texts.iter().any(|t| t == w),
                    "{stem}.svg lacks {w:?}: {texts:?}"
                );
            }
            // Phase names label the boundaries of the latency and throughput charts and the
            // curves of the distribution; the memory chart has the boundaries without names.
            let named = phases
                .iter()
                .filter(|p| texts.iter().any(|t| t == *p))
                .count();
            let expect = match stem {
                "latency-over-time" | "throughput" | "latency-distribution" => 3,
                _ => 0,
            };
            assert_eq!(named, expect, "{stem}.svg phase names: {texts:?}");
            let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{stem}.png");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_the_charts_with_data_are_drawn() {
        let dir =
            std::env::temp_dir().join(format!("perfcheck-chart-test-fm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = synthetic();
        r.run.as_mut().unwrap().timeline.clear();
        let files = render_all(&r, &dir).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "latency-distribution.svg",
                "latency-distribution.png",
                "find-max.svg",
                "find-max.png"
            ]
        );
        r.run = None;
        r.find_max.as_mut().unwrap().steps.clear();
        assert!(render_all(&r, &dir).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
