//! Token counts estimated without a tokenizer: what limits and budgets reserve before a call,
//! and what the token-estimation endpoints answer. A vendor's tokenizer (o200k for OpenAI,
//! others for Anthropic and Gemini) is megabytes of tables; this reads the text once, by the
//! shapes BPE vocabularies learn: common words and their leading space are about one token,
//! long words a few, digits go in threes, CJK characters a little under one each, punctuation
//! in short runs.
//! `scripts/bench` reports its error against o200k on English, Chinese and code.

use crate::model::{ChatRequest, Message, Role};

/// The output a reservation assumes when a request names no `max_tokens`.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 4096;

/// What every message adds besides its content (role and separators, as OpenAI counts them).
const PER_MESSAGE: u64 = 4;
/// The reply's own priming.
const PER_REPLY: u64 = 3;
/// An image whose size is unknown: a 1024 x 1024 image at high detail (OpenAI's tiles); 85 at
/// low detail.
const PER_IMAGE: u64 = 765;
const PER_LOW_DETAIL_IMAGE: u64 = 85;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Space,
    Newline,
    Cjk,
    Other,
}

fn class(c: char) -> Class {
    match c {
        'a'..='z' | 'A'..='Z' => Class::Letter,
        '0'..='9' => Class::Digit,
        '\n' | '\r' => Class::Newline,
        ' ' | '\t' => Class::Space,
        '\u{3040}'..='\u{30ff}' | '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{ac00}'..='\u{d7af}' => {
            Class::Cjk
        }
        c if c.is_alphabetic() => Class::Letter,
        _ => Class::Other,
    }
}

/// The estimated tokens of `text`.
pub fn text_tokens(text: &str) -> u64 {
    // Hundredths of a token per run of one class of characters, fitted to o200k on English
    // prose, Chinese prompts and Rust source (scripts/bench reports the error on other text).
    let mut centi = 0u64;
    let mut chars = text.chars().peekable();
    while let Some(first) = chars.next() {
        let kind = class(first);
        let mut run = 1u64;
        let mut ascii = first.is_ascii();
        while let Some(&next) = chars.peek() {
            if class(next) != kind {
                break;
            }
            run = run.saturating_add(1);
            ascii &= next.is_ascii();
            chars.next();
        }
        centi = centi.saturating_add(match kind {
            // A word, with the space before it: a common one is a token, a long one a few.
            Class::Letter if ascii => run.saturating_mul(12).saturating_add(65),
            Class::Letter => run.saturating_mul(34),
            Class::Digit => run.div_ceil(3).saturating_mul(100),
            // A single space joins the next word; a longer run (indentation) is a token.
            Class::Space => u64::from(run > 1).saturating_mul(100),
            // Line breaks mostly join the tokens around them.
            Class::Newline => 0,
            Class::Cjk => run.saturating_mul(86),
            Class::Other => run.saturating_mul(19).saturating_add(53),
        });
    }
    centi.div_ceil(100)
}

/// The estimated input tokens of a request: its messages (content, images, calls, results), its
/// tools' names, descriptions and schemas, and the vendors' per-message overhead.
pub fn request_tokens(request: &ChatRequest) -> u64 {
    let messages = request.messages.iter().map(message_tokens).fold(0u64, u64::saturating_add);
    let tools = request
        .tools
        .iter()
        .map(|tool| {
            text_tokens(&tool.name)
                .saturating_add(text_tokens(&tool.description))
                .saturating_add(text_tokens(&tool.parameters.to_string()))
                .saturating_add(PER_MESSAGE)
        })
        .fold(0u64, u64::saturating_add);
    messages.saturating_add(tools).saturating_add(PER_REPLY)
}

fn message_tokens(message: &Message) -> u64 {
    let calls = message
        .tool_calls
        .iter()
        .map(|call| text_tokens(&call.name).saturating_add(text_tokens(&call.arguments)).saturating_add(PER_MESSAGE))
        .fold(0u64, u64::saturating_add);
    let images = message
        .images
        .iter()
        .map(|image| if image.detail.as_deref() == Some("low") { PER_LOW_DETAIL_IMAGE } else { PER_IMAGE })
        .fold(0u64, u64::saturating_add);
    let role = if message.role == Role::Tool { 2 } else { 0 };
    text_tokens(&message.content)
        .saturating_add(calls)
        .saturating_add(images)
        .saturating_add(role)
        .saturating_add(PER_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Image, ImageSource, Tool};

    #[test]
    fn words_digits_and_cjk_count_as_vocabularies_split_them() {
        assert_eq!(text_tokens(""), 0);
        assert_eq!(text_tokens("Hello world"), 3, "1.25 + 1.25");
        assert!(text_tokens("internationalization") > text_tokens("word"));
        assert_eq!(text_tokens("1234567"), 3);
        assert_eq!(text_tokens("你好世界"), 4, "0.86 each");
        assert_eq!(text_tokens("    return x;"), 4);
        assert!(text_tokens("naïve café") > text_tokens("naive cafe"), "letters beyond ASCII take more");
    }

    #[test]
    fn a_request_counts_messages_images_calls_and_tools() {
        let mut request = ChatRequest {
            messages: vec![Message::system("Be brief."), Message::user("Hello world")],
            ..ChatRequest::default()
        };
        let plain = request_tokens(&request);
        assert_eq!(plain, text_tokens("Be brief.") + text_tokens("Hello world") + 2 * PER_MESSAGE + PER_REPLY);
        if let Some(user) = request.messages.last_mut() {
            user.images =
                vec![Image { source: ImageSource::Url { url: "https://x/a.png".into() }, detail: Some("low".into()) }];
        }
        assert_eq!(request_tokens(&request), plain + PER_LOW_DETAIL_IMAGE);
        request.tools = vec![Tool {
            name: "now".into(),
            description: String::new(),
            parameters: serde_json::json!({}),
            strict: false,
        }];
        assert!(request_tokens(&request) > plain + PER_LOW_DETAIL_IMAGE + PER_MESSAGE);
    }

    #[test]
    fn huge_inputs_saturate_rather_than_overflow() {
        let text = "x".repeat(10_000);
        assert_eq!(text_tokens(&text), (10_000 * 12 + 65u64).div_ceil(100));
    }
}
