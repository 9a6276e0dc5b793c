//! Charts of a load run (plotters, bundled font, SVG and PNG): latency percentiles over time
//! with phase boundaries, the latency distribution per phase, offered vs achieved throughput,
//! memory over time, and for `--find-max` p99 against the offered rate.

use std::path::{Path, PathBuf};

use plotters::coord::combinators::IntoLogRange;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{FindMaxResult, GeneratorResult, LoadReport};
use crate::error::Error;

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 520;
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 94, 168),
    RGBColor(230, 120, 20),
    RGBColor(200, 30, 30),
    RGBColor(20, 140, 60),
    RGBColor(120, 60, 170),
    RGBColor(90, 90, 90),
];
const BOUNDARY: RGBColor = RGBColor(150, 150, 150);

type Drawn = Result<(), String>;
/// A line of a chart: name, value of a tick, colour.
type TickLine = (&'static str, fn(&super::Tick) -> f64, RGBColor);
/// A latency line: name, percentile of a second, colour, width.
type LatencyLine = (&'static str, fn(&super::Latency) -> u64, RGBColor, u32);

/// Renders one chart as `<stem>.svg` and `<stem>.png` (the drawing function is generic over
/// the backend, so it is named twice) and appends both paths to `$out`.
macro_rules! both {
    ($out:expr, $dir:expr, $stem:expr, $draw:ident ( $($arg:expr),* )) => {{
        let svg = $dir.join(format!("{}.svg", $stem));
        let png = $dir.join(format!("{}.png", $stem));
        let fail = |p: &Path, e: String| Error::Usage(format!("cannot draw {}: {e}", p.display()));
        {
            let root = SVGBackend::new(&svg, (WIDTH, HEIGHT)).into_drawing_area();
            $draw(&root, $($arg),*).map_err(|e| fail(&svg, e))?;
            root.present().map_err(|e| fail(&svg, e.to_string()))?;
        }
        {
            let root = BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area();
            $draw(&root, $($arg),*).map_err(|e| fail(&png, e))?;
            root.present().map_err(|e| fail(&png, e.to_string()))?;
        }
        $out.push(svg);
        $out.push(png);
    }};
}

/// Draws every chart that applies to `r` into `dir`; returns the files written.
pub fn render_all(r: &LoadReport, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    crate::profile::heatmap::register_bundled_font()?;
    let mut out = Vec::new();
    if let Some(run) = &r.run {
        if !run.timeline.is_empty() {
            both!(out, dir, "latency-over-time", latency_over_time(run));
            both!(out, dir, "throughput", throughput(run));
            both!(out, dir, "memory", memory(run));
        }
        if !run.total.spectrum.is_empty() {
            both!(out, dir, "latency-distribution", distribution(run));
        }
    }
    if let Some(f) = &r.find_max {
        if !f.steps.is_empty() {
            both!(out, dir, "find-max", find_max(f));
        }
    }
    Ok(out)
}

fn ms(ns: u64) -> f64 {
    // Log axes need positive values: 1 µs is the histograms' resolution anyway.
    (ns.max(1_000)) as f64 / 1e6
}

/// Milliseconds with as many decimals as the magnitude needs: 250, 12, 1.5, 0.25, 0.012.
fn ms_label(v: &f64) -> String {
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

fn whole(v: &f64) -> String {
    format!("{v:.0}")
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Vertical lines and names at phase starts.
fn boundaries(run: &GeneratorResult) -> Vec<(f64, String)> {
    run.phases
        .iter()
        .map(|p| (p.start_s, p.name.clone()))
        .collect()
}

fn latency_over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &GeneratorResult,
) -> Drawn {
    root.fill(&WHITE).map_err(err)?;
    let t_max = run.timeline.last().map_or(1.0, |t| t.t_s).max(1.0);
    let lat: Vec<_> = run
        .timeline
        .iter()
        .filter(|t| t.latency.count > 0)
        .collect();
    let hi = lat
        .iter()
        .map(|t| ms(t.latency.max_ns))
        .fold(0.01, f64::max)
        * 1.5;
    let lo = lat
        .iter()
        .map(|t| ms(t.latency.p50_ns))
        .fold(hi, f64::min)
        .max(0.001)
        / 1.5;
    let mut c = ChartBuilder::on(root)
        .caption(
            "Latency from intended start, per second",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, (lo..hi).log_scale())
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("seconds")
        .y_desc("latency (ms, log)")
        .y_label_formatter(&ms_label)
        .draw()
        .map_err(err)?;
    for (x, name) in boundaries(run) {
        c.draw_series(LineSeries::new(
            [(x, lo), (x, hi)],
            BOUNDARY.stroke_width(1),
        ))
        .map_err(err)?;
        c.draw_series([Text::new(
            name,
            (x + t_max * 0.005, hi / 1.25),
            ("sans-serif", 14),
        )])
        .map_err(err)?;
    }
    // Slowest first and thinnest, so the lower percentiles stay visible on top (at low rates
    // p99.9 of one second is its maximum).
    let series: [LatencyLine; 4] = [
        ("max", |l| l.max_ns, RGBColor(170, 170, 170), 1),
        ("p99.9", |l| l.p999_ns, COLORS[2], 1),
        ("p99", |l| l.p99_ns, COLORS[1], 2),
        ("p50", |l| l.p50_ns, COLORS[0], 2),
    ];
    for (name, f, color, width) in series {
        c.draw_series(LineSeries::new(
            lat.iter().map(|t| (t.t_s, ms(f(&t.latency)))),
            color.stroke_width(width),
        ))
        .map_err(err)?
        .label(name)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn throughput<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, run: &GeneratorResult) -> Drawn {
    root.fill(&WHITE).map_err(err)?;
    let t_max = run.timeline.last().map_or(1.0, |t| t.t_s).max(1.0);
    let hi = run
        .timeline
        .iter()
        .map(|t| t.offered_ops_per_s.max(t.achieved_ops_per_s))
        .fold(1.0, f64::max)
        * 1.15;
    let mut c = ChartBuilder::on(root)
        .caption("Offered vs achieved throughput", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..hi)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("seconds")
        .y_desc("operations per second")
        .y_label_formatter(&whole)
        .draw()
        .map_err(err)?;
    for (x, name) in boundaries(run) {
        c.draw_series(LineSeries::new(
            [(x, 0.0), (x, hi)],
            BOUNDARY.stroke_width(1),
        ))
        .map_err(err)?;
        c.draw_series([Text::new(
            name,
            (x + t_max * 0.005, hi * 0.97),
            ("sans-serif", 14),
        )])
        .map_err(err)?;
    }
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
        c.draw_series(LineSeries::new(
            run.timeline.iter().map(|t| (t.t_s, f(t))),
            color.stroke_width(width),
        ))
        .map_err(err)?
        .label(name)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn memory<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, run: &GeneratorResult) -> Drawn {
    root.fill(&WHITE).map_err(err)?;
    let mib = |b: f64| b / (1024.0 * 1024.0);
    let t_max = run.timeline.last().map_or(1.0, |t| t.t_s).max(1.0);
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
        * 1.1;
    let mut c = ChartBuilder::on(root)
        .caption("Memory over time", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..hi)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("seconds")
        .y_desc("MiB")
        .draw()
        .map_err(err)?;
    for (x, _) in boundaries(run) {
        c.draw_series(LineSeries::new(
            [(x, 0.0), (x, hi)],
            BOUNDARY.stroke_width(1),
        ))
        .map_err(err)?;
    }
    for (name, f, color) in lines {
        c.draw_series(LineSeries::new(
            run.timeline.iter().map(|t| (t.t_s, mib(f(t)))),
            color.stroke_width(2),
        ))
        .map_err(err)?
        .label(name)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Percentile `p` (0..=100) on the "nines" axis: x = log10(1 / (1 - p/100)), capped at 5.
fn nines(p: f64) -> f64 {
    let tail = (1.0 - p / 100.0).max(1e-5);
    (-tail.log10()).min(5.0)
}

fn distribution<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, run: &GeneratorResult) -> Drawn {
    root.fill(&WHITE).map_err(err)?;
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
    let mut c = ChartBuilder::on(root)
        .caption(
            "Latency distribution (percentile spectrum)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..5.0, (lo..hi).log_scale())
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms, log)")
        .x_labels(6)
        .x_label_formatter(&|x: &f64| match x.round() as i64 {
            0 => "0%".into(),
            1 => "90%".into(),
            2 => "99%".into(),
            3 => "99.9%".into(),
            4 => "99.99%".into(),
            _ => "99.999%".into(),
        })
        .y_label_formatter(&ms_label)
        .draw()
        .map_err(err)?;
    for (i, p) in all.enumerate() {
        let color = COLORS[i % COLORS.len()];
        let width = if p.name == "total" { 3 } else { 2 };
        c.draw_series(LineSeries::new(
            p.spectrum
                .iter()
                .filter(|(q, _)| *q < 100.0)
                .map(|&(q, v)| (nines(q), ms(v))),
            color.stroke_width(width),
        ))
        .map_err(err)?
        .label(p.name.clone())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn find_max<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, f: &FindMaxResult) -> Drawn {
    root.fill(&WHITE).map_err(err)?;
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
    let mut c = ChartBuilder::on(root)
        .caption(
            format!(
                "Saturation search: highest sustainable {:.0} ops/s",
                f.max_sustainable_ops_per_s
            ),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_hi, (lo..hi).log_scale())
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("offered operations per second")
        .x_label_formatter(&whole)
        .y_desc("latency (ms, log)")
        .y_label_formatter(&ms_label)
        .draw()
        .map_err(err)?;
    c.draw_series(LineSeries::new(
        [(0.0, limit), (x_hi, limit)],
        COLORS[2].stroke_width(1),
    ))
    .map_err(err)?
    .label("p99 limit")
    .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], COLORS[2].stroke_width(1)));
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
        c.draw_series(LineSeries::new(
            sorted.iter().map(|s| (s.offered_ops_per_s, ms(get(s)))),
            color.stroke_width(2),
        ))
        .map_err(err)?
        .label(name)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
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
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    Ok(())
}
