//! The heatmap pass: live heap per stage and component over time, and the allocation rate,
//! rendered with plotters to `heatmap.svg` / `heatmap.png` (data in `heatmap.json`).
//!
//! While the pass runs, the counting allocator attributes every block to the innermost stage
//! (or [`component`](crate::stage::component)) that allocated it, in a side table that the
//! free consults (see [`start_heap_pass`]); a sampler thread reads the per-label counters every
//! few milliseconds. SQLite allocates with its own `malloc`, so its row is
//! `sqlite3_memory_used()`. Each cell is the highest live heap of its label within its time
//! bucket, so short-lived stage buffers show up too, not only what is held at bucket edges.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::profile::pass::{PassHooks, Phase};
use crate::report::format::bytes;
use crate::stage::{
    exclude_thread_from_heap_tracking, heap_live_bytes, start_heap_pass, take_heap_snapshot,
    HeapPass, HeapPassMode,
};

/// Row name of SQLite's own heap.
pub const SQLITE_ROW: &str = "SQLite (own malloc)";
/// How often the sampler reads the counters.
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(5);
/// Columns of the rendered heatmap (fewer when the pass had fewer samples).
pub const MAX_COLUMNS: usize = 120;
/// Live heap is sampled for the growth check every this many measured operations.
pub const GROWTH_EVERY: u64 = 1_000;

/// Everything the sampler recorded, at full resolution.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timeline {
    /// Label of each series, in first-seen order.
    pub labels: Vec<String>,
    /// Seconds since the pass started, at the end of each sample interval.
    pub times_s: Vec<f64>,
    /// `[label][sample]`: highest live bytes within the interval.
    pub peak_live: Vec<Vec<u64>>,
    /// `[label][sample]`: bytes allocated within the interval.
    pub allocated: Vec<Vec<u64>>,
    /// `[label]`: allocations over the whole pass.
    pub allocs: Vec<u64>,
    /// Phase name and the second it began.
    pub phases: Vec<(String, f64)>,
    /// `(measured ops done, live heap bytes, SQLite bytes)` every [`GROWTH_EVERY`] operations.
    pub growth_samples: Vec<(u64, i64, i64)>,
}

impl Timeline {
    fn push_sample(&mut self, t: f64, sqlite: i64, prev_bytes: &mut Vec<u64>) {
        let snap = take_heap_snapshot();
        let n = self.times_s.len();
        let mut seen = vec![false; self.labels.len()];
        let mut put = |tl: &mut Timeline, label: &str, peak: i64, total_bytes: u64, allocs: u64| {
            let i = match tl.labels.iter().position(|l| l == label) {
                Some(i) => i,
                None => {
                    tl.labels.push(label.to_owned());
                    tl.peak_live.push(vec![0; n]);
                    tl.allocated.push(vec![0; n]);
                    tl.allocs.push(0);
                    prev_bytes.push(0);
                    seen.push(false);
                    tl.labels.len() - 1
                }
            };
            seen[i] = true;
            tl.peak_live[i].push(peak.max(0) as u64);
            tl.allocated[i].push(total_bytes.saturating_sub(prev_bytes[i]));
            prev_bytes[i] = total_bytes;
            tl.allocs[i] = allocs;
        };
        for l in &snap {
            put(self, l.label, l.peak_bytes, l.alloc_bytes, l.allocs);
        }
        put(self, SQLITE_ROW, sqlite, 0, 0);
        for (i, s) in seen.iter().enumerate() {
            if !s {
                self.peak_live[i].push(0);
                self.allocated[i].push(0);
            }
        }
        self.times_s.push(t);
    }
}

struct Shared {
    timeline: Timeline,
    start: Instant,
}

/// Pass hooks of the heatmap pass: attribution on from setup until the engine is dropped, a
/// sampler thread, phase marks, and live-heap samples for the growth check.
pub struct HeatmapHooks {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
    pass: Option<HeapPass>,
    error: Option<String>,
}

impl Default for HeatmapHooks {
    fn default() -> Self {
        Self::new()
    }
}

impl HeatmapHooks {
    /// Hooks that start sampling when the pass begins.
    pub fn new() -> Self {
        // Reserved before the pass, so the hooks' own bookkeeping stays out of the heatmap.
        let timeline = Timeline {
            phases: Vec::with_capacity(16),
            growth_samples: Vec::with_capacity(1024),
            ..Timeline::default()
        };
        HeatmapHooks {
            shared: Arc::new(Mutex::new(Shared {
                timeline,
                start: Instant::now(),
            })),
            stop: Arc::new(AtomicBool::new(false)),
            sampler: None,
            pass: None,
            error: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mark(&self, name: &str) {
        let mut s = self.lock();
        let t = s.start.elapsed().as_secs_f64();
        s.timeline.phases.push((name.to_owned(), t));
    }

    fn start(&mut self) {
        let Some(pass) = start_heap_pass(HeapPassMode {
            dhat: false,
            attribute: true,
        }) else {
            self.error = Some("another heap pass is already running".into());
            return;
        };
        self.pass = Some(pass);
        self.lock().start = Instant::now();
        let shared = Arc::clone(&self.shared);
        let stop = Arc::clone(&self.stop);
        let spawned = std::thread::Builder::new()
            .name("perfcheck-heap-sampler".into())
            .spawn(move || {
                // The sampler's own vectors must not show up in the heatmap.
                exclude_thread_from_heap_tracking();
                let mut prev = Vec::new();
                let sample = |prev: &mut Vec<u64>| {
                    let sqlite = crate::sqlite_heap::memory_used();
                    let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    let t = s.start.elapsed().as_secs_f64();
                    s.timeline.push_sample(t, sqlite, prev);
                };
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(SAMPLE_PERIOD);
                    sample(&mut prev);
                }
                sample(&mut prev);
            });
        match spawned {
            Ok(h) => self.sampler = Some(h),
            Err(e) => self.error = Some(format!("cannot start the heap sampler thread: {e}")),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.sampler.take() {
            if h.join().is_err() {
                self.error = Some("the heap sampler thread panicked".into());
            }
        }
        self.pass = None;
    }

    /// Stops sampling and returns what was recorded.
    pub fn finish(mut self) -> Result<Timeline, Error> {
        self.stop();
        if let Some(e) = self.error.take() {
            return Err(Error::Profiler(e));
        }
        let t = std::mem::take(&mut self.lock().timeline);
        Ok(t)
    }
}

impl PassHooks for HeatmapHooks {
    fn phase(&mut self, phase: Phase) {
        match phase {
            Phase::Setup => {
                self.start();
                self.mark("setup + load");
            }
            Phase::WarmUp => self.mark("warm-up"),
            Phase::Measured => {
                self.mark("measured");
                self.after_op(0);
            }
            Phase::Finished => self.mark("engine dropped"),
            Phase::Released => self.stop(),
        }
    }

    fn after_op(&mut self, done: u64) {
        if done % GROWTH_EVERY == 0 {
            let live = heap_live_bytes();
            let sqlite = crate::sqlite_heap::memory_used();
            self.lock()
                .timeline
                .growth_samples
                .push((done, live, sqlite));
        }
    }
}

impl Drop for HeatmapHooks {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The heatmap's data after re-binning into columns: what `heatmap.json` holds and what is
/// drawn.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct HeatmapGrid {
    /// Title line.
    pub title: String,
    /// One row per stage or component that allocated during the pass (plus SQLite).
    pub rows: Vec<String>,
    /// Column edges in seconds since the pass started (`columns + 1` values).
    pub edges_s: Vec<f64>,
    /// `[row][column]`: highest live bytes within the column.
    pub live: Vec<Vec<u64>>,
    /// `[row][column]`: allocation rate within the column, bytes per second.
    pub rate: Vec<Vec<f64>>,
    /// `[row]`: highest live bytes over the pass.
    pub row_peak: Vec<u64>,
    /// `[row]`: bytes allocated over the pass.
    pub row_allocated: Vec<u64>,
    /// Phase name and the second it began.
    pub phases: Vec<(String, f64)>,
}

impl HeatmapGrid {
    /// Re-bins `t` into at most `max_columns` columns. Rows: `stage_order` first (the
    /// measured stages in pipeline order), then the other labels by peak live bytes, then
    /// SQLite; labels that never allocated are left out.
    pub fn new(t: &Timeline, title: &str, stage_order: &[&str], max_columns: usize) -> Self {
        let n = t.times_s.len();
        let cols = n.min(max_columns.max(1));
        let mut g = HeatmapGrid {
            title: title.to_owned(),
            phases: t.phases.clone(),
            ..Default::default()
        };
        if n == 0 {
            return g;
        }
        let span = |c: usize| (c * n / cols, ((c + 1) * n / cols).max(c * n / cols + 1));
        g.edges_s.push(0.0);
        for c in 0..cols {
            g.edges_s.push(t.times_s[span(c).1 - 1]);
        }
        let peak_of = |i: usize| t.peak_live[i].iter().copied().max().unwrap_or(0);
        let mut order: Vec<usize> = (0..t.labels.len())
            .filter(|&i| {
                if t.labels[i] == SQLITE_ROW {
                    peak_of(i) > 0
                } else {
                    t.allocs[i] > 0
                }
            })
            .collect();
        let rank = |i: usize| -> (usize, i64) {
            let l = t.labels[i].as_str();
            if let Some(p) = stage_order.iter().position(|s| *s == l) {
                (0, p as i64)
            } else if l == SQLITE_ROW {
                (2, 0)
            } else {
                (1, -(peak_of(i) as i64))
            }
        };
        order.sort_by_key(|&i| rank(i));
        for i in order {
            let mut live = Vec::with_capacity(cols);
            let mut rate = Vec::with_capacity(cols);
            for c in 0..cols {
                let (a, b) = span(c);
                live.push(t.peak_live[i][a..b].iter().copied().max().unwrap_or(0));
                let bytes: u64 = t.allocated[i][a..b].iter().sum();
                let dt = (g.edges_s[c + 1] - g.edges_s[c]).max(1e-6);
                rate.push(bytes as f64 / dt);
            }
            g.rows.push(t.labels[i].clone());
            g.row_peak.push(peak_of(i));
            g.row_allocated.push(t.allocated[i].iter().sum());
            g.live.push(live);
            g.rate.push(rate);
        }
        g
    }

    /// Writes `heatmap.json`, `heatmap.svg` and `heatmap.png` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Json {
            context: "cannot encode heatmap.json".into(),
            source: e,
        })?;
        let path = dir.join("heatmap.json");
        std::fs::write(&path, json).map_err(|e| Error::Io {
            context: format!("cannot write {}", path.display()),
            source: e,
        })?;
        crate::report::chart::write_svg_and_png(self, &dir.join("heatmap"))?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn panel<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        top: u32,
        heading: &str,
        values: &[Vec<f64>],
        palette: &[(u8, u8, u8)],
        scale_name: &str,
        fmt: impl Fn(f64) -> String,
        row_note: impl Fn(usize) -> String,
    ) -> Result<(), String> {
        let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
        let font = |size: u32| ("sans-serif", size).into_font();
        let (l, t) = (LEFT as i32, (top + PANEL_HEAD) as i32);
        let grid_w = (WIDTH - LEFT - RIGHT) as i32;
        let rows = values.len();
        let h = rows.max(1) as i32 * ROW_H as i32;
        root.draw(&Text::new(
            heading.to_owned(),
            (l, top as i32 + 4),
            font(15).color(&BLACK),
        ))
        .map_err(e)?;
        let max = values
            .iter()
            .flat_map(|r| r.iter().copied())
            .fold(0.0f64, f64::max);
        let scale = LogScale::new(max);
        let t_end = self.edges_s.last().copied().unwrap_or(0.0).max(1e-9);
        let x_of = |s: f64| l + ((s / t_end) * grid_w as f64).round() as i32;
        for (r, row) in values.iter().enumerate() {
            let y0 = t + r as i32 * ROW_H as i32;
            for (c, &v) in row.iter().enumerate() {
                let (x0, x1) = (x_of(self.edges_s[c]), x_of(self.edges_s[c + 1]));
                let color = scale.color(v, palette);
                root.draw(&Rectangle::new(
                    [(x0, y0), (x1.max(x0 + 1), y0 + ROW_H as i32 - 1)],
                    color.filled(),
                ))
                .map_err(e)?;
            }
            let label = self.rows.get(r).cloned().unwrap_or_default();
            root.draw(&Text::new(
                label,
                (l - 8, y0 + ROW_H as i32 / 2),
                font(13)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(e)?;
            root.draw(&Text::new(
                row_note(r),
                (l + grid_w + 8, y0 + ROW_H as i32 / 2),
                font(12)
                    .color(&RGBColor(60, 60, 60))
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(e)?;
        }
        // Frame, phase marks and the time axis.
        root.draw(&Rectangle::new(
            [(l, t), (l + grid_w, t + h)],
            RGBColor(120, 120, 120).stroke_width(1),
        ))
        .map_err(e)?;
        for (i, (name, s)) in self.phases.iter().enumerate() {
            let x = x_of(*s);
            // Alternate two heights so the labels of close phases do not overlap.
            let label_y = t - 4 - (i as i32 % 2) * 14;
            root.draw(&PathElement::new(
                vec![(x, label_y - 10), (x, t + h + 4)],
                RGBColor(30, 30, 30).stroke_width(1),
            ))
            .map_err(e)?;
            root.draw(&Text::new(
                name.clone(),
                (x + 3, label_y),
                font(11)
                    .color(&RGBColor(30, 30, 30))
                    .pos(Pos::new(HPos::Left, VPos::Bottom)),
            ))
            .map_err(e)?;
        }
        for s in nice_ticks(t_end, 10) {
            let x = x_of(s);
            root.draw(&PathElement::new(
                vec![(x, t + h), (x, t + h + 5)],
                BLACK.stroke_width(1),
            ))
            .map_err(e)?;
            root.draw(&Text::new(
                format_seconds(s),
                (x, t + h + 7),
                font(12)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(e)?;
        }
        root.draw(&Text::new(
            "time since the pass started (seconds)".to_owned(),
            (l + grid_w / 2, t + h + 24),
            font(13)
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(e)?;
        // Colour scale: a horizontal bar under the notes column, with its ticks.
        let bx = (WIDTH - RIGHT + 20) as i32;
        let bw = (RIGHT - 60) as i32;
        let by = t + h + 8;
        let steps = 60;
        for i in 0..steps {
            let v = scale.value_at(i as f64 / (steps - 1) as f64);
            let x0 = bx + i * bw / steps;
            let x1 = bx + (i + 1) * bw / steps;
            root.draw(&Rectangle::new(
                [(x0, by), (x1, by + 12)],
                scale.color(v, palette).filled(),
            ))
            .map_err(e)?;
        }
        root.draw(&Rectangle::new(
            [(bx, by), (bx + bw, by + 12)],
            RGBColor(120, 120, 120).stroke_width(1),
        ))
        .map_err(e)?;
        for (frac, anchor) in [(0.0, HPos::Left), (1.0, HPos::Right)] {
            root.draw(&Text::new(
                fmt(scale.value_at(frac)),
                (bx + (frac * bw as f64) as i32, by + 14),
                font(11).color(&BLACK).pos(Pos::new(anchor, VPos::Top)),
            ))
            .map_err(e)?;
        }
        root.draw(&Text::new(
            format!("{scale_name} (log scale; white = none)"),
            (bx + bw / 2, by + 28),
            font(11)
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(e)?;
        Ok(())
    }
}

const WIDTH: u32 = 1500;
const LEFT: u32 = 260;
const RIGHT: u32 = 230;
const ROW_H: u32 = 24;
const TITLE_H: u32 = 40;
const PANEL_HEAD: u32 = 52;
const AXIS_H: u32 = 70;

/// ColorBrewer YlOrRd: pale yellow (little) to dark red (most).
const YL_OR_RD: [(u8, u8, u8); 9] = [
    (255, 255, 204),
    (255, 237, 160),
    (254, 217, 118),
    (254, 178, 76),
    (253, 141, 60),
    (252, 78, 42),
    (227, 26, 28),
    (189, 0, 38),
    (128, 0, 38),
];

/// ColorBrewer Blues.
const BLUES: [(u8, u8, u8); 9] = [
    (222, 235, 247),
    (198, 219, 239),
    (158, 202, 225),
    (107, 174, 214),
    (66, 146, 198),
    (33, 113, 181),
    (8, 81, 156),
    (8, 48, 107),
    (4, 30, 70),
];

/// Logarithmic colour scale from `max / 10^4` (at least 1) to `max`; zero is white.
struct LogScale {
    lo: f64,
    hi: f64,
}

impl LogScale {
    fn new(max: f64) -> Self {
        let hi = max.max(1.0);
        LogScale {
            lo: (hi / 1e4).max(1.0),
            hi,
        }
    }

    fn position(&self, v: f64) -> f64 {
        if self.hi <= self.lo {
            return 1.0;
        }
        ((v.max(self.lo).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())).clamp(0.0, 1.0)
    }

    fn value_at(&self, frac: f64) -> f64 {
        (self.lo.ln() + frac * (self.hi.ln() - self.lo.ln())).exp()
    }

    fn color(&self, v: f64, palette: &[(u8, u8, u8)]) -> RGBColor {
        if v <= 0.0 {
            return WHITE;
        }
        let p = self.position(v) * (palette.len() - 1) as f64;
        let i = (p.floor() as usize).min(palette.len() - 2);
        let f = p - i as f64;
        let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
        let (a, b) = (palette[i], palette[i + 1]);
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// Round tick positions (1, 2 or 5 times a power of ten) from 0 to `end`.
fn nice_ticks(end: f64, want: usize) -> Vec<f64> {
    if end <= 0.0 || !end.is_finite() {
        return vec![0.0];
    }
    let raw = end / want.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|s| *s <= end * 1.000_001)
        .collect()
}

fn format_seconds(s: f64) -> String {
    if s == 0.0 {
        "0".into()
    } else if s < 1.0 {
        format!("{s:.2}")
    } else if s < 10.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.0}")
    }
}

impl crate::report::chart::Chart for HeatmapGrid {
    fn size(&self) -> (u32, u32) {
        let panel = self.rows.len().max(1) as u32 * ROW_H;
        (WIDTH, TITLE_H + 2 * (PANEL_HEAD + panel + AXIS_H) + 10)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
        root.fill(&WHITE).map_err(e)?;
        let font = |size: u32| ("sans-serif", size).into_font();
        root.draw(&Text::new(
            self.title.clone(),
            (LEFT as i32, 12),
            font(20).color(&BLACK),
        ))
        .map_err(e)?;
        let panel = self.rows.len().max(1) as u32 * ROW_H;
        let live: Vec<Vec<f64>> = self
            .live
            .iter()
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect();
        let top1 = TITLE_H;
        self.panel(
            root,
            top1,
            "Live heap: highest live bytes of each stage or component within each time bucket",
            &live,
            &YL_OR_RD,
            "live bytes",
            bytes,
            |i| format!("peak {}", bytes(self.row_peak[i] as f64)),
        )?;
        let top2 = top1 + PANEL_HEAD + panel + AXIS_H;
        self.panel(
            root,
            top2,
            "Allocation rate: bytes allocated per second",
            &self.rate,
            &BLUES,
            "bytes/s",
            |v| format!("{}/s", bytes(v)),
            |i| format!("total {}", bytes(self.row_allocated[i] as f64)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline() -> Timeline {
        Timeline {
            labels: vec![
                "(no stage)".into(),
                "rerank".into(),
                "load".into(),
                "vector_search".into(),
                SQLITE_ROW.into(),
                "idle".into(),
            ],
            times_s: (1..=10).map(|i| i as f64 * 0.1).collect(),
            peak_live: vec![
                vec![10; 10],
                vec![0, 0, 0, 0, 0, 500, 0, 700, 0, 0],
                vec![9000, 9000, 9000, 9000, 9000, 9000, 9000, 9000, 9000, 9000],
                vec![0, 0, 0, 0, 0, 100, 100, 100, 100, 100],
                vec![4000; 10],
                vec![0; 10],
            ],
            allocated: vec![
                vec![10; 10],
                vec![0, 0, 0, 0, 0, 500, 0, 700, 0, 0],
                vec![9000, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                vec![0, 0, 0, 0, 0, 100, 100, 100, 100, 100],
                vec![0; 10],
                vec![0; 10],
            ],
            allocs: vec![10, 2, 1, 5, 0, 0],
            phases: vec![("setup + load".into(), 0.0), ("measured".into(), 0.5)],
            growth_samples: vec![],
        }
    }

    #[test]
    fn rows_are_stages_in_pipeline_order_then_components_then_sqlite() {
        let g = HeatmapGrid::new(&timeline(), "t", &["vector_search", "rerank"], 5);
        assert_eq!(
            g.rows,
            ["vector_search", "rerank", "load", "(no stage)", SQLITE_ROW],
            "idle never allocated"
        );
        assert_eq!(g.edges_s.len(), 6);
        // Two samples per column; the cell keeps the higher peak.
        assert_eq!(g.live[1], vec![0, 0, 500, 700, 0]);
        assert_eq!(g.row_peak[2], 9000);
        assert_eq!(g.row_allocated[0], 500);
        assert!((g.rate[2][0] - 9000.0 / 0.2).abs() < 1e-6);
    }

    #[test]
    fn color_scale_is_white_at_zero_and_monotonic() {
        let s = LogScale::new(1e6);
        assert_eq!(s.color(0.0, &YL_OR_RD), WHITE);
        let lum = |c: RGBColor| c.0 as u32 + c.1 as u32 + c.2 as u32;
        let mut last = u32::MAX;
        for v in [1.0, 100.0, 1e3, 1e4, 1e5, 1e6] {
            let l = lum(s.color(v, &YL_OR_RD));
            assert!(l <= last, "darker for more bytes");
            last = l;
        }
        assert_eq!(s.color(1e6, &YL_OR_RD), RGBColor(128, 0, 38));
    }

    #[test]
    fn ticks_are_round() {
        let t = nice_ticks(1.0, 5);
        let want = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
        assert_eq!(t.len(), want.len());
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-9),
            "{t:?}"
        );
        assert_eq!(nice_ticks(37.0, 4).last(), Some(&30.0));
    }

    #[test]
    fn renders_svg_and_png_with_every_row_label() {
        let dir = tempfile::tempdir().unwrap();
        let g = HeatmapGrid::new(&timeline(), "recall heap", &["vector_search", "rerank"], 5);
        g.write(dir.path()).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("heatmap.svg")).unwrap();
        for r in &g.rows {
            assert!(svg.contains(r.as_str()), "row {r} labelled");
        }
        assert!(dir.path().join("heatmap.png").metadata().unwrap().len() > 1000);
    }
}
