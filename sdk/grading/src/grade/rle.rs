//! MLE-bench's run-length decoding (GRADERS.md 2, [RLE]): whitespace-separated 1-based
//! `start length` pairs over a flat array of `height × width` pixels.

/// Why a mask could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum RleError {
    /// A token is not an integer, or the pairs do not line up (Python raises ValueError:
    /// always a null score).
    Malformed(String),
    /// Starts out of order, a non-positive start or length, overlapping runs (an assertion:
    /// invalid where the grader catches it, null elsewhere).
    Rule(String),
}

impl RleError {
    pub fn message(&self) -> &str {
        match self {
            RleError::Malformed(m) | RleError::Rule(m) => m,
        }
    }
}

/// The set pixels of a decoded mask as sorted, disjoint half-open runs `[start, end)` of
/// flat indices below `pixels`. A blank text is an empty mask.
///
/// numpy's broadcasting is kept: with an odd token count the lengths are one fewer than the
/// starts, which only works for one token (no runs at all) or three (both starts take the one
/// length); any other odd count is malformed.
pub fn decode(text: &str, pixels: usize) -> Result<Vec<(usize, usize)>, RleError> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let mut numbers = Vec::with_capacity(tokens.len());
    for t in &tokens {
        let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RleError::Malformed(format!(
                "{t:?} is not an integer: an RLE mask is `start length` pairs of integers"
            )));
        }
        numbers.push(
            t.parse::<i64>()
                .map_err(|_| RleError::Malformed(format!("{t:?} is out of range")))?,
        );
    }
    let starts: Vec<i64> = numbers.iter().copied().step_by(2).collect();
    let lengths: Vec<i64> = numbers.iter().copied().skip(1).step_by(2).collect();
    if starts.windows(2).any(|w| w[0] > w[1]) {
        return Err(RleError::Rule("the runs must be sorted by start".into()));
    }
    if starts.iter().chain(&lengths).any(|x| *x <= 0) {
        return Err(RleError::Rule(
            "every start and length must be a positive integer".into(),
        ));
    }
    let pairs: Vec<(i64, i64)> = match (starts.len(), lengths.len()) {
        (s, l) if s == l => starts.into_iter().zip(lengths).collect(),
        (1, 0) => Vec::new(),
        (2, 1) => starts.into_iter().map(|s| (s, lengths[0])).collect(),
        (s, l) => {
            return Err(RleError::Malformed(format!(
                "{} tokens ({s} starts, {l} lengths): an RLE mask is `start length` pairs",
                tokens.len()
            )));
        }
    };
    let mut runs: Vec<(usize, usize)> = Vec::with_capacity(pairs.len());
    for (start, length) in pairs {
        let low = (start - 1) as usize;
        let high = (start - 1).saturating_add(length) as usize;
        let (low, high) = (low.min(pixels), high.min(pixels));
        if low == high {
            continue; // past the end: numpy slices nothing
        }
        if runs.last().is_some_and(|&(_, end)| low < end) {
            return Err(RleError::Rule("the runs overlap".into()));
        }
        runs.push((low, high));
    }
    Ok(runs)
}

/// Pixels set in both run lists (each sorted and disjoint).
pub fn intersection(a: &[(usize, usize)], b: &[(usize, usize)]) -> usize {
    let (mut i, mut j, mut total) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let low = a[i].0.max(b[j].0);
        let high = a[i].1.min(b[j].1);
        if low < high {
            total += high - low;
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    total
}

/// Pixels set in a run list.
pub fn area(runs: &[(usize, usize)]) -> usize {
    runs.iter().map(|(a, b)| b - a).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_blank_and_truncates_past_the_end() {
        assert_eq!(decode("  ", 10), Ok(vec![]));
        assert_eq!(decode("1 3 6 2", 10), Ok(vec![(0, 3), (5, 7)]));
        assert_eq!(decode("9 5", 10), Ok(vec![(8, 10)]));
        assert_eq!(decode("11 5", 10), Ok(vec![]));
    }

    #[test]
    fn keeps_numpys_broadcasting_of_odd_token_counts() {
        assert_eq!(decode("4", 10), Ok(vec![]));
        assert_eq!(decode("1 2 5", 10), Ok(vec![(0, 2), (4, 6)]));
        assert!(matches!(
            decode("1 2 5 1 8", 10),
            Err(RleError::Malformed(_))
        ));
    }

    #[test]
    fn rule_violations_and_malformed_tokens_differ() {
        assert!(matches!(decode("5 1 1 1", 10), Err(RleError::Rule(_))));
        assert!(matches!(decode("0 1", 10), Err(RleError::Rule(_))));
        assert!(matches!(decode("1 0", 10), Err(RleError::Rule(_))));
        assert!(matches!(decode("1 3 2 2", 10), Err(RleError::Rule(_))));
        assert!(matches!(decode("1 x", 10), Err(RleError::Malformed(_))));
        assert!(matches!(decode("1.5 2", 10), Err(RleError::Malformed(_))));
    }

    #[test]
    fn intersections_of_runs() {
        let a = [(0, 4), (6, 9)];
        let b = [(2, 7), (8, 12)];
        assert_eq!(intersection(&a, &b), 2 + 1 + 1);
        assert_eq!(area(&a), 7);
    }
}
