//! Turns the recorder's callgrind segments into per-stage counts per operation.
//!
//! In an instructions pass every stage boundary ends one callgrind profile part named
//! `perfcheck <op> <frame>` (see [`crate::stage::count_instructions`]): the instructions since
//! the previous boundary, which all belong to the innermost open frame. Summing the parts of a
//! frame name within an operation gives that stage's self count exactly, whatever was inlined
//! and however stages nest; the parts of the operation's root frame are its `other`, and all
//! of its parts together its `total`.

use crate::record::StageInstructions;
use crate::record::{OTHER, TOTAL};
use crate::stage::SEGMENT_PREFIX;

use super::callgrind_out::PartTotals;

/// Name of the root frame in segment names (the whole operation, see `stage::begin_operation`).
const ROOT_FRAME: &str = "total";

/// Per-stage counts of every operation, from the parts in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Segments {
    /// Operations seen.
    pub ops: u64,
    /// `total` first, then the stages in order of first entry, then `other`.
    pub stages: Vec<StageInstructions>,
}

/// A part whose name is not a recorder segment, or segments out of order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("callgrind part {part}: {message}")]
pub struct SegmentError {
    /// 1-based part number.
    pub part: usize,
    /// What was wrong.
    pub message: String,
}

/// The stage a recorder's part belongs to (`other` for the operation's root frame); `None`
/// for parts callgrind wrote itself.
pub fn stage_of_segment(trigger: &str) -> Option<String> {
    let (_, frame) = trigger.strip_prefix(SEGMENT_PREFIX)?.split_once(' ')?;
    Some(if frame == ROOT_FRAME { OTHER } else { frame }.to_owned())
}

/// Estimated cycles of one part from cache-simulation events (`Ir Dr Dw I1mr D1mr D1mw ILmr
/// DLmr DLmw`): L1 hits cost 1, last-level hits 5, memory accesses 35 (the weights gungraun and
/// callgrind's documentation use). `None` without those events.
pub fn est_cycles(events: &[String], costs: &[u64]) -> Option<u64> {
    let get = |name: &str| {
        events
            .iter()
            .position(|e| e == name)
            .map(|i| costs.get(i).copied().unwrap_or(0))
    };
    let accesses = get("Ir")? + get("Dr")? + get("Dw")?;
    let l1_misses = get("I1mr")? + get("D1mr")? + get("D1mw")?;
    let ll_misses = get("ILmr")? + get("DLmr")? + get("DLmw")?;
    let ram = ll_misses;
    let ll_hits = l1_misses.saturating_sub(ll_misses);
    let l1_hits = accesses.saturating_sub(l1_misses);
    Some(l1_hits + 5 * ll_hits + 35 * ram)
}

struct Row {
    stage: String,
    instructions: Vec<u64>,
    cycles: Vec<u64>,
}

/// Sums the recorder's parts per operation and stage. `events` are the file's event names;
/// parts that are not segments (callgrind's own final dump) are skipped.
pub fn per_stage(events: &[String], parts: &[PartTotals]) -> Result<Segments, SegmentError> {
    let ir = events.iter().position(|e| e == "Ir").unwrap_or(0);
    let with_cycles = est_cycles(events, &vec![0; events.len()]).is_some();
    let mut rows: Vec<Row> = Vec::new();
    let mut ops = 0u64;
    let mut current: Option<u64> = None;
    // (stage index, instructions, cycles) of the operation being summed.
    let mut op: Vec<(usize, u64, u64)> = Vec::new();
    let flush = |op: &mut Vec<(usize, u64, u64)>, rows: &mut Vec<Row>| {
        let (mut ti, mut tc) = (0, 0);
        for &(i, n, c) in op.iter() {
            rows[i].instructions.push(n);
            if with_cycles {
                rows[i].cycles.push(c);
            }
            ti += n;
            tc += c;
        }
        rows[0].instructions.push(ti);
        if with_cycles {
            rows[0].cycles.push(tc);
        }
        op.clear();
    };
    rows.push(Row {
        stage: TOTAL.into(),
        instructions: Vec::new(),
        cycles: Vec::new(),
    });
    for (k, p) in parts.iter().enumerate() {
        let Some(rest) = p.trigger.strip_prefix(SEGMENT_PREFIX) else {
            continue;
        };
        let bad = |message: String| SegmentError {
            part: k + 1,
            message,
        };
        let (n, frame) = rest
            .split_once(' ')
            .ok_or_else(|| bad(format!("segment name `{}` has no frame", p.trigger)))?;
        let n: u64 = n.parse().map_err(|_| {
            bad(format!(
                "segment name `{}` has no operation number",
                p.trigger
            ))
        })?;
        match current {
            Some(c) if c == n => {}
            Some(c) if n < c => {
                return Err(bad(format!(
                    "operation {n} after operation {c}: the segments are out of order"
                )))
            }
            Some(_) => {
                flush(&mut op, &mut rows);
                ops += 1;
                current = Some(n);
            }
            None => current = Some(n),
        }
        let stage = if frame == ROOT_FRAME { OTHER } else { frame };
        let i = match rows.iter().position(|r| r.stage == stage) {
            Some(i) => i,
            None => {
                rows.push(Row {
                    stage: stage.to_owned(),
                    instructions: Vec::new(),
                    cycles: Vec::new(),
                });
                rows.len() - 1
            }
        };
        let count = p.totals.get(ir).copied().unwrap_or(0);
        let cycles = est_cycles(events, &p.totals).unwrap_or(0);
        match op.iter_mut().find(|(j, _, _)| *j == i) {
            Some(e) => {
                e.1 += count;
                e.2 += cycles;
            }
            None => op.push((i, count, cycles)),
        }
    }
    if current.is_some() {
        flush(&mut op, &mut rows);
        ops += 1;
    }
    // `other` last, as in the run table.
    if let Some(i) = rows.iter().position(|r| r.stage == OTHER) {
        let other = rows.remove(i);
        rows.push(other);
    }
    Ok(Segments {
        ops,
        stages: rows
            .into_iter()
            .map(|r| StageInstructions {
                stage: r.stage,
                instructions: r.instructions,
                est_cycles: r.cycles,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(trigger: &str, ir: u64) -> PartTotals {
        PartTotals {
            trigger: trigger.into(),
            totals: vec![ir],
        }
    }

    #[test]
    fn nested_stages_get_their_self_counts_and_the_root_is_other() {
        // op 1: total [10] rank [5] score [7] rank [3] total [2]; op 2 skips score.
        let parts = vec![
            part("perfcheck 1 total", 10),
            part("perfcheck 1 rank", 5),
            part("perfcheck 1 score", 7),
            part("perfcheck 1 rank", 3),
            part("perfcheck 1 total", 2),
            part("perfcheck 2 total", 1),
            part("perfcheck 2 rank", 4),
            part("perfcheck 2 total", 1),
            part("Program termination", 99),
        ];
        let s = per_stage(&["Ir".into()], &parts).unwrap();
        assert_eq!(s.ops, 2);
        let rows: Vec<(&str, &[u64])> = s
            .stages
            .iter()
            .map(|r| (r.stage.as_str(), r.instructions.as_slice()))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("total", &[27, 6][..]),
                ("rank", &[8, 4][..]),
                ("score", &[7][..]),
                ("other", &[12, 2][..]),
            ]
        );
        assert!(s.stages.iter().all(|r| r.est_cycles.is_empty()));
    }

    #[test]
    fn est_cycles_weigh_cache_misses() {
        let events: Vec<String> = "Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw"
            .split(' ')
            .map(str::to_owned)
            .collect();
        // 100 accesses, 10 L1 misses of which 2 also miss the last level.
        let costs = [60, 30, 10, 2, 6, 2, 0, 2, 0];
        assert_eq!(est_cycles(&events, &costs), Some(90 + 5 * 8 + 35 * 2));
        assert_eq!(est_cycles(&["Ir".into()], &[5]), None);
    }

    #[test]
    fn out_of_order_or_malformed_segments_are_errors() {
        let e = per_stage(
            &["Ir".into()],
            &[part("perfcheck 2 total", 1), part("perfcheck 1 total", 1)],
        )
        .unwrap_err();
        assert!(e.message.contains("out of order"), "{e}");
        let e = per_stage(&["Ir".into()], &[part("perfcheck x total", 1)]).unwrap_err();
        assert!(e.message.contains("operation number"), "{e}");
    }
}
