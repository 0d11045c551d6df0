//! IMAP4rev1 client for load tests and conformance checks.
//!
//! Layers, bottom up:
//! - `framing`: cuts the byte stream into complete response messages under hard
//!   [`ImapLimits`], and keeps idle connections free of read buffers;
//! - imap-codec's strict `ResponseCodec` decodes each complete message. No quirk features are
//!   enabled, so the decoder doubles as a syntax oracle: whatever it rejects is reported as
//!   [`ImapError::Protocol`] with the raw line;
//! - `client`: tags, sending commands (synchronizing literals wait for `+`), reading until the
//!   tagged completion, deadlines, and the per-connection [`MailboxView`] that tracks
//!   unsolicited EXISTS/EXPUNGE/FETCH/RECENT and queues them as [`MailboxEvent`]s;
//! - `commands` and `session`: the typed commands, IDLE, LOGOUT and
//!   [`ImapClient::execute_raw`] for raw transcripts.
//!
//! Commands are built as imap-types `CommandBody` values and encoded by imap-codec, so
//! arguments are always quoted or sent as literals correctly.

mod client;
mod commands;
mod convert;
mod error;
mod framing;
mod session;
mod types;

#[cfg(test)]
mod fake_server_tests;

pub use client::{ImapClient, SessionState};
pub use commands::LoginMethod;
pub use convert::SearchQuery;
pub use error::ImapError;
pub use framing::ImapLimits;
pub use types::{
    AppendUid, BodyPart, BodySection, Cap, Capabilities, Direction, FetchItem, FetchedMessage,
    ListEntry, MailboxEvent, MailboxInfo, MailboxStatus, MailboxView, RawExchange, RawResponse,
    TranscriptEntry,
};

/// The imap-types version the API uses (flags, sequence sets, search keys, envelopes, ...).
pub use imap_types;
pub use imap_types::flag::{Flag, StoreType};
pub use imap_types::sequence::SequenceSet;
pub use imap_types::status::StatusDataItemName;
