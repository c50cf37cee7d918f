//! Token counting and head+tail truncation with OpenAI's BPE tokenizers (tiktoken).
//!
//! A model that OpenAI's tables know (`gpt-4o`, `gpt-4`, `o3`, …) counts with its own
//! encoding; any other model (a local GGUF, DeepSeek, …) counts with `o200k_base`, which is
//! within a few percent of those models' own tokenizers on English and code. Contexts are
//! assembled against these counts, so an operator serving a model with a much more verbose
//! tokenizer should give it a smaller budget.

use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

/// A tokenizer chosen by model name. Cheap to copy; the encodings are process-wide singletons.
#[derive(Clone, Copy)]
pub struct TokenCounter {
    name: &'static str,
    bpe: &'static CoreBPE,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TokenCounter").field(&self.name).finish()
    }
}

impl Default for TokenCounter {
    fn default() -> Self {
        TokenCounter::for_model(None)
    }
}

impl TokenCounter {
    /// The encoding of `model`, or `o200k_base` when `model` is `None` or not an OpenAI model.
    pub fn for_model(model: Option<&str>) -> TokenCounter {
        match model.and_then(get_tokenizer) {
            Some(Tokenizer::Cl100kBase) => TokenCounter {
                name: "cl100k_base",
                bpe: tiktoken_rs::cl100k_base_singleton(),
            },
            _ => TokenCounter {
                name: "o200k_base",
                bpe: tiktoken_rs::o200k_base_singleton(),
            },
        }
    }

    /// The encoding's name, e.g. `o200k_base`.
    pub fn encoding(&self) -> &'static str {
        self.name
    }

    /// Tokens `text` takes.
    pub fn count(&self, text: &str) -> u32 {
        saturate(self.bpe.encode_ordinary(text).len())
    }

    /// `text` cut to at most `max_tokens` tokens by keeping its head and tail around a marker
    /// that says how much was elided. Returns the text unchanged when it already fits, and
    /// `None` when not even the marker fits in `max_tokens`.
    pub fn head_tail(&self, text: &str, max_tokens: u32) -> Option<String> {
        let tokens = self.bpe.encode_ordinary(text);
        if tokens.len() <= max_tokens as usize {
            return Some(text.to_owned());
        }
        // The marker's own tokens count against the budget; shrink until the result fits
        // (joining pieces can merge or split tokens at the seams).
        let mut keep = (max_tokens as usize).saturating_sub(self.marker_tokens(tokens.len()));
        loop {
            let head = keep.div_ceil(2);
            let tail = keep - head;
            let elided = tokens.len() - keep;
            let candidate = format!(
                "{}{}{}",
                self.decode(&tokens[..head]),
                marker(elided),
                self.decode(&tokens[tokens.len() - tail..])
            );
            if self.count(&candidate) <= max_tokens {
                return Some(candidate);
            }
            if keep == 0 {
                return None;
            }
            keep = keep.saturating_sub(1 + keep / 16);
        }
    }

    fn marker_tokens(&self, total: usize) -> usize {
        self.bpe.encode_ordinary(&marker(total)).len()
    }

    /// Token bytes back to text; a multi-byte character split at the cut becomes U+FFFD.
    fn decode(&self, tokens: &[u32]) -> String {
        match self.bpe.decode_bytes(tokens) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => String::new(),
        }
    }
}

/// A [`TokenCounter`] that remembers the counts and head+tail cuts of texts it has seen
/// (events are immutable and reassembled into every context, so most of this work repeats).
/// Bounded: each memo forgets everything once it holds its capacity.
#[derive(Debug)]
pub struct TokenCache {
    counter: TokenCounter,
    counts: Memo<(u64, usize), u32>,
    cuts: Memo<(u64, usize, u32), Option<String>>,
}

impl TokenCache {
    /// Most counts remembered.
    pub const CAPACITY: usize = 200_000;
    /// Most cuts remembered (each holds a cut text, a few KB at most in a context).
    pub const CUT_CAPACITY: usize = 20_000;

    pub fn new(counter: TokenCounter) -> TokenCache {
        TokenCache {
            counter,
            counts: Memo::new(Self::CAPACITY),
            cuts: Memo::new(Self::CUT_CAPACITY),
        }
    }

    pub fn counter(&self) -> TokenCounter {
        self.counter
    }

    /// Tokens `text` takes (from memory when seen before).
    pub fn count(&self, text: &str) -> u32 {
        let (hash, len) = text_key(text);
        self.counts
            .get_or_insert_with((hash, len), || self.counter.count(text))
    }

    /// [`TokenCounter::head_tail`], from memory when this text was cut to this size before.
    pub fn head_tail(&self, text: &str, max_tokens: u32) -> Option<String> {
        let (hash, len) = text_key(text);
        self.cuts.get_or_insert_with((hash, len, max_tokens), || {
            self.counter.head_tail(text, max_tokens)
        })
    }
}

/// A text's identity in the memos: its hash and length.
fn text_key(text: &str) -> (u64, usize) {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    (hasher.finish(), text.len())
}

/// A bounded, thread-safe memo that is cleared when full. The value is computed outside the
/// lock, so two threads may compute the same value once each.
#[derive(Debug)]
struct Memo<K, V> {
    capacity: usize,
    map: std::sync::Mutex<std::collections::HashMap<K, V>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> Memo<K, V> {
    fn new(capacity: usize) -> Self {
        Memo {
            capacity,
            map: Default::default(),
        }
    }

    fn get_or_insert_with(&self, key: K, compute: impl FnOnce() -> V) -> V {
        if let Some(v) = self.lock().get(&key) {
            return v.clone();
        }
        let value = compute();
        let mut map = self.lock();
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(key, value.clone());
        value
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<K, V>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn marker(elided: usize) -> String {
    format!("\n[… {elided} tokens elided …]\n")
}

fn saturate(n: usize) -> u32 {
    n.min(u32::MAX as usize) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_pick_their_encoding() {
        assert_eq!(TokenCounter::for_model(None).encoding(), "o200k_base");
        assert_eq!(
            TokenCounter::for_model(Some("gpt-4")).encoding(),
            "cl100k_base"
        );
        assert_eq!(
            TokenCounter::for_model(Some("gpt-4o")).encoding(),
            "o200k_base"
        );
        assert_eq!(
            TokenCounter::for_model(Some("qwen2.5-0.5b-instruct")).encoding(),
            "o200k_base"
        );
        assert_eq!(TokenCounter::default().count("hello world"), 2);
    }

    #[test]
    fn head_tail_keeps_both_ends_within_the_limit() {
        let counter = TokenCounter::default();
        let text: String = (0..2000).map(|i| format!("line {i}: loss {i}\n")).collect();
        let cut = counter.head_tail(&text, 100).unwrap();
        assert!(counter.count(&cut) <= 100, "{}", counter.count(&cut));
        assert!(cut.starts_with("line 0: loss 0"));
        assert!(cut.trim_end().ends_with("line 1999: loss 1999"));
        assert!(cut.contains("tokens elided"));
        // Short text is untouched; a limit below the marker's size is refused.
        assert_eq!(counter.head_tail("short", 100).unwrap(), "short");
        assert_eq!(counter.head_tail(&text, 3), None);
    }

    #[test]
    fn cutting_inside_a_multibyte_character_stays_valid_text() {
        let counter = TokenCounter::default();
        let text = "日本語のテキスト🙂".repeat(400);
        let cut = counter.head_tail(&text, 40).unwrap();
        assert!(counter.count(&cut) <= 40);
    }
}
