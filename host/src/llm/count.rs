//! Counting the tokens of plugin-sized text in bounded time and memory.
//!
//! tiktoken's encoder holds per-byte state for each pre-tokenized piece, so one long piece
//! (megabytes without a space) costs tens of bytes of memory per byte of text, and the whole
//! text is encoded before anything can stop it. [`count`] instead encodes the text in chunks of
//! at most [`CHUNK_BYTES`] and checks its [`Cancel`] between chunks, so a count stops soon after
//! its caller gave up and never holds more than one chunk's state.
//!
//! Chunks end right after a `\n` that is followed by a character that is neither whitespace nor
//! `/`: the pre-tokenizers of `o200k_base` and `cl100k_base` always start a new piece there, so
//! the chunks' counts add up to the whole text's count exactly. A stretch of more than
//! [`CHUNK_BYTES`] without such a place (one enormous line) is cut at a character boundary; the
//! count may then differ from tiktoken's by a token or so per cut.

use crate::capability::CapResult;
use crate::capability::work::Cancel;
use tiktoken_rs::CoreBPE;

/// Largest chunk encoded at once.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Tokens `text` takes in `bpe`, encoded chunk by chunk; `cancelled` once `cancel` is set.
pub fn count(bpe: &CoreBPE, text: &str, cancel: &Cancel) -> CapResult<u64> {
    let mut total = 0u64;
    for chunk in chunks(text, CHUNK_BYTES) {
        cancel.check()?;
        total += bpe.encode_ordinary(chunk).len() as u64;
    }
    Ok(total)
}

/// `text` in pieces of at most `max` bytes (a single character longer than `max` is one piece),
/// cut where the tokenizer starts a new piece anyway whenever the stretch allows.
pub fn chunks(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let max = max.max(1);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = if rest.len() <= max {
            rest.len()
        } else {
            clean_cut(rest, max).unwrap_or_else(|| char_cut(rest, max))
        };
        let (chunk, tail) = rest.split_at(cut);
        rest = tail;
        Some(chunk)
    })
}

/// The last place within `max` bytes right after a `\n` that a new piece starts at.
fn clean_cut(text: &str, max: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut end = max.min(bytes.len() - 1);
    while let Some(newline) = bytes[..end].iter().rposition(|&b| b == b'\n') {
        let cut = newline + 1;
        let next = text[cut..].chars().next()?;
        if !next.is_whitespace() && next != '/' {
            return Some(cut);
        }
        end = newline;
    }
    None
}

/// The last character boundary at or before `max` (past the first character at least).
fn char_cut(text: &str, max: usize) -> usize {
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    if cut == 0 {
        cut = text.chars().next().map_or(text.len(), char::len_utf8);
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> String {
        let mut text = String::new();
        for i in 0..400 {
            text.push_str(&format!(
                "def step_{i}(x):\n    // a comment with / slashes\n    return x * {i} + 0.5  \n\n\
                 Résumé: naïve café — 日本語のテキスト 🙂 {i}!\r\n/path/to/file_{i}.csv\n\
                 {{\"loss\": {i}.25, 'it''s': [1,2,3]}}\n\t\tindented line {i}\n   \n"
            ));
        }
        text
    }

    #[test]
    fn chunked_counts_equal_whole_counts_where_lines_are_short() {
        let text = corpus();
        let cancel = Cancel::default();
        for bpe in [
            tiktoken_rs::o200k_base_singleton(),
            tiktoken_rs::cl100k_base_singleton(),
        ] {
            let whole = bpe.encode_ordinary(&text).len();
            for max in [97, 256, 1000, 4096, CHUNK_BYTES] {
                let chunked: usize = chunks(&text, max)
                    .map(|c| bpe.encode_ordinary(c).len())
                    .sum();
                assert_eq!(chunked, whole, "chunks of {max} bytes");
            }
            assert_eq!(count(bpe, &text, &cancel).unwrap(), whole as u64);
        }
    }

    #[test]
    fn chunks_cover_the_text_and_respect_their_size() {
        let text = format!("{}\n{}", "é".repeat(5000), "x".repeat(300));
        let pieces: Vec<&str> = chunks(&text, 1001).collect();
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| p.len() <= 1001));
        assert_eq!(chunks("🙂🙂", 1).count(), 2);
        assert_eq!(chunks("", 10).count(), 0);
    }

    #[test]
    fn a_cancelled_count_stops() {
        let cancel = Cancel::default();
        let text = "word ".repeat(100_000);
        let bpe = tiktoken_rs::o200k_base_singleton();
        assert!(count(bpe, &text, &cancel).unwrap() > 0);
        cancel.set();
        assert!(count(bpe, &text, &cancel).is_err());
    }
}
