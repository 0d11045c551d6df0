//! Typed results of IMAP commands and the per-connection mailbox view.
//!
//! Results own their data (`'static` imap-types values, `Bytes` for message bodies), so a
//! caller can keep them after the next command. Body bytes are slices of the received message,
//! not copies.

use std::collections::VecDeque;
use std::num::NonZeroU32;

use bytes::Bytes;
use imap_types::body::BodyStructure;
use imap_types::datetime::DateTime;
use imap_types::envelope::Envelope;
use imap_types::fetch::Section;
use imap_types::flag::{Flag, FlagFetch, FlagNameAttribute, FlagPerm};
use imap_types::response::Capability;

/// Capabilities the client acts on, as bits for cheap checks on every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Cap {
    Imap4Rev1 = 1 << 0,
    AuthPlain = 1 << 1,
    SaslIr = 1 << 2,
    LoginDisabled = 1 << 3,
    LiteralPlus = 1 << 4,
    LiteralMinus = 1 << 5,
    Idle = 1 << 6,
    UidPlus = 1 << 7,
    Move = 1 << 8,
    Enable = 1 << 9,
    Id = 1 << 10,
    CondStore = 1 << 11,
    QResync = 1 << 12,
    Namespace = 1 << 13,
    Unselect = 1 << 14,
    Binary = 1 << 15,
}

/// The server's capability list as last announced (greeting, `CAPABILITY` response or a
/// `[CAPABILITY ...]` response code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    bits: u32,
    /// Every announced name, space-separated, as the server spelled it.
    text: Box<str>,
}

impl Capabilities {
    pub(crate) fn from_list<'a>(list: impl IntoIterator<Item = &'a Capability<'a>>) -> Self {
        let mut bits = 0;
        let mut text = String::new();
        for capability in list {
            bits |= match capability {
                Capability::Imap4Rev1 => Cap::Imap4Rev1 as u32,
                Capability::Auth(imap_types::auth::AuthMechanism::Plain) => Cap::AuthPlain as u32,
                Capability::SaslIr => Cap::SaslIr as u32,
                Capability::LoginDisabled => Cap::LoginDisabled as u32,
                Capability::LiteralPlus => Cap::LiteralPlus as u32,
                Capability::LiteralMinus => Cap::LiteralMinus as u32,
                Capability::Idle => Cap::Idle as u32,
                Capability::UidPlus => Cap::UidPlus as u32,
                Capability::Move => Cap::Move as u32,
                Capability::Enable => Cap::Enable as u32,
                Capability::Id => Cap::Id as u32,
                Capability::CondStore => Cap::CondStore as u32,
                Capability::QResync => Cap::QResync as u32,
                Capability::Namespace => Cap::Namespace as u32,
                Capability::Unselect => Cap::Unselect as u32,
                Capability::Binary => Cap::Binary as u32,
                _ => 0,
            };
            if !text.is_empty() {
                text.push(' ');
            }
            use std::fmt::Write;
            let _ = write!(text, "{capability}");
        }
        Capabilities {
            bits,
            text: text.into_boxed_str(),
        }
    }

    /// Whether a capability the client knows about was announced.
    pub fn has(&self, cap: Cap) -> bool {
        self.bits & cap as u32 != 0
    }

    /// Whether any announced capability equals `name` (ASCII case-insensitive), e.g. `"SORT"`.
    pub fn has_named(&self, name: &str) -> bool {
        self.iter().any(|c| c.eq_ignore_ascii_case(name))
    }

    /// Announced names in server order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.text.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether nothing has been announced yet.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.text.len()
    }
}

/// State of the selected mailbox, from the responses to SELECT/EXAMINE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxInfo {
    pub exists: u32,
    pub recent: u32,
    pub uid_validity: Option<u32>,
    pub uid_next: Option<u32>,
    /// Sequence number of the first unseen message, if the server said.
    pub unseen: Option<u32>,
    pub flags: Vec<Flag<'static>>,
    pub permanent_flags: Vec<FlagPerm<'static>>,
    /// Present when the server supports CONDSTORE and the mailbox has mod-sequences.
    pub highest_modseq: Option<u64>,
    /// `[READ-ONLY]` in the tagged OK (always for EXAMINE).
    pub read_only: bool,
}

/// Answer to STATUS: only the requested items are `Some`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: Option<u32>,
    pub recent: Option<u32>,
    pub uid_next: Option<u32>,
    pub uid_validity: Option<u32>,
    pub unseen: Option<u32>,
    pub highest_modseq: Option<u64>,
}

/// One LIST answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub attributes: Vec<FlagNameAttribute<'static>>,
    pub delimiter: Option<char>,
    /// The name as sent by the server (modified UTF-7 is not decoded).
    pub name: String,
}

/// `[APPENDUID uidvalidity uid]` from a UIDPLUS server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendUid {
    pub uid_validity: u32,
    pub uid: u32,
}

/// Which part of a message a `BODY[...]` item asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPart<'a> {
    /// `BODY[]`: the whole message.
    Full,
    /// `BODY[HEADER]`.
    Header,
    /// `BODY[HEADER.FIELDS (...)]` with these field names.
    HeaderFields(&'a [&'a str]),
    /// `BODY[TEXT]`.
    Text,
    /// `BODY[1.2]`: a MIME part by its part numbers.
    Part(&'a [u32]),
}

/// A FETCH data item to request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchItem<'a> {
    Flags,
    Uid,
    Rfc822Size,
    Envelope,
    BodyStructure,
    InternalDate,
    /// `MODSEQ` (needs CONDSTORE).
    ModSeq,
    /// `BODY[...]`, or `BODY.PEEK[...]` with `peek` (which leaves `\Seen` alone); `partial` is
    /// `<offset.length>`.
    Body {
        part: BodyPart<'a>,
        peek: bool,
        partial: Option<(u32, u32)>,
    },
}

/// One `BODY[...]` (or `RFC822*`) value from a FETCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodySection {
    /// `None` for `BODY[]` / `RFC822`.
    pub section: Option<Section<'static>>,
    /// The `<offset>` of a partial fetch.
    pub origin: Option<u32>,
    /// `None` when the server sent NIL.
    pub data: Option<Bytes>,
}

/// Everything one FETCH response said about one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchedMessage {
    pub seq: u32,
    pub uid: Option<u32>,
    pub flags: Option<Vec<FlagFetch<'static>>>,
    pub rfc822_size: Option<u32>,
    pub internal_date: Option<DateTime>,
    pub envelope: Option<Box<Envelope<'static>>>,
    pub body_structure: Option<Box<BodyStructure<'static>>>,
    pub modseq: Option<u64>,
    pub sections: Vec<BodySection>,
}

impl FetchedMessage {
    /// The whole message (`BODY[]`, `BODY.PEEK[]`, partial or not, or `RFC822`).
    pub fn body(&self) -> Option<&Bytes> {
        self.sections
            .iter()
            .find(|s| s.section.is_none())
            .and_then(|s| s.data.as_ref())
    }

    /// The first section that matches `want` (`None` = whole message).
    pub fn section(&self, want: Option<&Section<'_>>) -> Option<&BodySection> {
        self.sections.iter().find(|s| s.section.as_ref() == want)
    }

    /// The data of the first `HEADER.FIELDS` section.
    pub fn header_fields(&self) -> Option<&Bytes> {
        self.sections
            .iter()
            .find(|s| matches!(s.section, Some(Section::HeaderFields(..))))
            .and_then(|s| s.data.as_ref())
    }

    /// Whether FLAGS was returned and contains `flag`.
    pub fn has_flag(&self, flag: &Flag<'_>) -> bool {
        self.flags
            .iter()
            .flatten()
            .any(|f| matches!(f, FlagFetch::Flag(got) if got == flag))
    }
}

/// Something the server pushed about the selected mailbox outside the running command's own
/// answer (or during IDLE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxEvent {
    /// `* N EXISTS`: the mailbox now has N messages.
    Exists(u32),
    /// `* N RECENT`.
    Recent(u32),
    /// `* N EXPUNGE`: message N is gone; higher numbers moved down by one.
    Expunge(u32),
    /// `* N FETCH (...)`: usually a flag change made by another session.
    Fetch(Box<FetchedMessage>),
}

/// What the client knows about the selected mailbox, kept current from every response.
#[derive(Debug, Default)]
pub struct MailboxView {
    pub(crate) selected: bool,
    pub(crate) exists: u32,
    pub(crate) recent: u32,
    pub(crate) uid_validity: Option<NonZeroU32>,
    pub(crate) events: VecDeque<MailboxEvent>,
    pub(crate) dropped_events: u64,
    /// Set while FETCH, STORE or SEARCH (not their UID forms) runs: no EXPUNGE may arrive then.
    pub(crate) in_seq_command: bool,
    pub(crate) violations: SequenceViolations,
}

/// Breaches of the message-sequence-number rules seen on this connection since they were last
/// taken. A client that trusts them mis-numbers every later message, so they are the
/// consistency errors that matter most under concurrency.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SequenceViolations {
    /// `* N EXISTS` lower than the count already known (RFC 9051 5.2: only EXPUNGE shrinks).
    pub exists_decreased: u32,
    /// `* N EXPUNGE` with N above the number of messages (RFC 9051 7.5.1).
    pub expunge_out_of_range: u32,
    /// EXPUNGE while answering FETCH, STORE or SEARCH (RFC 9051 7.5.1).
    pub expunge_during_fetch_store_search: u32,
}

impl SequenceViolations {
    pub fn is_empty(&self) -> bool {
        *self == SequenceViolations::default()
    }
}

impl MailboxView {
    /// Whether a mailbox is selected.
    pub fn is_selected(&self) -> bool {
        self.selected
    }

    /// Message count after every EXISTS/EXPUNGE seen so far.
    pub fn exists(&self) -> u32 {
        self.exists
    }

    pub fn recent(&self) -> u32 {
        self.recent
    }

    pub fn uid_validity(&self) -> Option<u32> {
        self.uid_validity.map(NonZeroU32::get)
    }

    /// Events not yet taken by the caller, oldest first.
    pub fn pending_events(&self) -> impl Iterator<Item = &MailboxEvent> {
        self.events.iter()
    }

    /// Sequence-number rule breaches seen since the last call, which resets them.
    pub fn take_violations(&mut self) -> SequenceViolations {
        std::mem::take(&mut self.violations)
    }

    /// Events lost because the queue was full (see `ImapLimits::max_queued_events`).
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    pub(crate) fn push_event(&mut self, event: MailboxEvent, max: usize) {
        if self.events.len() >= max {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(event);
    }

    pub(crate) fn pop_event(&mut self) -> Option<MailboxEvent> {
        let event = self.events.pop_front();
        if self.events.is_empty() && self.events.capacity() > 16 {
            // A burst grew the queue; give the memory back once it is drained.
            self.events = VecDeque::new();
        }
        event
    }

    pub(crate) fn reset(&mut self, selected: bool) {
        self.selected = selected;
        self.exists = 0;
        self.recent = 0;
        self.uid_validity = None;
        self.events = VecDeque::new();
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<MailboxEvent>()
    }
}

/// One response as received: the exact bytes and their decoded form.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub raw: Bytes,
    pub decoded: imap_types::response::Response<'static>,
}

/// Everything a command sent by [`execute_raw`](super::ImapClient::execute_raw) got back.
#[derive(Debug, Clone)]
pub struct RawExchange {
    /// Untagged responses and continuation requests, in arrival order.
    pub responses: Vec<RawResponse>,
    /// The tagged completion (OK, NO or BAD).
    pub completion: RawResponse,
}

impl RawExchange {
    /// The completion's status (OK/NO/BAD).
    pub fn status(&self) -> Option<imap_types::response::StatusKind> {
        match &self.completion.decoded {
            imap_types::response::Response::Status(imap_types::response::Status::Tagged(t)) => {
                Some(t.body.kind)
            }
            _ => None,
        }
    }
}

/// Direction of a transcript entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// One entry of the optional transcript ring buffer.
#[derive(Debug, Clone)]
pub struct TranscriptEntry {
    pub direction: Direction,
    /// The bytes, cut after `Transcript::MAX_ENTRY` (long bodies); credentials replaced.
    pub bytes: Bytes,
}

/// Bounded record of the last exchanges, for conformance reports. Off unless enabled.
#[derive(Debug)]
pub(crate) struct Transcript {
    pub(crate) entries: VecDeque<TranscriptEntry>,
    pub(crate) capacity: usize,
}

impl Transcript {
    const MAX_ENTRY: usize = 4096;

    pub(crate) fn record(&mut self, direction: Direction, bytes: &Bytes) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        let bytes = if bytes.len() > Self::MAX_ENTRY {
            // A copy, so a kept entry does not pin a whole large response.
            Bytes::copy_from_slice(&bytes[..Self::MAX_ENTRY])
        } else {
            bytes.clone()
        };
        self.entries.push_back(TranscriptEntry { direction, bytes });
    }
}
