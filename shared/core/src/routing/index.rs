//! The lexicon's lookup structures: word and phrase hashes, and the index built once per
//! process from the [keyword tables](super::lexicon).
//!
//! Latin keywords are found by phrase hash in an open-addressing table that also marks the
//! hashes that start a longer phrase, so the analyzer follows phrases word by word like a
//! trie; a bit filter small enough to stay in the L1 cache rejects most words before the table
//! is touched. CJK keywords are found by first character, longest first.

use std::sync::OnceLock;

use super::lexicon::{Cue, CJK, LATIN};

const WORD_SEED: u64 = 0xcbf2_9ce4_8422_2325;
const PHRASE_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Reads the ASCII letters and digits of `bytes` from `i` on: returns where they end and
/// their hash, lower-cased. Bytes are packed eight to a chunk, one multiplication per chunk,
/// in a loop of their own: a multiplication per byte (or a branch-free select the compiler
/// might turn one into) would be a serial chain as long as the text.
#[inline]
pub(super) fn hash_word(bytes: &[u8], mut i: usize) -> (usize, u64) {
    let mut hash = WORD_SEED;
    loop {
        let (mut chunk, mut shift) = (0_u64, 0_u32);
        while shift < 64 {
            match bytes.get(i) {
                // `| 0x20` lower-cases an ASCII letter and leaves a digit alone.
                Some(&b) if b.is_ascii_alphanumeric() => chunk |= u64::from(b | 0x20) << shift,
                _ => break,
            }
            // Free here (measured): the compiler sees that i < bytes.len() and shift < 64.
            let Some(next) = i.checked_add(1) else { break };
            (shift, i) = (shift.saturating_add(8), next);
        }
        if shift > 0 {
            hash = mix(hash, chunk);
        }
        if shift < 64 {
            return (i, hash);
        }
    }
}

#[inline]
fn mix(hash: u64, chunk: u64) -> u64 {
    (hash ^ chunk).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29)
}

/// The hash of an empty phrase, to start [`phrase_step`] from.
pub(super) const fn phrase_seed() -> u64 {
    PHRASE_SEED
}

/// Extends a phrase hash by one word hash.
#[inline]
pub(super) fn phrase_step(phrase: u64, word: u64) -> u64 {
    (phrase.rotate_left(23) ^ word).wrapping_mul(0xff51_afd7_ed55_8ccd)
}

/// The phrase hashes of every prefix of `keyword` (the whole keyword last).
fn keyword_hashes(keyword: &str) -> impl Iterator<Item = u64> + '_ {
    keyword.split(' ').scan(PHRASE_SEED, |phrase, word| {
        *phrase = phrase_step(*phrase, hash_word(word.as_bytes(), 0).1);
        Some(*phrase)
    })
}

/// Whether `c` is written without spaces between words (CJK ideographs and kana).
#[inline]
pub(super) fn is_cjk(c: char) -> bool {
    let u = c as u32;
    // The common ideographs first: one comparison for nearly every Chinese character.
    (0x4E00..=0x9FFF).contains(&u)
        || matches!(u, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

#[inline]
fn char_key(c: char) -> u64 {
    u64::from(c as u32).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// An open-addressing index from a key to the run of entries that share it, and whether the
/// key (a phrase hash) also starts a longer phrase. A bit filter small enough to stay in the
/// L1 cache rejects most absent keys before the table is touched.
struct Index {
    filter: [u64; FILTER_WORDS],
    slots: Vec<Slot>,
    /// The number of slots (a power of two, at least 16) less one: masks a hash to a slot.
    mask: usize,
}

const FILTER_WORDS: usize = 128;

#[inline]
fn filter_bit(key: u64) -> (usize, u64) {
    let bit = (key >> 20) as usize % (FILTER_WORDS * 64);
    (bit / 64, 1 << (bit % 64))
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Slot {
    key: u64,
    start: u32,
    len: u16,
    used: bool,
    prefix: bool,
}

/// What a key leads to: its entries, and whether longer phrases start with it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Found<'a, T> {
    pub(super) entries: &'a [T],
    pub(super) prefix: bool,
}

impl Index {
    /// Indexes `keys` (sorted, so equal keys are adjacent) and the phrase prefixes `prefixes`.
    fn build(keys: impl Iterator<Item = u64>, prefixes: &[u64]) -> Index {
        let mut runs: Vec<Slot> = Vec::new();
        for (i, key) in keys.enumerate() {
            match runs.last_mut() {
                Some(run) if run.key == key => run.len = run.len.saturating_add(1),
                _ => runs.push(Slot { key, start: i as u32, len: 1, used: true, prefix: false }),
            }
        }
        for &key in prefixes {
            match runs.iter_mut().find(|run| run.key == key) {
                Some(run) => run.prefix = true,
                None => runs.push(Slot { key, start: 0, len: 0, used: true, prefix: true }),
            }
        }
        let capacity = runs.len().saturating_mul(2).next_power_of_two().max(16);
        let mask = capacity.saturating_sub(1);
        let mut index = Index { filter: [0; FILTER_WORDS], slots: vec![Slot::default(); capacity], mask };
        for run in runs {
            let (word, bit) = filter_bit(run.key);
            if let Some(w) = index.filter.get_mut(word) {
                *w |= bit;
            }
            let mut i = index.home(run.key);
            while let Some(slot) = index.slots.get_mut(i) {
                if !slot.used {
                    *slot = run;
                    break;
                }
                i = index.next(i);
            }
        }
        index
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (key >> 40) as usize & self.mask
    }

    /// The slot probed after `i`: linear probing, around the end.
    #[inline]
    fn next(&self, i: usize) -> usize {
        // Modular on purpose (i <= mask anyway): the capacity is a power of two, so masking
        // the wrapped sum is masking the exact one.
        i.wrapping_add(1) & self.mask
    }

    /// False if the key is certainly absent.
    #[inline]
    fn may_have(&self, key: u64) -> bool {
        let (word, bit) = filter_bit(key);
        self.filter.get(word).is_some_and(|w| w & bit != 0)
    }

    #[inline]
    fn find(&self, key: u64) -> Option<&Slot> {
        if !self.may_have(key) {
            return None;
        }
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            let slot = self.slots.get(i)?;
            if !slot.used {
                return None;
            }
            if slot.key == key {
                return Some(slot);
            }
            i = self.next(i);
        }
        None
    }

    #[inline]
    fn found<'a, T>(&self, key: u64, entries: &'a [T]) -> Option<Found<'a, T>> {
        let slot = self.find(key)?;
        let start = slot.start as usize;
        let entries = start.checked_add(usize::from(slot.len)).and_then(|end| entries.get(start..end)).unwrap_or(&[]);
        Some(Found { entries, prefix: slot.prefix })
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct LatinEntry {
    hash: u64,
    pub(super) text: &'static str,
    pub(super) cue: Cue,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct CjkEntry {
    first: char,
    /// Entries from this one on with the same text (a keyword may carry several cues).
    same: usize,
    pub(super) text: &'static str,
    pub(super) cue: Cue,
}

/// The indexed tables: built once per process, read-only afterwards.
pub(super) struct Lexicon {
    latin: Vec<LatinEntry>,
    latin_index: Index,
    cjk: Vec<CjkEntry>,
    cjk_index: Index,
}

impl Lexicon {
    pub(super) fn get() -> &'static Lexicon {
        static LEXICON: OnceLock<Lexicon> = OnceLock::new();
        LEXICON.get_or_init(Lexicon::build)
    }

    fn build() -> Lexicon {
        let mut latin: Vec<LatinEntry> = LATIN
            .iter()
            .flat_map(|&(cue, words)| words.split('|').map(move |text| (cue, text)))
            .filter_map(|(cue, text)| {
                let hash = keyword_hashes(text).last()?;
                Some(LatinEntry { hash, text, cue })
            })
            .collect();
        latin.sort_by(|a, b| a.hash.cmp(&b.hash).then(a.text.cmp(b.text)));
        let mut prefixes: Vec<u64> = LATIN
            .iter()
            .flat_map(|(_, words)| words.split('|'))
            .flat_map(|text| {
                let hashes: Vec<u64> = keyword_hashes(text).collect();
                let whole = hashes.len().saturating_sub(1);
                hashes.into_iter().take(whole)
            })
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        let latin_index = Index::build(latin.iter().map(|e| e.hash), &prefixes);

        let mut cjk: Vec<CjkEntry> = CJK
            .iter()
            .flat_map(|&(cue, words)| words.split('|').map(move |text| (cue, text)))
            .filter_map(|(cue, text)| Some(CjkEntry { first: text.chars().next()?, same: 1, text, cue }))
            .collect();
        // Same first character together, longest first: the first prefix found is the longest.
        cjk.sort_by(|a, b| {
            (a.first, std::cmp::Reverse(a.text.len()), a.text).cmp(&(b.first, std::cmp::Reverse(b.text.len()), b.text))
        });
        let mut after: Option<(&str, usize)> = None;
        for entry in cjk.iter_mut().rev() {
            if let Some((_, same)) = after.filter(|&(text, _)| text == entry.text) {
                entry.same = same.saturating_add(1);
            }
            after = Some((entry.text, entry.same));
        }
        let cjk_index = Index::build(cjk.iter().map(|e| char_key(e.first)), &[]);
        Lexicon { latin, latin_index, cjk, cjk_index }
    }

    /// False if no keyword and no start of one has this phrase hash (most words).
    #[inline]
    pub(super) fn may_have(&self, hash: u64) -> bool {
        self.latin_index.may_have(hash)
    }

    /// Entries whose phrase hash is `hash`, and whether longer phrases start with it; `None`
    /// for most words. The caller checks the entries' text: hashes may collide.
    #[inline]
    pub(super) fn latin(&self, hash: u64) -> Option<Found<'_, LatinEntry>> {
        self.latin_index.found(hash, &self.latin)
    }

    /// The entries of the longest CJK keyword that `rest` starts with (`first` is its first
    /// character); empty if none does.
    #[inline]
    pub(super) fn cjk(&self, first: char, rest: &str) -> &[CjkEntry] {
        let Some(Found { entries: same_first, .. }) = self.cjk_index.found(char_key(first), &self.cjk) else {
            return &[];
        };
        let rest = rest.as_bytes();
        for (i, entry) in same_first.iter().enumerate() {
            // A byte loop: keywords are a few bytes, shorter than a call to memcmp.
            let text = entry.text.as_bytes();
            if text.len() <= rest.len() && text.iter().zip(rest).all(|(a, b)| a == b) {
                return i.checked_add(entry.same).and_then(|end| same_first.get(i..end)).unwrap_or(&[]);
            }
        }
        &[]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn latin_keywords_are_lowercase_words_with_single_spaces() {
        for entry in &Lexicon::get().latin {
            let words: Vec<&str> = entry.text.split(' ').collect();
            assert!(words.len() <= 4, "{}", entry.text);
            for word in words {
                assert!(!word.is_empty(), "{:?}", entry.text);
                assert!(word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{:?}", entry.text);
            }
        }
    }

    /// What a cue counts towards, weights aside: a keyword may count once per kind.
    fn kind(cue: Cue) -> String {
        match cue {
            Cue::Mode(mode, _) => format!("mode {mode}"),
            other => format!("{other:?}").chars().take_while(|c| c.is_alphabetic()).collect(),
        }
    }

    #[test]
    fn distinct_latin_keywords_have_distinct_hashes() {
        let latin = &Lexicon::get().latin;
        for pair in latin.windows(2) {
            if pair[0].hash == pair[1].hash {
                assert_eq!(pair[0].text, pair[1].text, "hash collision");
                assert_ne!(kind(pair[0].cue), kind(pair[1].cue), "duplicate {}", pair[0].text);
            }
        }
    }

    #[test]
    fn cjk_keywords_are_cjk_only_and_unique() {
        let cjk = &Lexicon::get().cjk;
        for entry in cjk {
            assert!(entry.text.chars().all(is_cjk), "{}", entry.text);
        }
        for (i, a) in cjk.iter().enumerate() {
            for b in &cjk[i + 1..] {
                let same = a.text == b.text && kind(a.cue) == kind(b.cue);
                assert!(!same, "duplicate entry {}", a.text);
            }
        }
    }

    #[test]
    fn every_keyword_is_found() {
        let lexicon = Lexicon::get();
        for entry in &lexicon.latin {
            let found = lexicon.latin(entry.hash).unwrap();
            assert!(found.entries.iter().any(|e| e.text == entry.text));
        }
        let step = |acc, word: &str| phrase_step(acc, hash_word(word.as_bytes(), 0).1);
        let step_by = step(PHRASE_SEED, "step");
        assert!(lexicon.latin(step_by).unwrap().prefix);
        let step_by = step(step_by, "by");
        assert!(lexicon.latin(step_by).unwrap().prefix);
        assert!(lexicon.latin(step_by).unwrap().entries.is_empty());
        let whole = lexicon.latin(step(step_by, "step")).unwrap();
        assert_eq!(whole.entries.first().map(|e| e.text), Some("step by step"));
        for entry in &lexicon.cjk {
            let found = lexicon.cjk(entry.first, entry.text);
            assert_eq!(found.first().map(|e| e.text), Some(entry.text), "{}", entry.text);
        }
    }

    #[test]
    fn longer_cjk_keywords_win() {
        let lexicon = Lexicon::get();
        let found = lexicon.cjk('研', "研究生的宿舍");
        assert_eq!(found.first().map(|e| e.cue), Some(Cue::Neutral));
        let found = lexicon.cjk('方', "方程式的解");
        assert_eq!(found.first().map(|e| e.text), Some("方程式"));
    }
}
