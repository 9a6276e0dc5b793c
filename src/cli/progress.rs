//! Progress lines on stderr: dimmed on a terminal, plain otherwise, silent with `--quiet`.

use std::io::{IsTerminal, Write};

/// A logger for the library's progress callbacks.
pub fn logger(quiet: bool) -> impl FnMut(&str) {
    let tty = std::io::stderr().is_terminal();
    move |line: &str| {
        if quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            writeln!(err, "\x1b[2m{line}\x1b[0m")
        } else {
            writeln!(err, "{line}")
        };
    }
}
