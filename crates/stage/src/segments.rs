//! Callgrind segment marks for instructions passes: the switch, and the names of the profile
//! parts the recorder ends at every stage boundary.

use crate::pass_mode::{switch, MODE_COUNT, PASS_MODE};

/// Turns callgrind segment marks on (or off) for the operations this process begins from
/// now: every stage boundary then ends a callgrind profile part named
/// `perfcheck <op> <stage>`, with collection off while the recorder does its bookkeeping.
/// Only for instructions passes, which run under `valgrind --tool=callgrind
/// --collect-atstart=no`.
pub fn count_instructions(on: bool) {
    switch(&PASS_MODE, MODE_COUNT, on);
}

/// The prefix of every callgrind profile part the recorder names.
pub const SEGMENT_PREFIX: &str = "perfcheck ";

/// Writes `perfcheck <op> <stage>` and a NUL into `buf` (truncated to fit) and returns it as a
/// C string. Characters outside `[a-z0-9_]` in the stage name become `?`, so a name can never
/// break callgrind's line-based output.
pub(crate) fn segment_label<'a>(buf: &'a mut [u8; 96], op: u64, stage: &str) -> &'a std::ffi::CStr {
    use std::io::Write;
    let cap = buf.len() - 1;
    let mut cursor = std::io::Cursor::new(&mut buf[..cap]);
    let _ = write!(cursor, "{SEGMENT_PREFIX}{op} ");
    for c in stage.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            c as u8
        } else {
            b'?'
        };
        if cursor.write_all(&[c]).is_err() {
            break;
        }
    }
    let end = cursor.position() as usize;
    buf[end] = 0;
    std::ffi::CStr::from_bytes_until_nul(&buf[..=end]).unwrap_or(c"perfcheck 0 ?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_labels_name_the_operation_and_frame_and_stay_one_line() {
        let mut buf = [0u8; 96];
        assert_eq!(
            segment_label(&mut buf, 12, "vector_search")
                .to_str()
                .unwrap(),
            "perfcheck 12 vector_search"
        );
        assert_eq!(
            segment_label(&mut buf, 3, "a b\nc").to_str().unwrap(),
            "perfcheck 3 a?b?c"
        );
        let long = "x".repeat(200);
        let label = segment_label(&mut buf, 1, &long)
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(label.len(), 95, "truncated to the buffer, NUL kept");
    }
}
