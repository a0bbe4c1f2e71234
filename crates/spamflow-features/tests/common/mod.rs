//! Helpers shared by the robustness and property tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::panic::AssertUnwindSafe;

use spamflow_features::{
    Extraction, FeatureConfig, FeatureExtractor, FeatureNames, Flags, Limits, ParsedMail,
};

/// The bytes of `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The names of the set flags, for readable assertions.
pub fn flag_names(flags: Flags) -> Vec<&'static str> {
    flags.names().collect()
}

/// Messages of the `debug_assert!(false, ...)` calls in mail-parser 0.11.9
/// (`src/parsers/message.rs`). Some fire on valid input, for instance a message/rfc822 part whose
/// body is directly another message/rfc822, inside a multipart
/// (`fixtures/nested_message_in_message.eml`). Release builds compile them out and mail-parser
/// recovers; debug builds (this test profile, unless the workspace turns debug assertions off
/// for mail-parser) panic.
const MAIL_PARSER_DEBUG_ASSERTIONS: [&str; 4] = [
    "Invalid part ID, could not find message.",
    "Invalid part ID, could not find multipart.",
    "Failed to restore parent message. Aborting.",
    "This should not have happened.",
];

/// Like [`checked`], but returns `None` when, in a debug build, one of mail-parser's known
/// debug assertions fired. Any other panic propagates.
pub fn try_checked(bytes: &[u8], limits: &Limits) -> Option<(ParsedMail, Extraction)> {
    let config = FeatureConfig {
        limits: limits.clone(),
        ..FeatureConfig::default()
    };
    let extractor = FeatureExtractor::new(config, None);
    let mail = match std::panic::catch_unwind(AssertUnwindSafe(|| extractor.parse(bytes))) {
        Ok(mail) => mail,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if cfg!(debug_assertions) && MAIL_PARSER_DEBUG_ASSERTIONS.contains(&message.as_str()) {
                return None;
            }
            std::panic::resume_unwind(payload);
        }
    };
    assert!(mail.text.len() <= limits.max_text_bytes, "text over limit");
    assert!(mail.urls.len() <= limits.max_urls, "urls over limit");
    assert!(
        mail.content_types.len() <= limits.max_parts,
        "parts over limit"
    );
    assert!(mail.attachments.len() <= limits.max_parts);
    assert!(
        mail.text_parts + mail.html_parts + mail.attachments.len() <= limits.max_parts.max(1),
        "parts over limit"
    );
    assert!(mail.headers.len() <= 64 && mail.charsets.len() <= 8);
    assert!(mail.received_hosts.len() <= 3);
    if bytes.len() <= limits.max_message_bytes {
        assert!(!mail.flags.contains(Flags::MESSAGE_TRUNCATED));
    }
    assert_eq!(
        mail.flags.contains(Flags::EMPTY_TEXT),
        mail.text.trim().is_empty()
    );

    let mut names = FeatureNames::default();
    let extraction = extractor.features_of(&mail, Some(&mut names));
    let entries = &extraction.features.entries;
    assert!(!entries.is_empty(), "structure features are always present");
    assert!(
        entries.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "features sorted strictly by hash"
    );
    assert!(entries.iter().all(|&(_, count)| count >= 1.0));
    assert!(entries.iter().all(|&(hash, _)| names.get(hash).is_some()));
    let (with_copy, copy) = extractor.features_and_copy(&mail, None, true);
    let copy = copy.unwrap_or_default();
    assert_eq!(
        with_copy, extraction,
        "making the copy does not change the features"
    );
    let without_headers: Vec<(u64, f32)> = entries
        .iter()
        .copied()
        .filter(|&(hash, _)| !names.get(hash).is_some_and(|name| name.starts_with("hdr:")))
        .collect();
    assert_eq!(
        copy.entries, without_headers,
        "the headerless copy is the features without the header namespace"
    );
    assert!(
        mail.flags
            .names()
            .all(|name| extraction.flags.names().any(|n| n == name)),
        "extraction keeps the parse flags"
    );
    let mut visited = std::collections::BTreeMap::<u64, f32>::new();
    let visited_flags = extractor.for_each_feature(&mail, |hash| {
        *visited.entry(hash).or_default() += 1.0;
    });
    assert_eq!(
        (visited.into_iter().collect::<Vec<_>>(), visited_flags),
        (entries.clone(), extraction.flags),
        "for_each_feature visits every occurrence of what features_of counts"
    );
    if bytes.len() < 64 * 1024 {
        assert_eq!(extractor.extract(bytes), extraction, "deterministic");
    }
    Some((mail, extraction))
}

/// Parses and extracts `bytes` under `limits`, checks the invariants every input must meet and
/// returns both results.
pub fn checked(bytes: &[u8], limits: &Limits) -> (ParsedMail, Extraction) {
    try_checked(bytes, limits).expect("a mail-parser debug assertion fired")
}

/// [`checked`] under the default limits.
pub fn checked_default(bytes: &[u8]) -> (ParsedMail, Extraction) {
    checked(bytes, &Limits::default())
}
