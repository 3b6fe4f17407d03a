//! Playing the model for the platform's `code` mode, deterministically.
//!
//! A request is a code prompt when one of its texts contains [`CODE_MARKER`] (the code mode's
//! system prompt says it). The answer is one fenced block plus one sentence:
//! - the first fenced block of the last user message, verbatim (so tests choose the program:
//!   `print(2+3)`, an endless loop, a crash);
//! - in a fix round ([`FIX_MARKER`] present), a block whose info string contains the word
//!   `fix` is preferred; without one the first block is returned again, so a failing program
//!   fails again;
//! - with no block, a program that prints the user's text, in JavaScript when the prompt asks
//!   for a block tagged `javascript`, else Python.

use crate::reply::Conversation;

/// Word for word in the code mode's prompts (shared/core/src/functions/code/prompts.rs).
pub(crate) const CODE_MARKER: &str = "Reply with exactly one fenced code block";
pub(crate) const FIX_MARKER: &str = "Fix the failing program";
const JAVASCRIPT_MARKER: &str = "tagged `javascript`";

/// The code-mode answer, when the request is a code prompt.
pub(crate) fn reply(conv: &Conversation) -> Option<String> {
    if !conv.inputs.iter().any(|t| t.contains(CODE_MARKER)) {
        return None;
    }
    let fix_round = conv.inputs.iter().any(|t| t.contains(FIX_MARKER));
    let javascript = conv.inputs.iter().any(|t| t.contains(JAVASCRIPT_MARKER));
    let default_tag = if javascript { "javascript" } else { "python" };
    let blocks = blocks(&conv.last_user);
    let chosen = if fix_round {
        blocks.iter().find(|b| b.info.split_whitespace().any(|w| w == "fix")).or(blocks.first())
    } else {
        blocks.first()
    };
    let (tag, code) = match chosen {
        Some(block) => {
            let tag = block.info.split_whitespace().next().unwrap_or(default_tag);
            (tag.to_owned(), block.code.clone())
        }
        None => {
            // A JSON string is a valid Python and JavaScript string literal.
            let text = serde_json::to_string(&conv.user_text()).unwrap_or_default();
            let call = if javascript { "console.log" } else { "print" };
            (default_tag.to_owned(), format!("{call}({text})\n"))
        }
    };
    Some(format!("```{tag}\n{code}```\nThis program is the simulator's answer to the task."))
}

struct Block {
    info: String,
    code: String,
}

/// Closed fenced blocks (``` or ~~~, at least three), in order.
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(String, Block)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                let fence: String = trimmed.chars().take_while(|c| *c == '`' || *c == '~').collect();
                if fence.len() >= 3 && fence.chars().all(|c| fence.starts_with(c)) {
                    let info = trimmed.get(fence.len()..).unwrap_or_default().trim().to_owned();
                    open = Some((fence, Block { info, code: String::new() }));
                }
            }
            Some((fence, block)) if trimmed.trim_end() == fence => out.push(block),
            Some((fence, mut block)) => {
                block.code.push_str(line);
                block.code.push('\n');
                open = Some((fence, block));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn conv(system: &str, user: &str) -> Conversation {
        Conversation {
            model: "m".into(),
            inputs: vec![system.into(), user.into()],
            last_user: user.into(),
            ..Conversation::default()
        }
    }

    const SYSTEM: &str = "You write programs. Reply with exactly one fenced code block tagged `python`.";

    #[test]
    fn only_code_prompts_get_code() {
        assert_eq!(reply(&conv("be brief", "```python\nprint(1)\n```")), None);
    }

    #[test]
    fn the_first_block_is_returned_verbatim() {
        let user = "run this\n```python\nfor i in range(2):\n    print(i)\n```\nand ```js\nx\n```";
        let text = reply(&conv(SYSTEM, user)).unwrap();
        assert!(text.starts_with("```python\nfor i in range(2):\n    print(i)\n```\n"), "{text}");
    }

    #[test]
    fn without_a_block_the_program_prints_the_text() {
        let text = reply(&conv(SYSTEM, "say \"hi\"")).unwrap();
        assert!(text.starts_with("```python\nprint(\"say \\\"hi\\\"\")\n```"), "{text}");
        let js = SYSTEM.replace("`python`", "`javascript`");
        let text = reply(&conv(&js, "hi")).unwrap();
        assert!(text.starts_with("```javascript\nconsole.log(\"hi\")\n```"), "{text}");
    }

    #[test]
    fn a_fix_round_prefers_the_block_marked_fix() {
        let user = "```python\nraise SystemExit(3)\n```\n```python fix\nprint('fixed')\n```";
        let first = reply(&conv(SYSTEM, user)).unwrap();
        assert!(first.starts_with("```python\nraise SystemExit(3)\n```"), "{first}");
        let fix_system = format!("{SYSTEM} Fix the failing program.");
        let fixed = reply(&conv(&fix_system, user)).unwrap();
        assert!(fixed.starts_with("```python\nprint('fixed')\n```"), "{fixed}");
        let same = reply(&conv(&fix_system, "```python\nraise SystemExit(3)\n```")).unwrap();
        assert!(same.starts_with("```python\nraise SystemExit(3)\n```"), "{same}");
    }
}
