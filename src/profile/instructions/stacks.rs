//! Folded call paths (`a;b;c count`) estimated from callgrind's caller-callee pairs, for
//! flamegraphs of instruction counts.
//!
//! Callgrind records each function's own cost and the inclusive cost of each caller-callee
//! pair, not whole call stacks. A path's share is estimated the usual way (as gprof2dot does):
//! a function reached along a path with weight w passes w times each callee's share of its
//! inclusive cost on to that callee. This is exact for functions with one caller and an
//! estimate for shared helpers, which is fine for seeing where instructions went, and the
//! same estimate for base and head, which is what a differential flamegraph compares.

use super::callgrind_out::CallgrindOutput;

/// Deepest path followed.
const MAX_DEPTH: usize = 64;

/// Folded paths over the `Ir` event, heaviest first; paths lighter than `min_share` of all
/// instructions are folded into their caller so the counts still add up to the total.
pub fn folded(out: &CallgrindOutput, min_share: f64) -> Vec<(String, u64)> {
    let n = out.functions.len();
    let mut has_caller = vec![false; n];
    let mut calls: Vec<Vec<(usize, u64)>> = vec![Vec::new(); n];
    for e in &out.edges {
        has_caller[e.callee] = true;
        calls[e.caller].push((e.callee, e.cost.first().copied().unwrap_or(0)));
    }
    let total: u64 = out
        .functions
        .iter()
        .map(|f| f.own.first().copied().unwrap_or(0))
        .sum();
    let min = (min_share * total as f64).max(1.0);
    let mut lines: Vec<(String, u64)> = Vec::new();
    let mut path: Vec<usize> = Vec::new();
    for (root, called) in has_caller.iter().enumerate() {
        let incl = out.functions[root].inclusive.first().copied().unwrap_or(0);
        if !called && incl > 0 {
            walk(out, &calls, root, incl as f64, min, &mut path, &mut lines);
        }
    }
    // The same path in several groups (a helper called from several stages' parts) is one.
    let mut merged: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for (k, c) in lines {
        *merged.entry(k).or_default() += c;
    }
    let mut lines: Vec<(String, u64)> = merged.into_iter().filter(|(_, c)| *c > 0).collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    lines
}

fn walk(
    out: &CallgrindOutput,
    calls: &[Vec<(usize, u64)>],
    f: usize,
    weight: f64,
    min: f64,
    path: &mut Vec<usize>,
    lines: &mut Vec<(String, u64)>,
) {
    let func = &out.functions[f];
    let incl = func.inclusive.first().copied().unwrap_or(0).max(1) as f64;
    let scale = weight / incl;
    path.push(f);
    let mut own = func.own.first().copied().unwrap_or(0) as f64 * scale;
    for &(callee, cost) in &calls[f] {
        let w = cost as f64 * scale;
        if w >= min && path.len() < MAX_DEPTH && !path.contains(&callee) {
            walk(out, calls, callee, w, min, path, lines);
        } else {
            own += w;
        }
    }
    let stack: Vec<String> = path
        .iter()
        .map(|&i| frame_name(&out.functions[i].name))
        .collect();
    lines.push((stack.join(";"), own.round() as u64));
    path.pop();
}

/// A function name as a frame of the folded format: `;` separates frames there, and array
/// types in generic names (`[u8; 32]`) contain one.
fn frame_name(name: &str) -> String {
    name.replace(';', ",")
}

/// The folded paths as text, one `stack count` line each.
pub fn to_text(lines: &[(String, u64)]) -> String {
    let mut s = String::new();
    for (stack, count) in lines {
        s.push_str(stack);
        s.push(' ');
        s.push_str(&count.to_string());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::callgrind_out::parse;
    use super::*;

    #[test]
    fn paths_split_a_shared_callee_by_its_callers_and_keep_the_total() {
        // op calls a (60 inclusive) and b (30); both call h, a for 40 and b for 20; h costs 60.
        let text = "events: Ir
fn=op
0 10
cfn=a
calls=1 0
0 60
cfn=b
calls=1 0
0 30
fn=a
0 20
cfn=h
calls=1 0
0 40
fn=b
0 10
cfn=h
calls=1 0
0 20
fn=h
0 60
totals: 100
";
        let out = parse(text.as_bytes(), &|t: &str| Some(t.to_owned())).unwrap();
        let lines = folded(&out, 0.0);
        let get = |s: &str| lines.iter().find(|(k, _)| k == s).map(|(_, c)| *c);
        assert_eq!(get("op"), Some(10));
        assert_eq!(get("op;a"), Some(20));
        assert_eq!(get("op;a;h"), Some(40));
        assert_eq!(get("op;b;h"), Some(20));
        assert_eq!(get("op;b"), Some(10));
        assert_eq!(lines.iter().map(|(_, c)| c).sum::<u64>(), 100);
        // Pruned paths fold into their caller.
        let coarse = folded(&out, 0.35);
        assert_eq!(coarse.iter().map(|(_, c)| c).sum::<u64>(), 100);
        assert!(coarse.iter().all(|(k, _)| !k.contains("b;h")), "{coarse:?}");
        assert_eq!(frame_name("f<[u8; 32]>"), "f<[u8, 32]>");
    }
}
