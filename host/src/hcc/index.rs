//! [`VectorIndex`]: brute-force nearest neighbours over int8-quantised unit vectors.
//!
//! Each vector is stored as `i8` codes with one scale (`value ≈ code × scale`, the scale
//! chosen so the largest component maps to ±127): a quarter of the memory of `f32` and a
//! scan that the compiler vectorises. The scan is a first pass; callers rerank its best
//! candidates with the exact vectors (the store does), so quantisation only affects which
//! candidates are considered, not the scores reported.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// Vectors of one embedder, each with a caller-chosen id and group (the store uses the
/// group for the competition that produced an entry, to leave out a run's own competition).
#[derive(Debug, Default)]
pub struct VectorIndex {
    dims: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    ids: Vec<i64>,
    groups: Vec<u32>,
}

impl VectorIndex {
    pub fn new(dims: usize) -> VectorIndex {
        VectorIndex {
            dims,
            ..VectorIndex::default()
        }
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Add a vector. Returns false (and adds nothing) when its length is not `dims`.
    pub fn push(&mut self, id: i64, group: u32, vector: &[f32]) -> bool {
        if vector.len() != self.dims {
            return false;
        }
        let (codes, scale) = quantize(vector);
        self.codes.extend_from_slice(&codes);
        self.scales.push(scale);
        self.ids.push(id);
        self.groups.push(group);
        true
    }

    /// The `n` ids whose vectors look most similar to `query` (approximate scores, best
    /// first; ties broken by lower id), skipping group `exclude`.
    pub fn candidates(&self, query: &[f32], n: usize, exclude: Option<u32>) -> Vec<(i64, f32)> {
        if query.len() != self.dims || n == 0 || self.dims == 0 {
            return Vec::new();
        }
        let query = Query {
            codes: quantize(query),
            n,
            exclude,
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(self.codes.len() / PARALLEL_SCAN_BYTES);
        self.search_split(&query, threads)
    }

    /// Scan with `threads` threads (one scan on the calling thread when ≤ 1). Large indexes
    /// are memory-bound, so splitting the rows among cores and merging their bests pays.
    fn search_split(&self, query: &Query, threads: usize) -> Vec<(i64, f32)> {
        let rows = self.len();
        if threads <= 1 || rows < threads {
            return best_first(self.scan(query, 0..rows).into_vec());
        }
        let per_thread = rows.div_ceil(threads);
        let mut merged: Vec<Candidate> = std::thread::scope(|s| {
            let parts: Vec<_> = (0..threads)
                .map(|t| {
                    let range = t * per_thread..((t + 1) * per_thread).min(rows);
                    s.spawn(move || self.scan(query, range))
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|p| p.join().expect("an index scan thread panicked").into_vec())
                .collect()
        });
        merged.sort();
        merged.truncate(query.n);
        best_first(merged)
    }

    /// The first pass over `rows`: their `n` best by quantised dot product, with the AVX2
    /// build where the CPU has it.
    fn scan(&self, query: &Query, rows: std::ops::Range<usize>) -> BinaryHeap<Candidate> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.scan_avx2(query, rows) };
        }
        self.scan_portable(query, rows)
    }

    /// [`VectorIndex::scan_portable`] compiled for AVX2: twice the SIMD lanes of the x86-64
    /// baseline.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn scan_avx2(&self, query: &Query, rows: std::ops::Range<usize>) -> BinaryHeap<Candidate> {
        self.scan_portable(query, rows)
    }

    #[inline(always)]
    fn scan_portable(&self, query: &Query, rows: std::ops::Range<usize>) -> BinaryHeap<Candidate> {
        let (query_codes, query_scale) = (&query.codes.0, query.codes.1);
        let (n, exclude) = (query.n, query.exclude);
        let mut best = BinaryHeap::<Candidate>::with_capacity(n + 1);
        let start = rows.start;
        let codes = &self.codes[rows.start * self.dims..rows.end * self.dims];
        for (offset, codes) in codes.chunks_exact(self.dims).enumerate() {
            let row = start + offset;
            if exclude == Some(self.groups[row]) {
                continue;
            }
            let score = dot_i8(query_codes, codes) as f32 * query_scale * self.scales[row];
            let candidate = Candidate {
                score,
                id: self.ids[row],
            };
            if best.len() < n {
                best.push(candidate);
            } else if let Some(worst) = best.peek()
                && candidate < *worst
            {
                best.pop();
                best.push(candidate);
            }
        }
        best
    }
}

/// Bytes of codes per scan thread below which a scan stays on the calling thread (spawning
/// costs tens of microseconds; scanning 8 MiB takes about a millisecond).
const PARALLEL_SCAN_BYTES: usize = 8 << 20;

/// A quantised query and what it asks for.
struct Query {
    codes: (Vec<i8>, f32),
    n: usize,
    exclude: Option<u32>,
}

/// Candidates as (id, score), best first.
fn best_first(mut candidates: Vec<Candidate>) -> Vec<(i64, f32)> {
    candidates.sort();
    candidates.into_iter().map(|c| (c.id, c.score)).collect()
}

/// Ordered so that "less" means "better": the heap's top is the worst kept candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Candidate {
    score: f32,
    id: i64,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn quantize(vector: &[f32]) -> (Vec<i8>, f32) {
    let max = vector
        .iter()
        .filter(|x| x.is_finite())
        .fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; vector.len()], 0.0);
    }
    let scale = max / 127.0;
    let codes = vector
        .iter()
        .map(|x| {
            if x.is_finite() {
                (x / scale).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            }
        })
        .collect();
    (codes, scale)
}

/// Integer dot product, written in 16-lane blocks so the compiler emits SIMD multiply-adds
/// (inlined, so the AVX2 scan gets an AVX2 build of it).
#[inline(always)]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 16];
    let blocks_a = a.chunks_exact(16);
    let blocks_b = b.chunks_exact(16);
    let tail: i32 = blocks_a
        .remainder()
        .iter()
        .zip(blocks_b.remainder())
        .map(|(x, y)| *x as i32 * *y as i32)
        .sum();
    for (x, y) in blocks_a.zip(blocks_b) {
        for i in 0..16 {
            lanes[i] += x[i] as i32 * y[i] as i32;
        }
    }
    lanes.iter().sum::<i32>() + tail
}

/// The in-memory indexes of one store, one per embedder, loaded lazily and topped up with
/// entries other processes added since.
#[derive(Default)]
pub struct Indexes {
    pub(super) by_embedder: HashMap<String, LoadedIndex>,
}

pub(super) struct LoadedIndex {
    pub(super) index: VectorIndex,
    /// The highest `wisdom_vectors.seq` loaded.
    pub(super) loaded_up_to: i64,
    pub(super) groups: HashMap<String, u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hcc::embed::{cosine, normalize};
    use rand::{Rng, SeedableRng};

    fn random_unit(rng: &mut impl Rng, dims: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dims).map(|_| rng.random_range(-1.0..1.0)).collect();
        normalize(&mut v);
        v
    }

    #[test]
    fn reranked_candidates_match_the_exact_top_k() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let dims = 256;
        let vectors: Vec<Vec<f32>> = (0..5000).map(|_| random_unit(&mut rng, dims)).collect();
        let mut index = VectorIndex::new(dims);
        for (i, v) in vectors.iter().enumerate() {
            assert!(index.push(i as i64, (i % 7) as u32, v));
        }
        for _ in 0..20 {
            let query = random_unit(&mut rng, dims);
            let mut exact: Vec<(i64, f32)> = vectors
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 7 != 3)
                .map(|(i, v)| (i as i64, cosine(&query, v)))
                .collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1));
            let mut reranked: Vec<(i64, f32)> = index
                .candidates(&query, 10 * 4 + 32, Some(3))
                .into_iter()
                .map(|(id, _)| (id, cosine(&query, &vectors[id as usize])))
                .collect();
            reranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            let ids = |v: &[(i64, f32)]| v[..10].iter().map(|x| x.0).collect::<Vec<_>>();
            assert_eq!(ids(&reranked), ids(&exact));
        }
    }

    #[test]
    fn a_scan_split_among_threads_finds_what_one_thread_finds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let dims = 64;
        let mut index = VectorIndex::new(dims);
        for i in 0..1001 {
            assert!(index.push(i, (i % 5) as u32, &random_unit(&mut rng, dims)));
        }
        for threads in [2, 3, 8] {
            let query = Query {
                codes: quantize(&random_unit(&mut rng, dims)),
                n: 17,
                exclude: Some(2),
            };
            let one = index.search_split(&query, 1);
            assert_eq!(one.len(), 17);
            assert_eq!(
                index.search_split(&query, threads),
                one,
                "{threads} threads"
            );
        }
    }

    #[test]
    fn wrong_dimensions_and_empty_queries_are_harmless() {
        let mut index = VectorIndex::new(4);
        assert!(!index.push(1, 0, &[1.0, 0.0]));
        assert!(index.push(2, 0, &[1.0, 0.0, 0.0, 0.0]));
        assert!(index.candidates(&[1.0], 5, None).is_empty());
        assert_eq!(index.candidates(&[0.0; 4], 5, None).len(), 1);
        assert_eq!(index.candidates(&[1.0, 0.0, 0.0, 0.0], 5, Some(0)), vec![]);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn dot_products_are_exact_for_any_length() {
        let a: Vec<i8> = (0..37).map(|i| (i * 7 % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..37).map(|i| (i * 13 % 255 - 127) as i8).collect();
        let expected: i32 = a.iter().zip(&b).map(|(x, y)| *x as i32 * *y as i32).sum();
        assert_eq!(dot_i8(&a, &b), expected);
    }
}
