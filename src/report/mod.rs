//! Rendering results for people: terminal tables and number formatting.

pub mod format;
pub mod table;
