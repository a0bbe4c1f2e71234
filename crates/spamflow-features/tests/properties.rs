//! Property tests: random bytes, MIME-shaped token soup, random MIME trees and mangled versions
//! of a valid multipart message never panic and always meet the invariants checked by
//! [`common::checked`] (limits respected, features sorted strictly by hash, counts >= 1, ...).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::try_checked;
use proptest::prelude::*;
use proptest::sample::Index;
use spamflow_features::{Flags, Limits};

/// A valid message touching most of the parser: mbox line, folded and encoded headers,
/// alternative text/HTML, quoted-printable, base64, a nested message with its own multipart,
/// a digest, an attachment and URLs.
const BASE: &[u8] = b"From sender@base.example  Wed Jan  3 09:00:00 2024
Return-Path: <bounce@base.example>
Received: from mx1.base.example (mx1.base.example [198.51.100.4])
\tby mx.example.org with ESMTP id 42
From: =?utf-8?q?Caf=C3=A9_Deals?= <deals@base.example>
Reply-To: reply@other.example
To: reader@example.org
Subject: =?utf-8?b?V2Vla2x5IG9mZmVycw==?= and more
Message-ID: <offers-1@base.example>
X-Mailer: HandRolled 2.0
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"outer-b\"

preamble text
--outer-b
Content-Type: multipart/alternative; boundary=\"alt-b\"

--alt-b
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Fresh offers this week: caf=C3=A9 beans, tea and more at http://shop.base.e=
xample/offers
V1agra and v-i-a-g-r-a spelled out.
--alt-b
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: base64

PHA+RnJlc2ggPGI+b2ZmZXJzPC9iPiB0aGlzIHdlZWs6IDxhIGhyZWY9Imh0dHA6Ly9zaG9wLmJh
c2UuZXhhbXBsZS9vZmZlcnMiPmNsaWNrIGhlcmU8L2E+PGltZyBzcmM9Imh0dHA6Ly9pbWcuYmFz
ZS5leGFtcGxlL3guZ2lmIj48L3A+
--alt-b--
--outer-b
Content-Type: message/rfc822

From: Inner <inner@nested.example>
Subject: the forwarded one
Content-Type: multipart/mixed; boundary=\"inner-b\"

--inner-b
Content-Type: text/plain

forwarded words inside
--inner-b
Content-Type: application/zip; name=\"inner.zip\"
Content-Transfer-Encoding: base64

UEsDBAoAAAAAAA==
--inner-b--
--outer-b
Content-Type: multipart/digest; boundary=\"dig-b\"

--dig-b

Subject: digest member one

first member body
--dig-b

Subject: digest member two

second member body www.digest.example/two
--dig-b--
--outer-b
Content-Type: application/pdf; name=\"terms.pdf\"
Content-Disposition: attachment; filename=\"terms.pdf\"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--outer-b--
epilogue
";

const BOUNDARIES: [&str; 4] = ["outer-b", "alt-b", "inner-b", "dig-b"];

const HEADERS: [&str; 12] = [
    "Content-Type: multipart/mixed; boundary=\"outer-b\"\n",
    "Content-Type: message/rfc822\n",
    "Content-Type: multipart/digest; boundary=\"dig-b\"\n",
    "Content-Type: text/html; charset=x-unknown-42\n",
    "Content-Transfer-Encoding: base64\n",
    "Content-Transfer-Encoding: quoted-printable\n",
    "Content-Transfer-Encoding: =?utf-8?q?base64?=\n",
    "Content-Type: message/global\nContent-Transfer-Encoding: base64\n",
    "Subject: =?x-unknown?b?////?=\n",
    "From: \"unterminated <a@\n",
    "Content-Type: multipart/alternative; boundary=\"\"\n",
    "Content-Type: multipart/mixed; boundary=\"-\"\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace one byte.
    Flip(Index, u8),
    /// Cut the message.
    Truncate(Index),
    /// Insert a boundary line (opening or closing) of one of the message's boundaries.
    InsertBoundary(Index, usize, bool),
    /// Insert a header line at some point (often inside a body, sometimes in a header block).
    InjectHeader(Index, usize),
    /// Remove a run of bytes.
    Delete(Index, usize),
    /// Copy a run of bytes elsewhere.
    Duplicate(Index, usize, Index),
    /// Insert arbitrary bytes.
    Insert(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        3 => (any::<Index>(), 0..BOUNDARIES.len(), any::<bool>())
            .prop_map(|(at, which, closing)| Mutation::InsertBoundary(at, which, closing)),
        3 => (any::<Index>(), 0..HEADERS.len()).prop_map(|(at, which)| Mutation::InjectHeader(at, which)),
        2 => (any::<Index>(), 1..64usize).prop_map(|(at, len)| Mutation::Delete(at, len)),
        1 => (any::<Index>(), 1..256usize, any::<Index>())
            .prop_map(|(from, len, to)| Mutation::Duplicate(from, len, to)),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
    ]
}

/// A position in `0..=len`.
fn position(at: &Index, len: usize) -> usize {
    at.index(len + 1)
}

fn apply(message: &mut Vec<u8>, mutation: &Mutation) {
    let len = message.len();
    match mutation {
        Mutation::Flip(at, byte) => {
            if len > 0 {
                message[at.index(len)] = *byte;
            }
        }
        Mutation::Truncate(at) => message.truncate(position(at, len)),
        Mutation::InsertBoundary(at, which, closing) => {
            let line = format!(
                "\n--{}{}\n",
                BOUNDARIES[*which],
                if *closing { "--" } else { "" }
            );
            let at = position(at, len);
            message.splice(at..at, line.into_bytes());
        }
        Mutation::InjectHeader(at, which) => {
            // Prefer line starts so the header is read as one.
            let at = position(at, len);
            let at = message[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |newline| newline + 1);
            message.splice(at..at, HEADERS[*which].bytes());
        }
        Mutation::Delete(at, run) => {
            let start = position(at, len);
            let end = (start + run).min(len);
            message.drain(start..end);
        }
        Mutation::Duplicate(from, run, to) => {
            let start = position(from, len);
            let copy = message[start..(start + run).min(len)].to_vec();
            let to = position(to, len);
            message.splice(to..to, copy);
        }
        Mutation::Insert(at, bytes) => {
            let at = position(at, len);
            message.splice(at..at, bytes.iter().copied());
        }
    }
}

fn small_limits() -> impl Strategy<Value = Limits> {
    (
        0..4096usize,
        0..12usize,
        0..5usize,
        0..512usize,
        0..64usize,
        0..6usize,
    )
        .prop_map(
            |(max_message_bytes, max_parts, max_depth, max_text_bytes, max_tokens, max_urls)| {
                Limits {
                    max_message_bytes,
                    max_parts,
                    max_depth,
                    max_text_bytes,
                    max_tokens,
                    max_urls,
                }
            },
        )
}

/// Lines that MIME parsing cares about, glued in random order.
fn mime_soup() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"Content-Type: multipart/mixed; boundary=b\n".to_vec()),
        Just(b"Content-Type: multipart/digest; boundary=d\n".to_vec()),
        Just(b"Content-Type: message/rfc822\n".to_vec()),
        Just(b"Content-Type: text/html; charset=koi8-r\n".to_vec()),
        Just(b"Content-Transfer-Encoding: base64\n".to_vec()),
        Just(b"Content-Transfer-Encoding: quoted-printable\n".to_vec()),
        Just(b"Subject: =?utf-8?q?hi_there?=\n".to_vec()),
        Just(b"From: a@b.example\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"--b\n".to_vec()),
        Just(b"--b--\n".to_vec()),
        Just(b"--d\n".to_vec()),
        Just(b"--d--\n".to_vec()),
        Just(b"<a href=http://x.example>go</a><!--\n".to_vec()),
        Just(b"aGVsbG8gd29ybGQ=\n".to_vec()),
        Just(b"caf=C3=A9 =\n".to_vec()),
        "[ -~]{0,40}\n".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..24),
    ];
    prop::collection::vec(line, 0..48).prop_map(|lines| lines.concat())
}

/// A random MIME tree: multiparts, digests and message parts with encoded or plain leaves.
fn mime_tree() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(b"Content-Type: text/plain\n\nplain leaf words http://leaf.example/a\n".to_vec()),
        Just(b"Content-Type: text/html\n\n<p>html <b>leaf</b> <a href=\"http://html.example\">x</a>\n".to_vec()),
        Just(b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nYmFzZTY0IGxlYWYgd29yZHMK\n".to_vec()),
        Just(b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n*not base64*\n".to_vec()),
        Just(b"Content-Type: image/png; name=\"x.png\"\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n".to_vec()),
        Just(b"\nheaderless leaf\n".to_vec()),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            (
                prop::collection::vec(inner.clone(), 0..4),
                0..3usize,
                any::<u32>()
            )
                .prop_map(|(children, kind, id)| {
                    let subtype = ["mixed", "alternative", "digest"][kind];
                    let boundary = format!("b{id}");
                    let mut part =
                        format!("Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\n\n")
                            .into_bytes();
                    for child in children {
                        part.extend_from_slice(format!("--{boundary}\n").as_bytes());
                        part.extend(child);
                        part.push(b'\n');
                    }
                    part.extend_from_slice(format!("--{boundary}--\n").as_bytes());
                    part
                }),
            (inner, 0..3usize).prop_map(|(child, encoding)| {
                let mut part = b"Content-Type: message/rfc822\n".to_vec();
                match encoding {
                    0 => part.push(b'\n'),
                    1 => part.extend_from_slice(b"Content-Transfer-Encoding: 7bit\n\n"),
                    // Encoded message parts are invalid but exist in the wild.
                    _ => part.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\n\n"),
                }
                part.extend_from_slice(b"Subject: nested\n");
                part.extend(child);
                part
            }),
        ]
    })
    .prop_map(|tree| {
        let mut message = b"From: tree@tree.example\nSubject: tree\n".to_vec();
        message.extend(tree);
        message
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        try_checked(&bytes, &Limits::default());
    }

    #[test]
    fn random_bytes_after_headers_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        header in 0..HEADERS.len(),
    ) {
        let mut message = b"From: a@random.example\n".to_vec();
        message.extend_from_slice(HEADERS[header].as_bytes());
        message.extend(bytes);
        try_checked(&message, &Limits::default());
    }

    #[test]
    fn mime_soup_never_panics(message in mime_soup(), limits in small_limits()) {
        try_checked(&message, &Limits::default());
        try_checked(&message, &limits);
    }

    #[test]
    fn mangled_multipart_never_panics(
        mutations in prop::collection::vec(mutation(), 1..8),
        limits in small_limits(),
    ) {
        let mut message = BASE.to_vec();
        for mutation in &mutations {
            apply(&mut message, mutation);
        }
        try_checked(&message, &Limits::default());
        try_checked(&message, &limits);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_mime_trees_never_panic(message in mime_tree(), limits in small_limits()) {
        if let Some((mail, _)) = try_checked(&message, &Limits::default()) {
            prop_assert!(!mail.flags.contains(Flags::NO_HEADERS));
        }
        try_checked(&message, &limits);
    }

    #[test]
    fn crlf_endings_do_not_change_structure(message in mime_tree()) {
        let crlf: Vec<u8> = message
            .iter()
            .flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] })
            .collect();
        let lf = try_checked(&message, &Limits::default());
        let crlf = try_checked(&crlf, &Limits::default());
        if let (Some((lf_mail, _)), Some((crlf_mail, _))) = (lf, crlf) {
            prop_assert_eq!(lf_mail.content_types, crlf_mail.content_types);
            prop_assert_eq!(lf_mail.flags, crlf_mail.flags);
        }
    }
}

/// The unmangled base message parses fully and cleanly, so the mutations above start from a
/// message that exercises every path.
#[test]
fn base_message_is_valid() {
    let (mail, extraction) = common::checked_default(BASE);
    assert_eq!(mail.subject, "Weekly offers and more");
    assert_eq!(mail.from_name, "Café Deals");
    assert_eq!(
        mail.content_types,
        [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "text/html",
            "message/rfc822",
            "multipart/mixed",
            "text/plain",
            "application/zip",
            "multipart/digest",
            // Digest members without Content-Type are messages to mail-parser (RFC 2046), but
            // the walker labels a part without Content-Type text/plain.
            "text/plain",
            "text/plain",
            "text/plain",
            "text/plain",
            "application/pdf",
        ]
    );
    assert!(mail.text.contains("café beans"));
    assert!(mail.text.contains("click here"));
    assert!(mail.text.contains("forwarded words inside"));
    assert!(mail.text.contains("second member body"));
    assert_eq!(mail.attachments.len(), 2);
    assert_eq!(mail.images, 1);
    assert!(
        mail.flags.is_empty(),
        "{:?}",
        common::flag_names(mail.flags)
    );
    assert!(extraction.flags.contains(Flags::OBFUSCATION));
}
