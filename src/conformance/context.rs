//! What a check works with: logged-in sessions that hand their transcript to the report when
//! dropped, scratch mailboxes that are removed after the run, unique tokens, and SMTP/LMTP
//! sessions.

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpStream;

use super::target::{Account, Target};
use super::{fail, CheckError, CheckResult};
use crate::proto::imap::{
    BodyPart, Capabilities, Direction, FetchItem, ImapClient, ImapLimits, RawExchange, SearchQuery,
    SequenceSet,
};
use crate::proto::net::ConnectOptions;
use crate::proto::smtp::{self, Flavor, SmtpClient, SmtpSettings};

/// Transcript lines kept per session: enough to show the failing exchange.
const TRANSCRIPT_ENTRIES: usize = 40;
/// Longest transcript line shown in a report.
const TRANSCRIPT_LINE: usize = 300;

/// Shared state of one conformance run. Checks run one at a time, so interior mutability with
/// `Cell`/`RefCell` is enough.
pub struct Ctx {
    pub target: Target,
    /// Capabilities after login (servers announce more than before).
    pub imap_caps: Capabilities,
    /// EHLO keywords of the SMTP endpoint, when one was given and answered.
    pub smtp_caps: Option<smtp::Capabilities>,
    /// LHLO keywords of the LMTP endpoint.
    pub lmtp_caps: Option<smtp::Capabilities>,
    /// Makes names and message ids of this run unique: `mswc<unix secs><pid>`.
    run_tag: String,
    counter: Cell<u32>,
    transcript: RefCell<Vec<String>>,
    /// Scratch mailboxes created (by account index), deleted by [`Ctx::cleanup`].
    scratch: RefCell<Vec<(usize, String)>>,
    connect: ConnectOptions,
    limits: ImapLimits,
}

impl Ctx {
    pub fn new(target: Target, command_timeout: Duration) -> Ctx {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        Ctx {
            target,
            imap_caps: Capabilities::default(),
            smtp_caps: None,
            lmtp_caps: None,
            run_tag: format!("mswc{secs}p{}", std::process::id()),
            counter: Cell::new(0),
            transcript: RefCell::new(Vec::new()),
            scratch: RefCell::new(Vec::new()),
            connect: ConnectOptions::default(),
            limits: ImapLimits {
                command_timeout,
                ..ImapLimits::default()
            },
        }
    }

    /// A token unique in this run and across runs: `mswc1733300000p42-7-{what}`.
    pub fn unique(&self, what: &str) -> String {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        format!("{}-{n}-{what}", self.run_tag)
    }

    pub fn account(&self, index: usize) -> &Account {
        &self.target.accounts[index.min(self.target.accounts.len() - 1)]
    }

    /// A new IMAP connection, greeting read, not logged in.
    pub async fn connect_imap(&self) -> Result<Session<'_>, CheckError> {
        let mut client = ImapClient::connect(self.target.imap, &self.connect, self.limits).await?;
        client.enable_transcript(TRANSCRIPT_ENTRIES);
        let n = self.counter.get() + 1;
        self.counter.set(n);
        Ok(Session {
            client,
            label: format!("S{n}"),
            ctx: self,
        })
    }

    /// A new IMAP session logged in as account `index` (0 = first).
    pub async fn login(&self, index: usize) -> Result<Session<'_>, CheckError> {
        let mut session = self.connect_imap().await?;
        let account = self.account(index);
        session.login(&account.user, &account.password).await?;
        Ok(session)
    }

    /// `n` small messages with unique Message-IDs, subjects `what 1` .. `what n`.
    pub fn messages(&self, what: &str, n: usize) -> Vec<Vec<u8>> {
        (1..=n)
            .map(|i| simple_message(&self.unique(what), &format!("{what} {i}"), "body"))
            .collect()
    }

    /// Creates an empty mailbox for one check (`mswc...-what`), removed after the run.
    pub async fn scratch_mailbox(
        &self,
        session: &mut Session<'_>,
        account: usize,
        what: &str,
    ) -> Result<String, CheckError> {
        let name = self.unique(what);
        expect_ok(session, &format!("CREATE {name}")).await?;
        self.scratch.borrow_mut().push((account, name.clone()));
        Ok(name)
    }

    /// A scratch mailbox holding `messages`, selected in a new session of account 0.
    /// Returns the session, the mailbox name and the UIDs of the messages in order.
    pub async fn mailbox_with(
        &self,
        what: &str,
        messages: &[Vec<u8>],
    ) -> Result<(Session<'_>, String, Vec<u32>), CheckError> {
        let mut session = self.login(0).await?;
        let name = self.scratch_mailbox(&mut session, 0, what).await?;
        for message in messages {
            session.append(&name, &[], None, message).await?;
        }
        let info = session.select(&name).await?;
        if info.exists as usize != messages.len() {
            return Err(fail(
                format!(
                    "{} EXISTS after appending {} messages",
                    messages.len(),
                    messages.len()
                ),
                format!("{} EXISTS", info.exists),
            ));
        }
        let uids = all_uids(&mut session).await?;
        Ok((session, name, uids))
    }

    /// A second session of account 0 removes `uids` from `mailbox` (STORE \Deleted, EXPUNGE), as
    /// a concurrent client would.
    pub async fn expunge_elsewhere(&self, mailbox: &str, uids: &[u32]) -> CheckResult {
        let mut other = self.login(0).await?;
        other.select(mailbox).await?;
        mark_deleted(&mut other, uids).await?;
        expect_ok(&mut other, "EXPUNGE").await?;
        Ok(())
    }

    /// Deletes every scratch mailbox; failures are reported, not fatal.
    pub async fn cleanup(&self, sweep_leftovers: bool) -> Vec<String> {
        let scratch = std::mem::take(&mut *self.scratch.borrow_mut());
        let mut problems = Vec::new();
        for index in 0..self.target.accounts.len() {
            let mut names: Vec<String> = scratch
                .iter()
                .filter(|(a, _)| *a == index)
                .map(|(_, n)| n.clone())
                .collect();
            if names.is_empty() && !sweep_leftovers {
                continue;
            }
            let mut session = match self.login(index).await {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("cleanup login: {}", describe(&e)));
                    continue;
                }
            };
            if sweep_leftovers {
                // Scratch mailboxes of earlier runs that were killed before their cleanup.
                if let Ok(listed) = session.list("", "mswc*").await {
                    for entry in listed {
                        if is_scratch_name(&entry.name) && !names.contains(&entry.name) {
                            names.push(entry.name);
                        }
                    }
                }
            }
            for name in names {
                if let Err(e) = expect_ok(&mut session, &format!("DELETE {name}")).await {
                    problems.push(format!("DELETE {name}: {}", describe(&e)));
                }
            }
            let _ = session.logout().await;
        }
        self.transcript.borrow_mut().clear();
        problems
    }

    /// SMTP session on the SMTP endpoint, EHLO sent. Skips when no endpoint was given.
    pub async fn smtp(&self) -> Result<SmtpClient<TcpStream>, CheckError> {
        let addr = self
            .target
            .smtp
            .ok_or_else(|| CheckError::Skip("no SMTP endpoint (--smtp)".into()))?;
        let mut client =
            SmtpClient::connect_with(addr, &self.connect, Flavor::Smtp, self.smtp_settings())
                .await?;
        client.ehlo("conform.mailswarm.test").await?;
        Ok(client)
    }

    /// LMTP session, LHLO sent. Skips when no endpoint was given.
    pub async fn lmtp(&self) -> Result<SmtpClient<TcpStream>, CheckError> {
        let addr = self
            .target
            .lmtp
            .ok_or_else(|| CheckError::Skip("no LMTP endpoint (--lmtp)".into()))?;
        let mut client =
            SmtpClient::connect_with(addr, &self.connect, Flavor::Lmtp, self.smtp_settings())
                .await?;
        client.lhlo("conform.mailswarm.test").await?;
        Ok(client)
    }

    pub fn smtp_settings(&self) -> SmtpSettings {
        SmtpSettings {
            command_timeout: self.limits.command_timeout,
            ..SmtpSettings::default()
        }
    }

    /// Waits (up to `within`) until a message with this `Message-ID` is in account `index`'s
    /// INBOX, returns its exact bytes, and expunges it so the account stays tidy.
    /// `None` when it never arrived.
    pub async fn take_from_inbox(
        &self,
        index: usize,
        message_id: &str,
        within: Duration,
    ) -> Result<Option<Vec<Vec<u8>>>, CheckError> {
        let mut session = self.login(index).await?;
        session.select("INBOX").await?;
        let query = SearchQuery::parse(&format!("HEADER Message-ID \"{message_id}\""))?;
        let started = Instant::now();
        let uids = loop {
            let uids = session.uid_search(&query).await?;
            if !uids.is_empty() || started.elapsed() >= within {
                break uids;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if uids.is_empty() {
            return Ok(None);
        }
        let set = uid_set(&uids);
        let fetched = session
            .uid_fetch(
                &set,
                &[FetchItem::Body {
                    part: BodyPart::Full,
                    peek: true,
                    partial: None,
                }],
            )
            .await?;
        let bodies = fetched
            .iter()
            .filter_map(|m| m.body().map(|b| b.to_vec()))
            .collect();
        mark_deleted(&mut session, &uids).await?;
        expect_ok(&mut session, "EXPUNGE").await?;
        let _ = session.logout().await;
        Ok(Some(bodies))
    }

    /// Starts a fresh transcript for the next check.
    pub(crate) fn begin_check(&self) {
        self.transcript.borrow_mut().clear();
    }

    /// The transcript of the check that just ended.
    pub(crate) fn take_transcript(&self) -> Vec<String> {
        std::mem::take(&mut *self.transcript.borrow_mut())
    }

    /// Adds a line to the transcript (SMTP/LMTP checks note their exchanges here).
    pub fn note(&self, line: impl Into<String>) {
        self.transcript.borrow_mut().push(clip(&line.into()));
    }
}

/// An IMAP session of a check. Derefs to the client; when dropped, its transcript joins the
/// check's report, labelled `S1>` (sent) / `S1<` (received).
pub struct Session<'c> {
    client: ImapClient<TcpStream>,
    label: String,
    ctx: &'c Ctx,
}

impl Deref for Session<'_> {
    type Target = ImapClient<TcpStream>;
    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

impl DerefMut for Session<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.client
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let mut out = self.ctx.transcript.borrow_mut();
        for entry in self.client.transcript() {
            let arrow = match entry.direction {
                Direction::Sent => '>',
                Direction::Received => '<',
            };
            let text = String::from_utf8_lossy(&entry.bytes);
            for line in text.split_inclusive('\n') {
                out.push(clip(&format!("{}{arrow} {}", self.label, line.trim_end())));
            }
        }
    }
}

fn clip(line: &str) -> String {
    if line.len() <= TRANSCRIPT_LINE {
        return line.to_string();
    }
    let mut end = TRANSCRIPT_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &line[..end])
}

/// Runs a raw command and fails the check unless it completes with OK.
pub async fn expect_ok(
    session: &mut Session<'_>,
    command: &str,
) -> Result<RawExchange, CheckError> {
    let exchange = session.execute_raw(command.as_bytes()).await?;
    if exchange.status() != Some(imap_types::response::StatusKind::Ok) {
        return Err(fail(
            format!("OK to `{}`", first_words(command)),
            String::from_utf8_lossy(&exchange.completion.raw)
                .trim_end()
                .to_string(),
        ));
    }
    Ok(exchange)
}

fn first_words(command: &str) -> String {
    command.chars().take(60).collect()
}

/// The UIDs of the selected mailbox in sequence order, from `UID FETCH 1:* (UID)`: fixtures
/// list messages with FETCH so that SEARCH checks test SEARCH alone.
pub async fn all_uids(session: &mut Session<'_>) -> Result<Vec<u32>, CheckError> {
    Ok(uid_map(session)
        .await?
        .into_iter()
        .map(|(_, uid)| uid)
        .collect())
}

/// The seq -> UID map of the selected mailbox from `UID FETCH 1:* (UID)`, ordered by seq
/// (empty without asking when the mailbox is).
pub async fn uid_map(session: &mut Session<'_>) -> Result<Vec<(u32, u32)>, CheckError> {
    if session.mailbox().exists() == 0 {
        return Ok(Vec::new());
    }
    let all = SequenceSet::try_from("1:*").expect("a valid set");
    let mut map: Vec<(u32, u32)> = session
        .uid_fetch(&all, &[FetchItem::Uid])
        .await?
        .iter()
        .filter_map(|m| m.uid.map(|uid| (m.seq, uid)))
        .collect();
    map.sort_unstable();
    map.dedup();
    Ok(map)
}

/// `UID STORE uids +FLAGS.SILENT (\Deleted)` in the selected mailbox.
pub async fn mark_deleted(session: &mut Session<'_>, uids: &[u32]) -> CheckResult {
    let command = format!("UID STORE {} +FLAGS.SILENT (\\Deleted)", join_uids(uids));
    expect_ok(session, &command).await.map(drop)
}

/// Whether `name` is one of [`Ctx::unique`]'s scratch names: `mswc<digits>p<digits>-...`.
fn is_scratch_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("mswc") else {
        return false;
    };
    let Some((secs, rest)) = rest.split_once('p') else {
        return false;
    };
    let Some((pid, _)) = rest.split_once('-') else {
        return false;
    };
    !secs.is_empty()
        && !pid.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && pid.bytes().all(|b| b.is_ascii_digit())
}

/// `1,5,7` for a UID list.
pub fn join_uids(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A sequence set of exactly these numbers.
pub fn uid_set(uids: &[u32]) -> SequenceSet {
    SequenceSet::try_from(join_uids(uids).as_str()).expect("non-empty list of non-zero numbers")
}

/// One line for an error in a report.
pub fn describe(err: &CheckError) -> String {
    match err {
        CheckError::Fail { expected, seen } => format!("expected {expected}, saw {seen}"),
        CheckError::Skip(reason) => format!("skipped: {reason}"),
        CheckError::Imap(e) => format!("IMAP: {e}"),
        CheckError::Smtp(e) => format!("SMTP/LMTP: {e}"),
        CheckError::Local(e) => format!("mailswarm: {e}"),
    }
}

/// A small text/plain RFC 5322 message with CRLF line ends and a unique Message-ID.
pub fn simple_message(message_id: &str, subject: &str, body: &str) -> Vec<u8> {
    let body = body.replace("\r\n", "\n").replace('\n', "\r\n") + "\r\n";
    raw_message(
        message_id,
        subject,
        "Content-Type: text/plain; charset=us-ascii\r\n",
        body.as_bytes(),
    )
}

/// An RFC 5322 message with CRLF headers, a unique Message-ID and `body` as is.
pub fn raw_message(id: &str, subject: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!(
        "From: Conformance <conform@mailswarm.test>\r\n\
         To: Tester <tester@mailswarm.test>\r\n\
         Subject: {subject}\r\n\
         Date: Thu, 03 Dec 2026 12:00:00 +0000\r\n\
         Message-ID: <{id}@mailswarm.test>\r\n\
         MIME-Version: 1.0\r\n\
         {extra_headers}\
         \r\n"
    )
    .into_bytes();
    message.extend_from_slice(body);
    message
}

#[cfg(test)]
mod tests {
    use super::is_scratch_name;

    #[test]
    fn only_scratch_names_are_swept() {
        assert!(is_scratch_name("mswc1796369208p16782-3-idle"));
        assert!(!is_scratch_name("mswc-notes"));
        assert!(!is_scratch_name("mswc12pxx-a"));
        assert!(!is_scratch_name("INBOX"));
        assert!(!is_scratch_name("mswc12p34"));
    }
}
