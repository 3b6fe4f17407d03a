//! The deterministic answer every provider gives, before it is put in a vendor's format.

use crate::faults;

/// Longest user text echoed back, in chars.
const ECHO_LIMIT: usize = 200;

/// What a provider module extracted from a request, in vendor-neutral terms.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conversation {
    pub model: String,
    /// Every input text (system + all messages), as sent.
    pub inputs: Vec<String>,
    /// Text of the last user message, as sent.
    pub last_user: String,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// The request turned reasoning on with the vendor's own control (`reasoning_effort`,
    /// Anthropic `thinking`, Gemini `thinkingConfig`).
    pub reasoning: bool,
    /// The model reasons but the vendor does not return the text (Gemini without
    /// `includeThoughts`): only the token count shows it.
    pub reasoning_hidden: bool,
    /// Tools offered, tool results at the end, JSON asked for.
    pub tool_use: crate::tools::ToolUse,
}

impl Conversation {
    /// The last user message, trimmed, directives removed, cut to the echo limit.
    pub fn user_text(&self) -> String {
        faults::strip(&self.last_user).chars().take(ECHO_LIMIT).collect()
    }
}

/// The answer, split the way streams send it.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub model: String,
    pub text: String,
    /// The tool call the answer is, instead of text (see `tools.rs` for the rule).
    pub call: Option<crate::tools::SimCall>,
    /// Reasoning text when the request asked for it (`sim:think` or the vendor's control).
    pub reasoning: Option<String>,
    /// Whether the vendor sends `reasoning` back as text (else only its token count).
    pub reasoning_visible: bool,
    pub prompt_tokens: u64,
    /// Words of `text` only.
    pub text_tokens: u64,
    /// Words of `reasoning` (0 without it).
    pub reasoning_tokens: u64,
}

impl Answer {
    pub fn new(label: &str, conv: &Conversation, think: bool) -> Self {
        let user = conv.user_text();
        // The simulator plays the model for the platform's task prompts: the research planner
        // (which keeps the question's directives, so faults reach the searches it leads to)
        // and the code writer.
        let tools = &conv.tool_use;
        let call = tools.call(&user);
        let text = if call.is_some() {
            String::new()
        } else if !tools.results.is_empty() {
            crate::tools::quote_results(label, &conv.model, &tools.results)
        } else if tools.json {
            crate::tools::json_answer(label, &conv.model, &user)
        } else {
            crate::plan::plan(&conv.inputs, &conv.last_user).or_else(|| crate::code::reply(conv)).unwrap_or_else(|| {
                format!("Hello from {label} ({}). You said: {user}", conv.model).trim_end().to_owned()
            })
        };
        let reasoning = think.then(|| format!("The user wrote {} words; {label} will echo them.", word_count(&user)));
        let prompt_tokens = conv.inputs.iter().map(|t| word_count(t)).sum();
        Answer {
            model: conv.model.clone(),
            reasoning_visible: !conv.reasoning_hidden,
            text_tokens: word_count(&text) + call.as_ref().map_or(0, |c| word_count(&c.arguments_text())),
            call,
            reasoning_tokens: reasoning.as_deref().map_or(0, word_count),
            text,
            reasoning,
            prompt_tokens,
        }
    }

    /// The text one word per piece, each piece keeping the whitespace before it, so the
    /// pieces concatenate to exactly `text`.
    pub fn text_pieces(&self) -> Vec<String> {
        pieces(&self.text)
    }

    /// A call's arguments as JSON text in stream pieces of at most 12 chars, so a streamed
    /// call arrives in several pieces.
    pub fn argument_pieces(&self) -> Vec<String> {
        let Some(call) = &self.call else { return Vec::new() };
        let chars: Vec<char> = call.arguments_text().chars().collect();
        chars.chunks(12).map(|c| c.iter().collect()).collect()
    }

    /// The reasoning the vendor sends as text, one word per piece (none when hidden).
    pub fn reasoning_pieces(&self) -> Vec<String> {
        self.visible_reasoning().map(pieces).unwrap_or_default()
    }

    pub fn visible_reasoning(&self) -> Option<&str> {
        self.reasoning.as_deref().filter(|_| self.reasoning_visible)
    }

    /// Output tokens as vendors bill them: reasoning included.
    pub fn completion_tokens(&self) -> u64 {
        self.text_tokens + self.reasoning_tokens
    }
}

pub(crate) fn word_count(text: &str) -> u64 {
    u64::try_from(text.split_whitespace().count()).unwrap_or(u64::MAX)
}

/// Splits before the whitespace that precedes every word but the first, so each piece is
/// one word with the whitespace before it (`"Hello"`, `" from"`, ...).
pub(crate) fn pieces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut has_word = false;
    for c in text.chars() {
        let space = c.is_whitespace();
        if space && has_word && !current.ends_with(char::is_whitespace) {
            out.push(std::mem::take(&mut current));
            has_word = false;
        }
        current.push(c);
        has_word |= !space;
    }
    // Trailing whitespace belongs to the last word rather than to an empty piece.
    match out.last_mut() {
        Some(last) if !has_word => last.push_str(&current),
        _ if !current.is_empty() => out.push(current),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pieces_concatenate_to_the_text() {
        let t = "Hello from openai (gpt). You said: a  b";
        let p = pieces(t);
        assert_eq!(p.len(), 8);
        assert_eq!(p.concat(), t);
        assert_eq!(p.first().unwrap(), "Hello");
        assert_eq!(p.get(1).unwrap(), " from");
    }

    #[test]
    fn answer_echoes_cleaned_text_and_counts_words() {
        let conv = Conversation {
            model: "m1".into(),
            inputs: vec!["be brief".into(), "hi there sim:any:cut=1".into()],
            last_user: "  hi   there sim:any:cut=1 ".into(),
            ..Conversation::default()
        };
        let a = Answer::new("openai", &conv, false);
        assert_eq!(a.text, "Hello from openai (m1). You said: hi there");
        assert_eq!(a.prompt_tokens, 5);
        assert_eq!(a.text_tokens, 8);
        assert!(a.reasoning.is_none());
    }
}
