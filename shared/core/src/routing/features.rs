//! The features the learned router reads: the analyzer's counted signals and cue evidence
//! (dense, a few dozen numbers) and hashed words, word pairs, CJK characters and CJK pairs
//! (sparse). One extractor for training (`tools/router-train`) and for routing, so the
//! weights always meet the features they were trained on.
//!
//! A hashed token adds `1 / sqrt(tokens)` to its bucket: a long prompt does not outweigh a
//! short one by its length alone (length has its own dense feature).

use super::index::is_cjk;
use super::scan::Scan;
use super::{Mode, RouteInput};

/// Dense features (see [`extract`] for their order).
pub const DENSE: usize = 20;
/// Dense feature names, for the trainer's report and the router's reasons.
pub const DENSE_NAMES: [&str; DENSE] = [
    "bias",
    "length",
    "cjk length",
    "questions",
    "numbers",
    "operators",
    "code symbols",
    "code blocks",
    "list items",
    "multi-step cues",
    "constraints",
    "sub-task cues",
    "math question",
    "chat cues",
    "knowledge cues",
    "search cues",
    "code cues",
    "thinking cues",
    "research cues",
    "conversation",
];

/// What kind of text a prompt is: the tier model weighs the dense features per kind (length
/// says something else about a math word problem than about a request to an assistant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request as users write them.
    Request = 0,
    /// A multiple-choice question (options on lines of their own: `A.`, `B.`, ...).
    Choice = 1,
    /// A word problem: a quantity question with a number, or a question with three, no code.
    WordProblem = 2,
}

/// Kinds of text, [`Kind`] as an index.
pub const KINDS: usize = 3;

/// A prompt's features: its kind, the dense ones and the number of hashed tokens (their scale).
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub kind: Kind,
    pub dense: [f32; DENSE],
    /// Hashed tokens seen; each adds `scale()` to its bucket.
    pub tokens: u32,
}

impl Features {
    /// What one hashed token adds to its bucket.
    pub fn scale(&self) -> f32 {
        1.0 / (self.tokens.max(1) as f32).sqrt()
    }
}

#[inline]
fn log1p(x: f64) -> f32 {
    x.ln_1p() as f32
}

/// Extracts the features of `input`: returns the dense ones and calls `token` with the 64-bit
/// hash of every sparse token (a caller reduces it to its own number of buckets).
pub fn extract(input: &RouteInput<'_>, token: impl FnMut(u64)) -> Features {
    let mut features = signals(input);
    features.tokens = tokens(input.text, token);
    features
}

/// The dense features and the kind of `input`, without its tokens (`tokens` is 0).
pub fn signals(input: &RouteInput<'_>) -> Features {
    let scan = Scan::run(input.text, false);
    let evidence = |mode: Mode| (scan.modes.get(mode).clamp(-2.0, 4.0) / 2.0) as f32;
    let dense = [
        1.0,
        log1p(scan.latin_chars as f64) / 8.0,
        log1p(scan.cjk_chars as f64) / 6.0,
        log1p(f64::from(scan.questions)),
        log1p(f64::from(scan.numbers)) / 2.0,
        log1p(f64::from(scan.operators)) / 2.0,
        log1p(f64::from(scan.code_symbols)) / 3.0,
        f64::from(scan.fences.min(4)) as f32 / 2.0,
        log1p(f64::from(scan.list_items)) / 2.0,
        (scan.steps.clamp(0.0, 5.0) / 2.0) as f32,
        log1p(f64::from(scan.constraints)),
        log1p(f64::from(scan.subtasks)),
        f32::from(u8::from(scan.math_question)),
        evidence(Mode::Chat),
        evidence(Mode::Knowledge),
        evidence(Mode::Search),
        evidence(Mode::Code),
        evidence(Mode::Thinking),
        evidence(Mode::Research),
        log1p(input.message_count.saturating_sub(1) as f64) / 2.0,
    ];
    let text = input.text;
    let kind = if ["\nA.", "\nB.", "\nC."].iter().all(|option| text.contains(option)) {
        Kind::Choice
    } else if scan.fences == 0 && (scan.math_question && scan.numbers >= 1 || scan.numbers >= 3 && scan.questions >= 1)
    {
        Kind::WordProblem
    } else {
        Kind::Request
    };
    Features { kind, dense, tokens: 0 }
}

const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// A final mix, so the low bits (the bucket) depend on every byte.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const WORD: u64 = 0xcbf2_9ce4_8422_2325;
const CJK: u64 = 0x6a09_e667_f3bc_c908;
const PAIR: u64 = 0x9e37_79b9_7f4a_7c15;

/// Calls `token` for every word (letters and digits, lower-cased; a number is `0`), pair of
/// adjacent words, CJK character and pair of adjacent CJK characters; returns how many.
/// ASCII is read byte by byte; other characters are decoded.
pub fn tokens(text: &str, mut token: impl FnMut(u64)) -> u32 {
    let mut count = 0_u32;
    let mut emit = |hash: u64| {
        count = count.saturating_add(1);
        token(hash);
    };
    let bytes = text.as_bytes();
    let (mut previous_word, mut previous_cjk) = (None::<u64>, None::<u32>);
    // The word being read: its FNV state and whether it is all digits.
    let mut word: Option<(u64, bool)> = None;
    let mut i = 0;
    // One step past the end, as a space: it ends the last word.
    while i <= bytes.len() {
        let byte = bytes.get(i).copied().unwrap_or(b' ');
        let (c, len) = if byte.is_ascii() {
            (char::from(byte), 1)
        } else {
            let c = text.get(i..).and_then(|rest| rest.chars().next()).unwrap_or(' ');
            (c, c.len_utf8())
        };
        i = i.saturating_add(len.max(1));
        // The CJK range first: one comparison, where `is_alphanumeric` is a table search.
        let cjk = !byte.is_ascii() && is_cjk(c);
        let word_char = if byte.is_ascii() { byte.is_ascii_alphanumeric() } else { !cjk && c.is_alphanumeric() };
        if word_char {
            let (mut hash, mut digits) = word.unwrap_or((WORD, true));
            if byte.is_ascii() {
                // `| 0x20` lower-cases an ASCII letter and leaves a digit alone.
                hash = (hash ^ u64::from(byte | 0x20)).wrapping_mul(FNV_PRIME);
                digits &= byte.is_ascii_digit();
            } else {
                for lower in c.to_lowercase() {
                    hash = (hash ^ u64::from(lower as u32)).wrapping_mul(FNV_PRIME);
                }
                digits = false;
            }
            word = Some((hash, digits));
            continue;
        }
        if let Some((hash, digits)) = word.take() {
            let hash = if digits { mix(WORD ^ 0x30) } else { mix(hash) };
            emit(hash);
            if let Some(p) = previous_word {
                emit(mix(p ^ hash.rotate_left(17) ^ PAIR));
            }
            (previous_word, previous_cjk) = (Some(hash), None);
        }
        if cjk {
            let code = c as u32;
            emit(mix(CJK ^ u64::from(code)));
            if let Some(p) = previous_cjk {
                emit(mix(CJK ^ PAIR ^ (u64::from(p) << 32 | u64::from(code))));
            }
            (previous_cjk, previous_word) = (Some(code), None);
        } else if !c.is_whitespace() {
            // Punctuation ends a phrase: no pair across it.
            (previous_word, previous_cjk) = (None, None);
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(text: &str) -> Vec<u64> {
        let mut seen = Vec::new();
        let features = extract(&RouteInput::new(text), |h| seen.push(h));
        assert_eq!(features.tokens as usize, seen.len());
        seen
    }

    #[test]
    fn words_pairs_and_cjk_characters() {
        // two words and their pair; three characters and two pairs
        assert_eq!(hashes("Hello world").len(), 3);
        assert_eq!(hashes("你好吗").len(), 5);
        // case and numbers do not matter; punctuation breaks pairs
        assert_eq!(hashes("HELLO World"), hashes("hello world"));
        assert_eq!(hashes("pay 12 now"), hashes("pay 7 now"));
        assert_eq!(hashes("hello, world").len(), 2);
        assert!(hashes("").is_empty());
    }

    #[test]
    fn dense_features_are_bounded() {
        let text = "Compare these three options step by step, then write a report. ```rust\nfn main() {}\n```";
        let features = extract(&RouteInput { text, message_count: 3 }, |_| ());
        assert!(features.dense.iter().all(|v| v.is_finite() && (-1.0..=4.0).contains(v)), "{features:?}");
        assert_eq!(features.dense[0], 1.0);
    }
}
