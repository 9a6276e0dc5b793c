//! What every chart shares: the bundled font, and writing one drawing as both SVG (for
//! browsers, searchable text) and PNG (for pull-request comments and image viewers).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::Error;

/// A chart that can draw itself on any plotters backend.
pub trait Chart {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the whole chart on `root`; errors are plotters' messages.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Draws `chart` into `<stem>.svg` and `<stem>.png` (`stem` is a path without extension) and
/// returns both paths.
pub fn write_svg_and_png(chart: &impl Chart, stem: &Path) -> Result<(PathBuf, PathBuf), Error> {
    register_bundled_font()?;
    let with_ext = |ext: &str| {
        let mut name = stem.file_name().unwrap_or_default().to_os_string();
        name.push(ext);
        stem.with_file_name(name)
    };
    let (svg, png) = (with_ext(".svg"), with_ext(".png"));
    let size = chart.size();
    write(chart, SVGBackend::new(&svg, size), &svg)?;
    write(chart, BitMapBackend::new(&png, size), &png)?;
    Ok((svg, png))
}

/// Draws `chart` on `backend` and writes it to `path` (the file the backend was made for).
fn write<DB: DrawingBackend>(chart: &impl Chart, backend: DB, path: &Path) -> Result<(), Error> {
    let fail = |e: String| Error::Chart(format!("cannot draw {}: {e}", path.display()));
    let root = backend.into_drawing_area();
    chart.draw(&root).map_err(fail)?;
    root.present().map_err(|e| fail(e.to_string()))
}

/// Registers the bundled DejaVu Sans as plotters' `sans-serif`, so charts never need system
/// fonts (there are none on CI images).
pub fn register_bundled_font() -> Result<(), Error> {
    static ONCE: Once = Once::new();
    static FAILED: AtomicBool = AtomicBool::new(false);
    ONCE.call_once(|| {
        let font: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        if plotters::style::register_font("sans-serif", FontStyle::Normal, font).is_err() {
            FAILED.store(true, Ordering::Relaxed);
        }
    });
    if FAILED.load(Ordering::Relaxed) {
        return Err(Error::Chart(
            "the bundled font assets/fonts/DejaVuSans.ttf is not a valid font".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Box2;

    impl Chart for Box2 {
        fn size(&self) -> (u32, u32) {
            (40, 30)
        }
        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
            root.fill(&RED).map_err(|e| e.to_string())?;
            root.draw_text("hi", &("sans-serif", 12).into_font().color(&BLACK), (2, 2))
                .map_err(|e| e.to_string())
        }
    }

    #[test]
    fn writes_both_files_of_the_chart_s_size() {
        let dir = tempfile::tempdir().unwrap();
        let (svg, png) = write_svg_and_png(&Box2, &dir.path().join("box.v1")).unwrap();
        assert_eq!(svg, dir.path().join("box.v1.svg"));
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(
            text.contains("width=\"40\"") && text.contains("\nhi\n"),
            "{text}"
        );
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
        let info = decoder.read_info().unwrap();
        assert_eq!((info.info().width, info.info().height), (40, 30));
    }

    #[test]
    fn an_unwritable_folder_is_an_error_naming_the_file() {
        let err = write_svg_and_png(&Box2, Path::new("/nonexistent-dir/x")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.svg"), "{err}");
    }
}
