//! Structured mutations of valid documents (JSON and TOML trees) and the odd values they
//! insert: what gets a fuzz input past the first check of a parser.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value as Json};

/// Strings that tend to break parsers: empty, NaN-like, numeric-looking, non-ASCII, control
/// characters, separators the parsers split on, very long.
pub fn weird_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        prop::sample::select(vec![
            "NaN",
            "nan",
            "inf",
            "-inf",
            "1e999",
            "-1",
            "0",
            "18446744073709551616",
            "0x10",
            " ",
            "\t\n",
            "é",
            "日本語",
            "\u{202e}rtl",
            "\u{0}",
            "\u{1b}[31m",
            "\u{feff}",
            "\u{10ffff}",
            "a/b/c",
            "*",
            "**",
            "=",
            "@",
            "..",
            "%",
            ",",
            "\"",
            "\\",
            "~1/",
            "recall/total/wall_ns",
            "1s",
            "0s",
            "-1s",
            "99999999999999999999h",
            "1.5",
            "150%",
        ])
        .prop_map(str::to_owned),
        // Arbitrary text, control characters and all.
        any::<String>(),
        "[\\x00-\\x1f\\x7f\u{80}-\u{ff}]{1,6}",
        (1usize..5).prop_map(|k| "x".repeat(k * 4096)),
    ]
}

/// Odd JSON values to put where a field was.
pub fn weird_json() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        prop::sample::select(vec![
            json!(u64::MAX),
            json!(i64::MIN),
            json!(-1),
            json!(0),
            json!(1),
            json!(u64::from(u32::MAX) + 1),
            json!(1e308),
            json!(-1e308),
            json!(f64::MIN_POSITIVE),
            json!(0.5),
            json!(-0.0),
            json!([]),
            json!({}),
            json!([null]),
            json!({"": null}),
        ]),
        any::<i64>().prop_map(|x| json!(x)),
        any::<u64>().prop_map(|x| json!(x)),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |x| x.is_finite())
            .prop_map(|x| json!(x)),
        weird_string().prop_map(Json::String),
        (1usize..300).prop_map(|d| nest_json(d, json!(1))),
    ]
}

/// `d` levels of arrays and objects around `leaf`.
pub fn nest_json(d: usize, leaf: Json) -> Json {
    (0..d).fold(leaf, |v, i| {
        if i % 2 == 0 {
            json!([v])
        } else {
            json!({ "a": v })
        }
    })
}

/// One mutation of a tree. The `Index` picks which node (or string) it applies to.
#[derive(Clone, Debug)]
pub enum Mutation<V> {
    /// Remove the node from its object or array.
    Delete(Index),
    /// Put another value in its place.
    Replace(Index, V),
    /// Wrap the node in an array (`x` -> `[x]`).
    Wrap(Index),
    /// Rename the node's key (when it is an object member).
    RenameKey(Index, String),
    /// Insert `s` into every string and key of the whole document, at a character position
    /// picked per string.
    EveryString(String, Index),
    /// Duplicate an array element or set a second copy of a member under another key.
    Duplicate(Index),
}

/// A few mutations of a tree whose leaves come from `values`.
pub fn mutations<V: std::fmt::Debug + Clone>(
    values: impl Strategy<Value = V>,
) -> impl Strategy<Value = Vec<Mutation<V>>> {
    let one = prop_oneof![
        3 => any::<Index>().prop_map(Mutation::Delete),
        5 => (any::<Index>(), values).prop_map(|(i, v)| Mutation::Replace(i, v)),
        1 => any::<Index>().prop_map(Mutation::Wrap),
        1 => (any::<Index>(), weird_string()).prop_map(|(i, s)| Mutation::RenameKey(i, s)),
        1 => (weird_string().prop_filter("non-empty", |s| !s.is_empty()), any::<Index>())
            .prop_map(|(s, i)| Mutation::EveryString(s, i)),
        1 => any::<Index>().prop_map(Mutation::Duplicate),
    ];
    prop::collection::vec(one, 1..4)
}

/// A step from a node to a child.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Object member.
    Key(String),
    /// Array element.
    At(usize),
}

/// What the mutation engine needs of a tree type.
pub trait Tree: Clone + Sized {
    /// Children with the step to each.
    fn children(&self) -> Vec<(Step, &Self)>;
    /// The child at `step`.
    fn child_mut(&mut self, step: &Step) -> Option<&mut Self>;
    /// Removes the child at `step`; returns whether it was there.
    fn remove(&mut self, step: &Step) -> bool;
    /// Inserts `v` under `key` (objects) or appends it (arrays).
    fn add(&mut self, key: String, v: Self);
    /// `[self]`.
    fn wrap(self) -> Self;
    /// Applies `f` to every string value and key below (and at) this node.
    fn map_strings(&mut self, f: &mut dyn FnMut(&mut String));
}

/// Paths of the nodes to mutate: every object member, and the first and last element of each
/// array (long sample arrays would otherwise swallow every pick).
pub fn paths<T: Tree>(root: &T) -> Vec<Vec<Step>> {
    fn walk<T: Tree>(v: &T, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        let kids = v.children();
        let n = kids.len();
        for (step, child) in kids {
            let keep = match step {
                Step::At(i) => i == 0 || i + 1 == n,
                Step::Key(_) => true,
            };
            if keep {
                at.push(step);
                out.push(at.clone());
                walk(child, at, out);
                at.pop();
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut Vec::new(), &mut out);
    out
}

fn node_mut<'a, T: Tree>(root: &'a mut T, path: &[Step]) -> Option<&'a mut T> {
    path.iter().try_fold(root, |v, s| v.child_mut(s))
}

/// Applies `muts` in order; a mutation whose node is gone by then does nothing.
pub fn apply<T: Tree>(root: &mut T, muts: &[Mutation<T>]) {
    for m in muts {
        let all = paths(root);
        if all.is_empty() {
            return;
        }
        let pick = |i: &Index| all[i.index(all.len())].clone();
        match m {
            Mutation::Delete(i) => {
                let p = pick(i);
                let (last, parent) = p.split_last().expect("paths are non-empty");
                if let Some(parent) = node_mut(root, parent) {
                    parent.remove(last);
                }
            }
            Mutation::Replace(i, v) => {
                if let Some(node) = node_mut(root, &pick(i)) {
                    *node = v.clone();
                }
            }
            Mutation::Wrap(i) => {
                if let Some(node) = node_mut(root, &pick(i)) {
                    *node = node.clone().wrap();
                }
            }
            Mutation::RenameKey(i, new) => {
                let p = pick(i);
                let (last, parent) = p.split_last().expect("paths are non-empty");
                if let (Step::Key(_), Some(parent)) = (last, node_mut(root, parent)) {
                    if let Some(v) = parent.child_mut(last).cloned() {
                        parent.remove(last);
                        parent.add(new.clone(), v);
                    }
                }
            }
            Mutation::EveryString(s, at) => root.map_strings(&mut |t: &mut String| {
                let chars = t.chars().count();
                let pos = at.index(chars + 1);
                let byte = t.char_indices().nth(pos).map_or(t.len(), |(b, _)| b);
                t.insert_str(byte, s);
            }),
            Mutation::Duplicate(i) => {
                let p = pick(i);
                let (last, parent) = p.split_last().expect("paths are non-empty");
                if let Some(parent) = node_mut(root, parent) {
                    if let Some(v) = parent.child_mut(last).cloned() {
                        let key = match last {
                            Step::Key(k) => format!("{k}2"),
                            Step::At(_) => String::new(),
                        };
                        parent.add(key, v);
                    }
                }
            }
        }
    }
}

impl Tree for Json {
    fn children(&self) -> Vec<(Step, &Json)> {
        match self {
            Json::Object(m) => m.iter().map(|(k, v)| (Step::Key(k.clone()), v)).collect(),
            Json::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (Step::At(i), v))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn child_mut(&mut self, step: &Step) -> Option<&mut Json> {
        match (self, step) {
            (Json::Object(m), Step::Key(k)) => m.get_mut(k),
            (Json::Array(a), Step::At(i)) => a.get_mut(*i),
            _ => None,
        }
    }

    fn remove(&mut self, step: &Step) -> bool {
        match (self, step) {
            (Json::Object(m), Step::Key(k)) => m.remove(k).is_some(),
            (Json::Array(a), Step::At(i)) if *i < a.len() => {
                a.remove(*i);
                true
            }
            _ => false,
        }
    }

    fn add(&mut self, key: String, v: Json) {
        match self {
            Json::Object(m) => {
                m.insert(key, v);
            }
            Json::Array(a) => a.push(v),
            _ => {}
        }
    }

    fn wrap(self) -> Json {
        Json::Array(vec![self])
    }

    fn map_strings(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            Json::String(s) => f(s),
            Json::Array(a) => a.iter_mut().for_each(|v| v.map_strings(f)),
            Json::Object(m) => {
                let old = std::mem::take(m);
                for (mut k, mut v) in old {
                    f(&mut k);
                    v.map_strings(f);
                    m.insert(k, v);
                }
            }
            _ => {}
        }
    }
}

/// Odd TOML values to put where a key was (TOML has no null: deleting covers absence).
pub fn weird_toml() -> impl Strategy<Value = toml::Value> {
    use toml::Value as T;
    prop_oneof![
        any::<bool>().prop_map(T::Boolean),
        prop::sample::select(vec![
            T::Integer(i64::MAX),
            T::Integer(i64::MIN),
            T::Integer(-1),
            T::Integer(0),
            T::Integer(1),
            T::Integer(i64::from(u32::MAX) + 1),
            T::Float(f64::NAN),
            T::Float(f64::INFINITY),
            T::Float(f64::NEG_INFINITY),
            T::Float(1e308),
            T::Float(-0.0),
            T::Float(0.5),
            T::Float(1e-300),
            T::Array(Vec::new()),
            T::Table(toml::Table::new()),
            T::Datetime("1979-05-27T07:32:00Z".parse().expect("a valid datetime")),
        ]),
        any::<i64>().prop_map(T::Integer),
        any::<f64>().prop_map(T::Float),
        weird_string().prop_map(T::String),
        (1usize..100).prop_map(|d| nest_toml(d, T::Integer(1))),
    ]
}

/// `d` levels of arrays and tables around `leaf`.
pub fn nest_toml(d: usize, leaf: toml::Value) -> toml::Value {
    (0..d).fold(leaf, |v, i| {
        if i % 2 == 0 {
            toml::Value::Array(vec![v])
        } else {
            let mut t = toml::Table::new();
            t.insert("a".into(), v);
            toml::Value::Table(t)
        }
    })
}

impl Tree for toml::Value {
    fn children(&self) -> Vec<(Step, &toml::Value)> {
        match self {
            toml::Value::Table(m) => m.iter().map(|(k, v)| (Step::Key(k.clone()), v)).collect(),
            toml::Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (Step::At(i), v))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn child_mut(&mut self, step: &Step) -> Option<&mut toml::Value> {
        match (self, step) {
            (toml::Value::Table(m), Step::Key(k)) => m.get_mut(k),
            (toml::Value::Array(a), Step::At(i)) => a.get_mut(*i),
            _ => None,
        }
    }

    fn remove(&mut self, step: &Step) -> bool {
        match (self, step) {
            (toml::Value::Table(m), Step::Key(k)) => m.remove(k).is_some(),
            (toml::Value::Array(a), Step::At(i)) if *i < a.len() => {
                a.remove(*i);
                true
            }
            _ => false,
        }
    }

    fn add(&mut self, key: String, v: toml::Value) {
        match self {
            toml::Value::Table(m) => {
                m.insert(key, v);
            }
            toml::Value::Array(a) => a.push(v),
            _ => {}
        }
    }

    fn wrap(self) -> toml::Value {
        toml::Value::Array(vec![self])
    }

    fn map_strings(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            toml::Value::String(s) => f(s),
            toml::Value::Array(a) => a.iter_mut().for_each(|v| v.map_strings(f)),
            toml::Value::Table(m) => {
                let old = std::mem::take(m);
                for (mut k, mut v) in old {
                    f(&mut k);
                    v.map_strings(f);
                    m.insert(k, v);
                }
            }
            _ => {}
        }
    }
}

/// Text-level damage to a valid document: what a hand edit or a cut-off file looks like.
#[derive(Clone, Debug)]
pub enum TextEdit {
    /// Keep only the first part (cut at a character boundary).
    Truncate(Index),
    /// Insert a string at a character position.
    Insert(Index, String),
    /// Delete one line.
    DeleteLine(Index),
    /// Repeat one line.
    DuplicateLine(Index),
}

/// A few text edits.
pub fn text_edits() -> impl Strategy<Value = Vec<TextEdit>> {
    let one = prop_oneof![
        any::<Index>().prop_map(TextEdit::Truncate),
        (any::<Index>(), weird_string()).prop_map(|(i, s)| TextEdit::Insert(i, s)),
        any::<Index>().prop_map(TextEdit::DeleteLine),
        any::<Index>().prop_map(TextEdit::DuplicateLine),
    ];
    prop::collection::vec(one, 1..4)
}

/// Applies text edits in order.
pub fn edit_text(text: &str, edits: &[TextEdit]) -> String {
    let mut t = text.to_owned();
    for e in edits {
        let boundary = |t: &str, i: &Index| {
            let n = t.chars().count();
            let pos = i.index(n + 1);
            t.char_indices().nth(pos).map_or(t.len(), |(b, _)| b)
        };
        match e {
            TextEdit::Truncate(i) => {
                let b = boundary(&t, i);
                t.truncate(b);
            }
            TextEdit::Insert(i, s) => {
                let b = boundary(&t, i);
                t.insert_str(b, s);
            }
            TextEdit::DeleteLine(i) | TextEdit::DuplicateLine(i) => {
                let mut lines: Vec<&str> = t.lines().collect();
                if lines.is_empty() {
                    continue;
                }
                let k = i.index(lines.len());
                if matches!(e, TextEdit::DeleteLine(_)) {
                    lines.remove(k);
                } else {
                    lines.insert(k, lines[k]);
                }
                t = lines.join("\n");
            }
        }
    }
    t
}

/// Every char-boundary prefix of `s`, shortest first (the whole string excluded).
pub fn prefixes(s: &str) -> impl Iterator<Item = &str> {
    s.char_indices().map(move |(b, _)| &s[..b])
}
