//! ML-Master's reviewer: an LLM reads a solution's code and output and answers under a JSON
//! schema {is_bug, has_submission, summary, metric, lower_is_better}; a reply that ignores the
//! schema is searched for a JSON object, and one without any is no review at all.

use crate::tail;
use sophon_sdk::json::{self, Value, json};
use sophon_sdk::llm::ChatRequest;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Review {
    pub is_bug: bool,
    pub has_submission: bool,
    pub summary: String,
    pub metric: Option<f64>,
    pub lower_is_better: Option<bool>,
}

pub fn schema() -> String {
    json!({
        "type": "object",
        "properties": {
            "is_bug": {"type": "boolean"},
            "has_submission": {"type": "boolean"},
            "summary": {"type": "string", "maxLength": 600},
            "metric": {"type": ["number", "null"]},
            "lower_is_better": {"type": "boolean"},
        },
        "required": ["is_bug", "has_submission", "summary", "metric", "lower_is_better"],
        "additionalProperties": false,
    })
    .to_string()
}

pub fn request(metric_name: &str, code: &str, output: &str) -> ChatRequest {
    let prompt = format!(
        "Review this run of a machine-learning script for a competition scored by {metric_name}.\nReport: is_bug (it crashed or produced nonsense), has_submission (it wrote submission.csv), a short summary of what happened and what to try next, metric (the validation score it reports, or null), lower_is_better.\n\n## Script\n```python\n{}\n```\n\n## Output\n{}",
        tail(code, 6000),
        tail(output, 4000)
    );
    ChatRequest::system_user(
        "You review machine-learning experiments. Answer with one JSON object.",
        prompt,
    )
    .json_schema("review", schema())
    .max_tokens(400)
    .temperature(0.0)
    .purpose("review")
}

/// Read a review from a reply: the whole text as JSON, else the first `{…}` in it.
pub fn parse(text: &str) -> Option<Review> {
    let value: Value = json::from_str(text.trim()).ok().or_else(|| {
        let start = text.find('{')?;
        let end = text.rfind('}')?;
        (end > start)
            .then(|| json::from_str(&text[start..=end]).ok())
            .flatten()
    })?;
    Some(Review {
        is_bug: value["is_bug"].as_bool()?,
        has_submission: value["has_submission"].as_bool().unwrap_or(false),
        summary: value["summary"].as_str().unwrap_or("").to_string(),
        metric: value["metric"].as_f64().filter(|m| m.is_finite()),
        lower_is_better: value["lower_is_better"].as_bool(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_parse_from_json_or_from_an_object_inside_text() {
        let json = r#"{"is_bug": false, "has_submission": true, "summary": "fine", "metric": 0.8, "lower_is_better": false}"#;
        let review = parse(json).unwrap();
        assert_eq!(review.metric, Some(0.8));
        assert!(!review.is_bug && review.has_submission);
        let wrapped = parse(&format!("Here is my review:\n{json}\nThanks.")).unwrap();
        assert_eq!(wrapped, review);
        let null_metric = parse(r#"{"is_bug": true, "metric": null}"#).unwrap();
        assert_eq!(null_metric.metric, None);
        assert!(null_metric.is_bug);
        assert!(parse("looks good to me").is_none());
        assert!(
            parse(r#"{"summary": "no verdict"}"#).is_none(),
            "is_bug is required"
        );
    }
}
