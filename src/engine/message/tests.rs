use mail_parser::{HeaderValue, MessageParser};

use super::*;

const TO: &[&str] = &["user1@lab.test", "user2@lab.test"];

fn to() -> Vec<String> {
    TO.iter().map(|s| s.to_string()).collect()
}

fn build(seed: u64, sequence: u64, target_size: usize, spec: &MessageSpec) -> Vec<u8> {
    let to = to();
    let params = MessageParams {
        spec,
        run_id: "run7",
        sequence,
        target_size,
        from: "sender@lab.test",
        to: &to,
        domain: "lab.test",
        date: 1_796_000_000,
    };
    build_message(&mut Pcg32::new(seed, 1), &params)
}

#[test]
fn same_inputs_give_identical_bytes() {
    let spec = MessageSpec::default();
    for size in [3_000, 200_000] {
        assert_eq!(build(42, 5, size, &spec), build(42, 5, size, &spec));
        assert_ne!(build(42, 5, size, &spec), build(43, 5, size, &spec));
        assert_ne!(build(42, 5, size, &spec), build(42, 6, size, &spec));
    }
}

#[test]
fn the_callers_generator_advances_the_same_way() {
    let spec = MessageSpec::default();
    let to = to();
    let params = |target_size| MessageParams {
        spec: &spec,
        run_id: "r",
        sequence: 1,
        target_size,
        from: "a@lab.test",
        to: &to,
        domain: "lab.test",
        date: 0,
    };
    let (mut a, mut b) = (Pcg32::new(9, 9), Pcg32::new(9, 9));
    build_message(&mut a, &params(5_000));
    build_message(&mut b, &params(5_000));
    assert_eq!(a.next_u64(), b.next_u64());
}

#[test]
fn size_is_within_five_percent_of_the_target() {
    let spec = MessageSpec::default();
    for target in [2_048, 5_000, 20_000, 63_000, 100_000, 700_000, 3_000_000] {
        // Fewer seeds for the big ones: debug builds are slow at megabytes.
        let seeds = if target > 1_000_000 { 3 } else { 8 };
        for seed in 0..seeds {
            let len = build(seed, seed + 1, target, &spec).len();
            let off = len.abs_diff(target) as f64 / target as f64;
            assert!(
                off <= 0.05,
                "target {target} seed {seed}: got {len} ({:.1}%)",
                off * 100.0
            );
        }
    }
}

#[test]
fn tiny_targets_give_a_small_valid_message() {
    let message = build(1, 0, 10, &MessageSpec::default());
    assert!(message.len() < 1_500, "{}", message.len());
    assert!(matches!(verify_digest(&message), DigestCheck::Ok { .. }));
}

#[test]
fn wire_format_is_crlf_with_short_lines() {
    let spec = MessageSpec::default();
    for (seed, size) in [(1, 4_000), (2, 30_000), (3, 300_000)] {
        let message = build(seed, 3, size, &spec);
        assert!(message.ends_with(b"\r\n"));
        for (i, line) in message.split(|&b| b == b'\n').enumerate() {
            if i > 0 || !line.is_empty() {
                assert!(line.len() <= 998, "line {i} is {} bytes", line.len());
            }
        }
        for (i, pair) in message.windows(2).enumerate() {
            assert_eq!(
                pair[0] == b'\r',
                pair[1] == b'\n',
                "lone CR or LF at byte {i}"
            );
        }
    }
}

#[test]
fn parses_back_with_the_expected_headers() {
    let spec = MessageSpec::default();
    let raw = build(11, 4, 8_000, &spec);
    let parsed = MessageParser::default().parse(&raw).expect("parses");
    assert_eq!(parsed.message_id(), Some("run7.4@lab.test"));
    assert_eq!(parsed.date().map(|d| d.to_timestamp()), Some(1_796_000_000));
    let from = parsed.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.address(), Some("sender@lab.test"));
    assert!(from.name().is_some_and(|n| !n.is_empty()));
    let to: Vec<_> = parsed
        .to()
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, TO);
    assert!(parsed.subject().is_some_and(|s| s.len() > 5));
    assert_eq!(parsed.header_raw(ID_HEADER).map(str::trim), Some("run7-4"));
    assert!(parsed.body_text(0).is_some_and(|t| t.len() > 1_000));
}

/// Runs many seeds and checks that every shape and feature of the mix shows up.
#[test]
fn the_mix_has_every_shape_and_they_parse() {
    let spec = MessageSpec::default();
    let (mut plain, mut alternative, mut attachment, mut reply, mut non_ascii) = (0, 0, 0, 0, 0);
    for seed in 0..60u64 {
        let size = if seed % 3 == 0 { 150_000 } else { 6_000 };
        let raw = build(seed, 10 + seed, size, &spec);
        let parsed = MessageParser::default().parse(&raw).expect("parses");
        let headers =
            String::from_utf8_lossy(&raw[..find(&raw, b"\r\n\r\n").unwrap()]).into_owned();
        if parsed.attachment_count() > 0 {
            attachment += 1;
            assert!(size >= spec.attachment_threshold);
            let part = parsed.attachment(0).unwrap();
            assert!(
                part.contents().len() > 100_000,
                "attachment carries the bytes"
            );
            assert!(headers.contains("multipart/mixed"));
        } else if parsed.html_body_count() > 0 && headers.contains("multipart/alternative") {
            alternative += 1;
        } else {
            plain += 1;
            assert!(headers.contains("text/plain"));
        }
        if let HeaderValue::Text(parent) = parsed.in_reply_to() {
            reply += 1;
            assert!(parent.starts_with("run7.") && parent.ends_with("@lab.test"));
            assert!(parsed.subject().unwrap().starts_with("Re: "));
            assert!(!matches!(parsed.references(), HeaderValue::Empty));
        }
        if headers.contains("=?utf-8?") {
            non_ascii += 1;
            // RFC 2047 decoding gives back non-ASCII text.
            let decoded = format!(
                "{} {:?}",
                parsed.subject().unwrap_or(""),
                parsed.from().and_then(|a| a.first()).and_then(|a| a.name())
            );
            assert!(!decoded.is_ascii(), "{decoded}");
        }
    }
    assert!(
        plain > 0 && alternative > 0 && attachment > 0,
        "{plain} {alternative} {attachment}"
    );
    assert!(reply > 0 && non_ascii > 0, "{reply} {non_ascii}");
}

#[test]
fn digest_verifies_and_names_the_message() {
    let raw = build(5, 9, 10_000, &MessageSpec::default());
    assert_eq!(
        verify_digest(&raw),
        DigestCheck::Ok {
            id: "run7-9".into()
        }
    );
}

#[test]
fn one_flipped_body_byte_is_a_mismatch() {
    let raw = build(5, 9, 10_000, &MessageSpec::default());
    let body_start = find(&raw, b"\r\n\r\n").unwrap() + 4;
    for offset in [body_start, (body_start + raw.len()) / 2, raw.len() - 3] {
        let mut tampered = raw.clone();
        tampered[offset] ^= 0x01;
        assert_eq!(
            verify_digest(&tampered),
            DigestCheck::Mismatch {
                id: "run7-9".into()
            },
            "flip at {offset}"
        );
    }
}

#[test]
fn server_added_headers_and_lf_storage_still_verify() {
    let raw = build(6, 2, 5_000, &MessageSpec::default());
    let mut delivered = b"Return-Path: <sender@lab.test>\r\nDelivered-To: user1@lab.test\r\n\
        Received: from client.lab.test ([127.0.0.1])\r\n\tby vm with LMTP; Fri, 04 Dec 2026\r\n"
        .to_vec();
    delivered.extend_from_slice(&raw);
    assert_eq!(
        verify_digest(&delivered),
        DigestCheck::Ok {
            id: "run7-2".into()
        }
    );
    // A maildir file keeps LF only.
    let lf_only: Vec<u8> = delivered.iter().copied().filter(|&b| b != b'\r').collect();
    assert_eq!(
        verify_digest(&lf_only),
        DigestCheck::Ok {
            id: "run7-2".into()
        }
    );
}

#[test]
fn messages_without_audit_headers_are_missing() {
    assert_eq!(
        verify_digest(b"Subject: hi\r\n\r\nbody\r\n"),
        DigestCheck::Missing
    );
    assert_eq!(
        verify_digest(b"no header block at all"),
        DigestCheck::Missing
    );
    let only_id = b"X-Mailswarm-Id: r-1\r\n\r\nbody\r\n";
    assert_eq!(verify_digest(only_id), DigestCheck::Missing);
}

#[test]
fn the_digest_is_over_the_documented_canonical_body() {
    let raw = build(8, 1, 3_000, &MessageSpec::default());
    let split = find(&raw, b"\r\n\r\n").unwrap();
    let headers = String::from_utf8_lossy(&raw[..split]);
    let value = header_value(&headers, DIGEST_HEADER).unwrap();
    let expected: String = Sha256::digest(&raw[split + 4..])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(value, format!("sha256={expected}"));
}

#[test]
fn run_ids_are_sanitized() {
    assert_eq!(sanitize("run-1.a_b"), "run-1.a_b");
    assert_eq!(sanitize("my run/2"), "my_run_2");
    assert_eq!(sanitize(""), "_");
}
