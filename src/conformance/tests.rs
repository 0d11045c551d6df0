//! The runner against an in-process fake server that breaks rules on purpose: checks must fail
//! (with the rule, the values and the transcript) where a server is wrong, and preflight
//! problems must stop the run.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::runner::{run, RunOptions};
use super::target::{parse_account, TargetFile};
use crate::gate::CheckStatus;

/// Serves IMAP connections until dropped: `answer(verb)` gives the untagged lines for a
/// command; every command is completed OK. The greeting carries IMAP4rev1 unless
/// `no_revision`.
async fn fake(answer: fn(&str) -> &'static str, no_revision: bool) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let caps = if no_revision {
                    "IDLE"
                } else {
                    "IMAP4rev1 IDLE"
                };
                let greeting = format!("* OK [CAPABILITY {caps}] fake\r\n");
                write.write_all(greeting.as_bytes()).await.unwrap();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut words = line.split(' ');
                    let tag = words.next().unwrap_or("*").to_string();
                    let verb = words.next().unwrap_or("").to_ascii_uppercase();
                    let mut reply = match verb.as_str() {
                        "CAPABILITY" => format!("* CAPABILITY {caps}\r\n"),
                        "LOGOUT" => "* BYE bye\r\n".to_string(),
                        other => answer(other).to_string(),
                    };
                    reply.push_str(&format!("{tag} OK done\r\n"));
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn target(addr: std::net::SocketAddr, password: &str) -> super::Target {
    TargetFile {
        imap: Some(addr.to_string()),
        accounts: vec![parse_account(&format!("tester:{password}")).unwrap()],
        ..TargetFile::default()
    }
    .resolve()
    .unwrap()
}

fn only(ids: &[&str]) -> RunOptions {
    RunOptions {
        only: ids.iter().map(|s| s.to_string()).collect(),
        check_timeout: Duration::from_secs(10),
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn a_select_without_uidvalidity_fails_with_rule_values_and_transcript() {
    fn answer(verb: &str) -> &'static str {
        match verb {
            "SELECT" | "EXAMINE" => "* 3 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen)\r\n",
            _ => "",
        }
    }
    let addr = fake(answer, false).await;
    let run = run(
        target(addr, "s3cret-pw"),
        &only(&["imap.select.uidvalidity-range"]),
    )
    .await
    .unwrap();
    assert_eq!(run.records.len(), 1);
    let r = &run.records[0];
    assert_eq!(r.status, CheckStatus::Fail);
    assert_eq!(r.reference, "RFC 9051 2.3.1.1");
    assert!(
        r.expected.as_ref().unwrap().contains("UIDVALIDITY"),
        "{r:?}"
    );
    assert_eq!(r.seen.as_deref(), Some("None"));
    assert!(
        r.transcript.iter().any(|l| l.contains("SELECT INBOX")),
        "{:?}",
        r.transcript
    );
    assert!(
        r.transcript.iter().any(|l| l.contains("< * 3 EXISTS")),
        "{:?}",
        r.transcript
    );
    assert!(
        r.transcript.iter().all(|l| !l.contains("s3cret-pw")),
        "{:?}",
        r.transcript
    );
    assert!(run.failed());
}

#[tokio::test]
async fn a_missing_revision_fails_and_a_grammar_violation_names_the_raw_line() {
    fn answer(verb: &str) -> &'static str {
        match verb {
            // The grammar has no trailing space after a number.
            "SELECT" | "EXAMINE" => "* 1 EXISTS \r\n* OK [UIDVALIDITY 7] ok\r\n",
            _ => "",
        }
    }
    let addr = fake(answer, true).await;
    let ids = [
        "imap.greeting.capability-imap4rev1",
        "imap.select.uidvalidity-range",
    ];
    let run = run(target(addr, "pw"), &only(&ids)).await.unwrap();
    let revision = &run.records[0];
    assert_eq!(revision.status, CheckStatus::Fail);
    assert_eq!(revision.seen.as_deref(), Some("IDLE"));
    let grammar = &run.records[1];
    assert_eq!(grammar.status, CheckStatus::Fail);
    assert!(
        grammar.seen.as_ref().unwrap().contains("* 1 EXISTS \\r\\n"),
        "{grammar:?}"
    );
    assert!(
        grammar.message.as_ref().unwrap().contains("grammar"),
        "{grammar:?}"
    );
}

#[tokio::test]
async fn checks_needing_an_absent_capability_or_endpoint_are_skipped_with_the_reason() {
    let addr = fake(|_| "", false).await;
    let opts = only(&["smtp", "lmtp"]);
    let run = run(target(addr, "pw"), &opts).await.unwrap();
    assert!(!run.records.is_empty());
    for r in &run.records {
        assert_eq!(r.status, CheckStatus::Skip, "{}", r.id);
        assert!(
            r.message.as_ref().unwrap().contains("endpoint"),
            "{:?}",
            r.message
        );
    }
    assert!(!run.failed());
}

#[tokio::test]
async fn an_unreachable_server_stops_the_run_before_any_check() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = run(target(addr, "pw"), &only(&["imap.select"]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
