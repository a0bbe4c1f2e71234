//! Bytes to [`ParsedMail`]: MIME decoding through `mail-parser`, bounded by [`Limits`].

use std::sync::LazyLock;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    Header, HeaderName, HeaderValue, Host, Message, MessageParser, MimeHeaders, PartType,
};

use crate::flags::Flags;
use crate::html::{floor_char_boundary, html_to_text};
use crate::limits::Limits;

/// A non-text MIME part, summarised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name from Content-Disposition or Content-Type, if any.
    pub name: Option<String>,
    /// Lower-case `type/subtype`.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
}

/// What the classifier needs from one message: decoded text and header facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedMail {
    /// Decoded Subject (RFC 2047 words decoded), empty when missing.
    pub subject: String,
    /// Display name of the first From address.
    pub from_name: String,
    /// Lower-case domain of the first From address.
    pub from_domain: Option<String>,
    /// Lower-case domain of the first Reply-To address.
    pub reply_to_domain: Option<String>,
    /// Lower-case domain of the Return-Path address.
    pub return_path_domain: Option<String>,
    /// Lower-case domain part of the Message-ID.
    pub message_id_domain: Option<String>,
    /// Number of Received headers.
    pub received_hops: usize,
    /// Host names claimed by the first few Received hops (the `from` clause), lower case.
    pub received_hosts: Vec<String>,
    /// X-Mailer or User-Agent value.
    pub mailer: Option<String>,
    /// Top-level header fields in order: lower-case name and raw value (at most
    /// [`MAX_HEADERS`] fields, values cut to [`MAX_HEADER_VALUE_BYTES`]).
    pub headers: Vec<(String, String)>,
    /// Distinct HTML tag names used, lower case, in order of first use.
    pub html_tags: Vec<String>,
    /// Lower-case `type/subtype` of every part visited, in document order.
    pub content_types: Vec<String>,
    /// Lower-case charsets declared by text parts.
    pub charsets: Vec<String>,
    /// Decoded text of all text parts, HTML rendered to text, bounded by `max_text_bytes`.
    pub text: String,
    /// Number of text/plain (and other non-HTML text) parts.
    pub text_parts: usize,
    /// Number of text/html parts.
    pub html_parts: usize,
    /// URLs from HTML links and from the text, bounded by `max_urls`.
    pub urls: Vec<String>,
    /// Number of `<img>` tags in HTML parts.
    pub images: usize,
    /// Non-text parts.
    pub attachments: Vec<Attachment>,
    /// What was truncated or odd.
    pub flags: Flags,
}

/// Parses any bytes into a [`ParsedMail`]. Never panics; over-limit input is cut and flagged.
pub fn parse_mail(bytes: &[u8], limits: &Limits) -> ParsedMail {
    let mut mail = ParsedMail::default();
    let mut bytes = skip_mbox_from_line(bytes);
    if bytes.len() > limits.max_message_bytes {
        bytes = &bytes[..limits.max_message_bytes];
        mail.flags.insert(Flags::MESSAGE_TRUNCATED);
    }
    let patched;
    let source = match neutralize_encoded_messages(bytes) {
        Some(neutralized) => {
            mail.flags.insert(Flags::ENCODING_PROBLEM);
            patched = neutralized;
            patched.as_slice()
        }
        None => bytes,
    };
    let parsed = DEFAULT_PARSER.parse(source);
    match &parsed {
        Some(message) if has_known_header(message) => {
            read_headers(message, &mut mail);
            let mut walker = PartWalker {
                limits,
                mail: &mut mail,
                visited: 0,
            };
            walker.visit_message(message, 0);
        }
        _ => {
            mail.flags.insert(Flags::NO_HEADERS);
            let text = utf8_lossy(bytes);
            push_bounded(
                &mut mail.text,
                &text,
                limits.max_text_bytes,
                &mut mail.flags,
            );
            mail.text_parts = 1;
        }
    }
    if let Some(message) = parsed {
        drop_flat(message);
    }
    let text = std::mem::take(&mut mail.text);
    find_urls(&text, limits.max_urls, &mut mail.urls);
    mail.text = text;
    if mail.text.trim().is_empty() {
        mail.flags.insert(Flags::EMPTY_TEXT);
    }
    mail
}

/// Drops a parsed message without recursion. `Message` nests through `PartType::Message`, and
/// its derived drop recurses once per level: thousands of nested message/rfc822 parts (30 bytes
/// each) overflow the stack.
fn drop_flat(message: Message<'_>) {
    let mut pending = vec![message];
    while let Some(mut message) = pending.pop() {
        for part in &mut message.parts {
            if let PartType::Message(nested) = std::mem::take(&mut part.body) {
                pending.push(nested);
            }
        }
    }
}

/// The parser for classification, built once (building one allocates a table of header parsers).
static DEFAULT_PARSER: LazyLock<MessageParser> = LazyLock::new(header_parser);

/// The same parser except that Content-Transfer-Encoding is skipped: no part is decoded, so no
/// encoded message part is parsed a second time. Same parser per field, so the same MIME
/// structure.
static ENCODING_BLIND_PARSER: LazyLock<MessageParser> =
    LazyLock::new(|| header_parser().ignore_header(HeaderName::ContentTransferEncoding));

/// A parser that reads the fields classification uses exactly as `MessageParser::default()`
/// reads them and skips the values of the others. Skipping changes no offsets and so no MIME
/// structure: these fields' parsers all stop at the first line break not followed by a space or
/// tab, as skipping does. The date parser does not (an obsolete zone such as `UT` at the end of
/// the field makes it read past the line break), so dates are still parsed. `Received` is
/// skipped: [`read_headers`] parses the few hops it needs from their raw bytes with
/// mail-parser's own Received parser. Unlisted fields stay raw text, as by default (X-Mailer,
/// User-Agent).
fn header_parser() -> MessageParser {
    let mut parser = MessageParser::new()
        .header_text(HeaderName::Subject)
        .header_text(HeaderName::ContentTransferEncoding)
        .header_address(HeaderName::From)
        .header_address(HeaderName::ReplyTo)
        .header_id(HeaderName::MessageId)
        .header_id(HeaderName::ReturnPath)
        .header_date(HeaderName::Date)
        .header_date(HeaderName::ResentDate)
        .header_content_type(HeaderName::ContentType)
        .header_content_type(HeaderName::ContentDisposition);
    for name in [
        HeaderName::Comments,
        HeaderName::ContentDescription,
        HeaderName::ContentLocation,
        HeaderName::To,
        HeaderName::Cc,
        HeaderName::Bcc,
        HeaderName::Sender,
        HeaderName::ResentTo,
        HeaderName::ResentFrom,
        HeaderName::ResentBcc,
        HeaderName::ResentCc,
        HeaderName::ResentSender,
        HeaderName::ListArchive,
        HeaderName::ListHelp,
        HeaderName::ListId,
        HeaderName::ListOwner,
        HeaderName::ListPost,
        HeaderName::ListSubscribe,
        HeaderName::ListUnsubscribe,
        HeaderName::References,
        HeaderName::InReplyTo,
        HeaderName::ContentId,
        HeaderName::ResentMessageId,
        HeaderName::Keywords,
        HeaderName::ContentLanguage,
        HeaderName::MimeVersion,
        HeaderName::Received,
    ] {
        parser = parser.ignore_header(name);
    }
    parser
}

/// `bytes` with the Content-Transfer-Encoding header of every message part (message/rfc822,
/// message/global, or a member of a multipart/digest) renamed, so that mail-parser reads those
/// parts as they stand; `None` when no message part declares an encoding that decodes.
///
/// mail-parser decodes an encoded message part, parses the result and then copies the whole
/// decoded part once for every message nested inside it (`Message::into_owned`), so a few MB of
/// base64 holding many small message/rfc822 parts ask for terabytes. RFC 2046 forbids encoding
/// message/rfc822 anyway. Finding those parts costs a first parse that skips
/// Content-Transfer-Encoding, run only when one of the subtypes that make a nested message
/// (`rfc822`, `global`, `digest`; mail-parser matches them as contiguous bytes) occurs at all.
fn neutralize_encoded_messages(bytes: &[u8]) -> Option<Vec<u8>> {
    if !may_nest(bytes) {
        return None;
    }
    let message = ENCODING_BLIND_PARSER.parse(bytes)?;
    let mut header_offsets = Vec::new();
    let mut pending = vec![&message];
    while let Some(message) = pending.pop() {
        let digest_members: Vec<u32> = message
            .parts
            .iter()
            .filter(|part| {
                part.content_type()
                    .is_some_and(|ct| ct.ctype() == "multipart" && ct.subtype() == Some("digest"))
            })
            .filter_map(|part| match &part.body {
                PartType::Multipart(children) => Some(children.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect();
        for (id, part) in (0u32..).zip(&message.parts) {
            let is_message = match (&part.body, part.content_type()) {
                (PartType::Message(nested), _) => {
                    pending.push(nested);
                    true
                }
                (_, Some(ct)) => {
                    ct.ctype() == "message" && matches!(ct.subtype(), Some("rfc822" | "global"))
                }
                (_, None) => digest_members.contains(&id),
            };
            if is_message {
                header_offsets.extend(
                    part.headers
                        .iter()
                        .filter(|header| {
                            header.name == HeaderName::ContentTransferEncoding
                                && may_decode(bytes, header)
                        })
                        .map(|header| header.offset_field as usize),
                );
            }
        }
    }
    drop(pending);
    drop_flat(message);
    if header_offsets.is_empty() {
        return None;
    }
    let mut patched = bytes.to_vec();
    for offset in header_offsets {
        // The field name starts at `offset_field`: "Content-..." becomes "Xontent-...", an
        // unknown header, so the part is read unencoded.
        if let Some(first) = patched.get_mut(offset)
            && first.eq_ignore_ascii_case(&b'c')
        {
            *first = b'X';
        }
    }
    Some(patched)
}

/// The subtypes that make a nested message, as mail-parser matches them (contiguous bytes).
const NESTING_SUBTYPES: [&[u8]; 3] = [b"rfc822", b"global", b"digest"];

static NESTING_FINDERS: LazyLock<[memchr::memmem::Finder<'static>; 3]> =
    LazyLock::new(|| NESTING_SUBTYPES.map(memchr::memmem::Finder::new));

/// True when `rfc822`, `global` or `digest` occurs anywhere in `bytes`, in any case. Each 4 KiB
/// window is folded to lower case by setting bit 5 of every byte, which turns every case of the
/// three words into the lower-case one (and a few control bytes into digits), searched with
/// memchr's vectorised `memmem`; each hit is confirmed on the original bytes. Letters are too
/// common to search byte by byte: base64 and text have a candidate every few dozen bytes.
fn may_nest(bytes: &[u8]) -> bool {
    const WINDOW: usize = 4096;
    // Each window reaches five bytes into the next, so a word that starts in it ends in it.
    const OVERLAP: usize = 5;
    let mut folded = [0u8; WINDOW + OVERLAP];
    let mut start = 0;
    while start < bytes.len() {
        let window = &bytes[start..bytes.len().min(start + WINDOW + OVERLAP)];
        let folded = &mut folded[..window.len()];
        for (to, &from) in folded.iter_mut().zip(window) {
            *to = from | 0x20;
        }
        for (finder, word) in NESTING_FINDERS.iter().zip(NESTING_SUBTYPES) {
            if finder.find_iter(folded).any(|at| {
                window
                    .get(at..at + word.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(word))
            }) {
                return true;
            }
        }
        start += WINDOW;
    }
    false
}

/// False when a Content-Transfer-Encoding field surely leaves the body as it is (empty, `7bit`,
/// `8bit`, `binary`), read as mail-parser reads it.
fn may_decode(bytes: &[u8], header: &Header<'_>) -> bool {
    let raw = bytes
        .get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default();
    match MessageStream::new(raw).parse_unstructured() {
        HeaderValue::Empty => false,
        HeaderValue::Text(value) => !["7bit", "8bit", "binary"]
            .iter()
            .any(|identity| value.trim().eq_ignore_ascii_case(identity)),
        _ => true,
    }
}

/// True when at least one standard header field was recognised; otherwise the "headers" are
/// most likely the first line of a text without any header block.
fn has_known_header(message: &Message<'_>) -> bool {
    !message.parts.is_empty()
        && message
            .headers()
            .iter()
            .any(|header| !matches!(header.name, HeaderName::Other(_)))
}

/// The Message-ID of a message (without angle brackets), read from its header section only;
/// `None` when missing or empty. The header section read is bounded by `limits`.
pub fn message_id(bytes: &[u8], limits: &Limits) -> Option<String> {
    let bytes = skip_mbox_from_line(bytes);
    let bytes = &bytes[..bytes.len().min(limits.max_message_bytes)];
    let headers = MessageParser::new()
        .header_id(HeaderName::MessageId)
        .parse_headers(bytes)?;
    headers
        .message_id()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// Header fields in which the receiving mail server records the envelope recipient (`To` and
/// `Cc` are the sender's words, so they do not count).
const RECIPIENT_HEADERS: [&str; 4] = [
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
];

/// Most recipient addresses read from one message.
const MAX_RECIPIENTS: usize = 256;

/// The envelope recipients the receiving mail server recorded in a message's header section
/// (`Delivered-To`, `X-Original-To`, `Envelope-To`, `X-Envelope-To`), lower-cased, at most 256;
/// bounded by `limits`. `To` and `Cc` are ignored: any sender can write any address there.
pub fn delivery_recipients(bytes: &[u8], limits: &Limits) -> Vec<String> {
    let bytes = skip_mbox_from_line(bytes);
    let bytes = &bytes[..bytes.len().min(limits.max_message_bytes)];
    let mut parser = MessageParser::new();
    for name in RECIPIENT_HEADERS {
        parser = parser.header_address(name);
    }
    let Some(headers) = parser.parse_headers(bytes) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for header in headers.headers() {
        let wanted = RECIPIENT_HEADERS
            .iter()
            .any(|name| header.name.as_str().eq_ignore_ascii_case(name));
        if !wanted {
            continue;
        }
        match &header.value {
            HeaderValue::Address(address) => found.extend(
                address
                    .iter()
                    .filter_map(|a| a.address())
                    .map(|a| a.trim().to_ascii_lowercase()),
            ),
            HeaderValue::Text(text) => found.push(
                text.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_ascii_lowercase(),
            ),
            _ => {}
        }
        if found.len() >= MAX_RECIPIENTS {
            break;
        }
    }
    found.retain(|a| !a.is_empty());
    found.truncate(MAX_RECIPIENTS);
    found
}

/// Skips an mbox envelope line (`From sender date`) if the input starts with one.
fn skip_mbox_from_line(bytes: &[u8]) -> &[u8] {
    if bytes.starts_with(b"From ") {
        match bytes.iter().position(|&b| b == b'\n') {
            Some(end) => &bytes[end + 1..],
            None => &[],
        }
    } else {
        bytes
    }
}

/// Distinct HTML tag names kept per message.
const MAX_HTML_TAGS: usize = 64;
/// Header fields kept per message.
pub const MAX_HEADERS: usize = 64;
/// Bytes of each header value kept.
pub const MAX_HEADER_VALUE_BYTES: usize = 1024;

fn read_headers(message: &Message<'_>, mail: &mut ParsedMail) {
    mail.subject = message.subject().unwrap_or_default().to_owned();
    if let Some(from) = message.from().and_then(|a| a.first()) {
        mail.from_name = from.name().unwrap_or_default().to_owned();
        mail.from_domain = from.address().and_then(address_domain);
    }
    mail.reply_to_domain = message
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .and_then(address_domain);
    mail.return_path_domain = match message.return_path() {
        HeaderValue::Text(text) => address_domain(text),
        HeaderValue::Address(address) => address
            .first()
            .and_then(|a| a.address())
            .and_then(address_domain),
        _ => None,
    };
    mail.message_id_domain = message.message_id().and_then(address_domain);
    let raw = message.raw_message();
    let raw_value = |header: &Header<'_>| {
        let start = (header.offset_start as usize).min(raw.len());
        &raw[start..(header.offset_end as usize).clamp(start, raw.len())]
    };
    for header in message.headers() {
        let name = header.name();
        if matches!(header.name, HeaderName::Received) {
            mail.received_hops += 1;
            if mail.received_hosts.len() < 3
                && let HeaderValue::Received(received) =
                    MessageStream::new(raw_value(header)).parse_received()
                && let Some(Host::Name(host)) = &received.from
            {
                mail.received_hosts.push(host.to_ascii_lowercase());
            }
        } else if mail.mailer.is_none()
            && (name.eq_ignore_ascii_case("x-mailer") || name.eq_ignore_ascii_case("user-agent"))
        {
            mail.mailer = header.value().as_text().map(str::to_owned);
        }
        if mail.headers.len() < MAX_HEADERS {
            let value = raw_value(header);
            let value = &value[..value.len().min(MAX_HEADER_VALUE_BYTES)];
            let value = utf8_lossy(value).trim().to_owned();
            mail.headers.push((name.to_ascii_lowercase(), value));
        }
    }
}

/// `bytes` as text, invalid sequences replaced as [`String::from_utf8_lossy`] does; checks the
/// usual valid input with the faster strict validator first.
fn utf8_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The lower-case domain after the last `@`, without angle brackets.
fn address_domain(address: &str) -> Option<String> {
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('>').trim();
    (!domain.is_empty() && domain.len() <= 253).then(|| domain.to_ascii_lowercase())
}

/// Ceiling on [`Limits::max_depth`]: the walk recurses once per level, so a huge configured
/// depth (with a huge `max_parts`) would let a message of nested parts overflow the stack.
const MAX_WALK_DEPTH: usize = 256;

struct PartWalker<'a> {
    limits: &'a Limits,
    mail: &'a mut ParsedMail,
    visited: usize,
}

impl PartWalker<'_> {
    fn visit_message(&mut self, message: &Message<'_>, depth: usize) {
        self.visit_part(message, 0, depth);
    }

    fn visit_part(&mut self, message: &Message<'_>, id: u32, depth: usize) {
        if depth > self.limits.max_depth.min(MAX_WALK_DEPTH) {
            self.mail.flags.insert(Flags::DEPTH_TRUNCATED);
            return;
        }
        if self.visited >= self.limits.max_parts {
            self.mail.flags.insert(Flags::PARTS_TRUNCATED);
            return;
        }
        self.visited += 1;
        let Some(part) = message.parts.get(id as usize) else {
            return;
        };
        if part.is_encoding_problem {
            self.mail.flags.insert(Flags::ENCODING_PROBLEM);
        }
        let content_type = part.content_type();
        let type_name = content_type.map_or_else(
            || "text/plain".to_owned(),
            |ct| match &ct.c_subtype {
                Some(sub) => format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
                None => ct.c_type.to_ascii_lowercase(),
            },
        );
        if let Some(charset) = content_type.and_then(|ct| ct.attribute("charset"))
            && self.mail.charsets.len() < 8
        {
            self.mail.charsets.push(charset.to_ascii_lowercase());
        }
        self.mail.content_types.push(type_name.clone());
        if matches!(part.body, PartType::Text(_) | PartType::Html(_))
            && content_type
                .and_then(|ct| ct.attribute("charset"))
                .is_some_and(is_unknown_charset)
        {
            // mail-parser read the part as UTF-8, replacing what it could not decode.
            self.mail.flags.insert(Flags::ENCODING_PROBLEM);
        }
        match &part.body {
            PartType::Text(text) => {
                self.mail.text_parts += 1;
                self.push_text(text);
            }
            PartType::Html(html) => {
                self.mail.html_parts += 1;
                let room = self
                    .limits
                    .max_text_bytes
                    .saturating_sub(self.mail.text.len());
                let links_room = self.limits.max_urls.saturating_sub(self.mail.urls.len());
                let rendered = html_to_text(html, room, links_room);
                if rendered.truncated {
                    self.mail.flags.insert(Flags::TEXT_TRUNCATED);
                }
                self.mail.images += rendered.images;
                for tag in rendered.tags {
                    if self.mail.html_tags.len() < MAX_HTML_TAGS
                        && !self.mail.html_tags.contains(&tag)
                    {
                        self.mail.html_tags.push(tag);
                    }
                }
                self.mail.urls.extend(rendered.links);
                self.push_text(&rendered.text);
            }
            PartType::Binary(data) | PartType::InlineBinary(data) => {
                self.mail.attachments.push(Attachment {
                    name: part.attachment_name().map(str::to_owned),
                    content_type: type_name,
                    size: data.len(),
                });
            }
            PartType::Message(nested) => {
                if let Some(subject) = nested.subject() {
                    self.push_text(subject);
                }
                self.visit_message(nested, depth + 1);
            }
            PartType::Multipart(children) => {
                for &child in children {
                    if child <= id {
                        continue; // never walk backwards: guards against cycles
                    }
                    self.visit_part(message, child, depth + 1);
                }
            }
        }
    }

    fn push_text(&mut self, text: &str) {
        push_bounded(
            &mut self.mail.text,
            text,
            self.limits.max_text_bytes,
            &mut self.mail.flags,
        );
    }
}

/// True for a charset label mail-parser has no decoder for. UTF-8 labels have none either
/// because mail-parser reads UTF-8 directly.
fn is_unknown_charset(charset: &str) -> bool {
    const UTF8_LABELS: [&str; 6] = [
        "utf-8",
        "utf8",
        "unicode-1-1-utf-8",
        "unicode11utf8",
        "unicode20utf8",
        "x-unicode20utf8",
    ];
    charset_decoder(charset.as_bytes()).is_none()
        && !UTF8_LABELS
            .iter()
            .any(|label| charset.eq_ignore_ascii_case(label))
}

/// Appends `text` and a separating newline, keeping `out` within `max` bytes.
fn push_bounded(out: &mut String, text: &str, max: usize, flags: &mut Flags) {
    let room = max.saturating_sub(out.len());
    if text.len() > room {
        flags.insert(Flags::TEXT_TRUNCATED);
        out.push_str(&text[..floor_char_boundary(text, room)]);
        return;
    }
    out.push_str(text);
    if out.len() < max {
        out.push('\n');
    }
}

/// Appends URLs written in plain text (`http://`, `https://`, `www.`) to `urls`, up to `max`.
fn find_urls(text: &str, max: usize, urls: &mut Vec<String>) {
    let bytes = text.as_bytes();
    let mut pos = 0;
    while urls.len() < max && pos + 4 <= bytes.len() {
        // Candidates start with h or w; memchr finds them without looking at every window.
        let is_url_start = |at: &usize| {
            bytes
                .get(*at..*at + 4)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"http") || w.eq_ignore_ascii_case(b"www."))
        };
        let rest = &bytes[pos..];
        let lower = memchr::memchr2_iter(b'h', b'w', rest)
            .map(|o| pos + o)
            .find(is_url_start);
        let upper = memchr::memchr2_iter(b'H', b'W', rest)
            .map(|o| pos + o)
            .find(is_url_start);
        let Some(start) = lower.into_iter().chain(upper).min() else {
            break;
        };
        let end = bytes[start..]
            .iter()
            .position(|&b| b.is_ascii_whitespace() || b"\"'<>()[]{}|\\^`".contains(&b) || b >= 0x80)
            .map_or(bytes.len(), |len| start + len);
        let candidate = &text[start..end];
        let lower = candidate.to_ascii_lowercase();
        if (lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with("www."))
            && candidate.len() > 8
        {
            urls.push(
                candidate
                    .trim_end_matches(['.', ',', ';', ':', '!', '?'])
                    .to_owned(),
            );
        }
        pos = end.max(start + 4);
    }
}

/// The lower-case host of a URL (`http://user@host:port/path` gives `host`), if it has one.
pub(crate) fn url_host(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .or_else(|| lower.starts_with("www.").then_some(lower.as_str()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = host
        .split(':')
        .next()
        .unwrap_or_default()
        .trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_owned())
}

/// The last two labels of a host name (`mail.example.com` gives `example.com`); IPs stay whole.
pub(crate) fn base_domain(host: &str) -> &str {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    let mut dots = host.rmatch_indices('.');
    dots.next();
    match dots.next() {
        Some((at, _)) => &host[at + 1..],
        None => host,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn delivery_recipients_come_from_the_receiving_servers_headers_only() {
        let message = b"From sender Mon Jan 1 00:00:00 2024\nTo: \"Ann\" <Ann@Example.ORG>, bob@example.org\nCc: undisclosed-recipients:;\nDelivered-To: trap@traps.example.net\nX-Original-To: <Other@Example.net>\nSubject: hi\n\nDelivered-To: not-a-header@example.org\n";
        assert_eq!(
            super::delivery_recipients(message, &super::Limits::default()),
            ["trap@traps.example.net", "other@example.net"]
        );
        assert!(
            super::delivery_recipients(b"\xff\xfe no headers", &super::Limits::default())
                .is_empty()
        );
    }

    use super::*;

    /// [`may_nest`] by definition: every window compared.
    fn may_nest_by_definition(bytes: &[u8]) -> bool {
        NESTING_SUBTYPES.iter().any(|word| {
            bytes
                .windows(word.len())
                .any(|w| w.eq_ignore_ascii_case(word))
        })
    }

    #[test]
    fn may_nest_finds_the_words_in_any_case_across_window_edges() {
        for word in [&b"RfC822"[..], b"gLoBaL", b"DIGEST"] {
            for at in (4080..4100).chain(8180..8200) {
                let mut bytes = vec![b'b'; 8300];
                bytes[at..at + word.len()].copy_from_slice(word);
                assert!(may_nest(&bytes), "{at}");
                assert!(may_nest(&bytes[..at + word.len()]), "{at} at the end");
                assert!(!may_nest(&bytes[..at + word.len() - 1]), "{at} cut short");
            }
        }
        // Bytes that fold onto the words' letters or digits are confirmed, not taken.
        for near in [
            &b"rfc\x18\x12\x12"[..],
            b"G\x0cobal",
            b"dig\x05st",
            b"rfc82",
        ] {
            assert!(!may_nest(near));
        }
    }

    proptest::proptest! {
        #[test]
        fn may_nest_agrees_with_its_definition(
            mut bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..9000),
            word in 0..3usize,
            at in proptest::option::of(0..9000usize),
        ) {
            if let Some(at) = at.filter(|&at| at + 6 <= bytes.len()) {
                bytes[at..at + 6].copy_from_slice(NESTING_SUBTYPES[word]);
            }
            proptest::prop_assert_eq!(may_nest(&bytes), may_nest_by_definition(&bytes));
        }
    }

    const SIMPLE: &[u8] = b"From spammer@example.com  Mon Jan  1 00:00:00 2002\n\
Return-Path: <bounce@bulk.example.net>\n\
Received: from mx.example.org (mx.example.org [10.0.0.1]) by in.example.com\n\
From: \"Best Deals\" <deals@shop.example.com>\n\
Reply-To: other@elsewhere.example\n\
Subject: =?iso-8859-1?q?Cheap_m=E9ds?=\n\
Message-ID: <abc@host.example.com>\n\
X-Mailer: BulkMailer 1.0\n\
X-Spam-Status: Yes, score=99\n\
Content-Type: multipart/alternative; boundary=\"b\"\n\
\n\
--b\n\
Content-Type: text/plain; charset=us-ascii\n\
\n\
Visit http://pills.example.com/buy now\n\
--b\n\
Content-Type: text/html\n\
Content-Transfer-Encoding: base64\n\
\n\
PGEgaHJlZj0iaHR0cDovL2xpbmsuZXhhbXBsZS5jb20vIj5DbGljazwvYT4=\n\
--b--\n";

    #[test]
    fn headers_parts_and_urls_are_extracted() {
        let mail = parse_mail(SIMPLE, &Limits::default());
        assert_eq!(mail.subject, "Cheap méds");
        assert_eq!(mail.from_name, "Best Deals");
        assert_eq!(mail.from_domain.as_deref(), Some("shop.example.com"));
        assert_eq!(mail.reply_to_domain.as_deref(), Some("elsewhere.example"));
        assert_eq!(mail.return_path_domain.as_deref(), Some("bulk.example.net"));
        assert_eq!(mail.message_id_domain.as_deref(), Some("host.example.com"));
        assert_eq!(mail.received_hops, 1);
        assert_eq!(mail.received_hosts, ["mx.example.org"]);
        assert_eq!(mail.mailer.as_deref(), Some("BulkMailer 1.0"));
        assert!(
            mail.headers
                .contains(&("x-spam-status".to_owned(), "Yes, score=99".to_owned()))
        );
        assert_eq!(
            mail.content_types,
            ["multipart/alternative", "text/plain", "text/html"]
        );
        assert_eq!((mail.text_parts, mail.html_parts), (1, 1));
        assert!(mail.text.contains("Visit http://pills.example.com/buy now"));
        assert!(mail.text.contains("Click"));
        assert_eq!(
            mail.urls,
            ["http://link.example.com/", "http://pills.example.com/buy"]
        );
        assert!(
            mail.flags.is_empty(),
            "{:?}",
            mail.flags.names().collect::<Vec<_>>()
        );
    }

    #[test]
    fn crlf_and_no_from_line_parse_the_same() {
        let lf = parse_mail(SIMPLE, &Limits::default());
        let without_from_line = &SIMPLE[SIMPLE.iter().position(|&b| b == b'\n').unwrap_or(0) + 1..];
        let crlf: Vec<u8> = without_from_line
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect();
        let parsed = parse_mail(&crlf, &Limits::default());
        assert_eq!(parsed.subject, lf.subject);
        assert_eq!(parsed.urls, lf.urls);
        assert_eq!(parsed.content_types, lf.content_types);
    }

    #[test]
    fn text_without_headers_is_read_as_text() {
        let mail = parse_mail(
            b"\xff\xfe just some bytes www.example.com/x",
            &Limits::default(),
        );
        assert!(mail.flags.contains(Flags::NO_HEADERS));
        assert!(mail.text.contains("just some bytes"));
        assert_eq!(mail.urls, ["www.example.com/x"]);
    }

    #[test]
    fn limits_truncate_and_flag() {
        let limits = Limits {
            max_message_bytes: 200,
            max_text_bytes: 10,
            ..Limits::default()
        };
        let mail = parse_mail(SIMPLE, &limits);
        assert!(mail.flags.contains(Flags::MESSAGE_TRUNCATED));
        let mail = parse_mail(
            SIMPLE,
            &Limits {
                max_text_bytes: 10,
                ..Limits::default()
            },
        );
        assert!(mail.flags.contains(Flags::TEXT_TRUNCATED));
        assert!(mail.text.len() <= 10);
    }

    #[test]
    fn url_hosts_and_base_domains() {
        assert_eq!(
            url_host("http://paypal.com@evil.example:80/x").as_deref(),
            Some("evil.example")
        );
        assert_eq!(
            url_host("www.Example.com/path").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(url_host("mailto:x"), None);
        assert_eq!(base_domain("a.b.example.com"), "example.com");
        assert_eq!(base_domain("example"), "example");
        assert_eq!(base_domain("10.1.2.3"), "10.1.2.3");
    }
}
