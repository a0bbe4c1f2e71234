//! Any bytes through parsing and feature extraction (with the headerless copy training makes and
//! the subword features of a small trained tokenizer), with default and with small limits: no
//! panic, no hang, no unbounded memory, and the limits and feature-vector invariants hold; the
//! hashes serving visits are the features extraction counts.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use spamflow_features::{FeatureConfig, FeatureExtractor, Limits, SubwordTokenizer};

/// A small subword vocabulary, trained once per fuzzing process.
static TOKENIZER: LazyLock<SubwordTokenizer> = LazyLock::new(|| {
    let texts = [
        "cheap pills online now!!! $$$ click_here http://pills.example/buy?x=1",
        "meeting notes attached, see you at 10:30 -- bob",
        "re: [spam] v1agra c1alis ... unsubscribe@list.example",
        "Caf\u{e9} \u{4e2d}\u{6587} \u{1f600} \u{ff21}\u{ff22} \u{200b}zero width",
    ]
    .repeat(20);
    match SubwordTokenizer::train(texts.iter(), 150) {
        Ok(tokenizer) => tokenizer,
        Err(e) => panic!("training the fuzz tokenizer: {e}"),
    }
});

fn check(data: &[u8], limits: Limits, mime_structure: bool, subwords: bool) {
    let config = FeatureConfig {
        limits: limits.clone(),
        mime_structure,
        ..FeatureConfig::default()
    };
    let extractor = FeatureExtractor::new(config, subwords.then(|| TOKENIZER.clone()));
    let mail = extractor.parse(data);
    assert!(mail.text.len() <= limits.max_text_bytes);
    assert!(mail.urls.len() <= limits.max_urls);
    assert!(mail.content_types.len() <= limits.max_parts);
    let (extraction, copy) = extractor.features_and_copy(&mail, None, true);
    let copy = copy.unwrap_or_default();
    assert_eq!(extraction, extractor.features_of(&mail, None));
    // What serving visits is every occurrence of what extraction counts.
    let mut visited = std::collections::BTreeMap::<u64, f32>::new();
    let flags = extractor.for_each_feature(&mail, |hash| *visited.entry(hash).or_default() += 1.0);
    assert_eq!(flags, extraction.flags);
    assert!(
        visited
            .into_iter()
            .eq(extraction.features.entries.iter().copied())
    );
    let entries = &extraction.features.entries;
    assert!(entries.windows(2).all(|pair| pair[0].0 < pair[1].0));
    assert!(entries.iter().all(|&(_, count)| count >= 1.0));
    // The headerless copy: a sub-multiset of the features, sorted, no zero counts.
    assert!(copy.entries.windows(2).all(|pair| pair[0].0 < pair[1].0));
    assert!(copy.entries.iter().all(|&(hash, count)| {
        count >= 1.0
            && entries
                .binary_search_by_key(&hash, |&(h, _)| h)
                .is_ok_and(|at| entries[at].1 >= count)
    }));
}

fuzz_target!(|data: &[u8]| {
    // The MIME structure features too (models before format version 8 extract them), on odd
    // first bytes.
    let mime_structure = data.first().is_some_and(|b| b % 2 == 1);
    check(data, Limits::default(), mime_structure, true);
    // Small limits chosen by the first byte, so truncation paths are reached by small inputs.
    if let Some(&seed) = data.first() {
        let seed = usize::from(seed);
        check(
            data,
            Limits {
                max_message_bytes: 64 + seed * 16,
                max_parts: seed % 8,
                max_depth: seed % 4,
                max_text_bytes: seed % 64,
                max_tokens: seed % 16,
                max_urls: seed % 3,
            },
            mime_structure,
            seed % 4 < 2,
        );
    }
});
