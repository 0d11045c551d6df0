//! The delivery audit end to end: mail submitted over SMTP (STARTTLS, AUTH) through the lab
//! Postfix and over LMTP into Dovecot, read back over IMAPS, all accounted for; and mail
//! removed behind mailswarm's back reported lost.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use mailswarm::proto::imap::{ImapClient, ImapLimits};
use mailswarm::proto::net::ConnectOptions;
use mailswarm::proto::Secret;

use crate::common;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mailswarm-audit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(scenario: &Path, out: &Path) -> (Option<i32>, Value) {
    let output = common::mailswarm()
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    (output.status.code(), serde_json::from_str(&text).unwrap())
}

#[test]
fn smtp_and_lmtp_mail_is_all_delivered_intact_over_tls() {
    let lab = common::lab();
    let first = common::fresh_user();
    let _second = common::fresh_user();
    let dir = scratch("healthy");
    let scenario = dir.join("inbound.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: audit-healthy\nseed: 8\nduration: 5s\n\
             target:\n  lab: true\n  lab_dir: {}\n  imap_tls: implicit\n  smtp_tls: starttls\n\
             users:\n  count: 2\n  first: {first}\n\
             load:\n  sessions: 2\n\
             mix:\n  - sender: {{weight: 1, messages: {{fixed: 2}}, think: {{fixed: 300ms}}}}\n\
             delivery:\n  lmtp: {{rate: 10/s, recipients: {{uniform: {{min: 1, max: 2}}}}}}\n\
             audit: true\naudit_grace: 20s\n\
             thresholds:\n  audit.lost: \"== 0\"\n  audit.duplicated: \"== 0\"\n  audit.corrupted: \"== 0\"\n",
            lab.dir.display()
        ),
    )
    .unwrap();
    let (code, r) = run(&scenario, &dir);
    let audit = &r["extra"]["audit"];
    assert_eq!(code, Some(0), "{audit:#}");
    let accepted = audit["accepted"].as_u64().unwrap();
    assert!(accepted >= 20, "{audit:#}");
    assert_eq!(audit["delivered"], audit["accepted"], "{audit:#}");
    for key in ["lost", "duplicated", "corrupted"] {
        assert_eq!(audit[key], 0, "{key}: {audit:#}");
    }
    let metric = |m: &str| {
        r["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["metric"] == m)
            .and_then(|c| c["count"].as_u64())
            .unwrap_or(0)
    };
    assert!(metric("smtp.starttls") > 0 && metric("smtp.auth") > 0 && metric("smtp.data") > 0);
    assert!(metric("lmtp.data") > 0);
}

/// Expunges everything in `user`'s INBOX every 300 ms until told to stop.
fn thief(user: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u32> {
    let lab = common::lab().clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut imap = ImapClient::connect(
                lab.imap_addr(),
                &ConnectOptions::default(),
                ImapLimits::default(),
            )
            .await
            .unwrap();
            imap.login(&user, &Secret::new(lab.users.password.clone()))
                .await
                .unwrap();
            imap.select("INBOX").await.unwrap();
            let mut removed = 0;
            while !stop.load(Ordering::Relaxed) {
                imap.noop().await.unwrap();
                if imap.mailbox().exists() > 0 {
                    let ex = imap
                        .execute_raw(b"STORE 1:* +FLAGS.SILENT (\\Deleted)")
                        .await
                        .unwrap();
                    assert!(ex.status().is_some());
                    removed += imap.expunge().await.unwrap().len() as u32;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            removed
        })
    })
}

#[test]
fn mail_removed_behind_mailswarms_back_is_reported_lost() {
    let lab = common::lab();
    let user = common::fresh_user();
    let dir = scratch("thief");
    let scenario = dir.join("lossy.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: audit-lossy\nseed: 9\nduration: 4s\n\
             target:\n  lab: true\n  lab_dir: {}\n\
             users:\n  count: 1\n  first: {user}\n\
             delivery:\n  lmtp: {{rate: 10/s}}\n\
             audit: true\naudit_grace: 2s\n\
             thresholds:\n  audit.lost: \"== 0\"\n",
            lab.dir.display()
        ),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let thief = thief(lab.users.name(user), stop.clone());
    // The thief stops once the run has ended (and with it the audit's reading back).
    let (code, r) = run(&scenario, &dir);
    stop.store(true, Ordering::Relaxed);
    let removed = thief.join().unwrap();
    let audit = &r["extra"]["audit"];
    assert_eq!(code, Some(1), "audit.lost == 0 must fail: {audit:#}");
    let lost = audit["lost"].as_u64().unwrap();
    assert!(
        lost > 0 && u64::from(removed) >= lost,
        "lost {lost}, removed {removed}: {audit:#}"
    );
    assert_eq!(
        audit["accepted"].as_u64().unwrap(),
        lost + audit["delivered"].as_u64().unwrap(),
        "{audit:#}"
    );
    assert_eq!(audit["corrupted"], 0);
    assert_eq!(audit["duplicated"], 0);
}
