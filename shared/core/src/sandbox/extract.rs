//! Finding the program in a model's answer: the first fenced code block (```` ``` ```` or
//! `~~~`, CommonMark style) whose tag names a runnable language.

use super::Language;

/// A program found in an answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CodeBlock {
    pub language: Language,
    /// The block's text, ending with a newline.
    pub code: String,
}

struct Fence {
    marker: char,
    len: usize,
    indent: usize,
    tag: String,
    lines: Vec<String>,
}

/// The first closed block tagged `python`, `py`, `js`, `javascript`, `node`, ... (see
/// [`Language::from_alias`]); when there is none and `untagged` is given, the first closed
/// block without a tag, as that language. Blocks in other languages (`bash`, `json`) and a
/// block left open (a cut answer) are never returned.
pub fn extract_code(answer: &str, untagged: Option<Language>) -> Option<CodeBlock> {
    let mut open: Option<Fence> = None;
    let mut fallback = None;
    for line in answer.lines() {
        let indent = line.bytes().take_while(|&b| b == b' ').count();
        let rest = line.trim_start_matches(' ');
        match open.take() {
            None if indent <= 3 => open = opening(rest, indent),
            None => {}
            Some(fence) if indent <= 3 && closes(rest, &fence) => {
                let code = fence.lines.iter().fold(String::new(), |mut code, l| {
                    code.push_str(l);
                    code.push('\n');
                    code
                });
                if let Some(language) = tag_language(&fence.tag) {
                    return Some(CodeBlock { language, code });
                }
                if fence.tag.is_empty() && fallback.is_none() {
                    fallback = untagged.map(|language| CodeBlock { language, code });
                }
            }
            Some(mut fence) => {
                // Content loses up to the opening fence's indentation.
                let strip = indent.min(fence.indent);
                fence.lines.push(line.get(strip..).unwrap_or_default().to_owned());
                open = Some(fence);
            }
        }
    }
    fallback
}

fn opening(rest: &str, indent: usize) -> Option<Fence> {
    let marker = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.chars().take_while(|c| *c == marker).count();
    let info = rest.get(len..).unwrap_or_default().trim();
    if len < 3 || (marker == '`' && info.contains('`')) {
        return None;
    }
    let tag = info
        .split(|c: char| c.is_whitespace() || c == ',' || c == '}')
        .next()
        .unwrap_or_default()
        .trim_start_matches(['{', '.'])
        .to_owned();
    Some(Fence { marker, len, indent, tag, lines: Vec::new() })
}

fn closes(rest: &str, fence: &Fence) -> bool {
    let run = rest.chars().take_while(|c| *c == fence.marker).count();
    run >= fence.len && rest.chars().skip(run).all(char::is_whitespace)
}

fn tag_language(tag: &str) -> Option<Language> {
    Language::from_alias(tag)
}
