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
    // Byte counters over blocks of at most 255 bytes cannot overflow and let the compiler count
    // many bytes per instruction.
    for block in run.as_bytes().chunks(255) {
        let (letters, uppercase) = block.iter().fold((0u8, 0u8), |(letters, upper), &b| {
            (
                letters + u8::from((b | 0x20).wrapping_sub(b'a') < 26),
                upper + u8::from(b.wrapping_sub(b'A') < 26),
            )
        });
        stats.letters += usize::from(letters);
        stats.uppercase += usize::from(uppercase);
    }
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
    let bytes = text.as_bytes();
    // Chunks are the pieces between whitespace (`char::is_whitespace`), as `split_whitespace`
    // makes them.
    let mut start = whitespace_end(text, 0, true);
    while start < bytes.len() && !stats.truncated {
        // The common case, an ordinary word: two letters or digits cannot be spelled out, so the
        // chunk is split into words in the same pass that finds its end.
        let ordinary = bytes
            .get(start..start + 2)
            .is_some_and(|two| two.iter().all(u8::is_ascii_alphanumeric));
        if !ordinary {
            let end = whitespace_end(text, start, false);
            if let Some(letters) = spelled_out(&text[start..end]) {
                if letters.chars().count() == 1 {
                    spelled.push_str(&letters);
                } else {
                    flush_spelled(&mut spelled, &mut stats, &mut emit_counted);
                    stats.deobfuscated += 1;
                    emit_counted(&letters, &mut stats);
                }
                start = whitespace_end(text, end, true);
                continue;
            }
        }
        flush_spelled(&mut spelled, &mut stats, &mut emit_counted);
        let end = chunk_words(text, start, |word, digits, ascii| {
            emit_word(
                word,
                digits,
                ascii,
                &mut folded,
                &mut stats,
                &mut emit_counted,
            );
        });
        start = whitespace_end(text, end, true);
    }
    flush_spelled(&mut spelled, &mut stats, &mut emit_counted);
    stats
}

/// What a byte is to the word splitter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ByteClass {
    /// ASCII letter.
    Letter,
    /// ASCII digit.
    Digit,
    /// ASCII whitespace (`char::is_whitespace`).
    Space,
    /// Other ASCII.
    Other,
    /// Part of a non-ASCII character.
    NonAscii,
}

const BYTE_CLASSES: [ByteClass; 256] = {
    let mut classes = [ByteClass::NonAscii; 256];
    let mut b = 0;
    while b < 128 {
        let byte = b as u8;
        classes[b] = if byte.is_ascii_alphabetic() {
            ByteClass::Letter
        } else if byte.is_ascii_digit() {
            ByteClass::Digit
        } else if matches!(byte, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ') {
            ByteClass::Space
        } else {
            ByteClass::Other
        };
        b += 1;
    }
    classes
};

/// Splits the chunk that starts at `start` (a char boundary) into its maximal runs of
/// alphanumeric characters, calling `each` with every run, its number of ASCII digits and whether
/// it is ASCII; returns where the chunk ends (the next whitespace character or the end of text).
fn chunk_words(text: &str, start: usize, mut each: impl FnMut(&str, usize, bool)) -> usize {
    let bytes = text.as_bytes();
    let mut at = start;
    let mut word: Option<(usize, usize, bool)> = None; // (start, digits, ascii)
    while let Some(&b) = bytes.get(at) {
        let (class, len) = match BYTE_CLASSES[usize::from(b)] {
            ByteClass::NonAscii => match text.get(at..).and_then(|rest| rest.chars().next()) {
                Some(c) if c.is_whitespace() => (ByteClass::Space, c.len_utf8()),
                Some(c) if c.is_alphanumeric() => (ByteClass::NonAscii, c.len_utf8()),
                Some(c) => (ByteClass::Other, c.len_utf8()),
                None => break,
            },
            class => (class, 1),
        };
        if matches!(class, ByteClass::Space | ByteClass::Other) {
            if let Some((from, digits, ascii)) = word.take() {
                each(&text[from..at], digits, ascii);
            }
            if class == ByteClass::Space {
                return at;
            }
        } else if let Some((_, digits, ascii)) = &mut word {
            *digits += usize::from(class == ByteClass::Digit);
            *ascii &= class != ByteClass::NonAscii;
        } else {
            word = Some((
                at,
                usize::from(class == ByteClass::Digit),
                class != ByteClass::NonAscii,
            ));
        }
        at += len;
    }
    if let Some((from, digits, ascii)) = word {
        each(&text[from..at], digits, ascii);
    }
    at
}

/// Emits the token for one word holding `digits` ASCII digits: `#long` past
/// [`MAX_WORD_BYTES`], a shape token for a number, the folded form of leetspeak, the word itself
/// when it has at least two characters.
fn emit_word(
    word: &str,
    digits: usize,
    ascii: bool,
    folded: &mut String,
    stats: &mut WordStats,
    emit: &mut impl FnMut(&str, &mut WordStats),
) {
    if word.len() > MAX_WORD_BYTES {
        emit(LONG_WORD, stats);
    } else if digits == word.len() {
        emit(
            NUMBER_SHAPES[word.len().min(NUMBER_SHAPES.len()) - 1],
            stats,
        );
    } else if digits > 0 && fold_leetspeak(word, folded) {
        stats.deobfuscated += 1;
        emit(folded, stats);
    } else if if ascii {
        word.len() >= 2
    } else {
        word.chars().nth(1).is_some()
    } {
        emit(word, stats);
    }
}

/// The first position at or after `from` where `text` stops being whitespace (`space` true) or
/// non-whitespace (`space` false), or the end of `text`. `from` must be a char boundary.
fn whitespace_end(text: &str, from: usize, space: bool) -> usize {
    let bytes = text.as_bytes();
    let mut at = from;
    loop {
        while let Some(&b) = bytes.get(at) {
            match BYTE_CLASSES[usize::from(b)] {
                ByteClass::NonAscii => break,
                class if (class == ByteClass::Space) != space => return at,
                _ => at += 1,
            }
        }
        // At the end of the text or at a non-ASCII character, which only needs decoding here.
        match text.get(at..).and_then(|rest| rest.chars().next()) {
            Some(c) if c.is_whitespace() == space => at += c.len_utf8(),
            _ => return at,
        }
    }
}

/// Emits a run of single letters collected from separate chunks if it is long enough.
#[inline]
fn flush_spelled(
    spelled: &mut String,
    stats: &mut WordStats,
    emit: &mut impl FnMut(&str, &mut WordStats),
) {
    if spelled.is_empty() {
        return; // the usual case: the chunk before was an ordinary word
    }
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
            let mut ours = Vec::new();
            let mut start = whitespace_end(text, 0, true);
            while start < text.len() {
                let end = whitespace_end(text, start, false);
                assert_eq!(chunk_words(text, start, |_, _, _| {}), end, "{text:?}");
                ours.push(&text[start..end]);
                start = whitespace_end(text, end, true);
            }
            let std: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }

    #[test]
    fn chunk_words_split_like_str_split() {
        for chunk in [
            "a",
            "ab-c1d",
            "--x--",
            "caf\u{e9}-\u{e9}t\u{e9}!12",
            "\u{2014}a\u{2014}bc",
            "x\u{663}y",
        ] {
            let mut ours = Vec::new();
            chunk_words(chunk, 0, |word, digits, ascii| {
                assert_eq!(digits, word.bytes().filter(u8::is_ascii_digit).count());
                assert_eq!(ascii, word.is_ascii());
                ours.push(word.to_owned());
            });
            let std: Vec<&str> = chunk
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect();
            assert_eq!(ours, std, "{chunk:?}");
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
