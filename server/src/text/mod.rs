//! Reading text: the tokenizer, the word lists prompts are read with,
//! durations in prompts, and small normalizing helpers. Shared by the
//! decision rules, preference extraction and the model clients, so none of
//! them reaches into another's internals.

pub(crate) mod duration;
pub(crate) mod lexer;
pub(crate) mod lexicon;

/// The JSON inside a Markdown code fence (```` ```json ... ``` ````), or the
/// trimmed content when there is no fence: some OpenAI-compatible servers
/// wrap JSON-mode output in one.
pub(crate) fn strip_fence(content: &str) -> &str {
    let t = content.trim();
    if let Some(inner) = t.strip_prefix("```") {
        let inner = inner.strip_prefix("json").unwrap_or(inner);
        if let Some(body) = inner.trim_end().strip_suffix("```") {
            return body.trim();
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_fence_unwraps_a_json_fence_and_leaves_plain_content() {
        assert_eq!(strip_fence("```json\n{\"a\": 1}\n```"), "{\"a\": 1}");
        assert_eq!(strip_fence("  ```\n[]\n```  "), "[]");
        assert_eq!(strip_fence(" {\"a\": 1} "), "{\"a\": 1}");
        assert_eq!(strip_fence("```json {\"unclosed\": 1}"), "```json {\"unclosed\": 1}");
    }
}
