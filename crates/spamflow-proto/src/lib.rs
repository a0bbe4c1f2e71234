//! spamflow-proto: the wire schema of spamflow's Kafka topics as Rust types.
//!
//! The messages are defined in `proto/spamflow/v1/*.proto` (package `spamflow.v1`) and generated
//! with prost at build time; protox parses the `.proto` files, so no `protoc` is needed. Their
//! documentation below is the `.proto` comments.
//!
//! | topic | message |
//! |---|---|
//! | `mail.inbound` | [`v1::InboundMail`] (or raw RFC 5322 bytes) |
//! | `mail.labeled` | [`v1::LabeledMail`], one per input record |
//! | `mail.deadletter` | [`v1::DeadLetter`], input that could not be classified |
//! | `mail.feedback` | [`v1::Feedback`], reported labels for retraining |
//!
//! Timestamps are `i64` microseconds since the Unix epoch (`*_unix_micros`, 0 if unknown) and
//! durations `u64` microseconds (`*_micros`). Enum fields are stored as `i32` by prost: read them
//! with the generated getters (`mail.verdict()`) and write them with the setters
//! (`mail.set_verdict(Verdict::Spam)`) or `Verdict::Spam as i32`.
//!
//! ```
//! use spamflow_proto::Message;
//! use spamflow_proto::v1::{LabeledMail, Verdict};
//!
//! let mut event = LabeledMail { message_id: "m-1".into(), spam_probability: 0.97, ..Default::default() };
//! event.set_verdict(Verdict::Spam);
//! let bytes = event.encode_to_vec();
//! assert_eq!(LabeledMail::decode(bytes.as_slice()), Ok(event));
//! ```

pub use prost::{DecodeError, EncodeError, Message};

/// Version 1 of the schema: package `spamflow.v1`.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/spamflow.v1.rs"));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::Message;
    use super::v1::*;

    fn source() -> SourceRecord {
        SourceRecord {
            topic: "mail.inbound".into(),
            partition: 5,
            offset: 1_234_567_890_123,
            timestamp_unix_micros: 1_764_201_600_000_000,
        }
    }

    /// Raw bytes with CRLF, non-ASCII and bytes that are not UTF-8.
    fn raw() -> Vec<u8> {
        let mut raw = b"From: Ren\xc3\xa9 <rene@example.com>\r\nSubject: V1agra\r\n\r\n".to_vec();
        raw.extend_from_slice(&[0x00, 0xff, 0xfe, 0x80, b'\r', b'\n']);
        raw
    }

    fn inbound() -> InboundMail {
        InboundMail {
            message_id: "<20261126.1@mx.example.com>".into(),
            raw: raw(),
            envelope: Some(SmtpEnvelope {
                mail_from: "bounce+x@example.com".into(),
                recipients: vec!["a@example.org".into(), "b@example.org".into()],
                client_ip: "2001:db8::1".into(),
                helo: "mail.example.com".into(),
                received_unix_micros: 1_764_201_600_123_456,
                tenant: "acme".into(),
            }),
        }
    }

    fn labeled() -> LabeledMail {
        let categories = [
            Category::Pharma,
            Category::Mortgage,
            Category::Software,
            Category::Stock,
            Category::Adult,
            Category::Fraud,
            Category::Other,
        ];
        let mut mail = LabeledMail {
            message_id: "m-1".into(),
            spam_probability: 0.9993,
            spam_log_odds: 7.25,
            category_scores: categories
                .iter()
                .map(|&category| CategoryScore {
                    category: category as i32,
                    score: if category == Category::Mortgage {
                        0.94
                    } else {
                        0.01
                    },
                })
                .collect(),
            top_features: vec![
                FeatureWeight {
                    feature: "body:refinance".into(),
                    weight: 0.81,
                },
                FeatureWeight {
                    feature: "subj:rates".into(),
                    weight: -0.44,
                },
            ],
            model_id: "sf-ebf76e5e1164".into(),
            source: Some(source()),
            timings: Some(Timings {
                received_unix_micros: 1_764_201_600_000_000,
                consumed_unix_micros: 1_764_201_600_010_000,
                produced_unix_micros: 1_764_201_600_010_450,
                parse_micros: 120,
                features_micros: 85,
                score_micros: 12,
            }),
            flags: vec!["obfuscation".into(), "message_truncated".into()],
            tenant: "acme".into(),
            ..Default::default()
        };
        mail.set_verdict(Verdict::Spam);
        mail.set_category(Category::Mortgage);
        mail
    }

    fn dead_letter() -> DeadLetter {
        let mut letter = DeadLetter {
            error: "invalid wire type value: 7".into(),
            source: Some(source()),
            original_key: b"key-1".to_vec(),
            original: raw(),
            original_truncated: true,
            original_size: 40_000_000,
            message_id: String::new(),
            failed_unix_micros: 1_764_201_600_020_000,
            model_id: "sf-ebf76e5e1164".into(),
            ..Default::default()
        };
        letter.set_error_kind(ErrorKind::UndecodableProtobuf);
        letter
    }

    fn feedback() -> Feedback {
        let mut feedback = Feedback {
            message_id: "m-1".into(),
            raw: raw(),
            reported_unix_micros: 1_764_201_700_000_000,
            tenant: "acme".into(),
            model_id: "sf-ebf76e5e1164".into(),
            ..Default::default()
        };
        feedback.set_label(Label::Spam);
        feedback.set_category(Category::Pharma);
        feedback.set_source(FeedbackSource::TrapAccount);
        feedback
    }

    /// Encodes, checks the length prost predicts, decodes, and compares.
    fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(message: &M) -> Vec<u8> {
        let bytes = message.encode_to_vec();
        assert_eq!(bytes.len(), message.encoded_len());
        assert_eq!(&M::decode(bytes.as_slice()).unwrap(), message);
        bytes
    }

    /// Every prefix of a valid encoding decodes without panicking; cutting the encoding inside
    /// a length-delimited field (in the middle of `inner`, bytes the encoding holds, or one byte
    /// short of the end) is an error.
    fn truncations_fail<M: Message + Default>(bytes: &[u8], inner: &[u8]) {
        for len in 0..bytes.len() {
            let _ = M::decode(&bytes[..len]);
        }
        assert!(M::decode(&bytes[..bytes.len() - 1]).is_err());
        let at = bytes
            .windows(inner.len())
            .position(|window| window == inner)
            .expect("the encoding holds the inner bytes");
        assert!(M::decode(&bytes[..at + inner.len() / 2]).is_err());
    }

    #[test]
    fn inbound_mail_round_trips() {
        let bytes = round_trip(&inbound());
        truncations_fail::<InboundMail>(&bytes, &raw());
        round_trip(&InboundMail::default());
    }

    #[test]
    fn labeled_mail_round_trips() {
        let mail = labeled();
        let bytes = round_trip(&mail);
        truncations_fail::<LabeledMail>(&bytes, b"sf-ebf76e5e1164");
        let decoded = LabeledMail::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.verdict(), Verdict::Spam);
        assert_eq!(decoded.category(), Category::Mortgage);
        assert_eq!(decoded.category_scores.len(), 7);
        assert_eq!(decoded.source.unwrap().partition, 5);
    }

    #[test]
    fn dead_letter_round_trips() {
        let bytes = round_trip(&dead_letter());
        truncations_fail::<DeadLetter>(&bytes, &raw());
        let decoded = DeadLetter::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.error_kind(), ErrorKind::UndecodableProtobuf);
    }

    #[test]
    fn feedback_round_trips() {
        let bytes = round_trip(&feedback());
        truncations_fail::<Feedback>(&bytes, &raw());
        let decoded = Feedback::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.label(), Label::Spam);
        assert_eq!(decoded.source(), FeedbackSource::TrapAccount);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(InboundMail::decode(&[0xff; 16][..]).is_err());
        // Field 1 announced with a length far past the end of the buffer.
        assert!(LabeledMail::decode(&[0x0a, 0xff, 0xff, 0xff, 0x0f, b'x'][..]).is_err());
        // Wire type 7 does not exist.
        assert!(DeadLetter::decode(&[0x0f][..]).is_err());
    }

    #[test]
    fn empty_bytes_decode_as_an_empty_message() {
        // proto3: an empty buffer is a valid message with every field at its default, so an
        // empty record value has to be caught before decoding (ErrorKind::Empty).
        assert_eq!(
            InboundMail::decode(&[][..]).unwrap(),
            InboundMail::default()
        );
    }

    #[test]
    fn unknown_enum_values_read_as_unspecified() {
        // A newer writer may send values this version does not know.
        let mail = LabeledMail {
            verdict: 42,
            category: 99,
            ..labeled()
        };
        let decoded = LabeledMail::decode(mail.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.verdict, 42);
        assert_eq!(decoded.verdict(), Verdict::Unspecified);
        assert_eq!(decoded.category(), Category::Unspecified);
    }

    #[test]
    fn enum_names_follow_the_schema() {
        assert_eq!(Verdict::Spam.as_str_name(), "VERDICT_SPAM");
        assert_eq!(
            Category::from_str_name("CATEGORY_SOFTWARE"),
            Some(Category::Software)
        );
        assert_eq!(Category::Other as i32, 7);
        assert_eq!(ErrorKind::Oversized.as_str_name(), "ERROR_KIND_OVERSIZED");
        assert_eq!(FeedbackSource::UserReport as i32, 1);
        assert_eq!(Label::Ham as i32, 1);
    }
}
