//! The features the learned router reads: the analyzer's counted signals and cue evidence
//! (dense, a few dozen numbers) and hashed words, word pairs, CJK characters and CJK pairs
//! (sparse), read in the lexicon's own pass over the text (`scan`). One extractor for
//! training (`tools/router-train`) and for routing, so the weights always meet the features
//! they were trained on.
//!
//! A hashed token adds `1 / sqrt(tokens)` to its bucket: a long prompt does not outweigh a
//! short one by its length alone (length has its own dense feature).

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

/// Extracts the features of `input` in one pass: returns the dense ones and calls `token`
/// with the 64-bit hash of every sparse token (a caller reduces it to its own buckets).
pub fn extract(input: &RouteInput<'_>, mut token: impl FnMut(u64)) -> Features {
    let scan = Scan::run_with(input.text, false, Some(&mut token));
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
    let options = |letter: u8| text.as_bytes().windows(3).any(|w| w == [b'\n', letter, b'.']);
    let kind = if options(b'A') && options(b'B') && options(b'C') {
        Kind::Choice
    } else if scan.fences == 0 && (scan.math_question && scan.numbers >= 1 || scan.numbers >= 3 && scan.questions >= 1)
    {
        Kind::WordProblem
    } else {
        Kind::Request
    };
    Features { kind, dense, tokens: scan.tokens }
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
        // every identifier is one token; words with a digit or two are still words
        assert_eq!(hashes("order 3f2a9c1e-4b1e shipped"), hashes("order 77aa01bc-e0f2 shipped"));
        assert_eq!(hashes("req_ab936b08d25ed206cb294cf0"), hashes("req_0c9d8e7f6a5b4c3d2e1f0a9b"));
        assert_ne!(hashes("python3 mp3"), hashes("python4 mp4"));
        // a UUID is one identifier (and its pair with the word before), whatever its digits
        assert_eq!(hashes("id 3f2a9c1e-4b1e-9f0c-b3d5-e8a1c2f4d6b7").len(), 3);
        assert_eq!(
            hashes("id 3f2a9c1e-4b1e-9f0c-b3d5-e8a1c2f4d6b7"),
            hashes("id 12345678-abcd-1234-face-000000000000")
        );
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
