//! What the LLM capability accepts from a plugin. Every text it would count, send or embed is
//! capped, and the caps are checked before any work or allocation is done on the plugin's
//! behalf. A refusal is `too-large`, names the limit in bytes (or items) and says what to do.

use super::types::{ChatRequest, ResponseFormat, ToolChoice};
use crate::capability::{CapResult, CapabilityError};

/// Largest text `count-tokens` counts.
pub const MAX_COUNT_BYTES: usize = 4 << 20;
/// Most text (messages, tools, schema, stop sequences, prefill) in one chat request.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;
/// Most messages in one chat request.
pub const MAX_MESSAGES: usize = 4096;
/// Most tools offered in one chat request.
pub const MAX_TOOLS: usize = 128;
/// Most stop sequences in one chat request.
pub const MAX_STOP: usize = 16;
/// Most inputs in one embedding call.
pub const MAX_EMBED_INPUTS: usize = 2048;
/// Most text in one embedding call, all inputs together.
pub const MAX_EMBED_BYTES: usize = 4 << 20;
/// Longest model alias or purpose.
pub const MAX_NAME_BYTES: usize = 256;

fn too_large(what: &str, size: usize, limit: usize, unit: &str, fix: &str) -> CapabilityError {
    CapabilityError::TooLarge(format!(
        "{what} is {size} {unit}; the host accepts at most {limit} {unit} ({fix})"
    ))
}

/// A model alias (`model` of any call) is a short name.
pub fn check_alias(model: Option<&str>) -> CapResult<()> {
    match model {
        Some(alias) if alias.len() > MAX_NAME_BYTES => Err(too_large(
            "the model alias",
            alias.len(),
            MAX_NAME_BYTES,
            "bytes",
            "name a configured provider, see llm.models",
        )),
        _ => Ok(()),
    }
}

/// The text of a `count-tokens` call.
pub fn check_count(text: &str, model: Option<&str>) -> CapResult<()> {
    check_alias(model)?;
    if text.len() > MAX_COUNT_BYTES {
        return Err(too_large(
            "the text to count",
            text.len(),
            MAX_COUNT_BYTES,
            "bytes",
            "count it in parts, or estimate about 4 bytes per token",
        ));
    }
    Ok(())
}

/// The inputs of an embedding call.
pub fn check_embed(inputs: &[String], model: Option<&str>) -> CapResult<()> {
    check_alias(model)?;
    if inputs.len() > MAX_EMBED_INPUTS {
        return Err(too_large(
            "the embedding call",
            inputs.len(),
            MAX_EMBED_INPUTS,
            "inputs",
            "embed them in batches",
        ));
    }
    let bytes: usize = inputs.iter().map(String::len).sum();
    if bytes > MAX_EMBED_BYTES {
        return Err(too_large(
            "the text to embed",
            bytes,
            MAX_EMBED_BYTES,
            "bytes",
            "embed it in batches, or embed summaries",
        ));
    }
    Ok(())
}

/// A chat request: its counts and the bytes of all its text.
pub fn check_chat(request: &ChatRequest) -> CapResult<()> {
    check_alias(request.model.as_deref())?;
    if let Some(purpose) = &request.purpose
        && purpose.len() > MAX_NAME_BYTES
    {
        return Err(too_large(
            "the request's purpose",
            purpose.len(),
            MAX_NAME_BYTES,
            "bytes",
            "use a short label such as \"draft\"",
        ));
    }
    for (what, count, limit) in [
        ("messages", request.messages.len(), MAX_MESSAGES),
        ("tools", request.tools.len(), MAX_TOOLS),
        ("stop sequences", request.stop.len(), MAX_STOP),
    ] {
        if count > limit {
            return Err(too_large(
                &format!("the chat request's list of {what}"),
                count,
                limit,
                "items",
                "send fewer",
            ));
        }
    }
    let bytes = request_bytes(request);
    if bytes > MAX_REQUEST_BYTES {
        return Err(too_large(
            "the chat request's text",
            bytes,
            MAX_REQUEST_BYTES,
            "bytes",
            "send less context: cut or summarise old messages and outputs",
        ));
    }
    Ok(())
}

/// All the text a chat request carries, in bytes.
pub fn request_bytes(request: &ChatRequest) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let messages: usize = request
        .messages
        .iter()
        .map(|m| {
            m.content.len()
                + opt(&m.reasoning)
                + opt(&m.tool_call_id)
                + m.tool_calls
                    .iter()
                    .map(|c| c.id.len() + c.name.len() + c.arguments.len())
                    .sum::<usize>()
        })
        .sum();
    let tools: usize = request
        .tools
        .iter()
        .map(|t| t.name.len() + t.description.len() + t.parameters.len())
        .sum();
    let schema = match &request.response_format {
        ResponseFormat::JsonSchema(s) => s.name.len() + s.schema.len(),
        _ => 0,
    };
    let choice = match &request.tool_choice {
        Some(ToolChoice::Named(name)) => name.len(),
        _ => 0,
    };
    let stop: usize = request.stop.iter().map(String::len).sum();
    messages + tools + schema + choice + stop + opt(&request.prefill)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::types::{Message, Role, ToolDef};

    #[test]
    fn each_part_of_a_request_counts_and_refusals_name_the_limit() {
        let mut request = ChatRequest::new(vec![Message::new(Role::User, "hi")]);
        check_chat(&request).unwrap();
        request.tools = vec![ToolDef {
            name: "t".into(),
            description: "d".repeat(MAX_REQUEST_BYTES),
            parameters: "{}".into(),
        }];
        let err = check_chat(&request).unwrap_err();
        assert!(
            matches!(&err, CapabilityError::TooLarge(m) if m.contains(&MAX_REQUEST_BYTES.to_string())),
            "{err}"
        );
        request.tools.clear();
        request.prefill = Some("p".repeat(MAX_REQUEST_BYTES));
        assert!(check_chat(&request).is_err());
        request.prefill = None;
        request.stop = vec!["x".into(); MAX_STOP + 1];
        assert!(
            check_chat(&request)
                .unwrap_err()
                .to_string()
                .contains("stop sequences")
        );
        request.stop.clear();
        request.model = Some("m".repeat(MAX_NAME_BYTES + 1));
        assert!(
            check_chat(&request)
                .unwrap_err()
                .to_string()
                .contains("model alias")
        );

        assert!(check_count(&"x".repeat(MAX_COUNT_BYTES + 1), None).is_err());
        check_count(&"x".repeat(MAX_COUNT_BYTES), None).unwrap();
        assert!(check_embed(&vec![String::new(); MAX_EMBED_INPUTS + 1], None).is_err());
        assert!(check_embed(&["y".repeat(MAX_EMBED_BYTES + 1)], None).is_err());
    }
}
