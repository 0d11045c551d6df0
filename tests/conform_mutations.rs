//! Mutation tests of the conformance suite: a proxy in front of the real lab server breaks one
//! rule; the checks of that rule must fail and no other check may. A transparent proxy first
//! proves the relay itself changes nothing.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::common;
use crate::mutation_proxy::{
    map_number_after, replace, LastCommand, LineRewriter, Mutation, MutationProxy,
};

#[derive(Clone, Copy, PartialEq)]
enum Endpoint {
    Imap,
    Smtp,
    Lmtp,
}

/// Runs `conform --only <only>` with `endpoint` behind a proxy applying `mutation`; returns the
/// ids that failed and how many checks ran (not skipped).
fn failing_with(endpoint: Endpoint, mutation: Mutation, only: &str) -> (BTreeSet<String>, usize) {
    let lab = common::lab();
    let upstream = match endpoint {
        Endpoint::Imap => lab.imap_addr(),
        Endpoint::Smtp => lab.smtp_addr(),
        Endpoint::Lmtp => lab.lmtp_addr(),
    };
    let proxy = MutationProxy::start(upstream, mutation);
    let addr = |e: Endpoint, real: std::net::SocketAddr| {
        if e == endpoint { proxy.addr } else { real }.to_string()
    };
    let (a, b) = (common::fresh_user(), common::fresh_user());
    let user = |n| format!("{}:{}", lab.users.name(n), lab.users.password);
    let json = std::env::temp_dir().join(format!(
        "mailswarm-mutation-{}-{}.json",
        std::process::id(),
        proxy.addr.port()
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_mailswarm"))
        .args(["conform", "--only", only, "--check-timeout", "25", "-q"])
        .args(["--imap", &addr(Endpoint::Imap, lab.imap_addr())])
        .args(["--smtp", &addr(Endpoint::Smtp, lab.smtp_addr())])
        .args(["--lmtp", &addr(Endpoint::Lmtp, lab.lmtp_addr())])
        .args([
            "--domain",
            &lab.domain,
            "--ca-file",
            lab.ca_file.to_str().unwrap(),
        ])
        .args(["--user", &user(a), "--user", &user(b)])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(&json).unwrap_or_else(|_| panic!("no JSON report: {stdout}")),
    )
    .unwrap();
    let checks = report["checks"].as_array().unwrap();
    let failed: BTreeSet<String> = checks
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let ran = checks.iter().filter(|c| c["status"] != "skip").count();
    let expected_code = if failed.is_empty() { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(expected_code), "{stdout}");
    (failed, ran)
}

fn assert_only(endpoint: Endpoint, mutation: Mutation, only: &str, expected: &[&str]) {
    let (failed, ran) = failing_with(endpoint, mutation, only);
    assert!(ran > 0);
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(failed, expected, "checks failing under this mutation");
}

fn rewriter(f: fn(&[u8]) -> Vec<u8>) -> LineRewriter {
    Box::new(f)
}

fn unchanged(_: LastCommand) -> LineRewriter {
    rewriter(|line| line.to_vec())
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

#[test]
fn a_transparent_proxy_fails_nothing() {
    for (endpoint, only) in [
        (Endpoint::Imap, "imap"),
        (Endpoint::Smtp, "smtp"),
        (Endpoint::Lmtp, "lmtp"),
    ] {
        let (failed, ran) = failing_with(endpoint, unchanged, only);
        assert!(ran >= 4, "{only}: only {ran} checks ran");
        assert!(
            failed.is_empty(),
            "{only} through a plain relay: {failed:?}"
        );
    }
}

// ----- IMAP ------------------------------------------------------------------------------

/// SELECT without `* OK [UIDNEXT n]`.
fn imap_no_uidnext(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        if text(line).starts_with("* OK [UIDNEXT ") {
            Vec::new()
        } else {
            line.to_vec()
        }
    })
}

/// CAPABILITY without IMAP4rev1.
fn imap_no_revision(_: LastCommand) -> LineRewriter {
    rewriter(|line| replace(line, "IMAP4rev1 ", ""))
}

#[test]
fn imap_select_family() {
    assert_only(
        Endpoint::Imap,
        imap_no_uidnext,
        "imap",
        // STATUS UIDNEXT is compared with SELECT's.
        &[
            "imap.select.uidnext-not-reused",
            "imap.select.uidnext-present",
            "imap.status.matches-select",
        ],
    );
}

#[test]
fn imap_greeting_family() {
    assert_only(
        Endpoint::Imap,
        imap_no_revision,
        "imap.greeting,imap.select",
        &["imap.greeting.capability-imap4rev1"],
    );
}

/// RFC822.SIZE one octet more than the message has.
fn imap_size_off_by_one(_: LastCommand) -> LineRewriter {
    rewriter(|line| map_number_after(line, "RFC822.SIZE ", |n| n + 1))
}

/// APPENDUID naming another UIDVALIDITY.
fn imap_appenduid_wrong_validity(_: LastCommand) -> LineRewriter {
    rewriter(|line| map_number_after(line, "[APPENDUID ", |n| n + 1))
}

/// The answer to SEARCH (not UID SEARCH) shifted by one: sequence numbers that name the
/// wrong messages.
fn imap_search_shifted(last: LastCommand) -> LineRewriter {
    Box::new(move |line| {
        let command = last.lock().unwrap().to_ascii_uppercase();
        let plain_search = command.split(' ').nth(1) == Some("SEARCH");
        match text(line).strip_prefix("* SEARCH ") {
            Some(rest) if plain_search => {
                let shifted: Vec<String> = rest
                    .split_whitespace()
                    .map(|n| {
                        n.parse::<u64>()
                            .map_or(n.to_string(), |n| (n + 1).to_string())
                    })
                    .collect();
                format!("* SEARCH {}\r\n", shifted.join(" ")).into_bytes()
            }
            _ => line.to_vec(),
        }
    })
}

/// STATUS reporting one message more than there is.
fn imap_status_messages_plus_one(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        if text(line).starts_with("* STATUS ") {
            map_number_after(line, "MESSAGES ", |n| n + 1)
        } else {
            line.to_vec()
        }
    })
}

/// text/plain parts described as text/html in BODYSTRUCTURE.
fn imap_bodystructure_wrong_subtype(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        if text(line).contains("BODYSTRUCTURE") {
            replace(line, "\"text\" \"plain\"", "\"text\" \"html\"")
        } else {
            line.to_vec()
        }
    })
}

/// Every EXPUNGE reported as message 1.
fn imap_expunge_wrong_number(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        let t = text(line);
        if t.starts_with("* ") && t.trim_end().ends_with(" EXPUNGE") {
            b"* 1 EXPUNGE\r\n".to_vec()
        } else {
            line.to_vec()
        }
    })
}

/// FLAGS answers that leave out \Seen.
fn imap_flags_without_seen(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        if text(line).contains(" FETCH (") {
            replace(&replace(line, "\\Seen ", ""), "\\Seen", "")
        } else {
            line.to_vec()
        }
    })
}

#[test]
fn imap_fetch_family() {
    assert_only(
        Endpoint::Imap,
        imap_size_off_by_one,
        "imap",
        // The empty-body check compares the size with the octets it appended.
        &["imap.bodystructure.empty-body", "imap.fetch.rfc822-size"],
    );
}

#[test]
fn imap_append_family() {
    assert_only(
        Endpoint::Imap,
        imap_appenduid_wrong_validity,
        "imap",
        &["imap.append.appenduid"],
    );
}

#[test]
fn imap_search_family() {
    assert_only(
        Endpoint::Imap,
        imap_search_shifted,
        "imap",
        &[
            "imap.search.header",
            "imap.search.sequence-numbers",
            "imap.search.subject",
            "imap.search.unseen-flagged",
        ],
    );
}

#[test]
fn imap_status_family() {
    assert_only(
        Endpoint::Imap,
        imap_status_messages_plus_one,
        "imap",
        &["imap.status.matches-select"],
    );
}

#[test]
fn imap_bodystructure_family() {
    assert_only(
        Endpoint::Imap,
        imap_bodystructure_wrong_subtype,
        "imap",
        &[
            "imap.bodystructure.eight-bit",
            "imap.bodystructure.empty-body",
            "imap.bodystructure.message-rfc822",
            "imap.bodystructure.nested-multipart",
            "imap.bodystructure.parameters",
        ],
    );
}

#[test]
fn imap_expunge_family() {
    assert_only(
        Endpoint::Imap,
        imap_expunge_wrong_number,
        "imap",
        &[
            "imap.concurrent.expunge-renumbers",
            "imap.expunge.renumbering",
            "imap.expunge.reports-each",
            "imap.idle.push-expunge",
        ],
    );
}

#[test]
fn imap_flags_family() {
    assert_only(
        Endpoint::Imap,
        imap_flags_without_seen,
        "imap",
        &[
            "imap.fetch.body-sets-seen",
            "imap.store.add-flags",
            "imap.store.remove-flags",
        ],
    );
}

/// The verb of the client's last command (`IDLE`, `FETCH`, `UID`...).
fn verb(last: &LastCommand) -> String {
    let command = last.lock().unwrap().to_ascii_uppercase();
    command.split(' ').nth(1).unwrap_or_default().to_string()
}

/// Nothing pushed while IDLE runs.
fn imap_idle_silent(last: LastCommand) -> LineRewriter {
    Box::new(move |line| {
        let t = text(line);
        let pushed = t.starts_with("* ")
            && (t.contains(" EXISTS") || t.contains(" EXPUNGE") || t.contains(" FETCH ("));
        if pushed && verb(&last) == "IDLE" {
            Vec::new()
        } else {
            line.to_vec()
        }
    })
}

/// HIGHESTMODSEQ stuck at 1.
fn imap_modseq_stuck(_: LastCommand) -> LineRewriter {
    rewriter(|line| map_number_after(line, "[HIGHESTMODSEQ ", |_| 1))
}

/// No NAMESPACE and no ID answer.
fn imap_no_namespace_no_id(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        let t = text(line);
        if t.starts_with("* NAMESPACE ") || t.starts_with("* ID ") {
            Vec::new()
        } else {
            line.to_vec()
        }
    })
}

/// LIST never names INBOX.
fn imap_list_without_inbox(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        let t = text(line);
        if t.starts_with("* LIST ") && t.trim_end().ends_with(" INBOX") {
            Vec::new()
        } else {
            line.to_vec()
        }
    })
}

/// Plaintext injected after the STARTTLS go-ahead.
fn imap_starttls_injection(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        let mut out = line.to_vec();
        if text(line).to_ascii_lowercase().contains("begin tls") {
            out.extend_from_slice(b"* OK injected\r\n");
        }
        out
    })
}

#[test]
fn imap_idle_family() {
    assert_only(
        Endpoint::Imap,
        imap_idle_silent,
        "imap",
        &[
            "imap.idle.flag-update",
            "imap.idle.push-exists",
            "imap.idle.push-expunge",
        ],
    );
}

#[test]
fn imap_condstore_family() {
    assert_only(
        Endpoint::Imap,
        imap_modseq_stuck,
        "imap",
        &[
            "imap.condstore.fetch-changedsince",
            "imap.condstore.store-raises-modseq",
        ],
    );
}

#[test]
fn imap_namespace_and_id_families() {
    assert_only(
        Endpoint::Imap,
        imap_no_namespace_no_id,
        "imap",
        &[
            "imap.id.field-limits",
            "imap.id.response",
            "imap.namespace.delimiter-matches-list",
            "imap.namespace.present",
        ],
    );
}

#[test]
fn imap_list_family() {
    assert_only(
        Endpoint::Imap,
        imap_list_without_inbox,
        "imap",
        &["imap.list.extended-patterns", "imap.list.inbox"],
    );
}

/// The client refuses to start TLS over injected plaintext, so the handshake checks fail; the
/// injection check itself looks for answers inside TLS, which never starts here.
#[test]
fn imap_starttls_family() {
    assert_only(
        Endpoint::Imap,
        imap_starttls_injection,
        "imap",
        &["imap.starttls.capability-after", "imap.starttls.handshake"],
    );
}

/// ENABLE answered without `* ENABLED`.
fn imap_no_enabled(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        if text(line).starts_with("* ENABLED") {
            Vec::new()
        } else {
            line.to_vec()
        }
    })
}

#[test]
fn imap_enable_family() {
    assert_only(
        Endpoint::Imap,
        imap_no_enabled,
        "imap",
        &["imap.enable.condstore"],
    );
}

// ----- SMTP ------------------------------------------------------------------------------

/// An EHLO keyword outside the grammar (`_` is not allowed).
fn smtp_bad_ehlo_keyword(_: LastCommand) -> LineRewriter {
    rewriter(|line| replace(line, "250-ENHANCEDSTATUSCODES", "250-ENHANCED_STATUS_CODES"))
}

/// AUTH PLAIN without initial response answered with a non-empty challenge.
fn smtp_nonempty_plain_challenge(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        if line == b"334 \r\n" {
            b"334 Zm9v\r\n".to_vec()
        } else {
            line.to_vec()
        }
    })
}

/// Plaintext injected after the STARTTLS go-ahead, as a vulnerable server would answer a
/// pipelined command.
fn smtp_starttls_injection(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        let mut out = line.to_vec();
        if text(line)
            .to_ascii_lowercase()
            .contains("ready to start tls")
        {
            out.extend_from_slice(b"250 2.0.0 Ok\r\n");
        }
        out
    })
}

#[test]
fn smtp_ehlo_family() {
    assert_only(
        Endpoint::Smtp,
        smtp_bad_ehlo_keyword,
        "smtp",
        &["smtp.ehlo.reply-syntax"],
    );
}

#[test]
fn smtp_auth_family() {
    assert_only(
        Endpoint::Smtp,
        smtp_nonempty_plain_challenge,
        "smtp",
        &["smtp.auth.plain-empty-challenge"],
    );
}

/// Every STARTTLS check sees the injected bytes: the client refuses to start TLS on top of
/// them, so the handshake checks fail with the injection check.
#[test]
fn smtp_starttls_family() {
    assert_only(
        Endpoint::Smtp,
        smtp_starttls_injection,
        "smtp",
        &[
            "smtp.starttls.handshake",
            "smtp.starttls.no-command-injection",
            "smtp.starttls.not-offered-again",
        ],
    );
}

/// Unknown commands accepted as if they were fine.
fn smtp_unknown_command_accepted(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        if line.starts_with(b"502 ") || line.starts_with(b"500 ") {
            b"250 2.0.0 Ok\r\n".to_vec()
        } else {
            line.to_vec()
        }
    })
}

/// A SIZE keyword whose parameter is not a number.
fn smtp_size_not_a_number(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        if text(line).starts_with("250-SIZE ") {
            b"250-SIZE unlimited\r\n".to_vec()
        } else {
            line.to_vec()
        }
    })
}

#[test]
fn smtp_session_family() {
    assert_only(
        Endpoint::Smtp,
        smtp_unknown_command_accepted,
        "smtp",
        &["smtp.session.unknown-command"],
    );
}

#[test]
fn smtp_size_family() {
    assert_only(
        Endpoint::Smtp,
        smtp_size_not_a_number,
        "smtp",
        &["smtp.size.keyword-syntax"],
    );
}

// ----- LMTP ------------------------------------------------------------------------------

/// Every per-recipient reply after DATA sent twice.
fn lmtp_doubled_recipient_reply(_: LastCommand) -> LineRewriter {
    rewriter(|line| {
        let t = text(line);
        if t.starts_with("250 2.0.0 <") && t.contains(" Saved") {
            [line, line].concat()
        } else {
            line.to_vec()
        }
    })
}

/// A reply too many after the message, in the transaction that had a recipient refused.
fn lmtp_reply_for_refused_recipient(_: LastCommand) -> LineRewriter {
    let mut refused = false;
    Box::new(move |line| {
        let t = text(line);
        if t.starts_with("550 ") && t.contains("5.1.1") {
            refused = true;
        }
        let mut out = line.to_vec();
        if refused && t.starts_with("250 2.0.0 <") && t.contains(" Saved") {
            out.extend_from_slice(b"550 5.1.1 <refused> not delivered\r\n");
            refused = false;
        }
        out
    })
}

/// Every check that delivers counts the per-recipient replies; LHLO checks do not.
#[test]
fn lmtp_data_family() {
    assert_only(
        Endpoint::Lmtp,
        lmtp_doubled_recipient_reply,
        "lmtp",
        &[
            "lmtp.chunking.bdat-replies",
            "lmtp.data.byte-exact",
            "lmtp.data.per-recipient-replies",
            "lmtp.data.rejected-recipient-no-reply",
            "lmtp.pipelining.reply-order",
        ],
    );
    assert_only(
        Endpoint::Lmtp,
        lmtp_reply_for_refused_recipient,
        "lmtp",
        // The two checks whose transactions have a refused recipient.
        &[
            "lmtp.data.rejected-recipient-no-reply",
            "lmtp.pipelining.reply-order",
        ],
    );
}

/// EHLO and HELO (not LMTP) accepted with 250.
fn lmtp_ehlo_accepted(last: LastCommand) -> LineRewriter {
    Box::new(move |line| {
        let verb = last.lock().unwrap().to_ascii_uppercase();
        if (verb.starts_with("EHLO") || verb.starts_with("HELO")) && line.starts_with(b"5") {
            b"250 ok\r\n".to_vec()
        } else {
            line.to_vec()
        }
    })
}

#[test]
fn lmtp_lhlo_family() {
    assert_only(
        Endpoint::Lmtp,
        lmtp_ehlo_accepted,
        "lmtp",
        &["lmtp.lhlo.ehlo-helo-refused"],
    );
}
