//! One chart per scenario, `chaos-<name>.svg` and `.png`: latency (p50, p99 per 100 ms, log
//! scale) above, outcomes per 100 ms (full, degraded, failed) below, the fault's window
//! shaded in both and the recovery point marked.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{ChaosReport, ScenarioResult};
use crate::error::Error;
use crate::load::chart::{
    err, frame, legend, line, log_axis, ms_label, whole, Axes, Drawn, COLORS,
};
use crate::report::escape::svg_text;

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 680;
const SHADE: RGBColor = RGBColor(255, 200, 200);
const OK: RGBColor = RGBColor(20, 140, 60);
const DEGRADED: RGBColor = RGBColor(230, 150, 20);
const FAILED: RGBColor = RGBColor(200, 30, 30);

/// A stacked layer: name, colour, its span in a bucket.
type Layer = (
    &'static str,
    RGBColor,
    fn(&super::analysis::Bucket) -> (u64, u64),
);

struct ScenarioChart<'a>(&'a ScenarioResult, f64);

/// Draws every scenario's chart into `dir`; returns the files written.
pub fn render_all(r: &ChaosReport, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let end_s = r.chaos.scenario_length().as_secs_f64();
    let mut out = Vec::new();
    for s in r.scenarios.iter().filter(|s| !s.figures.buckets.is_empty()) {
        let stem = dir.join(format!("chaos-{}", s.name));
        let (svg, png) = crate::report::chart::write_svg_and_png(&ScenarioChart(s, end_s), &stem)?;
        out.extend([svg, png]);
    }
    Ok(out)
}

impl crate::report::chart::Chart for ScenarioChart<'_> {
    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let (top, bottom) = root.split_vertically(HEIGHT * 55 / 100);
        latency(&top, self.0, self.1)?;
        outcomes(&bottom, self.0, self.1)
    }
}

fn ms(ns: u64) -> f64 {
    ns.max(1_000) as f64 / 1e6
}

/// The fault's window as `(from, to)` seconds.
fn window(s: &ScenarioResult) -> (f64, f64) {
    (s.inject.at_s, s.heal.at_s.max(s.inject.at_s))
}

fn latency<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &ScenarioResult,
    end: f64,
) -> Drawn {
    let b: Vec<_> = s
        .figures
        .buckets
        .iter()
        .filter(|b| b.ok + b.degraded + b.failed > 0)
        .collect();
    let hi = b.iter().map(|b| ms(b.p99_ns)).fold(0.01, f64::max) * 3.0;
    let lo = b.iter().map(|b| ms(b.p50_ns)).fold(hi, f64::min).max(0.001) / 2.0;
    let axes = Axes {
        x_desc: "seconds",
        y_desc: "latency (ms, log)",
        x_labels: None,
        x_format: None,
        y_format: Some(ms_label),
    };
    let caption = format!("{}: latency per 100 ms (fault shaded)", svg_text(&s.name));
    let mut c = frame(root, &caption, 0.0..end, log_axis(lo, hi), &axes)?;
    let (from, to) = window(s);
    c.draw_series([Rectangle::new(
        [(from, lo), (to, hi)],
        SHADE.mix(0.5).filled(),
    )])
    .map_err(err)?;
    if let Some(r) = s.figures.recovery_ms {
        let x = to + r / 1e3;
        c.draw_series(LineSeries::new([(x, lo), (x, hi)], OK.stroke_width(2)))
            .map_err(err)?
            .label(format!("recovered (+{r:.0} ms)"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], OK.stroke_width(2)));
    }
    let mid = |t: f64| t + 0.05;
    line(
        &mut c,
        "p99",
        b.iter().map(|b| (mid(b.t_s), ms(b.p99_ns))),
        COLORS[1],
        2,
        2,
    )?;
    line(
        &mut c,
        "p50",
        b.iter().map(|b| (mid(b.t_s), ms(b.p50_ns))),
        COLORS[0],
        2,
        2,
    )?;
    legend(&mut c, SeriesLabelPosition::UpperLeft)
}

fn outcomes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &ScenarioResult,
    end: f64,
) -> Drawn {
    let b = &s.figures.buckets;
    let hi = b
        .iter()
        .map(|b| (b.ok + b.degraded + b.failed) as f64)
        .fold(1.0, f64::max)
        * 1.25;
    let axes = Axes {
        x_desc: "seconds",
        y_desc: "operations per 100 ms",
        x_labels: None,
        x_format: None,
        y_format: Some(whole),
    };
    let mut c = frame(root, "outcomes per 100 ms", 0.0..end, 0.0..hi, &axes)?;
    let (from, to) = window(s);
    c.draw_series([Rectangle::new(
        [(from, 0.0), (to, hi)],
        SHADE.mix(0.5).filled(),
    )])
    .map_err(err)?;
    // Stacked bars: full answers at the bottom, then degraded, then failed.
    let layers: [Layer; 3] = [
        ("full", OK, |b| (0, b.ok)),
        ("degraded", DEGRADED, |b| (b.ok, b.ok + b.degraded)),
        ("failed", FAILED, |b| {
            (b.ok + b.degraded, b.ok + b.degraded + b.failed)
        }),
    ];
    for (name, color, span) in layers {
        c.draw_series(b.iter().filter_map(|bk| {
            let (y0, y1) = span(bk);
            (y1 > y0).then(|| {
                Rectangle::new(
                    [(bk.t_s + 0.005, y0 as f64), (bk.t_s + 0.095, y1 as f64)],
                    color.filled(),
                )
            })
        }))
        .map_err(err)?
        .label(name)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    }
    legend(&mut c, SeriesLabelPosition::UpperRight)
}
