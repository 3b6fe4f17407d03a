//! Splitting a document into overlapping chunks of at most `size` characters.
//!
//! Chunks are slices of the original text, cut only at char boundaries (never inside a UTF-8
//! sequence), and packed greedily from whole units: paragraphs split into sentences (`.` `!` `?` followed by
//! space, or the CJK `。！？；` which need none, or a line break), then between words, and only
//! for a run with no break at all (Chinese without punctuation) inside a word. Consecutive
//! chunks of one section share up to `overlap` characters of whole sentences, so a fact cut in
//! two at a boundary is whole in one of them. In markdown a heading always starts a chunk,
//! is never split, and is kept with what follows it (a chunk may then exceed `size` by the
//! heading); a fenced code block is split between lines, never at sentence marks inside it.

/// How to chunk. Sizes are in characters (Unicode scalar values), not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    pub size: usize,
    pub overlap: usize,
    pub markdown: bool,
}

/// One indivisible piece: a byte range of the text and its char range.
#[derive(Debug, Clone, Copy)]
struct Unit {
    start: usize,
    end: usize,
    first_char: usize,
    end_char: usize,
    heading: bool,
}

/// The chunks of `text`, in order, each trimmed and non-empty.
#[inline(never)]
pub fn chunk(text: &str, options: &ChunkOptions) -> Vec<String> {
    let size = options.size.max(1);
    // Pieces of an unbroken run are at most the overlap long, so that overlap stays possible.
    let piece = if options.overlap > 0 { options.overlap.min(size / 2).max(1) } else { size };
    let mut spans = Vec::new();
    for block in blocks(text, options.markdown) {
        match block.kind {
            BlockKind::Heading if char_len(text, block.start, block.end) <= size / 2 => {
                spans.push((block.start, block.end, true));
            }
            BlockKind::Code => lines(text, block.start, block.end, size, piece, &mut spans),
            _ => sentences(text, block.start, block.end, size, piece, &mut spans),
        }
    }
    let units = with_chars(text, &spans);
    pack(text, &units, size, options.overlap)
}

fn pack(text: &str, units: &[Unit], size: usize, overlap: usize) -> Vec<String> {
    let mut out = Vec::new();
    // The current chunk is units[first..=last].
    let mut current: Option<(usize, usize)> = None;
    for (j, unit) in units.iter().enumerate() {
        let Some((first, last)) = current else {
            current = Some((j, j));
            continue;
        };
        if unit.heading {
            emit(text, units, first, last, &mut out);
            current = Some((j, j));
            continue;
        }
        let start_char = units.get(first).map_or(0, |u| u.first_char);
        let heading_only = units.get(first..=last).is_some_and(|us| us.iter().all(|u| u.heading));
        if unit.end_char.saturating_sub(start_char) <= size || heading_only {
            current = Some((first, j));
            continue;
        }
        emit(text, units, first, last, &mut out);
        let last_end = units.get(last).map_or(0, |u| u.end_char);
        // The earliest later unit from which the tail fits in the overlap and, with the new
        // unit, in one chunk.
        let from = (first..=last).skip(1).find(|&k| {
            units.get(k).is_some_and(|u| {
                !u.heading
                    && last_end.saturating_sub(u.first_char) <= overlap
                    && unit.end_char.saturating_sub(u.first_char) <= size
            })
        });
        current = Some((from.unwrap_or(j), j));
    }
    if let Some((first, last)) = current {
        emit(text, units, first, last, &mut out);
    }
    out
}

fn emit(text: &str, units: &[Unit], first: usize, last: usize, out: &mut Vec<String>) {
    let (Some(a), Some(b)) = (units.get(first), units.get(last)) else { return };
    if let Some(slice) = text.get(a.start..b.end).map(str::trim).filter(|s| !s.is_empty()) {
        out.push(slice.to_owned());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Paragraph,
    Heading,
    Code,
}

#[derive(Debug, Clone, Copy)]
struct Block {
    start: usize,
    end: usize,
    kind: BlockKind,
}

/// Paragraphs (separated by blank lines); in markdown also headings and fenced code blocks.
fn blocks(text: &str, markdown: bool) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    let mut fence: Option<&str> = None;
    let mut pos = 0usize;
    for line in text.split_inclusive('\n') {
        let start = pos;
        let Some(end) = pos.checked_add(line.len()) else { break };
        pos = end;
        let trimmed = line.trim();
        if let Some(marker) = fence {
            if let Some(block) = open.as_mut() {
                block.end = end;
            }
            if trimmed.starts_with(marker) {
                fence = None;
                out.extend(open.take());
            }
            continue;
        }
        if markdown {
            let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
            if let Some(marker) = marker {
                out.extend(open.take());
                fence = Some(marker);
                open = Some(Block { start, end, kind: BlockKind::Code });
                continue;
            }
            if is_heading(line) {
                out.extend(open.take());
                out.push(Block { start, end, kind: BlockKind::Heading });
                continue;
            }
        }
        if trimmed.is_empty() {
            out.extend(open.take());
            continue;
        }
        match open.as_mut() {
            Some(block) => block.end = end,
            None => open = Some(Block { start, end, kind: BlockKind::Paragraph }),
        }
    }
    out.extend(open);
    out
}

/// An ATX heading: up to three spaces, one to six `#`, then a space or the end of the line.
fn is_heading(line: &str) -> bool {
    let indent = line.bytes().take_while(|&b| b == b' ').count();
    let rest = line.trim_start_matches(' ');
    let hashes = rest.bytes().take_while(|&b| b == b'#').count();
    let after = rest.trim_start_matches('#');
    indent <= 3 && (1..=6).contains(&hashes) && (after.is_empty() || after.starts_with([' ', '\t', '\r', '\n']))
}

/// Sentences of `text[start..end]`, each split further when longer than `size`.
fn sentences(text: &str, start: usize, end: usize, size: usize, piece: usize, out: &mut Vec<(usize, usize, bool)>) {
    let Some(slice) = text.get(start..end) else { return };
    let mut begin: Option<usize> = None;
    let mut chars = slice.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        // Offsets inside text[start..end] cannot overflow; were one to, the rest is dropped.
        let Some(at) = start.checked_add(i) else { return };
        if begin.is_none() {
            if c.is_whitespace() {
                continue;
            }
            begin = Some(at);
        }
        let next = chars.peek().map(|&(_, n)| n);
        let ends = match c {
            '。' | '！' | '？' | '；' | '\n' => true,
            '.' | '!' | '?' => next.is_none_or(char::is_whitespace),
            _ => false,
        };
        if let (true, Some(b)) = (ends, begin) {
            let Some(after) = at.checked_add(c.len_utf8()) else { return };
            split_long(text, b, after, size, piece, out);
            begin = None;
        }
    }
    if let Some(b) = begin {
        split_long(text, b, end, size, piece, out);
    }
}

/// Lines of a code block, each split further when longer than `size`.
fn lines(text: &str, start: usize, end: usize, size: usize, piece: usize, out: &mut Vec<(usize, usize, bool)>) {
    let Some(slice) = text.get(start..end) else { return };
    let mut pos = start;
    for line in slice.split_inclusive('\n') {
        let Some(end) = pos.checked_add(line.len()) else { return };
        split_long(text, pos, end, size, piece, out);
        pos = end;
    }
}

/// `text[start..end]` trimmed, as one unit when it fits in `size`, else in pieces of at most
/// `piece` chars cut after whitespace where there is some in the second half of a piece.
fn split_long(text: &str, start: usize, end: usize, size: usize, piece: usize, out: &mut Vec<(usize, usize, bool)>) {
    let Some(slice) = text.get(start..end) else { return };
    let trimmed = slice.trim();
    if trimmed.is_empty() {
        return;
    }
    let lead = slice.find(|c: char| !c.is_whitespace()).unwrap_or(0);
    let Some(start) = start.checked_add(lead) else { return };
    let Some(end) = start.checked_add(trimmed.len()) else { return };
    if trimmed.chars().count() <= size {
        out.push((start, end, false));
        return;
    }
    let chars: Vec<(usize, char)> =
        trimmed.char_indices().map_while(|(i, c)| Some((start.checked_add(i)?, c))).collect();
    let byte_at = |k: usize| chars.get(k).map_or(end, |&(b, _)| b);
    let mut a = 0;
    while a < chars.len() {
        while chars.get(a).is_some_and(|&(_, c)| c.is_whitespace()) {
            a = a.saturating_add(1);
        }
        if a >= chars.len() {
            break;
        }
        let mut b = a.saturating_add(piece).min(chars.len());
        if b < chars.len() {
            let from_half = a.saturating_add((piece / 2).max(1));
            if let Some(w) = (from_half..b).rev().find(|&k| chars.get(k).is_some_and(|&(_, c)| c.is_whitespace())) {
                b = w;
            }
        }
        let (from, to) = (byte_at(a), byte_at(b));
        if let Some(part_end) = text.get(from..to).and_then(|part| from.checked_add(part.trim_end().len())) {
            out.push((from, part_end, false));
        }
        a = b;
    }
}

fn char_len(text: &str, start: usize, end: usize) -> usize {
    text.get(start..end).map_or(0, |s| s.trim().chars().count())
}

/// Adds char positions to byte spans (given in text order), in one pass over the text.
fn with_chars(text: &str, spans: &[(usize, usize, bool)]) -> Vec<Unit> {
    let mut out = Vec::with_capacity(spans.len());
    let mut chars = text.char_indices().map(|(b, _)| b).chain(std::iter::once(text.len())).enumerate().peekable();
    let mut char_of = |byte: usize| -> usize {
        while let Some(&(n, b)) = chars.peek() {
            if b >= byte {
                return n;
            }
            chars.next();
        }
        0
    };
    for &(start, end, heading) in spans {
        let first_char = char_of(start);
        let end_char = char_of(end);
        out.push(Unit { start, end, first_char, end_char, heading });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn opts(size: usize, overlap: usize, markdown: bool) -> ChunkOptions {
        ChunkOptions { size, overlap, markdown }
    }

    fn chars(s: &str) -> usize {
        s.chars().count()
    }

    #[test]
    fn a_short_text_is_one_trimmed_chunk_and_blank_text_none() {
        assert_eq!(chunk("  Hello there.  \n", &opts(100, 10, false)), vec!["Hello there."]);
        assert!(chunk(" \n\n\t ", &opts(100, 10, false)).is_empty());
        assert!(chunk("", &opts(100, 10, true)).is_empty());
    }

    #[test]
    fn chunks_break_between_sentences_and_overlap_by_whole_sentences() {
        let text =
            "Alpha one is here. Bravo two is here. Charlie three is here. Delta four is here. Echo five is here.";
        let chunks = chunk(text, &opts(45, 25, false));
        assert!(chunks.len() >= 3, "{chunks:?}");
        for c in &chunks {
            assert!(chars(c) <= 45, "{c:?}");
            assert!(c.ends_with('.'), "cut mid-sentence: {c:?}");
        }
        for pair in chunks.windows(2) {
            let last_sentence = pair[0].rsplit(". ").next().unwrap();
            assert!(pair[1].starts_with(last_sentence), "no overlap between {pair:?}");
        }
        // Every sentence is in some chunk.
        for s in ["Alpha one", "Bravo two", "Charlie three", "Delta four", "Echo five"] {
            assert!(chunks.iter().any(|c| c.contains(s)), "{s} lost");
        }
    }

    #[test]
    fn no_overlap_when_asked_for_none() {
        let text = "One sentence here. Two sentence here. Three sentence here.";
        let chunks = chunk(text, &opts(25, 0, false));
        assert_eq!(chunks, vec!["One sentence here.", "Two sentence here.", "Three sentence here."]);
    }

    #[test]
    fn paragraph_breaks_are_break_points_and_text_is_kept_verbatim() {
        let text = "First paragraph line.\n\nSecond paragraph, a bit longer than the first.";
        let chunks = chunk(text, &opts(60, 0, false));
        assert_eq!(chunks, vec!["First paragraph line.", "Second paragraph, a bit longer than the first."]);
        let together = chunk(text, &opts(200, 0, false));
        assert_eq!(together, vec![text]);
    }

    #[test]
    fn chinese_text_is_cut_at_its_own_punctuation_never_inside_a_char() {
        let text =
            "知识库用于检索增强生成。它把文档切成小块并计算向量！查询时找到最相近的块？然后让模型引用它们回答问题。"
                .repeat(4);
        let chunks = chunk(&text, &opts(30, 15, false));
        assert!(chunks.len() > 4);
        for c in &chunks {
            assert!(chars(c) <= 30, "{c}");
            assert!(c.ends_with(['。', '！', '？']), "{c}");
        }
        let shared = ["它把文档切成小块并计算向量！", "然后让模型引用它们回答问题。"];
        assert!(
            chunks.windows(2).any(|p| shared.iter().any(|s| p[0].ends_with(s) && p[1].starts_with(s))),
            "{chunks:?}"
        );
    }

    #[test]
    fn an_unbroken_run_is_split_into_pieces_that_still_overlap() {
        let text = "中文".repeat(200);
        let chunks = chunk(&text, &opts(50, 10, false));
        for c in &chunks {
            assert!(chars(c) <= 50);
        }
        let total: usize = chunks.iter().map(|c| chars(c)).sum();
        assert!(total >= 400, "text lost: {total}");
        assert!(total > 400, "expected some overlap");
        let emoji = "👍🏽x".repeat(300);
        for c in chunk(&emoji, &opts(40, 7, true)) {
            assert!(chars(&c) <= 40);
        }
    }

    #[test]
    fn long_words_runs_are_cut_at_spaces_when_possible() {
        let text = "word ".repeat(100);
        for c in chunk(&text, &opts(32, 12, false)) {
            assert!(chars(&c) <= 32);
            assert!(c.split(' ').all(|w| w == "word"), "{c:?}");
        }
    }

    #[test]
    fn markdown_headings_start_chunks_are_whole_and_stay_with_their_text() {
        let text = "# Title\n\nIntro sentence one. Intro sentence two.\n\n## Section Two\nBody of two. More body of two.\n\n## Three\nx";
        let chunks = chunk(text, &opts(60, 15, true));
        assert!(chunks.iter().any(|c| c.starts_with("## Section Two\nBody of two.")), "{chunks:?}");
        for c in &chunks {
            // A heading line is only ever at the start of a chunk.
            for (i, line) in c.lines().enumerate() {
                if line.starts_with('#') {
                    assert_eq!(i, 0, "heading inside {c:?}");
                }
            }
            assert!(!c.trim_end().ends_with("Two") && !c.ends_with("# Title"), "orphan heading {c:?}");
        }
        // Headings split even when everything would fit; as plain text `#` lines are ordinary.
        assert_eq!(chunk(text, &opts(400, 0, true)).len(), 3);
        assert_eq!(chunk(text, &opts(400, 0, false)).len(), 1);
    }

    #[test]
    fn arbitrary_text_never_panics_and_chunks_stay_bounded() {
        let alphabet: Vec<char> = "ab c.!?。中文😀\n\n# ```-\t".chars().collect();
        let mut x: u64 = 42;
        for round in 0..300 {
            let len = (round * 7) % 400;
            let text: String = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            for (size, overlap, markdown) in [(10, 0, true), (16, 5, false), (40, 20, true)] {
                for c in chunk(&text, &opts(size, overlap, markdown)) {
                    assert!(!c.is_empty());
                    // A heading (at most half a chunk) may ride along with its first unit.
                    assert!(chars(&c) <= size + size / 2 + 1, "{size}: {c:?} from {text:?}");
                }
            }
        }
    }

    #[test]
    fn code_fences_split_between_lines_only() {
        let text = "```\nlet a = 1. b;\nlet c = 2;\n# not a heading\n```\nAfter.";
        let chunks = chunk(text, &opts(20, 0, true));
        assert!(chunks.iter().any(|c| c.ends_with("let a = 1. b;")), "{chunks:?}");
        assert!(!chunks.iter().any(|c| c.ends_with("let a = 1.")), "{chunks:?}");
        assert!(chunks.iter().any(|c| c.contains("# not a heading")));
    }
}
