//! Instructions against wall time, per stage: when one clearly moved and the other did not
//! follow, the change is not "more work" but cache, memory or I/O (or the machine).

use serde::{Deserialize, Serialize};

use crate::metrics::Measure;

use super::{Comparison, Status, Verdict};

/// A stage whose instruction count and wall time disagree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Disagreement {
    /// `workload/stage`.
    pub stage: String,
    /// Change of instructions per operation.
    pub instructions: f64,
    /// Wall-time interval of the change, low and high.
    pub wall_low: f64,
    /// See `wall_low`.
    pub wall_high: f64,
    /// What it points at, in a sentence.
    pub reading: String,
}

fn signed_pct(x: f64) -> String {
    format!("{:+.1}%", 100.0 * x)
}

fn flagged(v: &Verdict) -> bool {
    matches!(v.status, Status::Regression(_) | Status::Improvement)
}

/// Every stage where instructions and wall time disagree: instructions flagged while the wall
/// time's interval excludes even half that change (the stage is bound by memory or I/O, not by
/// instructions), or wall time flagged while instructions stayed within their warn threshold.
pub fn disagreements(c: &Comparison) -> Vec<Disagreement> {
    let mut out = Vec::new();
    for i in c
        .verdicts
        .iter()
        .filter(|v| v.metric.measure() == Measure::Instructions)
    {
        let Some(w) = c.verdicts.iter().find(|v| {
            v.metric.measure() == Measure::WallNs
                && v.metric.workload() == i.metric.workload()
                && v.metric.stage() == i.metric.stage()
        }) else {
            continue;
        };
        let (Some(ic), Some(lo), Some(hi)) = (i.change, w.ci_low, w.ci_high) else {
            continue;
        };
        let stage = format!("{}/{}", i.metric.workload(), i.metric.stage());
        let reading = if flagged(i) && ic > 0.0 && hi < ic / 2.0 {
            Some(format!(
                "{} more instructions but no matching wall time: bound by memory, cache or I/O \
                 rather than by instructions",
                signed_pct(ic)
            ))
        } else if flagged(i) && ic < 0.0 && lo > ic / 2.0 {
            Some(format!(
                "{} instructions without the matching speed-up: bound by memory, cache or I/O",
                signed_pct(ic)
            ))
        } else if flagged(w) && ic.abs() * 100.0 < i.warn {
            Some(
                "wall time moved with the same work: cache, memory, I/O or the machine, not the \
                 code's instruction count"
                    .to_owned(),
            )
        } else {
            None
        };
        if let Some(reading) = reading {
            out.push(Disagreement {
                stage,
                instructions: ic,
                wall_low: lo,
                wall_high: hi,
                reading,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{compare, Thresholds};
    use crate::metrics::{Metric, MetricName, MetricSet, RunInfo};

    /// A run with one stage: wall times around `wall` ns (a fixed spread), `instr` per op.
    fn run(id: &str, wall: f64, instr: u64) -> MetricSet {
        let samples: Vec<u64> = (0..400)
            .map(|i| (wall * (0.9 + 0.2 * ((i * 37 % 100) as f64 / 100.0))) as u64)
            .collect();
        MetricSet {
            run: RunInfo {
                run_id: id.into(),
                ..RunInfo::default()
            },
            metrics: vec![
                Metric::from_samples(MetricName::parse("w/scan/wall_ns").unwrap(), samples),
                Metric::from_samples(
                    MetricName::parse("w/scan/instructions").unwrap(),
                    vec![instr; 50],
                ),
            ],
        }
    }

    fn check(base: (f64, u64), head: (f64, u64)) -> Vec<Disagreement> {
        let bases = vec![run("b1", base.0, base.1), run("b2", base.0, base.1)];
        let c = compare(&bases, &run("h", head.0, head.1), &Thresholds::default(), 1);
        disagreements(&c)
    }

    #[test]
    fn more_work_without_more_time_points_at_memory() {
        // Stored baselines assume a 10% drift per run: the wall-time interval of unchanged
        // time is about ±35% wide, so only a large increase of work can be told apart from it.
        let d = check((100_000.0, 1_000_000), (100_000.0, 3_000_000));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].stage, "w/scan");
        assert!((d[0].instructions - 2.0).abs() < 1e-9);
        assert!(
            d[0].reading.contains("+200.0% more instructions"),
            "{}",
            d[0].reading
        );
        assert!(d[0].wall_high < 1.0);
    }

    #[test]
    fn more_time_with_the_same_work_is_not_the_code() {
        let d = check((100_000.0, 1_000_000), (400_000.0, 1_000_000));
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].reading.contains("same work"), "{}", d[0].reading);
        assert!(d[0].wall_low > 1.0);
    }

    #[test]
    fn work_and_time_that_agree_say_nothing() {
        assert!(check((100_000.0, 1_000_000), (100_000.0, 1_000_000)).is_empty());
        assert!(check((100_000.0, 1_000_000), (400_000.0, 4_000_000)).is_empty());
    }
}
