//! The training and evaluation data: the labelled prompts (`tests/routing/prompts.jsonl`)
//! and the RouteLLM correctness labels (`tests/routing/routellm/*.csv`).

use std::path::Path;

use opencode_core::routing::{Mode, Tier};

/// Folds of the cross-validation. A row's fold is a hash of its prompt, fixed before any
/// training: every held-out figure comes from a model that never saw the row.
pub const FOLDS: u64 = 5;

/// A prompt labelled with the mode and tier it should get.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub prompt: String,
    pub mode: Mode,
    pub tier: Tier,
}

/// A benchmark prompt with whether the weak and the strong model answered it correctly.
#[derive(Debug, Clone)]
pub struct Graded {
    pub prompt: String,
    pub weak: bool,
    pub strong: bool,
}

/// The fold of a prompt (FNV-1a of its bytes).
pub fn fold(prompt: &str) -> u64 {
    let hash = prompt.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    hash % FOLDS
}

pub fn labelled(path: &Path) -> Result<Vec<Labelled>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let row: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            let field =
                |name: &str| row.get(name).and_then(|v| v.as_str()).ok_or(format!("line {}: no `{name}`", n + 1));
            let mode = Mode::parse(field("mode")?).ok_or(format!("line {}: unknown mode", n + 1))?;
            let tier = match field("tier")? {
                "system1" => Tier::System1,
                "system2" => Tier::System2,
                other => return Err(format!("line {}: unknown tier `{other}`", n + 1)),
            };
            Ok(Labelled { prompt: field("prompt")?.to_owned(), mode, tier })
        })
        .collect()
}

pub fn graded(path: &Path) -> Result<Vec<Graded>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rows = parse_csv(&text);
    let header = rows.first().ok_or(format!("{}: empty", path.display()))?;
    let column =
        |name: &str| header.iter().position(|h| h == name).ok_or(format!("{}: no column {name}", path.display()));
    let (p, w, s) = (column("prompt")?, column("weak_correct")?, column("strong_correct")?);
    rows.iter()
        .skip(1)
        .map(|row| match (row.get(p), row.get(w), row.get(s)) {
            (Some(prompt), Some(weak), Some(strong)) => {
                Ok(Graded { prompt: prompt.clone(), weak: weak == "True", strong: strong == "True" })
            }
            _ => Err(format!("{}: a short row", path.display())),
        })
        .collect()
}

/// RFC 4180 CSV: quoted fields may hold commas, quotes (doubled) and newlines.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}
