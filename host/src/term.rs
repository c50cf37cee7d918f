//! Untrusted text made safe for a terminal.
//!
//! Node ids, plans, summaries, errors and outcomes from plugins, job output, model replies,
//! validation messages that echo a submission, wisdom and knowledge: everything Sophon prints
//! that it did not write itself goes through this module first. It is hostile until proven
//! otherwise: an ESC starts a CSI/OSC/DCS sequence (clear the screen, set the window title,
//! write the clipboard), BEL/backspace/carriage return overwrite what is shown, bidi overrides
//! reorder it, and an embedded newline starts a line that looks like Sophon's own
//! (`GOLD MEDAL`).
//!
//! The functions differ only in what they keep:
//!
//! - [`line`]: one line; every control character is escaped, newlines included.
//! - [`block`]: multi-line text printed after a label; line breaks are kept, but every line
//!   after the first starts with [`CONTINUATION`], so no line of it can pass for Sophon's own.
//! - [`stream`] / [`stream_bytes`]: a raw stream the user asked for (job logs, a chat reply);
//!   newlines and tabs are kept as they are, every other control is escaped.
//! - [`json`]: serialised JSON with the characters `serde_json` leaves raw (DEL, C1, bidi and
//!   other invisible format characters) written as `\uXXXX`: the same JSON value, safe bytes.
//!
//! Escapes are visible and unambiguous in meaning: `\x1b`, `\x07`, `\r`, `\n`, `\u{202e}`.
//! Printable text, including non-ASCII letters and emoji, passes unchanged; text that needs
//! nothing escaped is returned borrowed.

use std::borrow::Cow;
use std::fmt::Write;

/// What each line of a [`block`] after its first starts with.
pub const CONTINUATION: &str = "  | ";

/// Whether `c` must not reach a terminal raw: C0 controls and DEL, C1 controls, and the
/// invisible format characters that reorder or hide text (bidi embeddings, overrides and
/// isolates, zero-width characters, the line and paragraph separators, tag characters).
pub fn is_unsafe(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x1f | 0x7f..=0x9f
        | 0xad                  // soft hyphen
        | 0x061c                // Arabic letter mark
        | 0x0600..=0x0605 | 0x06dd | 0x070f | 0x08e2 | 0x180e
        | 0x200b..=0x200f       // zero-width space/joiners, LRM, RLM
        | 0x2028..=0x202e       // line/paragraph separators, LRE, RLE, PDF, LRO, RLO
        | 0x2060..=0x206f       // word joiner, invisible operators, LRI, RLI, FSI, PDI, …
        | 0xfeff                // zero-width no-break space (BOM)
        | 0xfff9..=0xfffb       // interlinear annotation
        | 0x1d173..=0x1d17a     // musical format controls
        | 0xe0000..=0xe007f     // tag characters
    )
}

/// `c` as a visible escape.
fn escape_char(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `text` with every character for which `escape` is true escaped; borrowed if none is.
fn escape_where(text: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = text.find(&escape) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if escape(c) {
            escape_char(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` as one line: every control and invisible format character escaped, line breaks
/// (`\n`, `\r`) and tabs included.
pub fn line(text: &str) -> Cow<'_, str> {
    escape_where(text, is_unsafe)
}

/// `text` as a block printed after a label: each line escaped as by [`line`] (tabs kept), and
/// every line after the first prefixed with [`CONTINUATION`]. `\r\n` counts as one line break;
/// a lone `\r` is escaped. A trailing line break is dropped (the caller ends the line).
pub fn block(text: &str) -> Cow<'_, str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    let keep_tab = |c: char| c != '\t' && is_unsafe(c);
    if !text.contains('\n') {
        return escape_where(text, keep_tab);
    }
    let mut out = String::with_capacity(text.len() + 64);
    for (i, l) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(CONTINUATION);
        }
        out.push_str(&escape_where(l.strip_suffix('\r').unwrap_or(l), keep_tab));
    }
    Cow::Owned(out)
}

/// A raw stream (job output, a model's reply) for a terminal: newlines and tabs kept, every
/// other control and invisible format character escaped.
pub fn stream(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c != '\n' && c != '\t' && is_unsafe(c))
}

/// [`stream`] for bytes read from a log: returns the text and how many bytes of `bytes` it
/// covers. Invalid UTF-8 is escaped byte by byte (`\xff`). Unless `at_end`, an incomplete
/// UTF-8 sequence at the end is left unconsumed, for the next read to complete.
pub fn stream_bytes(bytes: &[u8], at_end: bool) -> (String, usize) {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                out.push_str(&stream(text));
                return (out, bytes.len());
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(&stream(
                    std::str::from_utf8(valid).expect("checked by from_utf8"),
                ));
                match e.error_len() {
                    Some(bad) => {
                        for b in &after[..bad] {
                            let _ = write!(out, "\\x{b:02x}");
                        }
                        rest = &after[bad..];
                    }
                    // Cut mid-character: keep the tail for later, or escape it at the end.
                    None if !at_end => return (out, bytes.len() - after.len()),
                    None => {
                        for b in after {
                            let _ = write!(out, "\\x{b:02x}");
                        }
                        return (out, bytes.len());
                    }
                }
            }
        }
    }
}

/// Serialised JSON with every character [`is_unsafe`] marks from DEL up (DEL, C1, bidi and
/// format characters) written as a `\uXXXX` escape (a surrogate pair above U+FFFF). Such
/// characters can only occur inside JSON strings, so the result is the same JSON value. C0 is
/// left alone: `serde_json` escapes it inside strings, and outside them it is the layout of
/// pretty-printed JSON.
pub fn json(text: String) -> String {
    let raw = |c: char| c >= '\x7f' && is_unsafe(c);
    if !text.contains(raw) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 32);
    for c in text.chars() {
        if raw(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way of steering a terminal the module must defuse.
    const HOSTILE: &[&str] = &[
        "\x1b[2J\x1b[H",                        // clear screen, cursor home
        "\x1b]0;pwned\x07",                     // window title (OSC … BEL)
        "\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x1b\\", // clipboard write (OSC 52 … ST)
        "\x1bP+q544e\x1b\\",                    // DCS
        "\u{9b}31m",                            // 8-bit CSI
        "\u{9d}0;title\u{9c}",                  // 8-bit OSC … ST
        "abc\x08\x08\x08xyz",                   // backspaces
        "fake\rGOLD MEDAL",                     // carriage return overwrite
        "\u{202e}lmth.exe",                     // right-to-left override
        "\u{2066}isolate\u{2069}",              // isolates
        "zero\u{200b}width\u{feff}",            // invisible characters
        "tag\u{e0041}",                         // tag character
        "sep\u{2028}line",                      // line separator
        "del\x7f",
    ];

    fn raw_controls(text: &str) -> Vec<char> {
        text.chars()
            .filter(|&c| is_unsafe(c) && c != '\n' && c != '\t')
            .collect()
    }

    #[test]
    fn line_escapes_every_control_including_line_breaks() {
        for h in HOSTILE {
            let safe = line(h);
            assert!(raw_controls(&safe).is_empty(), "{h:?} → {safe:?}");
            assert!(!safe.contains('\n'));
        }
        assert_eq!(line("a\nGOLD MEDAL"), "a\\nGOLD MEDAL");
        assert_eq!(line("\x1b[2Jx"), "\\x1b[2Jx");
        assert_eq!(line("\u{202e}x"), "\\u{202e}x");
        assert_eq!(line("tab\there"), "tab\\there");
    }

    #[test]
    fn ordinary_text_passes_unchanged_and_borrowed() {
        for text in [
            "node-1 LightGBM 0.91",
            "naïve Bayes — 日本語 🚀",
            "a\\x1b literal",
            "",
        ] {
            assert!(matches!(line(text), Cow::Borrowed(t) if t == text));
            assert!(matches!(stream(text), Cow::Borrowed(t) if t == text));
            assert!(matches!(block(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn block_keeps_lines_but_marks_every_continuation() {
        let text = "the strategy failed\nGOLD MEDAL\r\n\x1b[31mred\x1b[0m\tcol\nlast\n";
        let safe = block(text);
        let lines: Vec<&str> = safe.lines().collect();
        assert_eq!(
            lines,
            [
                "the strategy failed",
                "  | GOLD MEDAL",
                "  | \\x1b[31mred\\x1b[0m\tcol",
                "  | last"
            ]
        );
        for h in HOSTILE {
            let text = format!("x\n{h}");
            let safe = block(&text);
            assert!(raw_controls(&safe).is_empty(), "{h:?} → {safe:?}");
            assert!(
                safe.lines().skip(1).all(|l| l.starts_with(CONTINUATION)),
                "{safe:?}"
            );
        }
    }

    #[test]
    fn streams_keep_newlines_and_tabs_only() {
        assert_eq!(stream("a\tb\nc\r\n\x1b[2J"), "a\tb\nc\\r\n\\x1b[2J");
        for h in HOSTILE {
            assert!(raw_controls(&stream(h)).is_empty());
        }
    }

    #[test]
    fn byte_streams_escape_invalid_utf8_and_wait_for_split_characters() {
        let (text, used) = stream_bytes(b"ok\xff\x1b]0;t\x07\n", false);
        assert_eq!(text, "ok\\xff\\x1b]0;t\\x07\n");
        assert_eq!(used, 10);
        // "é" is C3 A9: cut after C3, the C3 waits for the next read.
        let (text, used) = stream_bytes(b"caf\xc3", false);
        assert_eq!((text.as_str(), used), ("caf", 3));
        let (text, used) = stream_bytes(b"\xc3\xa9!", false);
        assert_eq!((text.as_str(), used), ("é!", 3));
        let (text, used) = stream_bytes(b"caf\xc3", true);
        assert_eq!((text.as_str(), used), ("caf\\xc3", 4));
        // A C1 control encoded in UTF-8 (U+009B, 8-bit CSI) is escaped too.
        assert_eq!(stream_bytes("\u{9b}2J".as_bytes(), true).0, "\\u{9b}2J");
    }

    #[test]
    fn json_stays_the_same_value_with_safe_bytes() {
        let value = serde_json::json!({
            "summary": "\x1b]0;x\x07\u{9b}2J\u{202e}abc\u{e0041}\x7f",
            "plain": "naïve 🚀"
        });
        let text = json(serde_json::to_string(&value).unwrap());
        assert!(raw_controls(&text).is_empty(), "{text}");
        assert!(
            text.contains("\\u202e") && text.contains("\\udb40\\udc41"),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        // Pretty-printed: its layout stays.
        let pretty = json(serde_json::to_string_pretty(&value).unwrap());
        assert!(pretty.contains("{\n  \""), "{pretty}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&pretty).unwrap(),
            value
        );
    }
}
