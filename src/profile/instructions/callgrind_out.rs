//! Reads callgrind's profile format (the `callgrind.out` file): the profile parts with the
//! reason each was written, their totals, and per-function own and inclusive costs summed over
//! the parts of interest.
//!
//! Only what the instructions pass writes needs to be understood: `--combine-dumps=yes` (many
//! parts in one file) and `--dump-line=no` (costs per function, one position column), with
//! callgrind's default name compression (`fn=(12) name` defines id 12, `fn=(12)` refers to
//! it, ids shared by all parts of the file). The format is described in callgrind's manual,
//! "Callgrind Format Specification".

use std::collections::HashMap;
use std::io::BufRead;

/// One profile part: the counters between two dumps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartTotals {
    /// Why the part was written: the reason given to `CALLGRIND_DUMP_STATS_AT`, or
    /// callgrind's own (`Program termination`).
    pub trigger: String,
    /// The part's total cost per event, in the order of [`CallgrindOutput::events`].
    pub totals: Vec<u64>,
}

/// One function's costs in one group of parts, summed over those parts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionTotals {
    /// Index of the group (in [`CallgrindOutput::groups`]) whose parts these costs are from.
    pub group: usize,
    /// Demangled name.
    pub name: String,
    /// Source file of its first cost line, `???` without debug information.
    pub file: String,
    /// Cost of its own instructions, per event.
    pub own: Vec<u64>,
    /// Own cost plus the cost of every call it made (calls to itself excluded), per event.
    pub inclusive: Vec<u64>,
}

/// Calls from one function to another, summed over the selected parts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallEdge {
    /// Index of the caller in [`CallgrindOutput::functions`].
    pub caller: usize,
    /// Index of the callee.
    pub callee: usize,
    /// Calls counted (a call that spans several parts is counted in each).
    pub calls: u64,
    /// Inclusive cost of the calls, per event.
    pub cost: Vec<u64>,
}

/// What a callgrind output file holds, as far as the instructions pass needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallgrindOutput {
    /// `creator:` line (`callgrind-3.19.0`).
    pub creator: String,
    /// Event names (`Ir`, or `Ir Dr Dw I1mr ...` with cache simulation).
    pub events: Vec<String>,
    /// Every part, in file order.
    pub parts: Vec<PartTotals>,
    /// The groups `select` put the parts in (for the recorder's parts: the stage).
    pub groups: Vec<String>,
    /// Per-function costs per group, in order of first cost.
    pub functions: Vec<FunctionTotals>,
    /// Caller-callee pairs over the same parts (calls of a function to itself excluded).
    pub edges: Vec<CallEdge>,
}

/// A line of the file that does not fit the format: its number and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct FormatError {
    /// 1-based line number.
    pub line: usize,
    /// What was expected.
    pub message: String,
}

#[derive(Default)]
struct Names {
    map: HashMap<u64, String>,
}

impl Names {
    /// Resolves `(id) name`, `(id)` or a plain `name`.
    fn resolve(&mut self, spec: &str) -> Option<String> {
        let spec = spec.trim();
        let Some(rest) = spec.strip_prefix('(') else {
            return Some(spec.to_owned());
        };
        let (id, name) = rest.split_once(')')?;
        let id: u64 = id.trim().parse().ok()?;
        let name = name.trim();
        if name.is_empty() {
            self.map.get(&id).cloned()
        } else {
            self.map.insert(id, name.to_owned());
            Some(name.to_owned())
        }
    }
}

/// Chooses the group of a part from its trigger; `None` leaves the part out.
pub type Select<'s> = &'s dyn Fn(&str) -> Option<String>;

struct Reader<'s> {
    select: Select<'s>,
    out: CallgrindOutput,
    fn_index: HashMap<(usize, String), usize>,
    edge_index: HashMap<(usize, usize), usize>,
    callee_file: String,
    calls: u64,
    files: Names,
    fns: Names,
    objects: Names,
    positions: usize,
    // State of the current part.
    trigger: String,
    selected: bool,
    group: usize,
    file: String,
    current: Option<usize>,
    callee: Option<String>,
    call_cost_next: bool,
}

impl Reader<'_> {
    fn function(&mut self, name: String, file: Option<&str>) -> usize {
        let key = (self.group, name);
        if let Some(&i) = self.fn_index.get(&key) {
            return i;
        }
        let name = key.1.clone();
        let n = self.out.events.len().max(1);
        self.out.functions.push(FunctionTotals {
            group: self.group,
            name: name.clone(),
            file: file.unwrap_or(&self.file).to_owned(),
            own: vec![0; n],
            inclusive: vec![0; n],
        });
        let i = self.out.functions.len() - 1;
        self.fn_index.insert(key, i);
        i
    }

    fn choose(&mut self, trigger: &str) {
        match (self.select)(trigger) {
            Some(g) => {
                self.selected = true;
                self.group = match self.out.groups.iter().position(|x| *x == g) {
                    Some(i) => i,
                    None => {
                        self.out.groups.push(g);
                        self.out.groups.len() - 1
                    }
                };
            }
            None => self.selected = false,
        }
    }

    fn costs(&self, line: &str, lineno: usize) -> Result<Vec<u64>, FormatError> {
        let mut fields = line.split_ascii_whitespace().skip(self.positions);
        let n = self.out.events.len().max(1);
        let mut costs = vec![0u64; n];
        for c in costs.iter_mut() {
            match fields.next() {
                Some(f) => {
                    *c = f.parse().map_err(|_| FormatError {
                        line: lineno,
                        message: format!("cost `{f}` is not a whole number"),
                    })?
                }
                None => break,
            }
        }
        Ok(costs)
    }

    fn line(&mut self, line: &str, lineno: usize) -> Result<(), FormatError> {
        let bad = |message: String| FormatError {
            line: lineno,
            message,
        };
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let first = line.as_bytes()[0];
        if first.is_ascii_digit() || first == b'+' || first == b'-' || first == b'*' {
            let costs = self.costs(line, lineno)?;
            if !self.selected {
                self.call_cost_next = false;
                return Ok(());
            }
            let Some(f) = self.current else {
                return Err(bad("a cost line before any `fn=`".into()));
            };
            // (An unselected part's cost lines returned above.)
            if std::mem::take(&mut self.call_cost_next) {
                let callee = self.callee.take();
                let recursive = callee.as_deref() == Some(self.out.functions[f].name.as_str());
                if let (false, Some(callee)) = (recursive, callee) {
                    add(&mut self.out.functions[f].inclusive, &costs);
                    let file = std::mem::take(&mut self.callee_file);
                    let to = self.function(callee, Some(&file));
                    let n = costs.len();
                    let e = *self.edge_index.entry((f, to)).or_insert_with(|| {
                        self.out.edges.push(CallEdge {
                            caller: f,
                            callee: to,
                            calls: 0,
                            cost: vec![0; n],
                        });
                        self.out.edges.len() - 1
                    });
                    self.out.edges[e].calls += self.calls;
                    add(&mut self.out.edges[e].cost, &costs);
                }
            } else {
                let func = &mut self.out.functions[f];
                add(&mut func.own, &costs);
                add(&mut func.inclusive, &costs);
            }
            return Ok(());
        }
        let Some((key, value)) = line.split_once([':', '=']) else {
            return Err(bad(format!(
                "expected `key: value`, `key=value` or costs, found `{line}`"
            )));
        };
        match key {
            "creator" => self.out.creator = value.trim().to_owned(),
            "events" => {
                let events: Vec<String> =
                    value.split_ascii_whitespace().map(str::to_owned).collect();
                if !self.out.events.is_empty() && self.out.events != events {
                    return Err(bad("parts with different events".into()));
                }
                self.out.events = events;
            }
            "positions" => self.positions = value.split_ascii_whitespace().count().max(1),
            "part" => self.start_part(),
            "desc" => {
                if let Some(reason) = value.trim().strip_prefix("Trigger:") {
                    let reason = reason.trim();
                    let reason = reason.strip_prefix("Client Request:").unwrap_or(reason);
                    self.trigger = reason.trim().to_owned();
                    let t = self.trigger.clone();
                    self.choose(&t);
                }
            }
            "totals" | "summary" => {
                let totals = self.costs(&format!("0 {}", value.trim()), lineno)?;
                if key == "totals" {
                    self.out.parts.push(PartTotals {
                        trigger: self.trigger.clone(),
                        totals,
                    });
                }
            }
            "fl" | "fi" | "fe" => {
                self.file = self
                    .files
                    .resolve(value)
                    .ok_or_else(|| bad(format!("bad file name `{value}`")))?;
            }
            "cfi" | "cfl" => {
                self.callee_file = self
                    .files
                    .resolve(value)
                    .ok_or_else(|| bad(format!("bad file name `{value}`")))?;
            }
            "ob" | "cob" => {
                self.objects
                    .resolve(value)
                    .ok_or_else(|| bad(format!("bad object name `{value}`")))?;
            }
            "fn" => {
                let name = self
                    .fns
                    .resolve(value)
                    .ok_or_else(|| bad(format!("bad function name `{value}`")))?;
                // Names are resolved in every part (later parts refer to them by id), but only
                // the selected parts' functions are kept.
                self.current = self.selected.then(|| self.function(name, None));
            }
            "cfn" => {
                self.callee = Some(
                    self.fns
                        .resolve(value)
                        .ok_or_else(|| bad(format!("bad function name `{value}`")))?,
                );
            }
            "calls" => {
                self.call_cost_next = true;
                self.calls = value
                    .split_ascii_whitespace()
                    .next()
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| bad(format!("`calls={value}` has no call count")))?;
            }
            // version, pid, cmd, thread, jump/jcnd (not written without --collect-jumps)...
            _ => {}
        }
        Ok(())
    }

    fn start_part(&mut self) {
        self.trigger.clear();
        // A part without a trigger line (a file of one part) is judged by the empty name.
        self.choose("");
        self.current = None;
        self.callee = None;
        self.call_cost_next = false;
    }
}

fn add(into: &mut [u64], costs: &[u64]) {
    for (a, c) in into.iter_mut().zip(costs) {
        *a += c;
    }
}

/// Parses a callgrind output file; per-function costs are summed over the parts whose trigger
/// `select` accepts.
pub fn parse(input: impl BufRead, select: Select<'_>) -> Result<CallgrindOutput, FormatError> {
    let mut r = Reader {
        select,
        out: CallgrindOutput::default(),
        fn_index: HashMap::new(),
        edge_index: HashMap::new(),
        callee_file: String::new(),
        calls: 0,
        files: Names::default(),
        fns: Names::default(),
        objects: Names::default(),
        positions: 1,
        trigger: String::new(),
        selected: false,
        group: 0,
        file: String::new(),
        current: None,
        callee: None,
        call_cost_next: false,
    };
    r.choose("");
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| FormatError {
            line: i + 1,
            message: format!("cannot read: {e}"),
        })?;
        r.line(line.trim_end(), i + 1)?;
    }
    let n = r.out.events.len().max(1);
    for f in &mut r.out.functions {
        f.own.resize(n, 0);
        f.inclusive.resize(n, 0);
    }
    for e in &mut r.out.edges {
        e.cost.resize(n, 0);
    }
    Ok(r.out)
}

impl CallgrindOutput {
    /// Writes the selected parts as one profile part in callgrind's format, readable by
    /// `callgrind_annotate` and kcachegrind: the measured operations only, a small file.
    pub fn write_merged(&self, out: &mut impl std::io::Write, note: &str) -> std::io::Result<()> {
        let events = if self.events.is_empty() {
            "Ir".to_owned()
        } else {
            self.events.join(" ")
        };
        let n = self.events.len().max(1);
        let join = |c: &[u64]| c.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
        writeln!(out, "# callgrind format")?;
        writeln!(out, "version: 1")?;
        writeln!(out, "creator: {}", self.creator)?;
        writeln!(out, "cmd: {note}")?;
        let mut calls: Vec<Vec<&CallEdge>> = vec![Vec::new(); self.functions.len()];
        for e in &self.edges {
            calls[e.caller].push(e);
        }
        // One part per group, as callgrind writes dumps: kcachegrind shows each on its own.
        for (g, group) in self.groups.iter().enumerate() {
            let mut part = vec![0u64; n];
            for f in self.functions.iter().filter(|f| f.group == g) {
                add(&mut part, &f.own);
            }
            writeln!(out)?;
            writeln!(out, "part: {}", g + 1)?;
            writeln!(out, "desc: Trigger: {}", one_line(group))?;
            writeln!(out, "positions: line")?;
            writeln!(out, "events: {events}")?;
            writeln!(out, "summary: {}", join(&part))?;
            for (i, f) in self
                .functions
                .iter()
                .enumerate()
                .filter(|(_, f)| f.group == g)
            {
                writeln!(out)?;
                writeln!(out, "fl={}", one_line(&f.file))?;
                writeln!(out, "fn={}", one_line(&f.name))?;
                writeln!(out, "0 {}", join(&f.own))?;
                for e in &calls[i] {
                    let callee = &self.functions[e.callee];
                    writeln!(out, "cfl={}", one_line(&callee.file))?;
                    writeln!(out, "cfn={}", one_line(&callee.name))?;
                    writeln!(out, "calls={} 0", e.calls)?;
                    writeln!(out, "0 {}", join(&e.cost))?;
                }
            }
            writeln!(out)?;
            writeln!(out, "totals: {}", join(&part))?;
        }
        Ok(())
    }
}

/// A name as one line of the format (names from debug information never hold a newline, but
/// a name that did must not break the file).
fn one_line(s: &str) -> String {
    let s = if s.is_empty() { "???" } else { s };
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage_of(t: &str) -> Option<String> {
        t.strip_prefix("perfcheck 1 ").map(str::to_owned)
    }

    fn any(t: &str) -> Option<String> {
        (!t.is_empty()).then(|| t.to_owned())
    }

    /// Two parts as callgrind writes them with `--combine-dumps=yes --dump-line=no`: names
    /// defined in the first part are referred to by id in the second.
    const SAMPLE: &str = "# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 1
cmd: x
part: 1

desc: Trigger: Client Request: perfcheck 1 rank

positions: line
events: Ir
summary: 130

ob=(1) /bin/x
fl=(1) src/rank.rs
fn=(1) x::rank
0 30
cfl=(2) src/score.rs
cfn=(2) x::score
calls=2 0
0 100

fl=(2)
fn=(2)
0 100
cfn=(2)
calls=1 0
0 40

totals: 130

part: 2

desc: Trigger: Client Request: perfcheck 1 total

positions: line
events: Ir
summary: 7

fl=(1)
fn=(1)
0 7

totals: 7

part: 3

desc: Trigger: Program termination

positions: line
events: Ir
summary: 5

fn=(3) main
0 5

totals: 5
";

    #[test]
    fn parts_and_functions_are_read_with_compressed_names() {
        let out = parse(SAMPLE.as_bytes(), &stage_of).unwrap();
        assert_eq!(out.creator, "callgrind-3.19.0");
        assert_eq!(out.events, vec!["Ir".to_owned()]);
        let parts: Vec<(&str, u64)> = out
            .parts
            .iter()
            .map(|p| (p.trigger.as_str(), p.totals[0]))
            .collect();
        assert_eq!(
            parts,
            vec![
                ("perfcheck 1 rank", 130),
                ("perfcheck 1 total", 7),
                ("Program termination", 5)
            ]
        );
        assert_eq!(out.groups, vec!["rank".to_owned(), "total".to_owned()]);
        let f = |g: usize, n: &str| {
            out.functions
                .iter()
                .find(|f| f.group == g && f.name == n)
                .unwrap()
        };
        // rank's costs in its own stage's part, and separately in the root's part.
        assert_eq!(
            (
                f(0, "x::rank").own.clone(),
                f(0, "x::rank").inclusive.clone()
            ),
            (vec![30], vec![130])
        );
        assert_eq!(f(1, "x::rank").own, vec![7]);
        assert_eq!(f(0, "x::rank").file, "src/rank.rs");
        // score's call to itself is not counted twice.
        assert_eq!(f(0, "x::score").own, vec![100]);
        assert_eq!(f(0, "x::score").inclusive, vec![100]);
        assert_eq!(f(0, "x::score").file, "src/score.rs");
        // The unselected part's function is not summed.
        assert!(out.functions.iter().all(|f| f.name != "main"));
        // One edge rank -> score with its call count and cost; the self-call is left out.
        assert_eq!(out.edges.len(), 1);
        let e = &out.edges[0];
        assert_eq!(
            (
                out.functions[e.caller].name.as_str(),
                out.functions[e.callee].name.as_str()
            ),
            ("x::rank", "x::score")
        );
        assert_eq!((e.calls, e.cost.clone()), (2, vec![100]));
    }

    #[test]
    fn the_merged_file_reads_back_the_same() {
        let out = parse(SAMPLE.as_bytes(), &stage_of).unwrap();
        let mut buf = Vec::new();
        out.write_merged(&mut buf, "test").unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("summary: 130") && text.contains("summary: 7"),
            "{text}"
        );
        let back = parse(text.as_bytes(), &any).unwrap();
        assert_eq!(back.groups, out.groups);
        assert_eq!(back.functions, out.functions);
        assert_eq!(back.edges, out.edges);
    }

    #[test]
    fn cache_simulation_columns_and_short_cost_lines() {
        let text = "events: Ir Dr Dw\npart: 1\ndesc: Trigger: Client Request: a\nfn=(1) f\n0 10 4\ntotals: 10 4 1\n";
        let out = parse(text.as_bytes(), &any).unwrap();
        assert_eq!(out.parts[0].totals, vec![10, 4, 1]);
        assert_eq!(out.functions[0].own, vec![10, 4, 0]);
    }

    #[test]
    fn malformed_lines_are_named() {
        let e = parse("fn=(1) f\n0 x1\n".as_bytes(), &any).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("`x1`"), "{e}");
        let e = parse("what is this\n".as_bytes(), &any).unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse(
            "part: 1\ndesc: Trigger: Client Request: a\n0 5\n".as_bytes(),
            &any,
        )
        .unwrap_err();
        assert!(e.message.contains("before any `fn=`"), "{e}");
    }
}
