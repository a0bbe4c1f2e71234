//! Per-message flags: what was truncated or odd about an input.

use serde::{Deserialize, Serialize};

/// A set of conditions noticed while turning bytes into features (truncation, decoding trouble).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Flags(u32);

impl Flags {
    /// The raw message was longer than `max_message_bytes` and was cut.
    pub const MESSAGE_TRUNCATED: Flags = Flags(1);
    /// More MIME parts than `max_parts`; the rest were ignored.
    pub const PARTS_TRUNCATED: Flags = Flags(1 << 1);
    /// MIME nesting deeper than `max_depth`; deeper parts were ignored.
    pub const DEPTH_TRUNCATED: Flags = Flags(1 << 2);
    /// Decoded text longer than `max_text_bytes`; the rest was ignored.
    pub const TEXT_TRUNCATED: Flags = Flags(1 << 3);
    /// More words than `max_tokens`; the rest were ignored.
    pub const TOKENS_TRUNCATED: Flags = Flags(1 << 4);
    /// No RFC 5322 header block was found; the bytes were read as plain text.
    pub const NO_HEADERS: Flags = Flags(1 << 5);
    /// A part could not be decoded cleanly (bad base64, unknown charset, ...).
    pub const ENCODING_PROBLEM: Flags = Flags(1 << 6);
    /// The message carried no text at all.
    pub const EMPTY_TEXT: Flags = Flags(1 << 7);
    /// Obfuscated words (leetspeak, split letters, zero-width or look-alike characters) were folded.
    pub const OBFUSCATION: Flags = Flags(1 << 8);

    const NAMES: [(Flags, &'static str); 9] = [
        (Self::MESSAGE_TRUNCATED, "message_truncated"),
        (Self::PARTS_TRUNCATED, "parts_truncated"),
        (Self::DEPTH_TRUNCATED, "depth_truncated"),
        (Self::TEXT_TRUNCATED, "text_truncated"),
        (Self::TOKENS_TRUNCATED, "tokens_truncated"),
        (Self::NO_HEADERS, "no_headers"),
        (Self::ENCODING_PROBLEM, "encoding_problem"),
        (Self::EMPTY_TEXT, "empty_text"),
        (Self::OBFUSCATION, "obfuscation"),
    ];

    /// The empty set.
    pub const fn empty() -> Self {
        Flags(0)
    }

    /// Adds every flag of `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// True when every flag of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// True when no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Stable snake_case names of the set flags, for JSON output and features.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(flag, _)| self.contains(*flag))
            .map(|(_, name)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_inserted_flags() {
        let mut flags = Flags::empty();
        assert!(flags.is_empty());
        flags.insert(Flags::TEXT_TRUNCATED);
        flags.insert(Flags::NO_HEADERS);
        assert!(flags.contains(Flags::NO_HEADERS));
        assert!(!flags.contains(Flags::EMPTY_TEXT));
        assert_eq!(
            flags.names().collect::<Vec<_>>(),
            ["text_truncated", "no_headers"]
        );
    }
}
