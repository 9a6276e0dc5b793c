//! Rendering results for people: terminal tables and number formatting.

pub mod check;
pub mod detect;
pub mod escape;
pub mod format;
pub mod table;
pub mod trend_chart;
