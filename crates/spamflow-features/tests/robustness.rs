//! Robustness of the bytes-to-features path: hand-written fixtures (truncated MIME, bad base64,
//! unknown and 8-bit charsets, CRLF with an mbox `From ` line) and generated inputs (a 20 MB
//! message, 2,000-level and 50,000-level nesting, 5,000 parts, encoded message parts). Every
//! input must parse without panicking, respect the limits and flag what it cut.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{checked, checked_default, fixture, flag_names, try_checked};
use spamflow_features::{Flags, Limits};

// ---------------------------------------------------------------------------------------------
// Hand-written fixtures
// ---------------------------------------------------------------------------------------------

const FIXTURES: [&str; 6] = [
    "truncated_multipart.eml",
    "bad_base64.eml",
    "unknown_charset.eml",
    "latin1_8bit.eml",
    "crlf_mbox.eml",
    "encoded_message_part.eml",
];

#[test]
fn truncated_multipart_keeps_the_text_before_the_cut() {
    let (mail, _) = checked_default(&fixture("truncated_multipart.eml"));
    assert_eq!(mail.subject, "Spring bulb order closes Friday");
    assert_eq!(mail.from_domain.as_deref(), Some("garden-club.example"));
    assert_eq!(
        mail.content_types,
        ["multipart/alternative", "text/plain", "text/html"]
    );
    assert!(
        mail.text
            .contains("Tulips, daffodils and crocus bulbs ship in October.")
    );
    assert_eq!(mail.urls, ["http://garden-club.example/bulbs"]);
    // The HTML part has no closing boundary: mail-parser keeps its raw bytes up to the cut as
    // text (markup included) and marks the part as an encoding problem.
    assert!(mail.text.contains("ship in Octo"));
    assert_eq!((mail.text_parts, mail.html_parts), (2, 0));
    assert_eq!(flag_names(mail.flags), ["encoding_problem"]);
}

#[test]
fn multipart_without_closing_boundary_keeps_every_part() {
    let full = fixture("crlf_mbox.eml");
    let closing = b"--crlf-b--\r\n";
    assert!(full.ends_with(closing));
    let open = &full[..full.len() - closing.len()];
    let (mail, _) = checked_default(open);
    assert_eq!(
        mail.content_types,
        ["multipart/mixed", "text/plain", "application/octet-stream"]
    );
    assert!(mail.text.contains("compost heaps"));
    // mail-parser cannot find the end of the last (base64) part, so it keeps the part's raw
    // bytes as text instead of an attachment and marks it as an encoding problem.
    assert!(mail.attachments.is_empty());
    assert!(mail.text.contains("AAECAwQFBgc="));
    assert_eq!(flag_names(mail.flags), ["encoding_problem"]);

    // An unencoded last part without a closing boundary is read as usual.
    let text_last = b"From: a@open.example\nSubject: open\nContent-Type: multipart/mixed; boundary=\"o\"\n\n--o\nContent-Type: text/plain\n\nfirst part\n--o\nContent-Type: text/plain\n\nsecond part, no closing line\n";
    let (mail, _) = checked_default(text_last);
    assert_eq!(
        mail.content_types,
        ["multipart/mixed", "text/plain", "text/plain"]
    );
    assert!(mail.text.contains("first part\n"));
    assert!(mail.text.contains("second part, no closing line"));
}

#[test]
fn every_prefix_of_every_fixture_parses() {
    let small = Limits {
        max_text_bytes: 64,
        max_urls: 1,
        max_parts: 2,
        max_depth: 1,
        max_tokens: 5,
        ..Limits::default()
    };
    for name in FIXTURES {
        let bytes = fixture(name);
        for end in 0..=bytes.len() {
            checked_default(&bytes[..end]);
            checked(&bytes[..end], &small);
        }
    }
}

#[test]
fn bad_base64_body_is_kept_raw_and_flagged() {
    let (mail, extraction) = checked_default(&fixture("bad_base64.eml"));
    assert_eq!(mail.subject, "Your statement");
    assert_eq!(mail.content_types, ["text/plain"]);
    assert_eq!(mail.text_parts, 1);
    // Undecodable base64 is not dropped: the raw body is classified as text.
    assert!(mail.text.starts_with("WW91ciBzdGF0ZW1lbnQgaXMgcmVhZHk=\n"));
    assert!(mail.text.contains("statement balance pending"));
    assert_eq!(flag_names(mail.flags), ["encoding_problem"]);
    assert!(extraction.flags.contains(Flags::ENCODING_PROBLEM));
}

#[test]
fn unknown_charset_still_yields_text_and_is_flagged() {
    let (mail, _) = checked_default(&fixture("unknown_charset.eml"));
    assert_eq!(mail.charsets, ["x-unknown-42"]);
    assert!(
        mail.text
            .contains("Plain words survive: meeting moved to Thursday.")
    );
    // 8-bit bytes in an unknown charset are read as UTF-8 and replaced where invalid.
    assert!(mail.text.contains("High bytes follow: \u{fffd}t\u{fffd} "));
    assert_eq!(flag_names(mail.flags), ["encoding_problem"]);
}

#[test]
fn known_charsets_are_not_flagged() {
    for charset in [
        "utf-8",
        "UTF8",
        "us-ascii",
        "iso-8859-1",
        "windows-1252",
        "koi8-r",
    ] {
        let message = format!(
            "From: a@charsets.example\nSubject: s\nContent-Type: text/plain; charset={charset}\n\nplain words\n"
        );
        let (mail, _) = checked_default(message.as_bytes());
        assert!(
            mail.flags.is_empty(),
            "{charset}: {:?}",
            flag_names(mail.flags)
        );
        assert!(mail.text.contains("plain words"));
    }
}

#[test]
fn latin1_8bit_message_is_decoded() {
    let (mail, _) = checked_default(&fixture("latin1_8bit.eml"));
    assert_eq!(mail.subject, "Menu de la semaine à prix réduit");
    assert_eq!(mail.from_name, "Café du Coin");
    assert_eq!(mail.charsets, ["iso-8859-1"]);
    assert!(
        mail.text
            .contains("Cette semaine: café crème, gâteau à la française.")
    );
    assert!(mail.text.contains("Prix réduits jusqu'à dimanche."));
    assert!(mail.flags.is_empty(), "{:?}", flag_names(mail.flags));
}

#[test]
fn crlf_message_with_mbox_from_line() {
    let crlf = fixture("crlf_mbox.eml");
    assert!(crlf.starts_with(b"From list@lists.example "));
    let (mail, crlf_features) = checked_default(&crlf);
    assert_eq!(mail.headers[0].0, "return-path", "mbox line skipped");
    assert_eq!(mail.subject, "Weekly digest number 12");
    assert_eq!(mail.return_path_domain.as_deref(), Some("lists.example"));
    assert_eq!(mail.received_hops, 1);
    assert_eq!(mail.received_hosts, ["relay.lists.example"]);
    assert_eq!(mail.urls, ["https://lists.example/archive/12"]);
    assert!(mail.text.contains("compost heaps"));
    assert_eq!(mail.attachments.len(), 1);
    assert_eq!(mail.attachments[0].size, 8);
    assert!(mail.flags.is_empty(), "{:?}", flag_names(mail.flags));

    // The same message with LF endings and no envelope line gives the same features.
    let text = String::from_utf8(crlf).unwrap();
    let lf = text.split_once('\n').unwrap().1.replace("\r\n", "\n");
    let (lf_mail, lf_features) = checked_default(lf.as_bytes());
    assert_eq!(lf_mail.subject, mail.subject);
    assert_eq!(lf_mail.urls, mail.urls);
    assert_eq!(lf_mail.content_types, mail.content_types);
    assert_eq!(lf_mail.attachments, mail.attachments);
    assert_eq!(lf_features, crlf_features);
}

#[test]
fn encoded_message_part_is_read_unencoded_and_flagged() {
    let (mail, _) = checked_default(&fixture("encoded_message_part.eml"));
    assert_eq!(
        mail.content_types,
        ["multipart/mixed", "text/plain", "message/rfc822"]
    );
    assert!(mail.text.contains("Forwarding the message below."));
    // RFC 2046 forbids encoding message/rfc822; such parts are not decoded (see
    // `encoded_message_parts_do_not_amplify_memory`).
    assert!(
        mail.text
            .contains("U3ViamVjdDogaW5uZXIKCmhpZGRlbiB0ZXh0Cg==")
    );
    assert!(!mail.text.contains("hidden text"));
    assert_eq!(flag_names(mail.flags), ["encoding_problem"]);
}

/// A message/rfc822 part whose body is directly another message/rfc822, inside a multipart: a
/// valid message on which mail-parser 0.11.9 trips its own `debug_assert!` ("Invalid part ID,
/// could not find multipart."). Found by the property tests. Release builds (and the fuzz
/// target) parse it; debug builds of mail-parser panic, which no code in this crate can avoid.
#[test]
fn message_directly_inside_a_message() {
    let bytes = fixture("nested_message_in_message.eml");
    let Some((mail, _)) = try_checked(&bytes, &Limits::default()) else {
        // Only in debug builds: mail-parser's debug assertion fired.
        return;
    };
    assert_eq!(mail.subject, "Fwd: Fwd: quarterly report");
    assert!(mail.text.contains("Forwarded twice, see below."));
    assert!(
        mail.text
            .contains("Revenue figures are in the shared folder.")
    );
    assert_eq!(
        mail.content_types,
        [
            "multipart/mixed",
            "text/plain",
            "message/rfc822",
            "message/rfc822",
            "text/plain"
        ]
    );
}

#[test]
fn small_limits_truncate_and_flag_fixtures() {
    let limits = Limits {
        max_message_bytes: 400,
        max_text_bytes: 10,
        max_urls: 0,
        max_parts: 1,
        ..Limits::default()
    };
    let (mail, _) = checked(&fixture("crlf_mbox.eml"), &limits);
    assert!(mail.flags.contains(Flags::MESSAGE_TRUNCATED));
    assert!(mail.flags.contains(Flags::PARTS_TRUNCATED));
    assert!(mail.urls.is_empty());
    assert_eq!(mail.content_types, ["multipart/mixed"]);

    let (mail, _) = checked(&fixture("latin1_8bit.eml"), &limits);
    assert!(mail.flags.contains(Flags::TEXT_TRUNCATED));
    assert!(mail.text.len() <= 10);
    assert!(mail.text.starts_with("Cette"));
}

#[test]
fn zero_limits_do_not_panic() {
    let zero = Limits {
        max_message_bytes: 0,
        max_parts: 0,
        max_depth: 0,
        max_text_bytes: 0,
        max_tokens: 0,
        max_urls: 0,
    };
    for name in FIXTURES {
        let (mail, _) = checked(&fixture(name), &zero);
        assert!(mail.flags.contains(Flags::MESSAGE_TRUNCATED), "{name}");
        assert!(mail.text.is_empty());
    }
    let (mail, _) = checked(b"", &Limits::default());
    assert_eq!(flag_names(mail.flags), ["no_headers", "empty_text"]);
}

// ---------------------------------------------------------------------------------------------
// Generated inputs
// ---------------------------------------------------------------------------------------------

/// Standard base64 with 76-character lines.
fn base64(data: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(data.len() / 3 * 4 + data.len() / 57 + 4);
    for (i, chunk) in data.chunks(3).enumerate() {
        let byte = |at: usize| u32::from(chunk.get(at).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        out.push(ALPHABET[(n >> 18) as usize & 63]);
        out.push(ALPHABET[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63]
        } else {
            b'='
        });
        if i % 19 == 18 {
            out.push(b'\n');
        }
    }
    out
}

const TWENTY_MB: usize = 20 * 1024 * 1024;

/// Generous bound for debug builds on a busy machine; a release build takes a fraction of it.
const QUICK: Duration = Duration::from_secs(20);

fn huge_body_message(content_type: &str, line: &[u8]) -> Vec<u8> {
    let mut message = format!(
        "From: Bulk <bulk@huge.example>\nSubject: twenty megabytes\nContent-Type: {content_type}\n\n"
    )
    .into_bytes();
    while message.len() < TWENTY_MB {
        message.extend_from_slice(line);
    }
    message
}

#[test]
fn twenty_mb_text_message_is_truncated_quickly() {
    let message = huge_body_message(
        "text/plain",
        b"cheap watches and replica bags at http://shop.example/x today\n",
    );
    let start = Instant::now();
    let (mail, extraction) = checked_default(&message);
    let elapsed = start.elapsed();
    assert!(elapsed < QUICK, "took {elapsed:?}");
    assert_eq!(mail.subject, "twenty megabytes");
    assert_eq!(mail.text.len(), Limits::default().max_text_bytes);
    assert_eq!(mail.urls.len(), Limits::default().max_urls);
    assert_eq!(
        flag_names(mail.flags),
        ["message_truncated", "text_truncated"]
    );
    assert_eq!(
        flag_names(extraction.flags),
        ["message_truncated", "text_truncated", "tokens_truncated"]
    );
}

#[test]
fn twenty_mb_html_and_attachment_messages_are_truncated() {
    let html = huge_body_message(
        "text/html",
        b"<div><a href=\"http://shop.example/a\">Buy</a> <!-- x --> <img src=cid:1> now</div>\n",
    );
    let (mail, _) = checked_default(&html);
    assert_eq!(mail.html_parts, 1);
    assert!(mail.flags.contains(Flags::MESSAGE_TRUNCATED));
    assert!(mail.flags.contains(Flags::TEXT_TRUNCATED));
    assert_eq!(mail.urls.len(), Limits::default().max_urls);

    let mut attachment = b"From: a@huge.example\nSubject: attachment\nContent-Type: multipart/mixed; boundary=\"z\"\n\n--z\nContent-Type: text/plain\n\nsee attachment\n--z\nContent-Type: application/pdf; name=\"big.pdf\"\nContent-Transfer-Encoding: base64\n\n".to_vec();
    attachment.extend(base64(&vec![0x5a; TWENTY_MB / 4 * 3]));
    let (mail, _) = checked_default(&attachment);
    assert!(mail.flags.contains(Flags::MESSAGE_TRUNCATED));
    assert!(mail.text.contains("see attachment"));
    assert_eq!(mail.content_types.len(), 3);

    // No header block at all: read as text, cut at both limits.
    let no_headers = vec![b'x'; TWENTY_MB];
    let (mail, _) = checked_default(&no_headers);
    assert!(mail.flags.contains(Flags::NO_HEADERS));
    assert!(mail.flags.contains(Flags::MESSAGE_TRUNCATED));
    assert!(mail.flags.contains(Flags::TEXT_TRUNCATED));
}

fn nested_multiparts(levels: usize) -> Vec<u8> {
    let mut message = b"From: a@deep.example\nSubject: deep\n".to_vec();
    for level in 0..levels {
        message.extend_from_slice(
            format!(
                "Content-Type: multipart/mixed; boundary=\"level{level}\"\n\npreamble\n--level{level}\n"
            )
            .as_bytes(),
        );
        if level == 0 {
            // A text part next to the nested tree, at depth 1.
            message.extend_from_slice(b"Content-Type: text/plain\n\nshallow words\n--level0\n");
        }
    }
    message.extend_from_slice(b"Content-Type: text/plain\n\nthe innermost words\n");
    for level in (0..levels).rev() {
        message.extend_from_slice(format!("--level{level}--\n").as_bytes());
    }
    message
}

#[test]
fn deeply_nested_multiparts_respect_max_depth() {
    let message = nested_multiparts(2_000);
    let start = Instant::now();
    let (mail, _) = checked_default(&message);
    assert!(start.elapsed() < QUICK);
    assert!(mail.flags.contains(Flags::DEPTH_TRUNCATED));
    assert!(mail.text.contains("shallow words"));
    assert!(!mail.text.contains("innermost"));
    // Depths 0..=max_depth are visited: the root, the text part and one multipart per level.
    let max_depth = Limits::default().max_depth;
    assert_eq!(mail.content_types.len(), max_depth + 2);
    let multiparts = mail
        .content_types
        .iter()
        .filter(|ct| *ct == "multipart/mixed")
        .count();
    assert_eq!(multiparts, max_depth + 1);

    let shallow = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    let (mail, _) = checked(&message, &shallow);
    assert!(mail.flags.contains(Flags::DEPTH_TRUNCATED));
    assert_eq!(mail.content_types.len(), 5);

    // Within the limit, the innermost text is reached.
    let (mail, _) = checked_default(&nested_multiparts(5));
    assert!(!mail.flags.contains(Flags::DEPTH_TRUNCATED));
    assert!(mail.text.contains("the innermost words"));
}

fn nested_messages(levels: usize) -> Vec<u8> {
    let mut message = b"From: a@deep.example\nSubject: outer\n".to_vec();
    for level in 0..levels {
        message.extend_from_slice(
            format!("Content-Type: message/rfc822\n\nSubject: level {level}\n").as_bytes(),
        );
    }
    message.extend_from_slice(b"Content-Type: text/plain\n\nthe innermost words\n");
    message
}

/// Regression: mail-parser nests one `Message` value per message/rfc822 level and its drop
/// recursed once per level, overflowing the stack at about 20,000 levels (900 KB of input).
#[test]
fn deeply_nested_messages_do_not_overflow_the_stack() {
    for levels in [2_000, 50_000] {
        let message = nested_messages(levels);
        let start = Instant::now();
        let (mail, _) = checked_default(&message);
        assert!(start.elapsed() < QUICK);
        assert!(mail.flags.contains(Flags::DEPTH_TRUNCATED));
        assert_eq!(mail.subject, "outer");
        // Subjects of the nested messages within max_depth are read as text.
        assert!(mail.text.contains("level 0\n"));
        assert!(!mail.text.contains("innermost"));
        assert_eq!(mail.content_types.len(), Limits::default().max_depth + 1);
    }
}

/// Regression: with `max_depth` and `max_parts` both configured huge, the recursive part walk
/// followed every level and overflowed the stack; the walk now stops at depth 256.
#[test]
fn huge_configured_limits_do_not_overflow_the_stack() {
    let unlimited = Limits {
        max_depth: usize::MAX,
        max_parts: usize::MAX,
        ..Limits::default()
    };
    let (mail, _) = checked(&nested_messages(20_000), &unlimited);
    assert!(mail.flags.contains(Flags::DEPTH_TRUNCATED));
    assert_eq!(mail.content_types.len(), 257);
    let (mail, _) = checked(&nested_multiparts(2_000), &unlimited);
    assert!(mail.flags.contains(Flags::DEPTH_TRUNCATED));
    assert_eq!(mail.content_types.len(), 258);
}

#[test]
fn five_thousand_parts_are_cut_at_max_parts() {
    let mut message =
        b"From: a@parts.example\nSubject: parts\nContent-Type: multipart/mixed; boundary=\"p\"\n\n"
            .to_vec();
    for part in 0..5_000 {
        if part % 2 == 0 {
            message.extend_from_slice(
                format!("--p\nContent-Type: text/plain\n\npart number {part}\n").as_bytes(),
            );
        } else {
            message.extend_from_slice(
                format!(
                    "--p\nContent-Type: image/gif; name=\"p{part}.gif\"\nContent-Transfer-Encoding: base64\n\nR0lGODlhAQABAAAAACw=\n"
                )
                .as_bytes(),
            );
        }
    }
    message.extend_from_slice(b"--p--\n");
    let start = Instant::now();
    let (mail, _) = checked_default(&message);
    assert!(start.elapsed() < QUICK);
    let max_parts = Limits::default().max_parts;
    assert!(mail.flags.contains(Flags::PARTS_TRUNCATED));
    assert_eq!(mail.content_types.len(), max_parts);
    // The root multipart counts as one part; the next 99 alternate text and image.
    assert_eq!(mail.text_parts, 50);
    assert_eq!(mail.attachments.len(), 49);
    assert!(mail.text.contains("part number 0\n"));
    assert!(mail.text.contains("part number 98\n"));
    assert!(!mail.text.contains("part number 100\n"));
}

/// Regression: for an encoded message/rfc822 part, mail-parser parses the decoded bytes and
/// then copies all of them once per message nested inside (`Message::into_owned`). A 700 KB
/// message with 300 nested parts took 157 MB; 10 MiB would take terabytes. Such parts are now
/// read unencoded.
#[test]
fn encoded_message_parts_do_not_amplify_memory() {
    let mut inner =
        b"From: x@inner.example\nContent-Type: multipart/mixed; boundary=\"in\"\n\n".to_vec();
    for _ in 0..500 {
        inner.extend_from_slice(
            b"--in\nContent-Type: message/rfc822\n\nSubject: nested\n\nnested words\n",
        );
    }
    inner.extend_from_slice(b"--in\nContent-Type: text/plain\n\n");
    inner.extend(std::iter::repeat_n(b'a', 200_000));
    inner.extend_from_slice(b"\n--in--\n");
    for (content_type, layout) in [
        ("message/rfc822", "mixed"),
        ("message/global", "mixed"),
        ("", "digest"), // a digest member without Content-Type is a message/rfc822
    ] {
        let mut message = format!(
            "From: a@outer.example\nSubject: amplify\nContent-Type: multipart/{layout}; boundary=\"out\"\n\n--out\n"
        )
        .into_bytes();
        if !content_type.is_empty() {
            message.extend_from_slice(format!("Content-Type: {content_type}\n").as_bytes());
        }
        message.extend_from_slice(b"Content-Transfer-Encoding: base64\n\n");
        message.extend(base64(&inner));
        message.extend_from_slice(b"\n--out--\n");

        let start = Instant::now();
        let (mail, _) = checked_default(&message);
        assert!(start.elapsed() < QUICK);
        assert!(
            mail.flags.contains(Flags::ENCODING_PROBLEM),
            "{layout} {content_type}"
        );
        assert!(!mail.text.contains("nested words"), "part was not decoded");
    }

    // Without the encoding the nested messages are read normally.
    let mut plain = b"From: a@outer.example\nSubject: fine\nContent-Type: multipart/mixed; boundary=\"out\"\n\n--out\nContent-Type: message/rfc822\n\n".to_vec();
    plain.extend_from_slice(&inner);
    plain.extend_from_slice(b"\n--out--\n");
    let (mail, _) = checked_default(&plain);
    assert!(mail.text.contains("nested words"));
    assert!(!mail.flags.contains(Flags::ENCODING_PROBLEM));
}

#[test]
fn identity_encoded_message_parts_are_read_normally() {
    for encoding in ["7bit", "8BIT", " binary ", ""] {
        let message = format!(
            "From: a@outer.example\nSubject: fwd\nContent-Type: multipart/mixed; boundary=\"f\"\n\n--f\nContent-Type: message/rfc822\nContent-Transfer-Encoding: {encoding}\n\nSubject: inner subject\n\ninner body words\n--f--\n"
        );
        let (mail, _) = checked_default(message.as_bytes());
        assert!(
            mail.text.contains("inner subject\ninner body words"),
            "{encoding:?}"
        );
        assert!(
            mail.flags.is_empty(),
            "{encoding:?}: {:?}",
            flag_names(mail.flags)
        );
    }
}

#[test]
fn encoded_text_parts_next_to_messages_are_still_decoded() {
    // "Subject: inner\n\nhidden text\n" and "decoded body words\n" in base64.
    let message = b"From: a@mixed.example\nSubject: mixed\nContent-Type: multipart/mixed; boundary=\"m\"\n\n--m\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nZGVjb2RlZCBib2R5IHdvcmRzCg==\n--m\nContent-Type: message/rfc822\n\nSubject: forwarded\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nforwarded caf=C3=A9\n--m--\n";
    let (mail, _) = checked_default(message);
    assert!(mail.text.contains("decoded body words"));
    assert!(mail.text.contains("forwarded café"));
    assert!(mail.flags.is_empty(), "{:?}", flag_names(mail.flags));
}

#[test]
fn pathological_text_and_html_stay_bounded() {
    let limits = Limits::default();
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // Unterminated markup of every kind, repeated.
    for markup in ["<a href='", "<!--", "<script>", "<", "&#x1F4A9", "<p", "</"] {
        let mut message =
            b"From: a@html.example\nSubject: html\nContent-Type: text/html\n\n".to_vec();
        message.extend(markup.as_bytes().repeat(200_000 / markup.len()));
        cases.push(message);
    }
    // Long runs NFKC and case folding expand, zero-width characters, single letters.
    for run in ["\u{fdfa}", "e\u{301}\u{302}\u{303}", "\u{200b}", "a ", "ǅ"] {
        let mut message =
            b"From: a@text.example\nSubject: text\nContent-Type: text/plain; charset=utf-8\n\n"
                .to_vec();
        message.extend(run.as_bytes().repeat(300_000 / run.len()));
        cases.push(message);
    }
    // Many URLs and a long URL.
    let mut urls = b"From: a@urls.example\nSubject: urls\n\n".to_vec();
    urls.extend(
        "www.a.example/x http://b.example "
            .repeat(10_000)
            .as_bytes(),
    );
    urls.extend(b"http://".repeat(50_000));
    cases.push(urls);
    // Many headers and many Received hops.
    let mut headers = Vec::new();
    for i in 0..20_000 {
        headers.extend(format!("Received: from h{i}.example by mx\nX-H{i}: v\n").as_bytes());
    }
    headers.extend(b"Subject: many headers\n\nbody\n");
    cases.push(headers);
    for message in cases {
        let start = Instant::now();
        let (mail, _) = checked(&message, &limits);
        assert!(start.elapsed() < QUICK);
        assert!(!mail.flags.contains(Flags::NO_HEADERS));
    }
}

#[test]
fn mangled_bytes_around_boundaries_parse() {
    let base = fixture("crlf_mbox.eml");
    let mut seen = HashSet::new();
    // Flip each byte to a few values that matter to MIME.
    for at in 0..base.len() {
        for byte in [b'-', b'\n', b'=', 0xff] {
            let mut mangled = base.clone();
            mangled[at] = byte;
            let (mail, _) = checked_default(&mangled);
            seen.insert(mail.content_types.len());
        }
    }
    assert!(seen.len() > 1, "mutations change the structure");
}
