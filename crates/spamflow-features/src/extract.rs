//! Parsed mail to a sparse feature vector: hashed words, word pairs, subwords, and header, URL,
//! attachment and structure facts, each in its own namespace.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::flags::Flags;
use crate::html::floor_char_boundary;
use crate::lexicon::{LEXICON_VERSION, lexicon};
use crate::limits::Limits;
use crate::normalize::{normalize_text, words};
use crate::parse::{ParsedMail, base_domain, parse_mail, url_host};
use crate::subword::SubwordTokenizer;

/// Feature namespaces: the same string in two namespaces is two different features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// A word of the decoded body text.
    Body,
    /// Two consecutive body words.
    BodyPair,
    /// A word of the Subject.
    Subject,
    /// A word of the From display name.
    FromName,
    /// A header fact (domains, relays, mailer, header names, HTML tags, content types,
    /// charsets) or a header-value word.
    Header,
    /// A URL host or domain.
    Url,
    /// An attachment type or file extension.
    Attachment,
    /// A structure fact (part counts, sizes, capitals ratio, flags).
    Meta,
    /// A subword of the tokenizer shipped with the model.
    Subword,
    /// A word list of a kind of spam that a subject or body word belongs to.
    Lexicon,
}

impl Namespace {
    /// Short prefix used in feature names (`body:viagra`).
    pub fn prefix(self) -> &'static str {
        match self {
            Namespace::Body => "body",
            Namespace::BodyPair => "pair",
            Namespace::Subject => "subj",
            Namespace::FromName => "from",
            Namespace::Header => "hdr",
            Namespace::Url => "url",
            Namespace::Attachment => "att",
            Namespace::Meta => "meta",
            Namespace::Subword => "sw",
            Namespace::Lexicon => "lex",
        }
    }

    fn seed(self) -> u64 {
        // Stable across builds: the hash of a feature is part of the model file format.
        match self {
            Namespace::Body => 0x1001,
            Namespace::BodyPair => 0x1002,
            Namespace::Subject => 0x1003,
            Namespace::FromName => 0x1004,
            Namespace::Header => 0x1005,
            Namespace::Url => 0x1006,
            Namespace::Attachment => 0x1007,
            Namespace::Meta => 0x1008,
            Namespace::Subword => 0x1009,
            Namespace::Lexicon => 0x100a,
        }
    }
}

/// How messages become features. Stored inside the model so serving matches training.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// Parsing limits.
    pub limits: Limits,
    /// Header names starting with one of these (lower case) are ignored: they carry the verdict
    /// of another filter (default: `x-spam`, `x-virus`, `x-bogosity`, ...).
    pub ignored_header_prefixes: Vec<String>,
    /// Add features for pairs of consecutive body words (default true).
    pub word_pairs: bool,
    /// Add features for the words of header values, keyed by field name (`hdr:from:pills`;
    /// default true), for the fields in `header_word_fields`. Header facts (fields present,
    /// sender domains and how they relate, mailer, content types) are features either way.
    pub header_words: bool,
    /// With `header_words`, the header fields whose words are features: names (any case), a
    /// trailing `*` matching every name with that prefix (`["*"]`: every field, as models before
    /// format version 6 were built). The default names the fields the sender's side writes, with
    /// the same meaning at every site: who sent the mail to whom and when, its MIME structure,
    /// the mailer and priority marks. Words of the other fields (`received`, `delivered-to`,
    /// mailing-list fields, `message-id`, local `x-` fields) mostly name the site that collected
    /// the training mail: its relays, mailboxes and lists. Without them a model ranks later mail
    /// with about half the error and commercial ham far better (`dev/generalization.sh`, see
    /// docs/generalization.md).
    pub header_word_fields: Vec<String>,
    /// Bytes of normalised subject + body given to the subword tokenizer (default 64; 0 turns
    /// subword features off). Bounded because subword encoding runs at a few MB/s.
    pub subword_window_bytes: usize,
    /// Features for the body's MIME and HTML structure: the counts of text and HTML parts,
    /// HTML-only, the image count and the HTML tags used (default false; models before format
    /// version 8 have them). They describe the formatting habits of the period the training mail
    /// comes from: in 2002 ham was plain text and HTML meant spam, while later commercial and
    /// transactional ham is HTML too. Without them a model ranks later mail and commercial ham
    /// better (`dev/generalization.sh`, see docs/generalization.md).
    pub mime_structure: bool,
    /// Which word lists of kinds of spam add features (`lex:pharma`, `lex:mortgage`, ...): 0
    /// none (every model before format version 10), 1 the lists of 28 November 2026 (default;
    /// see `lexicon.rs`, [`LEXICON_VERSION`] is the newest). A subject or body word on a list adds
    /// its list's feature. Written from knowledge of spam, not learned, the lists carry the words
    /// a corpus lacks (drug and software names of a later season) on the weight the list earned
    /// from the words it has. With them a model ranks later mail and names its kind better
    /// (`dev/generalization.sh`, see docs/generalization.md).
    pub lexicons: u32,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            limits: Limits::default(),
            ignored_header_prefixes: [
                "x-spam",
                "x-virus",
                "x-bogosity",
                "x-dspam",
                "x-crm114",
                "x-rspamd",
                "x-spamd",
                "x-barracuda",
                "x-ironport",
                "x-proofpoint",
                "x-mailscanner",
                "x-amavis",
                "x-ms-exchange-organization-scl",
                "x-microsoft-antispam",
                "x-forefront-antispam",
            ]
            .map(str::to_owned)
            .to_vec(),
            word_pairs: true,
            header_words: true,
            header_word_fields: DEFAULT_HEADER_WORD_FIELDS.map(str::to_owned).to_vec(),
            subword_window_bytes: 64,
            mime_structure: false,
            lexicons: LEXICON_VERSION,
        }
    }
}

/// The default [`FeatureConfig::header_word_fields`].
const DEFAULT_HEADER_WORD_FIELDS: [&str; 16] = [
    "from",
    "to",
    "cc",
    "reply-to",
    "date",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "x-mailer",
    "user-agent",
    "x-priority",
    "x-msmail-priority",
    "importance",
    "organization",
    "x-mimeole",
];

impl FeatureConfig {
    /// What is wrong with the configuration, if anything: a word-list version this build does not
    /// have (a model trained by a newer build).
    pub fn problem(&self) -> Option<String> {
        (self.lexicons > LEXICON_VERSION).then(|| {
            format!(
                "word lists version {} is unknown to this build, which has versions 0 (none) to {LEXICON_VERSION}: use a newer spamflow",
                self.lexicons
            )
        })
    }

    /// Whether the words of header field `name` are features (names compare without regard
    /// to ASCII case).
    pub fn header_words_of(&self, name: &str) -> bool {
        self.header_words
            && self
                .header_word_fields
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => name
                        .get(..prefix.len())
                        .is_some_and(|start| start.eq_ignore_ascii_case(prefix)),
                    None => name.eq_ignore_ascii_case(pattern),
                })
    }
}

/// A sparse feature vector: `(feature hash, count)` pairs sorted by hash, no duplicates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseFeatures {
    /// The entries, sorted by hash.
    pub entries: Vec<(u64, f32)>,
}

/// Readable names of feature hashes, collected during training for explanations.
#[derive(Debug, Clone, Default)]
pub struct FeatureNames(HashMap<u64, String>);

impl FeatureNames {
    /// The name of a feature hash, if it was seen.
    pub fn get(&self, hash: u64) -> Option<&str> {
        self.0.get(&hash).map(String::as_str)
    }

    /// Adds the names of another collection.
    pub fn merge(&mut self, other: FeatureNames) {
        for (hash, name) in other.0 {
            self.0.entry(hash).or_insert(name);
        }
    }
}

/// The features of one message and what was odd about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extraction {
    /// The sparse feature vector.
    pub features: SparseFeatures,
    /// Truncation and decoding flags.
    pub flags: Flags,
}

/// Turns message bytes into [`SparseFeatures`]. Cheap to share between threads.
#[derive(Debug, Clone)]
pub struct FeatureExtractor {
    config: FeatureConfig,
    subword: Option<SubwordTokenizer>,
}

impl FeatureExtractor {
    /// An extractor with the given configuration and (optionally) a trained subword tokenizer.
    pub fn new(config: FeatureConfig, subword: Option<SubwordTokenizer>) -> Self {
        FeatureExtractor { config, subword }
    }

    /// The configuration in use.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// The subword tokenizer in use, if any.
    pub fn subword(&self) -> Option<&SubwordTokenizer> {
        self.subword.as_ref()
    }

    /// Parses message bytes under the configured limits.
    pub fn parse(&self, bytes: &[u8]) -> ParsedMail {
        parse_mail(bytes, &self.config.limits)
    }

    /// Parses and extracts features in one step.
    pub fn extract(&self, bytes: &[u8]) -> Extraction {
        self.features_of(&self.parse(bytes), None)
    }

    /// The normalised text the subword tokenizer sees: subject and the start of the body,
    /// at most `subword_window_bytes` long. Used to train the tokenizer on what it will serve.
    pub fn subword_text(&self, mail: &ParsedMail) -> String {
        let mut text = String::new();
        normalize_text(&mail.subject, &mut text);
        text.push('\n');
        let body_room = self.config.subword_window_bytes.saturating_sub(text.len());
        let body = &mail.text[..floor_char_boundary(&mail.text, body_room)];
        normalize_text(body, &mut text);
        let cut = floor_char_boundary(&text, self.config.subword_window_bytes);
        text.truncate(cut);
        text
    }

    /// Features of a parsed message; when `names` is given, records a readable name per hash.
    pub fn features_of(&self, mail: &ParsedMail, names: Option<&mut FeatureNames>) -> Extraction {
        self.features_and_copy(mail, names, false).0
    }

    /// [`FeatureExtractor::features_of`], and with `headerless_copy` also the message's headerless
    /// copy: the same features without those of the header namespace (`hdr:`: header words and
    /// facts), what the message says, not where it came from. Training learns from these copies
    /// too, so the model does not lean on servers and lists it knows. One extraction makes both.
    pub fn features_and_copy(
        &self,
        mail: &ParsedMail,
        names: Option<&mut FeatureNames>,
        headerless_copy: bool,
    ) -> (Extraction, Option<SparseFeatures>) {
        // About one word per six text bytes, two features (word and pair) per word: room for
        // the common message without growing.
        let mut hashes = Vec::with_capacity(512 + mail.text.len() / 3);
        let mut sink = Sink {
            visit: |hash| hashes.push(hash),
            header_hashes: headerless_copy.then(Vec::new),
            names,
            scratch: String::new(),
        };
        let flags = self.emit(mail, &mut sink);
        let header_hashes = sink.header_hashes.take();
        let features = counted(&hashes);
        let copy = header_hashes.map(|header_hashes| without(&features, &counted(&header_hashes)));
        (Extraction { features, flags }, copy)
    }

    /// Calls `visit` with the hash of every feature occurrence of a parsed message (a feature
    /// that occurs three times, three times), in no particular order, and returns the message's
    /// flags: what [`FeatureExtractor::features_of`] counts, without collecting it. Serving
    /// uses it to count only the features its model knows.
    pub fn for_each_feature(&self, mail: &ParsedMail, visit: impl FnMut(u64)) -> Flags {
        let mut sink = Sink {
            visit,
            header_hashes: None,
            names: None,
            scratch: String::new(),
        };
        self.emit(mail, &mut sink)
    }

    /// Gives every feature occurrence of `mail` to `sink`; returns the flags.
    fn emit(&self, mail: &ParsedMail, sink: &mut Sink<'_, impl FnMut(u64)>) -> Flags {
        let mut flags = mail.flags;

        let mut normalized = String::new();
        normalize_text(&mail.subject, &mut normalized);
        let lexicon = lexicon(self.config.lexicons);
        let subject_stats = words(&normalized, 200, |w| {
            sink.add(Namespace::Subject, w);
            if let Some(list) = lexicon.and_then(|l| l.list_of(body_word_hash(w))) {
                sink.add(Namespace::Lexicon, list);
            }
        });
        if mail.subject.is_empty() {
            sink.add(Namespace::Meta, "no_subject");
        }
        normalized.clear();
        normalize_text(&mail.from_name, &mut normalized);
        words(&normalized, 20, |w| sink.add(Namespace::FromName, w));

        normalized.clear();
        let text_stats = normalize_text(&mail.text, &mut normalized);
        // A pair is hashed with the hash of its first word as seed: keep that hash, not the word.
        // The word itself is kept only to name the pair.
        let mut previous_seed = None;
        let mut previous = String::new();
        let word_pairs = self.config.word_pairs;
        let word_stats = words(&normalized, self.config.limits.max_tokens, |w| {
            let hash = sink.add_hashed(Namespace::Body, w);
            if let Some(list) = lexicon.and_then(|l| l.list_of(hash)) {
                sink.add(Namespace::Lexicon, list);
            }
            if word_pairs {
                if let Some(seed) = previous_seed {
                    sink.add_pair(seed, &previous, w);
                }
                previous_seed = Some(xxh3_64_with_seed(w.as_bytes(), PAIR_SEED));
                if sink.names.is_some() {
                    previous.clear();
                    previous.push_str(w);
                }
            }
        });
        if word_stats.truncated {
            flags.insert(Flags::TOKENS_TRUNCATED);
        }
        let deobfuscated = word_stats.deobfuscated + subject_stats.deobfuscated;
        if deobfuscated > 0 || text_stats.hidden_chars > 0 {
            flags.insert(Flags::OBFUSCATION);
        }

        self.header_features(mail, sink);
        self.subword_features(mail, sink, &mut flags);

        sink.add_bucket("text_bytes", log_bucket(mail.text.len()));
        if self.config.mime_structure {
            sink.add_bucket("text_parts", mail.text_parts.min(8));
            sink.add_bucket("html_parts", mail.html_parts.min(8));
            if mail.html_parts > 0 && mail.text_parts == 0 {
                sink.add(Namespace::Meta, "html_only");
            }
            sink.add_bucket("images", log_bucket(mail.images));
        }
        sink.add_bucket("urls", log_bucket(mail.urls.len()));
        sink.add_bucket("attachments", mail.attachments.len().min(8));
        if text_stats.letters >= 20 {
            sink.add_bucket(
                "caps_tenths",
                text_stats.uppercase * 10 / text_stats.letters,
            );
        }
        sink.add_bucket("deobfuscated", log_bucket(deobfuscated));
        sink.add_bucket("hidden_chars", log_bucket(text_stats.hidden_chars));
        for name in flags.names() {
            sink.add(Namespace::Meta, name);
        }
        flags
    }

    fn header_features(&self, mail: &ParsedMail, sink: &mut Sink<'_, impl FnMut(u64)>) {
        let from_base = mail.from_domain.as_deref().map(base_domain);
        match from_base {
            Some(domain) => sink.add_fact("from_domain", domain),
            None => sink.add(Namespace::Header, "no_from_domain"),
        }
        for (label, domain) in [
            ("reply_to", mail.reply_to_domain.as_deref()),
            ("return_path", mail.return_path_domain.as_deref()),
            ("message_id", mail.message_id_domain.as_deref()),
        ] {
            match domain.map(base_domain) {
                Some(base) if Some(base) == from_base => sink.add_fact(label, "same_as_from"),
                Some(base) => {
                    sink.add_fact(label, "differs_from_from");
                    sink.add_fact(label, base);
                }
                None => sink.add_fact(label, "missing"),
            }
        }
        sink.add_bucket("received_hops", mail.received_hops.min(12));
        for host in &mail.received_hosts {
            sink.add_fact("received_from", base_domain(host));
        }
        if let Some(mailer) = &mail.mailer {
            let mut normalized = String::new();
            normalize_text(mailer, &mut normalized);
            words(&normalized, 4, |w| sink.add_fact("mailer", w));
        }
        let mut normalized = String::new();
        for (name, value) in &mail.headers {
            if self.is_ignored_header(name) {
                continue;
            }
            sink.add_fact("has", name);
            if !self.config.header_words_of(name) {
                continue;
            }
            normalized.clear();
            normalize_text(value, &mut normalized);
            let field = xxh3_64_with_seed(name.as_bytes(), Namespace::Header.seed());
            words(&normalized, MAX_WORDS_PER_HEADER, |w| {
                sink.add_keyed(field, name, w)
            });
        }
        if self.config.mime_structure {
            for tag in &mail.html_tags {
                sink.add_fact("html_tag", tag);
            }
        }
        for content_type in mail.content_types.iter().take(16) {
            sink.add_fact("content_type", content_type);
        }
        if let Some(top) = mail.content_types.first() {
            sink.add_fact("top_type", top);
        }
        for charset in &mail.charsets {
            sink.add_fact("charset", charset);
        }
        for url in &mail.urls {
            let Some(host) = url_host(url) else { continue };
            if host.parse::<std::net::IpAddr>().is_ok() {
                sink.add(Namespace::Url, "#ip");
                continue;
            }
            let base = base_domain(&host);
            sink.add(Namespace::Url, base);
            if Some(base) == from_base {
                sink.add(Namespace::Url, "#from_domain");
            }
        }
        for attachment in &mail.attachments {
            sink.add(Namespace::Attachment, &attachment.content_type);
            if let Some((_, extension)) =
                attachment.name.as_deref().and_then(|n| n.rsplit_once('.'))
            {
                sink.add(
                    Namespace::Attachment,
                    &format!(".{}", extension.to_ascii_lowercase()),
                );
            }
        }
    }

    fn subword_features(
        &self,
        mail: &ParsedMail,
        sink: &mut Sink<'_, impl FnMut(u64)>,
        flags: &mut Flags,
    ) {
        let Some(tokenizer) = &self.subword else {
            return;
        };
        if self.config.subword_window_bytes == 0 {
            return;
        }
        match tokenizer.encode(&self.subword_text(mail)) {
            Ok(ids) => {
                for id in ids {
                    let hash = xxh3_64_with_seed(&id.to_le_bytes(), Namespace::Subword.seed());
                    (sink.visit)(hash);
                    if let Some(names) = sink.names.as_deref_mut() {
                        names.0.entry(hash).or_insert_with(|| {
                            format!("sw:{}", tokenizer.token(id).unwrap_or_default())
                        });
                    }
                }
            }
            Err(_) => flags.insert(Flags::ENCODING_PROBLEM),
        }
    }

    fn is_ignored_header(&self, name: &str) -> bool {
        self.config
            .ignored_header_prefixes
            .iter()
            .any(|prefix| name.starts_with(prefix.as_str()))
    }
}

/// Words of one header value turned into features.
const MAX_WORDS_PER_HEADER: usize = 40;

/// `floor(log2(n)) + 1`, 0 for 0: a coarse size bucket.
fn log_bucket(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()) as usize
}

const PAIR_SEED: u64 = 0x2002;

/// The feature hash of body word `word`.
pub(crate) fn body_word_hash(word: &str) -> u64 {
    xxh3_64_with_seed(word.as_bytes(), Namespace::Body.seed())
}

/// Appends `n` in decimal, as `format!("{n}")` writes it.
fn push_decimal(out: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// Receives the feature hashes of one message (and collects names, when asked).
struct Sink<'a, V: FnMut(u64)> {
    /// Called with every feature occurrence's hash.
    visit: V,
    /// When a headerless copy is asked for: the hashes of the header namespace, again.
    header_hashes: Option<Vec<u64>>,
    names: Option<&'a mut FeatureNames>,
    /// Reused buffer for `label=value` features, so they cost no allocation.
    scratch: String,
}

impl<V: FnMut(u64)> Sink<'_, V> {
    /// Records the feature `xxh3(token, seed)` and returns its hash; `name` is called only when
    /// names are collected.
    fn add_seeded(&mut self, seed: u64, token: &str, name: impl FnOnce() -> String) -> u64 {
        let hash = xxh3_64_with_seed(token.as_bytes(), seed);
        (self.visit)(hash);
        if let Some(names) = self.names.as_deref_mut() {
            names.0.entry(hash).or_insert_with(name);
        }
        hash
    }

    fn add(&mut self, namespace: Namespace, token: &str) {
        self.add_hashed(namespace, token);
    }

    /// [`Sink::add`], returning the feature's hash.
    fn add_hashed(&mut self, namespace: Namespace, token: &str) -> u64 {
        let hash = self.add_seeded(namespace.seed(), token, || {
            format!("{}:{}", namespace.prefix(), token)
        });
        if namespace == Namespace::Header {
            self.note_header(hash);
        }
        hash
    }

    /// Notes a hash of the header namespace, when a headerless copy is being made.
    fn note_header(&mut self, hash: u64) {
        if let Some(header_hashes) = &mut self.header_hashes {
            header_hashes.push(hash);
        }
    }

    /// The pair `first second`, where `first_seed` is `xxh3(first, PAIR_SEED)`; `first` is only
    /// read for the name.
    fn add_pair(&mut self, first_seed: u64, first: &str, second: &str) {
        self.add_seeded(first_seed, second, || format!("pair:{first} {second}"));
    }

    /// A word of a header field: hashed with the field's hash as seed, named `hdr:field:word`.
    fn add_keyed(&mut self, field_hash: u64, field: &str, word: &str) {
        let hash = self.add_seeded(field_hash, word, || format!("hdr:{field}:{word}"));
        self.note_header(hash);
    }

    fn add_fact(&mut self, label: &str, value: &str) {
        let mut feature = std::mem::take(&mut self.scratch);
        feature.clear();
        feature.push_str(label);
        feature.push('=');
        feature.push_str(value);
        self.add(Namespace::Header, &feature);
        self.scratch = feature;
    }

    fn add_bucket(&mut self, label: &str, bucket: usize) {
        let mut feature = std::mem::take(&mut self.scratch);
        feature.clear();
        feature.push_str(label);
        feature.push('=');
        push_decimal(&mut feature, bucket);
        self.add(Namespace::Meta, &feature);
        self.scratch = feature;
    }
}

/// `features` less `header`'s counts (the features of the header namespace): a headerless copy.
fn without(features: &SparseFeatures, header: &SparseFeatures) -> SparseFeatures {
    let mut headers = header.entries.iter().copied().peekable();
    let mut entries = Vec::with_capacity(features.entries.len());
    for &(hash, count) in &features.entries {
        while headers.next_if(|&(header, _)| header < hash).is_some() {}
        let left = match headers.next_if(|&(header, _)| header == hash) {
            Some((_, header_count)) => count - header_count,
            None => count,
        };
        if left > 0.0 {
            entries.push((hash, left));
        }
    }
    SparseFeatures { entries }
}

/// `hashes` sorted and counted: one entry per distinct hash.
fn counted(hashes: &[u64]) -> SparseFeatures {
    let mut entries: Vec<(u64, f32)> = Vec::with_capacity(hashes.len());
    for hash in sort_hashes(hashes) {
        match entries.last_mut() {
            Some((last, count)) if *last == hash => *count += 1.0,
            _ => entries.push((hash, 1.0)),
        }
    }
    SparseFeatures { entries }
}

/// `hashes` in ascending order. Feature hashes are uniform, so one counting pass on the top bits
/// (about four hashes per bucket, at least 256 buckets) leaves a few hashes per bucket to sort:
/// several times faster than sorting them all.
fn sort_hashes(hashes: &[u64]) -> Vec<u64> {
    let bits = (hashes.len() / 4).clamp(256, 1 << 16).ilog2();
    let bucket = |hash: u64| (hash >> (u64::BITS - bits)) as usize;
    let mut starts = vec![0usize; (1 << bits) + 1];
    for &hash in hashes {
        starts[bucket(hash) + 1] += 1;
    }
    let mut total = 0;
    for start in &mut starts {
        total += *start;
        *start = total;
    }
    let mut next = starts.clone();
    let mut sorted = vec![0u64; hashes.len()];
    for &hash in hashes {
        let at = &mut next[bucket(hash)];
        sorted[*at] = hash;
        *at += 1;
    }
    for range in starts.windows(2) {
        let slot = &mut sorted[range[0]..range[1]];
        if slot.len() <= 8 {
            // Insertion sort: the usual bucket holds a handful of hashes.
            for i in 1..slot.len() {
                let mut j = i;
                while j > 0 && slot[j - 1] > slot[j] {
                    slot.swap(j - 1, j);
                    j -= 1;
                }
            }
        } else {
            slot.sort_unstable();
        }
    }
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: Pharmacy <sales@pills.example>\nReply-To: x@other.example\nSubject: Cheap V1agra\nX-Spam-Flag: YES\n\nBuy cheap viagra at http://pills.example/now buy cheap\n";

    #[test]
    fn features_are_sorted_counted_and_named() {
        let extractor = FeatureExtractor::new(FeatureConfig::default(), None);
        let mut names = FeatureNames::default();
        let extraction = extractor.features_of(&extractor.parse(MAIL), Some(&mut names));
        let entries = &extraction.features.entries;
        assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        let named: HashMap<&str, f32> = entries
            .iter()
            .filter_map(|(hash, count)| names.get(*hash).map(|name| (name, *count)))
            .collect();
        assert_eq!(named.len(), entries.len(), "every feature has a name");
        assert_eq!(named.get("subj:viagra"), Some(&1.0));
        assert_eq!(named.get("body:cheap"), Some(&2.0));
        assert_eq!(named.get("pair:buy cheap"), Some(&2.0));
        assert_eq!(named.get("hdr:from_domain=pills.example"), Some(&1.0));
        assert_eq!(named.get("hdr:reply_to=differs_from_from"), Some(&1.0));
        assert_eq!(named.get("url:#from_domain"), Some(&1.0));
        assert_eq!(named.get("meta:obfuscation"), Some(&1.0));
        assert!(
            !named.keys().any(|name| name.contains("x-spam")),
            "upstream filter headers are ignored"
        );
        assert_eq!(
            extractor.extract(MAIL),
            extraction,
            "naming does not change features"
        );
    }

    /// The names of the features `config` extracts from `mail`.
    fn feature_names(config: FeatureConfig, mail: &[u8]) -> Vec<String> {
        let extractor = FeatureExtractor::new(config, None);
        let mut names = FeatureNames::default();
        let extraction = extractor.features_of(&extractor.parse(mail), Some(&mut names));
        extraction
            .features
            .entries
            .iter()
            .filter_map(|(hash, _)| names.get(*hash).map(str::to_owned))
            .collect()
    }

    #[test]
    fn header_words_can_be_turned_off() {
        let with = feature_names(FeatureConfig::default(), MAIL);
        assert!(with.iter().any(|name| name == "hdr:reply-to:other"));
        let without = feature_names(
            FeatureConfig {
                header_words: false,
                ..FeatureConfig::default()
            },
            MAIL,
        );
        assert!(without.iter().any(|name| name == "hdr:has=reply-to"));
        assert!(
            without
                .iter()
                .any(|name| name == "hdr:from_domain=pills.example")
        );
        assert!(!without.iter().any(|name| name.starts_with("hdr:reply-to:")));
        assert!(with.len() > without.len());
    }

    #[test]
    fn mime_structure_features_only_when_asked() {
        const HTML: &[u8] = b"From: shop@store.example\nSubject: your order\nContent-Type: text/html\n\n<html><body><p>Your order <b>shipped</b>.</p><img src=\"https://store.example/logo.png\"></body></html>\n";
        let structure = |name: &str| {
            name == "meta:html_only"
                || name.starts_with("meta:text_parts=")
                || name.starts_with("meta:html_parts=")
                || name.starts_with("meta:images=")
                || name.starts_with("hdr:html_tag=")
        };
        let without = feature_names(FeatureConfig::default(), HTML);
        assert!(!without.iter().any(|name| structure(name)), "{without:?}");
        assert!(without.iter().any(|name| name == "body:shipped"));
        let with = feature_names(
            FeatureConfig {
                mime_structure: true,
                ..FeatureConfig::default()
            },
            HTML,
        );
        for expected in [
            "meta:html_only",
            "meta:text_parts=0",
            "meta:html_parts=1",
            "meta:images=1",
            "hdr:html_tag=img",
        ] {
            assert!(
                with.iter().any(|name| name == expected),
                "{expected}: {with:?}"
            );
        }
    }

    #[test]
    fn lexicon_words_add_their_list_once_per_occurrence() {
        const PHARMA: &[u8] = b"From: a@b.example\nSubject: cheap C1alis\n\nBuy cialis or v-i-a-g-r-a at our pharmacy. Also a mortgage.\n";
        let extractor = FeatureExtractor::new(FeatureConfig::default(), None);
        let mut names = FeatureNames::default();
        let extraction = extractor.features_of(&extractor.parse(PHARMA), Some(&mut names));
        let count = |wanted: &str| {
            extraction
                .features
                .entries
                .iter()
                .find(|(hash, _)| names.get(*hash) == Some(wanted))
                .map(|&(_, count)| count)
        };
        // Subject `c1alis` (folded), body `cialis`, `viagra` (spelled out) and `pharmacy`.
        assert_eq!(count("lex:pharma"), Some(4.0));
        assert_eq!(count("lex:mortgage"), Some(1.0));
        assert_eq!(count("lex:software"), None);
        assert_eq!(count("body:cialis"), Some(1.0));
        let without = feature_names(
            FeatureConfig {
                lexicons: 0,
                ..FeatureConfig::default()
            },
            PHARMA,
        );
        assert!(!without.iter().any(|name| name.starts_with("lex:")));
        assert!(without.iter().any(|name| name == "body:cialis"));
    }

    #[test]
    fn header_words_come_from_the_chosen_fields() {
        const LISTED: &[u8] = b"From: Ann <ann@a.example>\nReply-To: x@other.example\nReceived: from relay.a.example by mx.b.example\nList-Id: <fans.lists.example>\nList-Post: <mailto:fans@lists.example>\nX-Loop: fans\nSubject: hi\n\nbody\n";
        let fields_with_words = |fields: &[&str]| {
            let config = FeatureConfig {
                header_word_fields: fields.iter().map(|f| f.to_string()).collect(),
                ..FeatureConfig::default()
            };
            let mut fields: Vec<String> = feature_names(config, LISTED)
                .iter()
                .filter(|name| !name.contains('='))
                .filter_map(|name| name.strip_prefix("hdr:")?.split_once(':'))
                .map(|(field, _)| field.to_owned())
                .collect();
            fields.sort();
            fields.dedup();
            fields
        };
        assert_eq!(
            fields_with_words(&DEFAULT_HEADER_WORD_FIELDS),
            ["from", "reply-to"]
        );
        let every = [
            "from",
            "list-id",
            "list-post",
            "received",
            "reply-to",
            "subject",
            "x-loop",
        ];
        assert_eq!(fields_with_words(&["*"]), every);
        assert_eq!(
            fields_with_words(&["List-*", "RECEIVED"]),
            ["list-id", "list-post", "received"]
        );
        assert!(fields_with_words(&[]).is_empty());
        // Facts about the fields stay either way.
        let facts = feature_names(FeatureConfig::default(), LISTED);
        assert!(facts.iter().any(|name| name == "hdr:has=list-id"));
        assert!(facts.iter().any(|name| name == "hdr:has=received"));
    }

    #[test]
    fn headerless_copy_is_the_features_without_header_ones() {
        let extractor = FeatureExtractor::new(FeatureConfig::default(), None);
        let mail = extractor.parse(MAIL);
        let mut names = FeatureNames::default();
        let (extraction, copy) = extractor.features_and_copy(&mail, Some(&mut names), true);
        let copy = copy.unwrap_or_default();
        assert_eq!(extraction, extractor.features_of(&mail, None));
        let expected: Vec<(u64, f32)> = extraction
            .features
            .entries
            .iter()
            .copied()
            .filter(|(hash, _)| {
                !names
                    .get(*hash)
                    .is_some_and(|name| name.starts_with("hdr:"))
            })
            .collect();
        assert!(expected.len() < extraction.features.entries.len());
        assert!(
            expected
                .iter()
                .any(|(hash, _)| names.get(*hash) == Some("body:cheap"))
        );
        assert_eq!(copy.entries, expected);
    }

    #[test]
    fn hashes_sort_like_sort_unstable() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut hashes: Vec<u64> = (0..20_000)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                if i % 3 == 0 { state >> (i % 64) } else { state }
            })
            .collect();
        hashes.extend([0, u64::MAX, 0, u64::MAX]);
        for sample in [&hashes[..10], &hashes[..900], &hashes] {
            let mut expected = sample.to_vec();
            expected.sort_unstable();
            assert_eq!(sort_hashes(sample), expected);
        }
        assert!(sort_hashes(&[]).is_empty());
    }

    #[test]
    fn subword_window_is_bounded_and_encoded() -> Result<(), crate::SubwordError> {
        let config = FeatureConfig {
            subword_window_bytes: 16,
            ..FeatureConfig::default()
        };
        let plain = FeatureExtractor::new(config.clone(), None);
        let mail = plain.parse(MAIL);
        let window = plain.subword_text(&mail);
        assert!(window.len() <= 16);
        assert!(window.starts_with("cheap v1agra\n"));
        let tokenizer = SubwordTokenizer::train(std::iter::repeat_n(window.as_str(), 10), 100)?;
        let with_subwords = FeatureExtractor::new(config, Some(tokenizer));
        let more = with_subwords.extract(MAIL).features.entries.len();
        assert!(more > plain.extract(MAIL).features.entries.len());
        Ok(())
    }
}
