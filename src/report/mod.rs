//! Rendering results for people: terminal tables and number formatting.

pub mod attribution;
pub mod chart;
pub mod check;
pub mod detect;
pub mod diff_flame;
pub mod escape;
pub mod format;
pub mod table;
pub mod trend_chart;
