//! `mailswarm sink` as a process: the ready line, both listeners answering, SIGTERM ending it
//! with exit 0, and usage errors (non-loopback, nothing to listen on) exiting 2.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn mailswarm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailswarm"))
}

/// Reads from `stream` until `expected` bytes arrived (or 10 s passed) and returns them.
fn read_exactly(stream: &mut TcpStream, expected: usize) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = vec![0u8; expected];
    stream.read_exact(&mut got).unwrap();
    String::from_utf8(got).unwrap()
}

#[test]
fn sink_process_serves_imap_and_lmtp_and_stops_on_sigterm() {
    let mut child = mailswarm()
        .args([
            "sink",
            "--imap",
            "127.0.0.1:0",
            "--lmtp",
            "127.0.0.1:0",
            "--messages",
            "7",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let field = |name: &str| -> std::net::SocketAddr {
        let value = ready
            .split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {ready:?}"));
        value.parse().unwrap()
    };
    assert!(ready.starts_with("sink ready imap=127.0.0.1:"), "{ready}");

    let mut imap = TcpStream::connect(field("imap=")).unwrap();
    let greeting = "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR IDLE AUTH=PLAIN] mailswarm sink ready (benchmark fixture)\r\n";
    assert_eq!(read_exactly(&mut imap, greeting.len()), greeting);
    imap.write_all(b"1 LOGIN a b\r\n2 SELECT INBOX\r\n")
        .unwrap();
    let reply = "1 OK LOGIN completed\r\n* 7 EXISTS\r\n";
    assert_eq!(read_exactly(&mut imap, reply.len()), reply);

    let mut lmtp = TcpStream::connect(field("lmtp=")).unwrap();
    let banner = "220 sink.mailswarm.test LMTP mailswarm sink (benchmark fixture)\r\n";
    assert_eq!(read_exactly(&mut lmtp, banner.len()), banner);
    lmtp.write_all(b"QUIT\r\n").unwrap();
    assert_eq!(read_exactly(&mut lmtp, 15), "221 2.0.0 Bye\r\n");

    // SAFETY: kill only sends a signal to the child we started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("sink stopped: 2 connections accepted"),
        "{stderr}"
    );
}

#[test]
fn sink_refuses_non_loopback_and_missing_listeners_with_exit_2() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["sink", "--imap", "0.0.0.0:11143"],
            "is not a loopback address",
        ),
        (&["sink"], "nothing to listen on"),
        (
            &["sink", "--lmtp", "127.0.0.1:0", "--messages", "10001"],
            "10001",
        ),
    ];
    for (args, message) in cases {
        let out = mailswarm().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn sink_help_says_it_is_a_benchmark_fixture() {
    let out = mailswarm().args(["sink", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("BENCHMARK FIXTURE, NOT A MAIL SERVER"),
        "{help}"
    );
    assert!(
        help.contains("--imap <ADDR>") && help.contains("--lmtp <ADDR>"),
        "{help}"
    );
}
