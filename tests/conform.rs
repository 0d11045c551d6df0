//! `mailswarm conform` against the real lab: the whole suite passes on a healthy Dovecot and
//! Postfix (no false positives), outputs are complete, and the exit codes hold.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common;

fn conform(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_mailswarm"))
        .arg("conform")
        .args(args)
        .output()
        .expect("mailswarm runs");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mailswarm-conform-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shared lab with two accounts of their own, so no other test's mail is in the way.
fn lab_args() -> Vec<String> {
    let lab = common::lab();
    let (a, b) = (common::fresh_user(), common::fresh_user());
    let user = |n| format!("{}:{}", lab.users.name(n), lab.users.password);
    vec![
        "--lab".into(),
        "--lab-dir".into(),
        lab.dir.display().to_string(),
        "--user".into(),
        user(a),
        "--user".into(),
        user(b),
    ]
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn whole_suite_passes_on_the_lab_with_junit_and_json() {
    let dir = scratch("all");
    let (json, junit) = (dir.join("conform.json"), dir.join("conform.xml"));
    let mut args = lab_args();
    args.extend(["--json".into(), json.display().to_string()]);
    args.extend(["--junit".into(), junit.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = conform(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let all = statuses(&report);
    assert!(all.len() >= 80, "only {} checks", all.len());
    let failed: Vec<_> = all.iter().filter(|(_, s)| s == "fail").collect();
    assert!(
        failed.is_empty(),
        "false positives on a healthy lab: {failed:?}\n{stdout}"
    );
    let passed = all.iter().filter(|(_, s)| s == "pass").count();
    assert!(
        passed * 10 >= all.len() * 8,
        "{passed} of {} passed:\n{stdout}",
        all.len()
    );
    for protocol in ["imap.", "smtp.", "lmtp."] {
        assert!(
            all.iter()
                .any(|(id, s)| id.starts_with(protocol) && s == "pass"),
            "no {protocol} check passed"
        );
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), all.len());
    assert!(
        stdout.contains(&format!("{} checks: {passed} passed, 0 failed", all.len())),
        "{stdout}"
    );
}

#[test]
fn no_destructive_skips_every_state_change_and_waivers_are_reported() {
    let dir = scratch("nodestructive");
    let json = dir.join("conform.json");
    let waivers = dir.join("waivers.yaml");
    std::fs::write(
        &waivers,
        "waivers:\n  - id: imap.select.uidvalidity-range\n    reason: tracked as OPS-1\n",
    )
    .unwrap();
    let mut args = lab_args();
    args.extend(["--no-destructive".into(), "--only".into(), "imap".into()]);
    args.extend(["--waivers".into(), waivers.display().to_string()]);
    args.extend(["--json".into(), json.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = conform(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let checks = report["checks"].as_array().unwrap();
    let listed = Command::new(env!("CARGO_BIN_EXE_mailswarm"))
        .args(["conform", "--list", "--only", "imap"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let mut destructive = 0;
    for c in checks {
        let id = c["id"].as_str().unwrap();
        assert!(id.starts_with("imap."), "{id} despite --only imap");
        let line = listed
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap();
        if line.contains("[destructive]") {
            destructive += 1;
            assert_eq!(c["status"], "skip", "{id} ran with --no-destructive");
            assert!(c["message"].as_str().unwrap().contains("--no-destructive"));
        }
    }
    assert!(destructive > 10, "only {destructive} destructive checks");
    let waived = checks
        .iter()
        .find(|c| c["id"] == "imap.select.uidvalidity-range")
        .unwrap();
    assert_eq!(waived["status"], "waived");
    let message = waived["message"].as_str().unwrap();
    assert!(
        message.contains("tracked as OPS-1") && message.contains("passed"),
        "{message}"
    );
}

#[test]
fn unreachable_server_and_bad_flags_exit_2() {
    let port = common::free_ports().imap;
    let out = conform(&["--imap", &format!("127.0.0.1:{port}"), "--user", "a:b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot start the conformance run"));
    let out = conform(&[
        "--imap",
        "127.0.0.1:143",
        "--user",
        "a:b",
        "--only",
        "imap.nosuch",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("imap.nosuch"));
    let out = conform(&["--imap", "192.0.2.1:143", "--user", "a:b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
    let lab = common::lab();
    let out = conform(&[
        "--lab",
        "--lab-dir",
        lab.dir.to_str().unwrap(),
        "--user",
        "user1:wrong-password",
    ]);
    assert_eq!(out.status.code(), Some(2), "a login failure is no verdict");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("user1") && !stderr.contains("wrong-password"),
        "{stderr}"
    );
}
