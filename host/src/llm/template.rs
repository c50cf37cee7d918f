//! Chat templates, for prefilling through a raw `/completions` endpoint.
//!
//! A provider whose chat API cannot continue a partial assistant message still can through
//! `/completions`, given the conversation rendered as the model was trained to see it. Built in:
//! `chatml` (Qwen, SmolLM, many fine-tunes). Otherwise a Jinja file in Hugging Face's
//! `chat_template` dialect (rendered with `messages`, `add_generation_prompt = true`,
//! `bos_token`, `eos_token` and `raise_exception`).

use super::types::{Message, Role};
use crate::capability::{CapResult, CapabilityError};

/// Why a chat template cannot be used (the message includes its cause's text).
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read chat template {spec}: {error} (use `chatml` or a Jinja file)")]
    Read { spec: String, error: std::io::Error },
    /// The template does not render a one-message conversation.
    #[error(transparent)]
    Render(CapabilityError),
}

/// A way to turn messages into a prompt string.
#[derive(Clone, Debug)]
pub enum ChatTemplate {
    ChatMl,
    Jinja {
        source: String,
        bos: String,
        eos: String,
    },
}

impl ChatTemplate {
    /// `chatml`, or a path to a Jinja template file.
    pub fn load(spec: &str) -> Result<ChatTemplate, TemplateError> {
        if spec == "chatml" {
            return Ok(ChatTemplate::ChatMl);
        }
        let source = std::fs::read_to_string(spec).map_err(|error| TemplateError::Read {
            spec: spec.to_string(),
            error,
        })?;
        let template = ChatTemplate::Jinja {
            source,
            bos: String::new(),
            eos: String::new(),
        };
        template
            .render(&[Message::new(Role::User, "hi")], "")
            .map_err(TemplateError::Render)?;
        Ok(template)
    }

    /// The prompt for `messages`, ending with the assistant's turn opened and `prefill` in it.
    pub fn render(&self, messages: &[Message], prefill: &str) -> CapResult<String> {
        let mut prompt = match self {
            ChatTemplate::ChatMl => {
                let mut out = String::new();
                for m in messages {
                    out.push_str("<|im_start|>");
                    out.push_str(role_name(m.role));
                    out.push('\n');
                    out.push_str(&m.content);
                    out.push_str("<|im_end|>\n");
                }
                out.push_str("<|im_start|>assistant\n");
                out
            }
            ChatTemplate::Jinja { source, bos, eos } => {
                let mut env = minijinja::Environment::new();
                env.add_function(
                    "raise_exception",
                    |message: String| -> Result<String, minijinja::Error> {
                        Err(minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            message,
                        ))
                    },
                );
                let template = env
                    .template_from_str(source)
                    .map_err(|e| CapabilityError::Internal(format!("chat template: {e}")))?;
                let messages: Vec<_> = messages
                    .iter()
                    .map(
                        |m| minijinja::context! { role => role_name(m.role), content => m.content },
                    )
                    .collect();
                template
                    .render(minijinja::context! {
                        messages => messages,
                        add_generation_prompt => true,
                        bos_token => bos,
                        eos_token => eos,
                    })
                    .map_err(|e| {
                        CapabilityError::InvalidArgument(format!(
                            "rendering the chat template: {e}"
                        ))
                    })?
            }
        };
        prompt.push_str(prefill);
        Ok(prompt)
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_opens_the_assistant_turn_with_the_prefill() {
        let messages = [
            Message::new(Role::System, "Be brief."),
            Message::new(Role::User, "2+2?"),
        ];
        let prompt = ChatTemplate::ChatMl.render(&messages, "<think>").unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>"
        );
    }

    #[test]
    fn jinja_templates_render_like_hugging_face() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jinja");
        std::fs::write(
            &path,
            "{% for m in messages %}[{{ m.role }}]{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}",
        )
        .unwrap();
        let template = ChatTemplate::load(path.to_str().unwrap()).unwrap();
        let prompt = template
            .render(&[Message::new(Role::User, "hi")], "Sure,")
            .unwrap();
        assert_eq!(prompt, "[user]hi\n[assistant]Sure,");
        std::fs::write(&path, "{{ raise_exception('no system role') }}").unwrap();
        assert!(
            ChatTemplate::load(path.to_str().unwrap())
                .unwrap_err()
                .to_string()
                .contains("no system role")
        );
        assert!(
            ChatTemplate::load("/nonexistent.jinja")
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
    }
}
