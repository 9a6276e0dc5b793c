//! Turns per-operation samples from the recorder into per-stage summaries and raw columns.

use crate::record::{StageSamples, StageSummary};
use crate::stage::OpSample;

use crate::record::{percentile, OTHER, TOTAL};

/// Collects operation samples and summarises them per stage.
#[derive(Default)]
pub struct Collector {
    columns: Vec<StageSamples>,
    peaks: Vec<u64>,
}

impl Collector {
    /// Adds one measured operation.
    pub fn push(&mut self, op: &OpSample) {
        let mut staged = crate::stage::Measures::default();
        for (name, m) in &op.stages {
            staged.wall_ns += m.wall_ns;
            staged.cpu_ns += m.cpu_ns;
            staged.allocs += m.allocs;
            staged.alloc_bytes += m.alloc_bytes;
            self.add(name, m, op.cpu_sampled);
        }
        let other = crate::stage::Measures {
            wall_ns: op.total.wall_ns.saturating_sub(staged.wall_ns),
            cpu_ns: op.total.cpu_ns.saturating_sub(staged.cpu_ns),
            allocs: op.total.allocs.saturating_sub(staged.allocs),
            alloc_bytes: op.total.alloc_bytes.saturating_sub(staged.alloc_bytes),
            peak_live_bytes: 0,
        };
        self.add(OTHER, &other, op.cpu_sampled);
        self.add(TOTAL, &op.total, op.cpu_sampled);
    }

    fn add(&mut self, name: &str, m: &crate::stage::Measures, cpu_sampled: bool) {
        let i = match self.columns.iter().position(|c| c.stage == name) {
            Some(i) => i,
            None => {
                self.columns.push(StageSamples {
                    stage: name.to_owned(),
                    ..Default::default()
                });
                self.peaks.push(0);
                self.columns.len() - 1
            }
        };
        let c = &mut self.columns[i];
        if cpu_sampled {
            c.cpu_ns.push(m.cpu_ns);
        } else {
            c.wall_ns.push(m.wall_ns);
            c.allocs.push(m.allocs);
            c.alloc_bytes.push(m.alloc_bytes);
        }
        self.peaks[i] = self.peaks[i].max(m.peak_live_bytes);
    }

    /// Summaries (stages in first-seen order, then `other`, then `total`) and the raw columns.
    pub fn finish(mut self) -> (Vec<StageSummary>, Vec<StageSamples>) {
        // Stages first, then the two synthetic rows, so tables read top to bottom.
        let rank = |name: &str| match name {
            OTHER => 1,
            TOTAL => 2,
            _ => 0,
        };
        let mut order: Vec<usize> = (0..self.columns.len()).collect();
        order.sort_by_key(|&i| rank(&self.columns[i].stage));
        let total_wall: f64 = self
            .columns
            .iter()
            .find(|c| c.stage == TOTAL)
            .map(|c| c.wall_ns.iter().map(|&x| x as f64).sum())
            .unwrap_or(0.0);
        let summaries = order
            .iter()
            .map(|&i| summarize(&self.columns[i], self.peaks[i], total_wall))
            .collect();
        let mut columns = std::mem::take(&mut self.columns);
        let mut sorted = Vec::with_capacity(columns.len());
        for &i in &order {
            sorted.push(std::mem::take(&mut columns[i]));
        }
        (summaries, sorted)
    }
}

fn summarize(c: &StageSamples, peak: u64, total_wall: f64) -> StageSummary {
    let mut wall = c.wall_ns.clone();
    wall.sort_unstable();
    let n = wall.len() as f64;
    let sum: f64 = wall.iter().map(|&x| x as f64).sum();
    let mean = |v: &[u64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
        }
    };
    StageSummary {
        stage: c.stage.clone(),
        ops: wall.len() as u64,
        mean_ns: if n > 0.0 { sum / n } else { 0.0 },
        p50_ns: percentile(&wall, 50.0),
        p95_ns: percentile(&wall, 95.0),
        p99_ns: percentile(&wall, 99.0),
        max_ns: wall.last().copied().unwrap_or(0),
        cpu_mean_ns: (!c.cpu_ns.is_empty()).then(|| mean(&c.cpu_ns)),
        allocs_per_op: mean(&c.allocs),
        bytes_per_op: mean(&c.alloc_bytes),
        peak_live_bytes: peak,
        share: if total_wall > 0.0 {
            sum / total_wall
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::Measures;

    fn m(wall: u64, allocs: u64) -> Measures {
        Measures {
            wall_ns: wall,
            cpu_ns: 0,
            allocs,
            alloc_bytes: allocs * 10,
            peak_live_bytes: 0,
        }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 95.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn other_is_what_stages_do_not_cover_and_shares_add_up() {
        let mut c = Collector::default();
        for i in 0..10 {
            c.push(&OpSample {
                total: m(1000 + i, 5),
                stages: vec![("embed_query", m(300, 1)), ("rerank", m(600, 3))],
                cpu_sampled: false,
            });
        }
        c.push(&OpSample {
            total: Measures {
                cpu_ns: 900,
                ..m(5000, 5)
            },
            stages: vec![(
                "embed_query",
                Measures {
                    cpu_ns: 250,
                    ..m(400, 1)
                },
            )],
            cpu_sampled: true,
        });
        let (sum, raw) = c.finish();
        let names: Vec<_> = sum.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(names, ["embed_query", "rerank", "other", "total"]);
        let other = &sum[2];
        assert_eq!(other.ops, 10);
        assert_eq!(other.allocs_per_op, 1.0);
        assert!((other.mean_ns - 104.5).abs() < 1e-9);
        let shares: f64 = sum[..3].iter().map(|s| s.share).sum();
        assert!((shares - 1.0).abs() < 1e-9, "{shares}");
        // The CPU-sampled operation feeds cpu_ns only, never wall-time statistics.
        assert_eq!(sum[0].ops, 10);
        assert_eq!(sum[0].p99_ns, 300);
        assert_eq!(sum[0].cpu_mean_ns, Some(250.0));
        assert_eq!(sum[1].cpu_mean_ns, None);
        assert_eq!(raw[3].wall_ns.len(), 10);
        assert_eq!(raw[3].cpu_ns, vec![900]);
    }
}
