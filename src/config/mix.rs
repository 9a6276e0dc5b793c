//! An operation mix: kinds and their relative weights, in report order (`[mix]`, `--mix`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::Table;

/// Operation kinds and their relative weights, in report order (`recall=80,remember=15`). In
/// JSON an object `{kind: weight}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mix {
    kinds: Vec<(String, u32)>,
}

impl Mix {
    /// A mix of these kinds, in this order.
    pub fn new<S: Into<String>>(kinds: impl IntoIterator<Item = (S, u32)>) -> Mix {
        Mix {
            kinds: kinds.into_iter().map(|(k, w)| (k.into(), w)).collect(),
        }
    }

    /// The kinds and their weights, in order.
    pub fn kinds(&self) -> &[(String, u32)] {
        &self.kinds
    }

    /// The kinds' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.kinds.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// The weight of `kind` (0 when absent).
    pub fn weight(&self, kind: &str) -> u32 {
        self.kinds
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |(_, w)| *w)
    }

    /// The sum of the weights.
    pub fn total(&self) -> u64 {
        self.kinds.iter().map(|(_, w)| u64::from(*w)).sum()
    }

    /// Checks that the mix can choose operations: at least one kind, unique names, and
    /// weights that do not add up to 0.
    pub fn validate(&self) -> Result<(), String> {
        if self.kinds.is_empty() {
            return Err("the operation mix has no kinds".into());
        }
        let mut names = self.names();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("the operation mix names `{}` twice", w[0]));
        }
        if self.total() == 0 {
            return Err("the operation mix's weights add up to 0".into());
        }
        Ok(())
    }

    /// `--mix`'s `self` over the load target's `kinds`: every kind of the target, in its
    /// order, weighing what `self` gives it or 0; an error (naming the form and the target's
    /// kinds) for a kind the target does not have.
    pub fn fill(&self, kinds: &Mix) -> Result<Mix, String> {
        let names = kinds.names();
        if let Some((k, _)) = self
            .kinds()
            .iter()
            .find(|(k, _)| !names.contains(&k.as_str()))
        {
            return Err(format!(
                "unknown kind `{k}` (the load target's kinds are {}); {}",
                names.join(", "),
                crate::config::load::MIX_FORM
            ));
        }
        Ok(Mix::new(names.iter().map(|n| (*n, self.weight(n)))))
    }

    /// As a JSON object `{kind: weight}`, the form of a profile's `[mix]` table.
    pub fn to_table(&self) -> Table {
        self.kinds
            .iter()
            .map(|(k, w)| (k.clone(), serde_json::Value::from(*w)))
            .collect()
    }
}

impl fmt::Display for Mix {
    /// `recall=80 remember=15 consolidation=5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, w)) in self.kinds.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={w}")?;
        }
        Ok(())
    }
}

impl Serialize for Mix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.kinds.len()))?;
        for (k, w) in &self.kinds {
            m.serialize_entry(k, w)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Mix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mix, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Mix;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of operation kinds and whole-number weights")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Mix, A::Error> {
                // Document order is the report order.
                let mut kinds = Vec::new();
                while let Some((k, w)) = a.next_entry::<String, u32>()? {
                    kinds.push((k, w));
                }
                Ok(Mix { kinds })
            }
        }
        d.deserialize_map(V)
    }
}
