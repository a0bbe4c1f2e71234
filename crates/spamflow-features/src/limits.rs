//! Resource limits applied while parsing: input past a limit is truncated and flagged.

use serde::{Deserialize, Serialize};

/// Bounds on the work done for one message. Past a bound the input is truncated and a
/// [`crate::Flags`] bit is set; nothing panics and memory stays proportional to the limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Raw message bytes read; the rest is cut off (default 10 MiB).
    pub max_message_bytes: usize,
    /// MIME parts examined (default 100).
    pub max_parts: usize,
    /// MIME nesting depth followed, counting multiparts and attached messages (default 8; values
    /// above 256 act as 256).
    pub max_depth: usize,
    /// Decoded text bytes (plain + HTML rendered to text) kept per message (default 256 KiB).
    pub max_text_bytes: usize,
    /// Words turned into features per message (default 20,000).
    pub max_tokens: usize,
    /// URLs kept per message (default 200).
    pub max_urls: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 10 * 1024 * 1024,
            max_parts: 100,
            max_depth: 8,
            max_text_bytes: 256 * 1024,
            max_tokens: 20_000,
            max_urls: 200,
        }
    }
}
