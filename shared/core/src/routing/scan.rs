//! The analyzer's single pass over a prompt: counts and cue evidence, no allocation per token.
//!
//! ASCII is read byte by byte; other characters are decoded once. A Latin word is hashed as
//! it is read (lower-cased) and looked up when it ends, alone and as the continuation of every
//! phrase the previous words started (the lexicon says which hashes start longer phrases), so a
//! word costs about one table probe. A CJK character is looked up as the start of a keyword;
//! the longest keyword found consumes its characters.

use super::analyzer::ModeWeights;
use super::index::{hash_word, is_cjk, phrase_seed, phrase_step, Lexicon};
use super::lexicon::Cue;

/// Seeds of the token hashes, so a word, a CJK character and a pair never share one.
const WORD: u64 = 0xcbf2_9ce4_8422_2325;
const CJK: u64 = 0x6a09_e667_f3bc_c908;
const PAIR: u64 = 0x9e37_79b9_7f4a_7c15;
const NUMBER: u64 = 0x3c6e_f372_fe94_f82b;
const IDENTIFIER: u64 = 0xa54f_f53a_5f1d_36f1;

/// Whether an ASCII word is an identifier (a request id, a hash, a UUID's part): letters and
/// digits mixed, eight or more of them, or three or more hex digits. Every identifier is one
/// token, as every number is: a random id would otherwise be words the router never saw, each
/// moving the score a little and a different id moving it differently.
fn is_identifier(word: &str) -> bool {
    // Cheapest rejections first: most words are short and have a letter past `f` early on.
    let bytes = word.as_bytes();
    (bytes.len() >= 8 || bytes.len() >= 3 && bytes.iter().all(u8::is_ascii_hexdigit))
        && bytes.iter().any(u8::is_ascii_digit)
        && bytes.iter().any(u8::is_ascii_alphabetic)
        && bytes.iter().all(u8::is_ascii_alphanumeric)
}

/// The length of a UUID (8-4-4-4-12 hex digits), which `bytes` starts with if [`uuid_at`].
const UUID_LEN: usize = 36;

/// Whether `bytes` starts with a UUID: one identifier, where its groups alone would be words,
/// numbers or identifiers as its random digits fell.
fn uuid_at(bytes: &[u8]) -> bool {
    bytes.get(8) == Some(&b'-')
        && bytes.get(..UUID_LEN).is_some_and(|head| {
            head.iter()
                .enumerate()
                .all(|(k, b)| if matches!(k, 8 | 13 | 18 | 23) { *b == b'-' } else { b.is_ascii_hexdigit() })
        })
        && !bytes.get(UUID_LEN).is_some_and(u8::is_ascii_alphanumeric)
}

/// A final mix (SplitMix64's), so a token's low bits (its bucket) depend on all of it.
#[inline]
fn token_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Most cue hits kept for the reasons (the evidence counts all of them).
const MAX_HITS: usize = 12;
/// Phrases are at most four words: at most three can be open when a word ends.
const MAX_OPEN: usize = 3;

/// An open phrase: the hash of its words so far and the byte where it starts.
#[derive(Debug, Clone, Copy, Default)]
struct Open {
    hash: u64,
    start: usize,
}

/// Where a line is in telling whether it starts a list item (`1.`, `2)`, `- `, `* `, `• `).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Line {
    Start,
    Digits,
    Bullet,
    Rest,
}

/// CJK and full-width punctuation (the full-width letters and digits excluded): not word
/// characters, told apart without a Unicode table lookup.
#[inline]
fn is_cjk_punctuation(c: char) -> bool {
    matches!(c as u32,
        0x3000..=0x303F | 0xFF00..=0xFF0F | 0xFF1A..=0xFF20 | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65)
}

/// A character of a word: a letter or digit, not CJK (CJK is matched by keyword, not word).
#[inline]
fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        !is_cjk(c) && !is_cjk_punctuation(c) && c.is_alphanumeric()
    }
}

/// Where the word characters from byte `i` on end (`i` itself if there are none).
fn word_end(text: &str, i: usize) -> usize {
    let rest = text.get(i..).unwrap_or("");
    rest.char_indices().find(|&(_, c)| !is_word_char(c)).and_then(|(k, _)| i.checked_add(k)).unwrap_or(text.len())
}

/// Where the learned router's tokens go: each word, pair of adjacent words, CJK character
/// and pair of adjacent CJK characters, as a 64-bit hash (see `features`).
pub(super) type TokenSink<'s> = &'s mut dyn FnMut(u64);

/// What one pass found.
pub(super) struct Scan<'t, 's> {
    text: &'t str,
    /// The learned router's tokens, read in the same pass (`None` for the lexicon alone).
    sink: Option<TokenSink<'s>>,
    pub(super) tokens: u32,
    previous_word: Option<u64>,
    previous_cjk: Option<u32>,
    lexicon: &'static Lexicon,
    explain: bool,
    pub(super) latin_chars: usize,
    pub(super) cjk_chars: usize,
    pub(super) questions: u32,
    pub(super) numbers: u32,
    pub(super) operators: u32,
    /// `{ } ; [ ] _` and backticks.
    pub(super) code_symbols: u32,
    /// Runs of three backticks.
    pub(super) fences: u32,
    pub(super) list_items: u32,
    /// Cue evidence per mode (negative cues included; the caller clamps).
    pub(super) modes: ModeWeights,
    pub(super) steps: f64,
    pub(super) constraints: u32,
    pub(super) subtasks: u32,
    pub(super) math_question: bool,
    /// The distinct cues found, in order, when explaining.
    pub(super) hits: Vec<(&'static str, Cue)>,
    open: [Open; MAX_OPEN],
    open_len: usize,
    /// The normalized phrase being checked against a keyword (reused; only on table hits).
    phrase: String,
}

impl<'t, 's> Scan<'t, 's> {
    /// Scans `text`; `explain` keeps the cues found for the reasons.
    pub(super) fn run(text: &'t str, explain: bool) -> Self {
        Self::run_with(text, explain, None)
    }

    /// Scans `text`, sending every token to `sink`.
    pub(super) fn run_with(text: &'t str, explain: bool, sink: Option<TokenSink<'s>>) -> Self {
        let mut scan = Scan {
            text,
            sink,
            tokens: 0,
            previous_word: None,
            previous_cjk: None,
            lexicon: Lexicon::get(),
            explain,
            latin_chars: 0,
            cjk_chars: 0,
            questions: 0,
            numbers: 0,
            operators: 0,
            code_symbols: 0,
            fences: 0,
            list_items: 0,
            modes: ModeWeights::splat(0.0),
            steps: 0.0,
            constraints: 0,
            subtasks: 0,
            math_question: false,
            hits: Vec::new(),
            open: [Open::default(); MAX_OPEN],
            open_len: 0,
            phrase: String::new(),
        };
        scan.pass();
        scan
    }

    fn pass(&mut self) {
        let text = self.text;
        let bytes = text.as_bytes();
        let mut line = Line::Start;
        let mut backticks = 0;
        let mut cjk_skip_until = 0;
        let mut i = 0;
        while let Some(&byte) = bytes.get(i) {
            if byte.is_ascii_alphanumeric() {
                // A word: its bytes in a tight loop of their own (the hash stays in registers).
                let (ascii_end, hash) = hash_word(bytes, i);
                if ascii_end.wrapping_sub(i) == 8 && uuid_at(bytes.get(i..).unwrap_or(&[])) {
                    // An identifier: no cue, and no phrase runs through it.
                    (line, backticks, self.open_len) = (Line::Rest, 0, 0);
                    if self.sink.is_some() {
                        self.emit_word(IDENTIFIER);
                    }
                    let Some(next) = i.checked_add(UUID_LEN) else { break };
                    i = next;
                    continue;
                }
                let end = match bytes.get(ascii_end) {
                    Some(next) if !next.is_ascii() => word_end(text, ascii_end),
                    _ => ascii_end,
                };
                if line != Line::Rest {
                    let word = bytes.get(i..end).unwrap_or(&[]);
                    let digits = word.iter().all(|b| b.is_ascii_digit());
                    let list_number = matches!(line, Line::Start | Line::Digits) && digits;
                    line = if list_number { Line::Digits } else { Line::Rest };
                }
                if byte.is_ascii_digit() && !is_identifier(text.get(i..end).unwrap_or("")) {
                    self.numbers = self.numbers.saturating_add(1);
                }
                // A word with a letter outside ASCII (café) matches no keyword.
                let ascii = (end == ascii_end).then_some(hash);
                if self.sink.is_some() {
                    self.word_token(i, end, ascii);
                }
                self.end_word(i, end, ascii);
                backticks = 0;
                i = end;
            } else if byte.is_ascii() {
                if line != Line::Rest || byte == b'\n' {
                    line = self.line_step(line, char::from(byte));
                }
                if byte != b' ' {
                    self.ascii_symbol(byte, &mut backticks);
                    if !byte.is_ascii_whitespace() {
                        // Punctuation ends a phrase: no token pair across it.
                        (self.previous_word, self.previous_cjk) = (None, None);
                    }
                }
                let Some(next) = i.checked_add(1) else { break };
                i = next;
            } else {
                let c = text.get(i..).and_then(|rest| rest.chars().next()).unwrap_or('\u{FFFD}');
                // i < text.len() <= isize::MAX, and a char is at most 4 bytes. (Checked, it cost
                // ~2% on CJK prompts.)
                #[allow(clippy::arithmetic_side_effects)]
                let next = i + c.len_utf8();
                line = self.line_step(line, c);
                backticks = 0;
                if is_cjk(c) {
                    // One per character of the text, so below text.len(). (Saturating, it cost
                    // another ~2% on CJK prompts.)
                    #[allow(clippy::arithmetic_side_effects)]
                    {
                        self.cjk_chars += 1;
                    }
                    self.open_len = 0;
                    if i >= cjk_skip_until {
                        cjk_skip_until = self.cjk_keyword(c, i).unwrap_or(cjk_skip_until);
                    }
                    if self.sink.is_some() {
                        self.cjk_token(c);
                    }
                    i = next;
                } else if is_word_char(c) {
                    let end = word_end(text, i);
                    if self.sink.is_some() {
                        self.word_token(i, end, None);
                    }
                    self.end_word(i, end, None);
                    i = end.max(next);
                } else {
                    (self.previous_word, self.previous_cjk) = (None, None);
                    match c {
                        '？' => {
                            self.questions = self.questions.saturating_add(1);
                            self.open_len = 0;
                        }
                        '×' | '÷' | '²' | '³' | '√' | '−' | '≤' | '≥' | '≠' => {
                            self.operators = self.operators.saturating_add(1);
                        }
                        _ => self.open_len = 0,
                    }
                    i = next;
                }
            }
        }
        self.latin_chars = text.chars().count().saturating_sub(self.cjk_chars);
    }

    fn emit(&mut self, token: u64) {
        if let Some(sink) = &mut self.sink {
            self.tokens = self.tokens.saturating_add(1);
            sink(token);
        }
    }

    /// The word `text[start..end]` as a token (every number is one token, every identifier
    /// another), and its pair with
    /// the word before. `ascii` is its hash (lower-cased) when it is ASCII.
    fn word_token(&mut self, start: usize, end: usize, ascii: Option<u64>) {
        let word = self.text.get(start..end).unwrap_or("");
        let hash = if word.bytes().all(|b| b.is_ascii_digit()) {
            NUMBER
        } else if is_identifier(word) {
            IDENTIFIER
        } else {
            // A word with a letter outside ASCII is hashed as written: lower-casing it would
            // link Unicode's case tables (11 KiB) for the few such words prompts hold.
            let hash = ascii
                .unwrap_or_else(|| word.bytes().fold(WORD, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)));
            token_mix(hash)
        };
        self.emit_word(hash);
    }

    /// A word's token (its hash), and its pair with the word before.
    fn emit_word(&mut self, hash: u64) {
        self.emit(hash);
        if let Some(previous) = self.previous_word {
            self.emit(token_mix(previous ^ hash.rotate_left(17) ^ PAIR));
        }
        (self.previous_word, self.previous_cjk) = (Some(hash), None);
    }

    /// A CJK character as a token, and its pair with the character before.
    fn cjk_token(&mut self, c: char) {
        let code = u32::from(c);
        self.emit(token_mix(CJK ^ u64::from(code)));
        if let Some(previous) = self.previous_cjk {
            self.emit(token_mix(CJK ^ PAIR ^ (u64::from(previous) << 32 | u64::from(code))));
        }
        (self.previous_cjk, self.previous_word) = (Some(code), None);
    }

    /// Applies the longest CJK keyword at byte `i` (starting with `c`), and returns where it
    /// ends: the characters it covers start no other keyword.
    fn cjk_keyword(&mut self, c: char, i: usize) -> Option<usize> {
        let lexicon = self.lexicon;
        let entries = lexicon.cjk(c, self.text.get(i..).unwrap_or(""));
        for entry in entries {
            self.apply(entry.text, entry.cue);
        }
        entries.first().and_then(|first| i.checked_add(first.text.len()))
    }

    /// An ASCII character between words. Sentence punctuation closes open phrases.
    #[inline]
    fn ascii_symbol(&mut self, byte: u8, backticks: &mut u32) {
        if byte == b'`' {
            *backticks = backticks.saturating_add(1);
            if *backticks == 3 {
                self.fences = self.fences.saturating_add(1);
            }
        } else {
            *backticks = 0;
        }
        match byte {
            b'?' => {
                self.questions = self.questions.saturating_add(1);
                self.open_len = 0;
            }
            b'\n' | b'!' | b':' => self.open_len = 0,
            b';' => {
                self.code_symbols = self.code_symbols.saturating_add(1);
                self.open_len = 0;
            }
            b'{' | b'}' | b'[' | b']' | b'_' | b'`' => self.code_symbols = self.code_symbols.saturating_add(1),
            b'+' | b'*' | b'/' | b'=' | b'^' | b'%' => self.operators = self.operators.saturating_add(1),
            _ => {}
        }
    }

    fn line_step(&mut self, line: Line, c: char) -> Line {
        match (line, c) {
            (_, '\n') => Line::Start,
            (Line::Start, ' ' | '\t') => Line::Start,
            (Line::Start | Line::Digits, '0'..='9') => Line::Digits,
            (Line::Start, '-' | '*' | '•') => Line::Bullet,
            (Line::Digits, '.' | ')' | '、') | (Line::Bullet, ' ') => {
                self.list_items = self.list_items.saturating_add(1);
                Line::Rest
            }
            _ => Line::Rest,
        }
    }

    /// A word ended: `text[start..end]`, with its hash if it is ASCII (else it matches no
    /// keyword and closes open phrases). Most words start nothing and continue nothing: one
    /// filter test, inlined, tells.
    #[inline]
    fn end_word(&mut self, start: usize, end: usize, hash: Option<u64>) {
        let Some(word) = hash else {
            self.open_len = 0;
            return;
        };
        let alone = phrase_step(phrase_seed(), word);
        if self.open_len == 0 && !self.lexicon.may_have(alone) {
            return;
        }
        self.lookup_word(start, end, word, alone);
    }

    /// Looks the word up as the next word of every open phrase and alone, and keeps open the
    /// phrases that longer keywords continue.
    fn lookup_word(&mut self, start: usize, end: usize, word: u64, alone: u64) {
        let lexicon = self.lexicon;
        let (open, open_len) = (self.open, self.open_len);
        self.open_len = 0;
        let continued =
            open.into_iter().take(open_len).map(|o| Open { hash: phrase_step(o.hash, word), start: o.start });
        for phrase in continued.chain(std::iter::once(Open { hash: alone, start })) {
            let Some(found) = lexicon.latin(phrase.hash) else {
                continue;
            };
            if !found.entries.is_empty() {
                self.fill_phrase(phrase.start, end);
                for entry in found.entries {
                    if entry.text == self.phrase {
                        self.apply(entry.text, entry.cue);
                    }
                }
            }
            if found.prefix {
                if let Some(slot) = self.open.get_mut(self.open_len) {
                    *slot = phrase;
                    self.open_len = self.open_len.saturating_add(1);
                }
            }
        }
    }

    /// Writes `text[start..end]` to `phrase` lower-cased, each run of non-alphanumerics as one
    /// space (the form of the lexicon's phrases).
    fn fill_phrase(&mut self, start: usize, end: usize) {
        self.phrase.clear();
        let mut gap = false;
        for c in self.text.get(start..end).unwrap_or("").chars() {
            if c.is_ascii_alphanumeric() {
                if gap {
                    self.phrase.push(' ');
                }
                self.phrase.push(c.to_ascii_lowercase());
                gap = false;
            } else {
                gap = true;
            }
        }
    }

    fn apply(&mut self, text: &'static str, cue: Cue) {
        match cue {
            Cue::Mode(mode, weight) => *self.modes.get_mut(mode) += f64::from(weight),
            Cue::Step(weight) => self.steps += f64::from(weight),
            Cue::Constraint => self.constraints = self.constraints.saturating_add(1),
            Cue::SubTask => self.subtasks = self.subtasks.saturating_add(1),
            Cue::MathQuestion => self.math_question = true,
            Cue::Neutral => {}
        }
        if self.explain && self.hits.len() < MAX_HITS && !self.hits.iter().any(|&(t, c)| t == text && c == cue) {
            self.hits.push((text, cue));
        }
    }
}
