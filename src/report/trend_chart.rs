//! Trend charts: one metric across commits, with its band and the gate's flags (plotters,
//! bundled font, SVG and PNG).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::Error;
use crate::report::check::{percent, value as format_value};
use crate::report::escape::svg_text;
use crate::trend::{is_regression, TrendSeries};

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 520;
const LINE: RGBColor = RGBColor(31, 94, 168);
const BAND: RGBColor = RGBColor(120, 170, 230);
const WORSE: RGBColor = RGBColor(200, 30, 30);
const BETTER: RGBColor = RGBColor(20, 140, 60);
const STEP: RGBColor = RGBColor(230, 120, 0);

/// Draws `series` to `<dir>/<file stem>.svg` and `.png`; returns both paths.
pub fn render(
    series: &TrendSeries,
    subtitle: &str,
    dir: &Path,
) -> Result<(PathBuf, PathBuf), Error> {
    let stem = format!("trend-{}", series.metric.to_string().replace('/', "-"));
    crate::report::chart::write_svg_and_png(&TrendChart { series, subtitle }, &dir.join(stem))
}

/// One trend series with its subtitle, as a chart.
struct TrendChart<'a> {
    series: &'a TrendSeries,
    subtitle: &'a str,
}

impl crate::report::chart::Chart for TrendChart<'_> {
    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(root, self.series, self.subtitle)
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &TrendSeries,
    subtitle: &str,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let n = s.points.len();
    let (lo, hi) = s.points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.low).min(p.value), hi.max(p.high).max(p.value))
    });
    let (lo, hi) = if n == 0 || lo >= hi {
        let v = if n == 0 { 1.0 } else { lo };
        (v * 0.9, v * 1.1 + 1e-9)
    } else {
        let pad = (hi - lo) * 0.12;
        ((lo - pad).max(0.0), hi + pad)
    };
    let unit = s.unit;
    let labels: Vec<String> = s
        .points
        .iter()
        .map(|p| svg_text(&p.commit.chars().take(7).collect::<String>()))
        .collect();
    let title = svg_text(&format!("{}  ({subtitle})", s.metric));
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(58)
        .y_label_area_size(90)
        .build_cartesian_2d(-0.5f64..(n.max(1) as f64 - 0.5), lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("commit (first-parent history, oldest to newest)")
        .y_desc(format!(
            "{} ({})",
            s.metric.measure().name(),
            unit_name(unit)
        ))
        .x_labels(n.clamp(1, 24))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        })
        .y_labels(8)
        .y_label_formatter(&|y| format_value(unit, Some(*y)))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;

    if n >= 2 {
        let mut band: Vec<(f64, f64)> = s
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| (i as f64, p.high))
            .collect();
        band.extend(
            s.points
                .iter()
                .enumerate()
                .rev()
                .map(|(i, p)| (i as f64, p.low)),
        );
        chart
            .draw_series(std::iter::once(Polygon::new(band, BAND.mix(0.35).filled())))
            .map_err(err)?
            .label("band: where reruns of that commit would fall")
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 6), (x + 18, y + 6)], BAND.mix(0.35).filled())
            });
    } else if let Some(p) = s.points.first() {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, p.low), (0.0, p.high)],
                BAND.stroke_width(8),
            )))
            .map_err(err)?;
    }
    chart
        .draw_series(LineSeries::new(
            s.points
                .iter()
                .enumerate()
                .map(|(i, p)| (i as f64, p.value)),
            LINE.stroke_width(2),
        ))
        .map_err(err)?
        .label("value per commit (runs' median or statistic)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], LINE.stroke_width(2)));
    chart
        .draw_series(
            s.points
                .iter()
                .enumerate()
                .map(|(i, p)| Circle::new((i as f64, p.value), 3, LINE.filled())),
        )
        .map_err(err)?;
    let flagged = |want_regression: bool| {
        s.points.iter().enumerate().filter(move |(_, p)| {
            let st = p.status.as_deref();
            if want_regression {
                is_regression(st)
            } else {
                st == Some("improvement")
            }
        })
    };
    chart
        .draw_series(
            flagged(true).map(|(i, p)| TriangleMarker::new((i as f64, p.value), 9, WORSE.filled())),
        )
        .map_err(err)?
        .label("gate: regression vs previous commit")
        .legend(|(x, y)| TriangleMarker::new((x + 9, y), 7, WORSE.filled()));
    chart
        .draw_series(
            flagged(false).map(|(i, p)| Circle::new((i as f64, p.value), 7, BETTER.filled())),
        )
        .map_err(err)?
        .label("gate: improvement")
        .legend(|(x, y)| Circle::new((x + 9, y), 5, BETTER.filled()));
    // Change points: a vertical line at the first commit of the new level, labelled with the
    // step, and the levels before and after as dashes.
    let steps = &s.change_points;
    chart
        .draw_series(steps.iter().map(|c| {
            PathElement::new(
                vec![(c.index as f64, lo), (c.index as f64, hi)],
                STEP.stroke_width(2),
            )
        }))
        .map_err(err)?
        .label("change point: level steps here")
        .legend(|(x, y)| {
            PathElement::new(vec![(x + 9, y - 7), (x + 9, y + 7)], STEP.stroke_width(2))
        });
    chart
        .draw_series(steps.iter().map(|c| {
            Text::new(
                svg_text(&format!(
                    " {} at {}",
                    percent(c.step),
                    c.short.chars().take(7).collect::<String>()
                )),
                (c.index as f64, hi - (hi - lo) * 0.02),
                ("sans-serif", 14).into_font().color(&STEP),
            )
        }))
        .map_err(err)?;
    if let Some(first) = steps.first() {
        let mut bounds = vec![0];
        bounds.extend(steps.iter().map(|c| c.index));
        bounds.push(n);
        let levels = std::iter::once(first.before).chain(steps.iter().map(|c| c.after));
        chart
            .draw_series(bounds.windows(2).zip(levels).map(|(b, level)| {
                PathElement::new(
                    vec![(b[0] as f64 - 0.3, level), (b[1] as f64 - 0.7, level)],
                    STEP.mix(0.8).stroke_width(3),
                )
            }))
            .map_err(err)?
            .label("level between change points")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], STEP.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn unit_name(u: crate::metrics::Unit) -> &'static str {
    use crate::metrics::Unit;
    match u {
        Unit::Nanoseconds => "time per operation",
        Unit::Count => "count per operation",
        Unit::Bytes => "bytes per operation",
        Unit::OpsPerSecond => "operations per second",
        Unit::Ratio => "fraction",
        Unit::BytesPerHour => "bytes per hour",
        Unit::Milliseconds => "milliseconds",
        Unit::Writes => "writes",
    }
}
