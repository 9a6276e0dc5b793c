//! Making untrusted text inert in each output. Branch names, commit subjects, run ids,
//! profile names and machine keys come from git and from run records that users import from
//! other machines, so none of them may inject markup, break a table or drive the terminal.
//!
//! JSON needs nothing here: every JSON output goes through serde_json, which escapes.

/// Shown in place of a character that must not reach the output.
pub const PLACEHOLDER: char = '\u{FFFD}';

/// Whether `c` could steer a terminal or reorder text: C0 and C1 controls, DEL, and the
/// Unicode bidirectional overrides and isolates.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text for a terminal: every control character (ESC, BEL, newline, tab, the C1 range) and
/// bidi override becomes [`PLACEHOLDER`], so no escape sequence reaches the terminal and a
/// value stays on its line.
pub fn terminal(s: &str) -> String {
    s.chars()
        .map(|c| if is_unsafe(c) { PLACEHOLDER } else { c })
        .collect()
}

/// Text for an SVG `<text>` element or attribute, to be drawn by plotters. plotters escapes
/// `<`, `>`, `&` and quotes itself (doing it here would show `&lt;` literally), but passes
/// control characters through, which XML 1.0 forbids and which would end the line: those
/// become [`PLACEHOLDER`].
pub fn svg_text(s: &str) -> String {
    terminal(s)
}

/// Text for markdown prose or a table cell: HTML is neutralised with entities, markdown
/// syntax (emphasis, code, links, tables, strikethrough) with backslashes, and control
/// characters, newlines included, become [`PLACEHOLDER`], so a value cannot end a table row.
pub fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if is_unsafe(c) => out.push(PLACEHOLDER),
            c => out.push(c),
        }
    }
    out
}

/// A markdown code span of `s` outside a table: the fence is one backtick longer than the
/// longest run of backticks in `s`, so `s` cannot close it; HTML is not interpreted inside.
pub fn md_code(s: &str) -> String {
    code_span(&terminal(s))
}

/// A markdown code span of `s` inside a table cell: as [`md_code`], with `|` written `\|`
/// (GitHub splits cells before it reads code spans, and drops that backslash).
pub fn md_code_cell(s: &str) -> String {
    code_span(&terminal(s).replace('|', "\\|"))
}

fn code_span(s: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // A space on each side keeps a backtick at either end from joining the fence; markdown
    // strips one such space.
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_has_no_control_characters() {
        assert_eq!(terminal("a\x1b]0;pwned\x07b"), "a\u{FFFD}]0;pwned\u{FFFD}b");
        assert_eq!(terminal("\x1b[2Jx\ny\tz"), "\u{FFFD}[2Jx\u{FFFD}y\u{FFFD}z");
        // C1 CSI (U+009B) and DEL, and a right-to-left override.
        assert_eq!(
            terminal("\u{9b}31m\x7f\u{202E}"),
            "\u{FFFD}31m\u{FFFD}\u{FFFD}"
        );
        assert_eq!(terminal("feat/<b>é|ü</b>"), "feat/<b>é|ü</b>");
    }

    #[test]
    fn markdown_text_cannot_inject_html_or_break_a_table() {
        assert_eq!(md_text("feat/<b>a|b</b>"), "feat/&lt;b&gt;a\\|b&lt;/b&gt;");
        assert_eq!(
            md_text("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            md_text("*a* _b_ `c` [d](e) ~~f~~ \\ &amp;"),
            "\\*a\\* \\_b\\_ \\`c\\` \\[d\\](e) \\~\\~f\\~\\~ \\\\ &amp;amp;"
        );
        assert_eq!(
            md_text("one\ntwo\r\x1b[2J"),
            "one\u{FFFD}two\u{FFFD}\u{FFFD}\\[2J"
        );
    }

    #[test]
    fn code_spans_outlast_the_backticks_inside() {
        assert_eq!(md_code("abc1234"), "`abc1234`");
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("``x"), "``` ``x ```");
        assert_eq!(md_code("a|b\n<i>"), "`a|b\u{FFFD}<i>`");
        assert_eq!(md_code_cell("a|b"), "`a\\|b`");
    }

    #[test]
    fn svg_text_keeps_markup_characters_for_plotters_to_escape() {
        assert_eq!(svg_text("<a & 'b'>\x1b"), "<a & 'b'>\u{FFFD}");
    }
}
