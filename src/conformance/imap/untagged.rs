//! Small readers over the decoded responses of a raw exchange, for checks that must see every
//! untagged response of one command (extension data the typed client does not return).

use std::time::{Duration, Instant};

use imap_types::fetch::MessageDataItem;
use imap_types::flag::{Flag, FlagFetch};
use imap_types::response::{Code, Data, Response, Status};

use crate::conformance::context::Session;
use crate::conformance::{CheckError, CheckResult};
use crate::proto::imap::{MailboxEvent, RawExchange, RawResponse};

/// The untagged data responses of an exchange, with their raw lines.
pub fn data(ex: &RawExchange) -> impl Iterator<Item = (&RawResponse, &Data<'static>)> {
    ex.responses.iter().filter_map(|r| match &r.decoded {
        Response::Data(d) => Some((r, d)),
        _ => None,
    })
}

/// `(seq, items)` of every untagged FETCH.
pub fn fetches(ex: &RawExchange) -> Vec<(u32, &[MessageDataItem<'static>])> {
    data(ex)
        .filter_map(|(_, d)| match d {
            Data::Fetch { seq, items } => Some((seq.get(), items.as_ref())),
            _ => None,
        })
        .collect()
}

pub fn uid_of(items: &[MessageDataItem<'_>]) -> Option<u32> {
    items.iter().find_map(|i| match i {
        MessageDataItem::Uid(u) => Some(u.get()),
        _ => None,
    })
}

pub fn modseq_of(items: &[MessageDataItem<'_>]) -> Option<u64> {
    items.iter().find_map(|i| match i {
        MessageDataItem::ModSeq(m) => Some(m.get()),
        _ => None,
    })
}

/// Whether FLAGS is present and holds `flag`.
pub fn has_flag(items: &[MessageDataItem<'_>], flag: &Flag<'_>) -> bool {
    items.iter().any(|i| match i {
        MessageDataItem::Flags(flags) => flags
            .iter()
            .any(|f| matches!(f, FlagFetch::Flag(got) if got == flag)),
        _ => false,
    })
}

/// The `[CODE]` of an untagged OK, if any response carries one that `pick` accepts.
pub fn untagged_code<T>(ex: &RawExchange, pick: impl Fn(&Code<'static>) -> Option<T>) -> Option<T> {
    ex.responses.iter().find_map(|r| match &r.decoded {
        Response::Status(Status::Untagged(body)) => body.code.as_ref().and_then(&pick),
        _ => None,
    })
}

/// The `[CODE]` of the tagged completion.
pub fn completion_code(ex: &RawExchange) -> Option<&Code<'static>> {
    match &ex.completion.decoded {
        Response::Status(Status::Tagged(t)) => t.body.code.as_ref(),
        _ => None,
    }
}

/// One response line as the server sent it (trimmed, for failure messages).
pub fn line(r: &RawResponse) -> String {
    String::from_utf8_lossy(&r.raw).trim_end().to_string()
}

/// Every response of an exchange, `|`-separated, completion last.
pub fn lines(ex: &RawExchange) -> String {
    ex.responses
        .iter()
        .chain(std::iter::once(&ex.completion))
        .map(line)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Raw lines of the untagged EXPUNGE responses of an exchange.
pub fn expunges(ex: &RawExchange) -> Vec<String> {
    data(ex)
        .filter(|(_, d)| matches!(d, Data::Expunge(_)))
        .map(|(r, _)| line(r))
        .collect()
}

/// Runs a raw command; NO and BAD are returned, not errors.
pub async fn raw(s: &mut Session<'_>, command: &str) -> Result<RawExchange, CheckError> {
    Ok(s.execute_raw(command.as_bytes()).await?)
}

/// Waits up to `within` for an event `want` accepts (others are collected and returned too).
pub async fn wait_for(
    s: &mut Session<'_>,
    within: Duration,
    want: impl Fn(&MailboxEvent) -> bool,
) -> Result<(Option<MailboxEvent>, Vec<MailboxEvent>), CheckError> {
    let started = Instant::now();
    let mut others = Vec::new();
    loop {
        let left = within.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Ok((None, others));
        }
        match s.wait_for_event(left).await? {
            None => return Ok((None, others)),
            Some(event) if want(&event) => return Ok((Some(event), others)),
            Some(event) => others.push(event),
        }
    }
}

/// Skips unless the status is OK (a precondition, not the rule under test).
pub fn require_ok(ex: &RawExchange, what: &str) -> CheckResult {
    if ex.status() == Some(imap_types::response::StatusKind::Ok) {
        Ok(())
    } else {
        Err(crate::conformance::fail(
            format!("OK to {what}"),
            line(&ex.completion),
        ))
    }
}

/// A mailbox name as text (modified UTF-7 is left as is).
pub fn mailbox_name(mailbox: &imap_types::mailbox::Mailbox<'_>) -> String {
    match mailbox {
        imap_types::mailbox::Mailbox::Inbox => "INBOX".to_owned(),
        imap_types::mailbox::Mailbox::Other(other) => {
            String::from_utf8_lossy(other.as_ref()).into_owned()
        }
    }
}
