//! `cargo run --release --manifest-path tests/token-report/Cargo.toml -- <repo root>`: the error
//! of `opencode_core::tokens::text_tokens` against o200k on English prose, English prompts,
//! Chinese prompts and code. The estimator's weights were fitted on the README, the Chinese
//! prompts of `tests/routing/prompts.jsonl` and two Rust files (`functions/dialect.rs`,
//! `providers/anthropic.rs`); every other corpus here is held out.

use std::path::{Path, PathBuf};

use opencode_core::tokens::text_tokens;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The `prompt` column of a RouteLLM CSV's first `limit` rows (quoted fields unquoted).
fn prompts(path: &Path, limit: usize) -> Vec<String> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = read(path).chars().collect::<Vec<_>>().into_iter().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => row.push(std::mem::take(&mut field)),
            '\n' if !quoted => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                if rows.len() > limit {
                    break;
                }
            }
            c => field.push(c),
        }
    }
    let Some(column) = rows.first().and_then(|header| header.iter().position(|h| h == "prompt")) else { return vec![] };
    rows.iter().skip(1).filter_map(|r| r.get(column).cloned()).collect()
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let bpe = match tiktoken_rs::o200k_base() {
        Ok(bpe) => bpe,
        Err(err) => return eprintln!("o200k is not available: {err}"),
    };
    let data = std::env::var_os("ROUTELLM_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/bench-data/routellm"));
    let zh: Vec<String> = read(&root.join("tests/routing/prompts.jsonl"))
        .lines()
        .filter(|line| line.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)))
        .map(str::to_owned)
        .collect();
    let code = |dir: &str, ext: &str| -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        files.sort();
        files.iter().map(|p| read(p)).collect()
    };
    let corpora: Vec<(&str, Vec<String>)> = vec![
        ("English prose (ARCHITECTURE.md)", vec![read(&root.join("ARCHITECTURE.md"))]),
        ("English prompts (GSM8K, 300)", prompts(&data.join("gsm8k.csv"), 300)),
        ("English prompts (MMLU, 300)", prompts(&data.join("mmlu.csv"), 300)),
        ("Chinese prompts (fitted on)", zh),
        ("Rust (shared/runtime/src)", code("shared/runtime/src", "rs")),
        ("JavaScript (tests/e2e/suite)", code("tests/e2e/suite", "mjs")),
    ];
    println!("token estimator against o200k (tiktoken), the estimate's error in total and per text (mean |error|):");
    for (name, texts) in corpora {
        let texts: Vec<&String> = texts.iter().filter(|t| !t.trim().is_empty()).collect();
        if texts.is_empty() {
            println!("  {name:34} (not found)");
            continue;
        }
        let (mut real, mut estimated, mut abs_error) = (0f64, 0f64, 0f64);
        for text in &texts {
            let r = bpe.encode_ordinary(text).len() as f64;
            let e = text_tokens(text) as f64;
            real += r;
            estimated += e;
            abs_error += ((e - r) / r.max(1.0)).abs();
        }
        println!(
            "  {name:34} {:>6} texts  {real:>8} tokens  total {:+6.1}%  per text {:5.1}%",
            texts.len(),
            (estimated - real) / real * 100.0,
            abs_error / texts.len() as f64 * 100.0
        );
    }
}
