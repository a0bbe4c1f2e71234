//! Text normalisation and word splitting, with the de-obfuscation spam needs.
//!
//! Hand-written because it is spamflow's own edge: Unicode NFKC (only when the text is not
//! ASCII, so the common case stays fast), case folding, zero-width characters dropped, Cyrillic
//! and Greek look-alike letters mapped to Latin, leetspeak folded inside words (`V1agra`,
//! `0EM S0ftware`) and split letters joined (`v-i-a-g-r-a`, `v i a g r a`).

use unicode_normalization::UnicodeNormalization;

/// Counts gathered while normalising, used as structure features.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TextStats {
    /// Letters seen.
    pub letters: usize,
    /// Upper-case letters seen (before folding).
    pub uppercase: usize,
    /// Zero-width or look-alike characters removed or mapped.
    pub hidden_chars: usize,
}

/// Appends the normalised form of `text` to `out` and returns counts about it.
///
/// Works chunk by chunk between ASCII whitespace: ASCII chunks take a fast path, the others go
/// through NFKC (which never composes across whitespace, so the result is the same).
pub fn normalize_text(text: &str, out: &mut String) -> TextStats {
    let mut stats = TextStats::default();
    out.reserve(text.len());
    let bytes = text.as_bytes();
    let mut start = 0;
    // Consecutive ASCII chunks are handled as one run (lower-casing and counting are per byte);
    // only the chunk around each non-ASCII byte goes through NFKC, with the same boundaries.
    while start < bytes.len() {
        let Some(non_ascii) = first_non_ascii(&bytes[start..]).map(|at| start + at) else {
            push_ascii(&text[start..], out, &mut stats);
            break;
        };
        let chunk_start = bytes[start..non_ascii]
            .iter()
            .rposition(u8::is_ascii_whitespace)
            .map_or(start, |at| start + at + 1);
        push_ascii(&text[start..chunk_start], out, &mut stats);
        let chunk_end = bytes[non_ascii..]
            .iter()
            .position(u8::is_ascii_whitespace)
            .map_or(bytes.len(), |len| non_ascii + len + 1);
        normalize_unicode(&text[chunk_start..chunk_end], out, &mut stats);
        start = chunk_end;
    }
    stats
}

/// Position of the first non-ASCII byte, checking 16 bytes at a time.
fn first_non_ascii(bytes: &[u8]) -> Option<usize> {
    let mut offset = 0;
    for block in bytes.chunks(16) {
        if !block.is_ascii() {
            return block
                .iter()
                .position(|b| !b.is_ascii())
                .map(|at| offset + at);
        }
        offset += block.len();
    }
    None
}

/// Appends an ASCII run lower-cased and counts its letters and capitals.
fn push_ascii(run: &str, out: &mut String, stats: &mut TextStats) {
    let (letters, uppercase) = run.bytes().fold((0usize, 0usize), |(letters, upper), b| {
        (
            letters + usize::from(b.is_ascii_alphabetic()),
            upper + usize::from(b.is_ascii_uppercase()),
        )
    });
    stats.letters += letters;
    stats.uppercase += uppercase;
    let from = out.len();
    out.push_str(run);
    out[from..].make_ascii_lowercase();
}

fn normalize_unicode(text: &str, out: &mut String, stats: &mut TextStats) {
    for c in text.nfkc() {
        if is_zero_width(c) {
            stats.hidden_chars += 1;
            continue;
        }
        if c.is_alphabetic() {
            stats.letters += 1;
            stats.uppercase += usize::from(c.is_uppercase());
        }
        for lower in c.to_lowercase() {
            match latin_look_alike(lower) {
                Some(latin) => {
                    stats.hidden_chars += 1;
                    out.push(latin);
                }
                None => out.push(lower),
            }
        }
    }
}

fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{00ad}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{034f}')
}

/// Latin letter that a Cyrillic or Greek lower-case letter is used to imitate.
fn latin_look_alike(c: char) -> Option<char> {
    Some(match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ϲ' => 'c',
        'е' | 'ε' => 'e',
        'һ' => 'h',
        'і' | 'ι' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'о' | 'ο' => 'o',
        'р' | 'ρ' => 'p',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' => 'u',
        'ν' => 'v',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        _ => return None,
    })
}

/// Counts gathered while splitting words.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WordStats {
    /// Words emitted.
    pub words: usize,
    /// Words that were de-obfuscated (leetspeak folded or split letters joined).
    pub deobfuscated: usize,
    /// True when `max_words` stopped the split early.
    pub truncated: bool,
}

/// Shape tokens for numbers, by digit count (1..=12, longer share the last).
const NUMBER_SHAPES: [&str; 12] = [
    "#1", "#2", "#3", "#4", "#5", "#6", "#7", "#8", "#9", "#10", "#11", "#12+",
];
/// Token standing for any word longer than [`MAX_WORD_BYTES`] (encoded blobs, hashes).
const LONG_WORD: &str = "#long";
const MAX_WORD_BYTES: usize = 30;
const MIN_SPLIT_LETTERS: usize = 4;

/// Splits normalised text into words, calling `emit` for each, at most `max_words` times.
///
/// Words are runs of letters and digits. Pure numbers become shape tokens (`#3` for a
/// three-digit number), over-long runs become `#long`, single letters are dropped unless a run of
/// them spells a word (`v i a g r a`, `v-i-a-g-r-a`), and leetspeak digits between letters are
/// folded (`v1agra` to `viagra`).
pub fn words(text: &str, max_words: usize, mut emit: impl FnMut(&str)) -> WordStats {
    let mut stats = WordStats::default();
    let mut spelled = String::new();
    let mut folded = String::new();
    let mut emit_counted = |word: &str, stats: &mut WordStats| {
        if stats.words >= max_words {
            stats.truncated = true;
            return;
        }
        stats.words += 1;
        emit(word);
    };
    for chunk in (WhitespaceChunks { rest: text }) {
        if stats.truncated {
            break;
        }
        if let Some(letters) = spelled_out(chunk) {
            if letters.chars().count() == 1 {
                spelled.push_str(&letters);
                continue;
            }
            flush_spelled(&mut spelled, &mut stats, &mut emit_counted);
            stats.deobfuscated += 1;
            emit_counted(&letters, &mut stats);
            continue;
        }
        flush_spelled(&mut spelled, &mut stats, &mut emit_counted);
        let ascii = chunk.is_ascii();
        let mut split_ascii;
        let mut split_unicode;
        let words: &mut dyn Iterator<Item = &str> = if ascii {
            // Same split as below: for ASCII, char and byte classes agree.
            split_ascii = chunk
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty());
            &mut split_ascii
        } else {
            split_unicode = chunk
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty());
            &mut split_unicode
        };
        for word in words {
            if word.len() > MAX_WORD_BYTES {
                emit_counted(LONG_WORD, &mut stats);
            } else if word.bytes().all(|b| b.is_ascii_digit()) {
                emit_counted(
                    NUMBER_SHAPES[word.len().min(NUMBER_SHAPES.len()) - 1],
                    &mut stats,
                );
            } else if fold_leetspeak(word, &mut folded) {
                stats.deobfuscated += 1;
                emit_counted(&folded, &mut stats);
            } else if (ascii && word.len() >= 2) || (!ascii && word.chars().nth(1).is_some()) {
                emit_counted(word, &mut stats);
            }
        }
    }
    flush_spelled(&mut spelled, &mut stats, &mut emit_counted);
    stats
}

/// The pieces of `text` between whitespace (`char::is_whitespace`), like `str::split_whitespace`,
/// deciding ASCII bytes without decoding characters.
struct WhitespaceChunks<'a> {
    rest: &'a str,
}

impl<'a> Iterator for WhitespaceChunks<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let start = whitespace_end(self.rest, 0, true);
        let end = whitespace_end(self.rest, start, false);
        let chunk = &self.rest[start..end];
        self.rest = &self.rest[end..];
        (!chunk.is_empty()).then_some(chunk)
    }
}

/// The first position at or after `from` where `text` stops being whitespace (`space` true) or
/// non-whitespace (`space` false), or the end of `text`. `from` must be a char boundary.
fn whitespace_end(text: &str, from: usize, space: bool) -> usize {
    let bytes = text.as_bytes();
    let mut at = from;
    while let Some(&b) = bytes.get(at) {
        let (is_space, len) = if b.is_ascii() {
            (matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' '), 1)
        } else {
            match text[at..].chars().next() {
                Some(c) => (c.is_whitespace(), c.len_utf8()),
                None => return at,
            }
        };
        if is_space != space {
            return at;
        }
        at += len;
    }
    at
}

/// Emits a run of single letters collected from separate chunks if it is long enough.
fn flush_spelled(
    spelled: &mut String,
    stats: &mut WordStats,
    emit: &mut impl FnMut(&str, &mut WordStats),
) {
    if spelled.chars().count() >= MIN_SPLIT_LETTERS {
        stats.deobfuscated += 1;
        emit(spelled, stats);
    }
    spelled.clear();
}

/// For a chunk of single letters joined by one separator (`v-i-a-g-r-a`), or a lone letter
/// (possibly with punctuation around it), the letters; otherwise `None`. Allocates only on a match.
fn spelled_out(chunk: &str) -> Option<String> {
    let bytes = chunk.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphanumeric() && bytes[1].is_ascii_alphanumeric() {
        return None; // the common case, decided before trimming: an ordinary word
    }
    let trimmed = chunk.trim_matches(|c: char| !c.is_alphanumeric());
    if trimmed.len() >= 2 && trimmed.as_bytes()[1].is_ascii_alphanumeric() {
        return None; // the common case: an ordinary word
    }
    let mut letters = 0;
    for (i, c) in trimmed.chars().enumerate() {
        let is_letter_slot = i % 2 == 0;
        if is_letter_slot && c.is_alphabetic() {
            letters += 1;
        } else if is_letter_slot || !"-._*~+|/".contains(c) {
            return None;
        }
    }
    if letters == 1 || letters >= MIN_SPLIT_LETTERS {
        Some(trimmed.chars().step_by(2).collect())
    } else {
        None
    }
}

/// Folds leetspeak digits into letters when they sit inside a word (`s0ftware`, `v1agra`) or a
/// `0` leads letters (`0em`). Writes the folded word to `out` and returns true if it folded.
fn fold_leetspeak(word: &str, out: &mut String) -> bool {
    let bytes = word.as_bytes();
    if !bytes.iter().any(u8::is_ascii_digit) {
        return false; // nothing to fold
    }
    let letters = bytes.iter().filter(|b| b.is_ascii_alphabetic()).count();
    if letters < 2 || letters == bytes.len() || !word.is_ascii() {
        return false;
    }
    let leet = |b: u8| matches!(b, b'0' | b'1' | b'3' | b'4' | b'5' | b'7');
    let mut folds = false;
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            let inside = i > 0
                && i + 1 < bytes.len()
                && bytes[i - 1].is_ascii_alphabetic()
                && bytes[i + 1].is_ascii_alphabetic();
            let leading_zero =
                i == 0 && b == b'0' && bytes.get(1).is_some_and(u8::is_ascii_alphabetic);
            if !leet(b) || !(inside || leading_zero) {
                return false;
            }
            folds = true;
        }
    }
    if !folds {
        return false;
    }
    out.clear();
    out.extend(bytes.iter().map(|&b| match b {
        b'0' => 'o',
        b'1' => 'i',
        b'3' => 'e',
        b'4' => 'a',
        b'5' => 's',
        b'7' => 't',
        other => char::from(other),
    }));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized_words(text: &str) -> Vec<String> {
        let mut normalized = String::new();
        normalize_text(text, &mut normalized);
        let mut out = Vec::new();
        words(&normalized, usize::MAX, |w| out.push(w.to_owned()));
        out
    }

    #[test]
    fn obfuscated_spellings_fold_to_the_plain_word() {
        assert_eq!(normalized_words("Buy V1AGRA"), ["buy", "viagra"]);
        assert_eq!(normalized_words("v-i-a-g-r-a!"), ["viagra"]);
        assert_eq!(
            normalized_words("get v i a g r a now"),
            ["get", "viagra", "now"]
        );
        assert_eq!(normalized_words("0EM S0ftware"), ["oem", "software"]);
        assert_eq!(normalized_words("vi\u{200b}agra"), ["viagra"]);
        assert_eq!(normalized_words("viаgra"), ["viagra"], "Cyrillic а");
        assert_eq!(normalized_words("ＦＲＥＥ"), ["free"], "NFKC full width");
    }

    #[test]
    fn ordinary_words_numbers_and_versions_are_kept() {
        assert_eq!(
            normalized_words("win98 mp3 1st a i 2002 $19.99"),
            ["win98", "mp3", "1st", "#4", "#2", "#2"]
        );
        assert_eq!(normalized_words("e-mail u.s. x"), ["mail"]);
        assert_eq!(normalized_words(&"z".repeat(40)), ["#long"]);
    }

    #[test]
    fn stats_count_case_and_hidden_characters() {
        let mut out = String::new();
        let stats = normalize_text("ABc\u{200b}d", &mut out);
        assert_eq!(out, "abcd");
        assert_eq!(
            (stats.letters, stats.uppercase, stats.hidden_chars),
            (4, 2, 1)
        );
    }

    #[test]
    fn chunks_split_like_split_whitespace() {
        for text in [
            "",
            "   ",
            "a b\tc\u{b}d\u{c}e\r\nf",
            " lead trail ",
            "x\u{a0}y\u{85}z\u{2003}w \u{1f}q\u{1c}r",
            "caf\u{e9} na\u{ef}ve\u{3000}end",
        ] {
            let ours: Vec<&str> = WhitespaceChunks { rest: text }.collect();
            let std: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }

    #[test]
    fn word_limit_truncates() {
        let mut seen = 0;
        let stats = words("aa bb cc dd", 2, |_| seen += 1);
        assert_eq!(seen, 2);
        assert!(stats.truncated);
    }
}
