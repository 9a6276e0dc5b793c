//! Flamegraph rendering of folded stacks with inferno 0.12 (not pprof's own renderer, which
//! is built on inferno 0.11 and its incompatible `Options`).

use std::path::Path;

use inferno::flamegraph::color::{Color, PaletteMap};
use inferno::flamegraph::{self, Options};

use crate::error::Error;
use crate::profile::cpu::StageFrames;

/// Colour of stage frames: blue in the red-yellow "hot" palette, so stages stand out.
const STAGE_COLOR: Color = Color {
    r: 70,
    g: 130,
    b: 230,
};

/// What the flamegraph's title and subtitle say.
pub struct FlameLabels<'a> {
    /// Workload name.
    pub workload: &'a str,
    /// Commit (short sha, `(dirty)` appended when the tree was dirty), or a note.
    pub commit: &'a str,
    /// Samples in the graph.
    pub samples: u64,
    /// Sampling frequency, Hz.
    pub frequency: u32,
    /// Free text under the title.
    pub subtitle: String,
}

/// The title line: workload, commit and sample count.
pub fn title(l: &FlameLabels<'_>) -> String {
    format!(
        "{} | commit {} | {} samples at {} Hz",
        l.workload,
        l.commit,
        crate::report::format::group_digits(l.samples),
        l.frequency
    )
}

/// Renders `folded` (one `stack count` line per stack) to an SVG at `path`; stage frames are
/// drawn in blue.
pub fn write_svg(
    folded: &str,
    labels: &FlameLabels<'_>,
    stages: &StageFrames,
    path: &Path,
) -> Result<(), Error> {
    let mut palette = PaletteMap::default();
    for line in folded.lines() {
        let stack = line.rsplit_once(' ').map_or(line, |(s, _)| s);
        for frame in stack.split(';') {
            if stages.stage_of(frame).is_some() {
                palette.insert(frame, STAGE_COLOR);
            }
        }
    }
    let mut opt = Options::default();
    opt.title = title(labels);
    opt.subtitle = Some(labels.subtitle.clone());
    opt.count_name = "samples".into();
    opt.deterministic = true;
    opt.palette_map = Some(&mut palette);
    let file = std::fs::File::create(path).map_err(|e| Error::Io {
        context: format!("cannot write {}", path.display()),
        source: e,
    })?;
    let w = std::io::BufWriter::new(file);
    if folded.trim().is_empty() {
        // inferno refuses empty input; an empty profile still gets a valid, titled SVG.
        return write_empty(labels, w, path);
    }
    flamegraph::from_lines(&mut opt, folded.lines(), w).map_err(|e| Error::Io {
        context: format!("cannot render the flamegraph {}", path.display()),
        source: e,
    })
}

fn write_empty(
    labels: &FlameLabels<'_>,
    mut w: impl std::io::Write,
    path: &Path,
) -> Result<(), Error> {
    let t = xml_escape(&title(labels));
    write!(
        w,
        r#"<?xml version="1.0" standalone="no"?><svg version="1.1" width="1200" height="60" xmlns="http://www.w3.org/2000/svg"><text id="title" x="600" y="24" text-anchor="middle">{t}</text><text x="600" y="48" text-anchor="middle">no samples: the pass was too short for the sampling frequency</text></svg>"#
    )
    .map_err(|e| Error::Io {
        context: format!("cannot write {}", path.display()),
        source: e,
    })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::StageSite;

    #[test]
    fn renders_a_titled_svg_with_stage_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.svg");
        let folded = "main;agent_memory::recall::rerank;sqlite3_step 7\n\
                      main;agent_memory::recall::vector_search 3\n";
        let labels = FlameLabels {
            workload: "recall",
            commit: "abc1234",
            samples: 10,
            frequency: 99,
            subtitle: "test".into(),
        };
        let site = |stage| StageSite {
            stage,
            file: "crates/engine/src/recall.rs",
            module: Some("agent_memory::recall"),
        };
        let stages = StageFrames::new(
            &["rerank", "vector_search"],
            &[site("rerank"), site("vector_search")],
        );
        write_svg(folded, &labels, &stages, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("recall | commit abc1234 | 10 samples at 99 Hz"));
        assert!(svg.contains("agent_memory::recall::rerank"));
        assert!(svg.contains("rgb(70,130,230)"), "stage frames are blue");

        write_svg("", &labels, &StageFrames::default(), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("id=\"title\""));
    }
}
