//! The content-addressed reply cache: a request's key → its reply, one file per entry.
//!
//! The key is the SHA-256 of the provider's identity (endpoint and model) and the request in
//! canonical JSON, with the fields that do not change the answer (`purpose`, `cache`) left
//! out. Entries are written to a temporary file and renamed, so a crash never leaves a
//! half-written reply; an unreadable entry is a miss.

use super::types::{CachePolicy, ChatRequest, Completion};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The cache key of a chat request to the provider `identity`.
pub fn chat_key(identity: &str, request: &ChatRequest) -> String {
    let mut canonical = request.clone();
    canonical.purpose = None;
    canonical.cache = CachePolicy::Default;
    key_of(identity, "chat", &canonical)
}

/// The cache key of an embedding request.
pub fn embed_key(identity: &str, inputs: &[String]) -> String {
    key_of(identity, "embed", &inputs)
}

fn key_of(identity: &str, kind: &str, value: &impl Serialize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(identity.as_bytes());
    hasher.update([0]);
    hasher.update(kind.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(value).expect("requests serialise"));
    hex::encode(hasher.finalize())
}

/// Whether `request` may be answered from (and stored in) the cache.
pub fn cacheable(request: &ChatRequest) -> bool {
    match request.cache {
        CachePolicy::Bypass => false,
        CachePolicy::Prefer => true,
        CachePolicy::Default => request.temperature == Some(0.0) || request.seed.is_some(),
    }
}

/// Replies on disk under `dir/<aa>/<key>.json`.
pub struct ReplyCache {
    dir: PathBuf,
}

impl ReplyCache {
    pub fn new(dir: &Path) -> ReplyCache {
        ReplyCache {
            dir: dir.to_path_buf(),
        }
    }

    /// The default location: `~/.cache/sophon/llm`.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("sophon").join("llm"))
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.json"))
    }

    pub fn get_chat(&self, key: &str) -> Option<Completion> {
        self.get(key)
    }

    pub fn put_chat(&self, key: &str, completion: &Completion) {
        self.put(key, completion)
    }

    pub fn get_embeddings(&self, key: &str) -> Option<Vec<Vec<f32>>> {
        self.get(key)
    }

    pub fn put_embeddings(&self, key: &str, vectors: &[Vec<f32>]) {
        self.put(key, &vectors)
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn put<T: Serialize + ?Sized>(&self, key: &str, value: &T) {
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let path = self.path(key);
        let result = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().expect("has a parent"))?;
            let n = WRITES.fetch_add(1, Ordering::Relaxed);
            let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec(value)?)?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), "cannot store an LLM reply in the cache: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::types::{FinishReason, Message, Role, Usage};

    #[test]
    fn keys_ignore_labels_but_not_content_and_deterministic_requests_are_cacheable() {
        let mut a = ChatRequest::new(vec![Message::new(Role::User, "hi")]);
        let mut b = a.clone();
        b.purpose = Some("review".into());
        b.cache = CachePolicy::Prefer;
        assert_eq!(chat_key("m", &a), chat_key("m", &b));
        assert_ne!(chat_key("m", &a), chat_key("other-model", &a));
        b.messages[0].content = "hello".into();
        assert_ne!(chat_key("m", &a), chat_key("m", &b));

        assert!(!cacheable(&a));
        a.temperature = Some(0.0);
        assert!(cacheable(&a));
        a.cache = CachePolicy::Bypass;
        assert!(!cacheable(&a));
        a.cache = CachePolicy::Default;
        a.temperature = Some(0.7);
        a.seed = Some(1);
        assert!(cacheable(&a));
    }

    #[test]
    fn entries_round_trip_and_corrupt_ones_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ReplyCache::new(dir.path());
        let key = chat_key("m", &ChatRequest::new(vec![]));
        assert!(cache.get_chat(&key).is_none());
        let completion = Completion {
            text: "hi".into(),
            reasoning: None,
            tool_calls: vec![],
            finish: FinishReason::Stop,
            usage: Usage::default(),
        };
        cache.put_chat(&key, &completion);
        assert_eq!(cache.get_chat(&key), Some(completion));
        std::fs::write(cache.path(&key), b"{truncated").unwrap();
        assert!(cache.get_chat(&key).is_none());
    }
}
