//! Typed IMAP commands. Each public method runs under the command deadline, builds an
//! imap-types `CommandBody` (so arguments are validated and quoted or sent as literals by the
//! encoder), and turns the responses into the result types of `types.rs`.

use std::borrow::Cow;

use imap_types::command::CommandBody;
use imap_types::core::{IString, Literal, LiteralMode, NString, Vec1};
use imap_types::datetime::DateTime;
use imap_types::extensions::binary::LiteralOrLiteral8;
use imap_types::extensions::enable::CapabilityEnable;
use imap_types::fetch::MacroOrMessageDataItemNames;
use imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_types::mailbox::{ListMailbox, Mailbox};
use imap_types::response::{Code, Data, Response, Status};
use imap_types::sequence::SequenceSet;
use imap_types::status::{StatusDataItem, StatusDataItemName};
use imap_types::ToStatic;
use tokio::io::{AsyncRead, AsyncWrite};

use super::client::{ImapClient, SessionState};
use super::convert::{fetched, item_names, SearchQuery};
use super::error::ImapError;
use super::types::{
    AppendUid, Cap, Capabilities, FetchItem, FetchedMessage, ListEntry, MailboxInfo, MailboxStatus,
};

/// Runs `$call` (an inner async method) under the command deadline with the busy/poison
/// bookkeeping of `begin`/`end`.
macro_rules! run {
    ($self:ident, $name:expr, $call:expr) => {{
        $self.begin($name)?;
        let result = match tokio::time::timeout($self.command_timeout, $call).await {
            Ok(result) => result,
            Err(_) => Err($self.timed_out($name)),
        };
        $self.end(result)
    }};
}
pub(crate) use run;

pub(crate) fn invalid(what: &'static str, err: impl std::fmt::Display) -> ImapError {
    ImapError::InvalidArgument {
        what,
        reason: err.to_string(),
    }
}

fn mailbox_arg(name: &str) -> Result<Mailbox<'_>, ImapError> {
    Mailbox::try_from(name).map_err(|e| invalid("mailbox name", e))
}

fn mailbox_name(mailbox: &Mailbox<'_>) -> String {
    match mailbox {
        Mailbox::Inbox => "INBOX".to_owned(),
        Mailbox::Other(other) => String::from_utf8_lossy(other.as_ref()).into_owned(),
    }
}

impl<S> ImapClient<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// CAPABILITY: refreshes and returns the cached capabilities.
    pub async fn capability(&mut self) -> Result<&Capabilities, ImapError> {
        run!(self, "CAPABILITY", self.simple(CommandBody::Capability))?;
        Ok(&self.capabilities)
    }

    /// NOOP: lets the server report changes; they land in the event queue.
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        run!(self, "NOOP", self.simple(CommandBody::Noop)).map(drop)
    }

    /// Whether a literal of `len` bytes may skip the `+` round trip (RFC 7888).
    pub(crate) fn non_sync_allowed(&self, len: usize) -> bool {
        self.use_literal_plus
            && (self.capabilities.has(Cap::LiteralPlus)
                || (self.capabilities.has(Cap::LiteralMinus) && len <= 4096))
    }

    /// SELECT: opens `mailbox` read-write. Queued events of the previous mailbox are dropped.
    pub async fn select(&mut self, mailbox: &str) -> Result<MailboxInfo, ImapError> {
        run!(self, "SELECT", self.select_inner(mailbox, false))
    }

    /// EXAMINE: opens `mailbox` read-only.
    pub async fn examine(&mut self, mailbox: &str) -> Result<MailboxInfo, ImapError> {
        run!(self, "EXAMINE", self.select_inner(mailbox, true))
    }

    async fn select_inner(&mut self, name: &str, examine: bool) -> Result<MailboxInfo, ImapError> {
        let mailbox = mailbox_arg(name)?;
        let body = if examine {
            CommandBody::Examine {
                mailbox,
                parameters: Vec::new(),
            }
        } else {
            CommandBody::Select {
                mailbox,
                parameters: Vec::new(),
            }
        };
        let command = body.name();
        self.view.reset(false);
        if self.state == SessionState::Selected {
            self.state = SessionState::Authenticated;
        }
        let tag = self.next_tag();
        self.send(&tag, body, None).await?;
        let mut info = MailboxInfo::default();
        let mut collect = |response: &Response<'_>, _: &bytes::Bytes| match response {
            Response::Data(Data::Flags(flags)) => {
                info.flags = flags.to_static();
                true
            }
            Response::Data(Data::Exists(n)) => {
                info.exists = *n;
                true
            }
            Response::Data(Data::Recent(n)) => {
                info.recent = *n;
                true
            }
            Response::Status(Status::Untagged(body)) => {
                match &body.code {
                    Some(Code::UidValidity(v)) => info.uid_validity = Some(v.get()),
                    Some(Code::UidNext(v)) => info.uid_next = Some(v.get()),
                    Some(Code::Unseen(v)) => info.unseen = Some(v.get()),
                    Some(Code::PermanentFlags(flags)) => info.permanent_flags = flags.to_static(),
                    Some(Code::HighestModSeq(v)) => info.highest_modseq = Some(v.get()),
                    Some(Code::ReadOnly) => info.read_only = true,
                    _ => {}
                }
                true
            }
            _ => false,
        };
        let code = self.complete(&tag, command, &mut collect).await?;
        match code {
            Some(Code::ReadOnly) => info.read_only = true,
            Some(Code::ReadWrite) => info.read_only = false,
            _ => {}
        }
        self.view.selected = true;
        self.state = SessionState::Selected;
        Ok(info)
    }

    /// STATUS of a mailbox (not the selected one, per RFC 3501).
    pub async fn status(
        &mut self,
        mailbox: &str,
        items: &[StatusDataItemName],
    ) -> Result<MailboxStatus, ImapError> {
        run!(self, "STATUS", self.status_inner(mailbox, items))
    }

    async fn status_inner(
        &mut self,
        mailbox: &str,
        items: &[StatusDataItemName],
    ) -> Result<MailboxStatus, ImapError> {
        let body = CommandBody::Status {
            mailbox: mailbox_arg(mailbox)?,
            item_names: Cow::Borrowed(items),
        };
        let tag = self.next_tag();
        self.send(&tag, body, None).await?;
        let mut status = MailboxStatus::default();
        let mut collect = |response: &Response<'_>, _: &bytes::Bytes| {
            let Response::Data(Data::Status { items, .. }) = response else {
                return false;
            };
            for item in items.iter() {
                match item {
                    StatusDataItem::Messages(n) => status.messages = Some(*n),
                    StatusDataItem::Recent(n) => status.recent = Some(*n),
                    StatusDataItem::UidNext(n) => status.uid_next = Some(n.get()),
                    StatusDataItem::UidValidity(n) => status.uid_validity = Some(n.get()),
                    StatusDataItem::Unseen(n) => status.unseen = Some(*n),
                    StatusDataItem::HighestModSeq(n) => status.highest_modseq = Some(*n),
                    _ => {}
                }
            }
            true
        };
        self.complete(&tag, "STATUS", &mut collect).await?;
        Ok(status)
    }

    /// LIST `reference` `pattern` (e.g. `""`, `"*"`).
    pub async fn list(
        &mut self,
        reference: &str,
        pattern: &str,
    ) -> Result<Vec<ListEntry>, ImapError> {
        run!(self, "LIST", self.list_inner(reference, pattern))
    }

    async fn list_inner(
        &mut self,
        reference: &str,
        pattern: &str,
    ) -> Result<Vec<ListEntry>, ImapError> {
        let body = CommandBody::List {
            reference: mailbox_arg(reference)?,
            mailbox_wildcard: ListMailbox::try_from(pattern)
                .map_err(|e| invalid("LIST pattern", e))?,
        };
        let tag = self.next_tag();
        self.send(&tag, body, None).await?;
        let mut entries = Vec::new();
        let mut collect = |response: &Response<'_>, _: &bytes::Bytes| {
            let Response::Data(Data::List {
                items,
                delimiter,
                mailbox,
            }) = response
            else {
                return false;
            };
            entries.push(ListEntry {
                attributes: items.to_static(),
                delimiter: delimiter.map(|d| d.inner()),
                name: mailbox_name(mailbox),
            });
            true
        };
        self.complete(&tag, "LIST", &mut collect).await?;
        Ok(entries)
    }

    /// FETCH by sequence numbers.
    pub async fn fetch(
        &mut self,
        set: &SequenceSet,
        items: &[FetchItem<'_>],
    ) -> Result<Vec<FetchedMessage>, ImapError> {
        run!(self, "FETCH", self.fetch_inner(set, items, false))
    }

    /// UID FETCH.
    pub async fn uid_fetch(
        &mut self,
        set: &SequenceSet,
        items: &[FetchItem<'_>],
    ) -> Result<Vec<FetchedMessage>, ImapError> {
        run!(self, "UID FETCH", self.fetch_inner(set, items, true))
    }

    async fn fetch_inner(
        &mut self,
        set: &SequenceSet,
        items: &[FetchItem<'_>],
        uid: bool,
    ) -> Result<Vec<FetchedMessage>, ImapError> {
        let body = CommandBody::Fetch {
            sequence_set: set.clone(),
            macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(item_names(
                items,
            )?),
            uid,
            modifiers: Vec::new(),
        };
        let tag = self.next_tag();
        self.send(&tag, body, None).await?;
        let mut messages = Vec::new();
        let mut collect = |response: &Response<'_>, frame: &bytes::Bytes| match response {
            Response::Data(Data::Fetch { seq, items }) => {
                messages.push(fetched(seq.get(), items.as_ref(), frame));
                true
            }
            _ => false,
        };
        self.complete(&tag, "FETCH", &mut collect).await?;
        Ok(messages)
    }

    /// STORE: `kind` adds, removes or replaces `flags`; with `silent` the server sends no
    /// FETCH answers (`.SILENT`). Returns the FETCH answers.
    pub async fn store(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        flags: &[Flag<'_>],
        silent: bool,
    ) -> Result<Vec<FetchedMessage>, ImapError> {
        run!(
            self,
            "STORE",
            self.store_inner(set, kind, flags, silent, false)
        )
    }

    /// UID STORE.
    pub async fn uid_store(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        flags: &[Flag<'_>],
        silent: bool,
    ) -> Result<Vec<FetchedMessage>, ImapError> {
        run!(
            self,
            "UID STORE",
            self.store_inner(set, kind, flags, silent, true)
        )
    }

    async fn store_inner(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        flags: &[Flag<'_>],
        silent: bool,
        uid: bool,
    ) -> Result<Vec<FetchedMessage>, ImapError> {
        let body = CommandBody::Store {
            sequence_set: set.clone(),
            kind,
            response: if silent {
                StoreResponse::Silent
            } else {
                StoreResponse::Answer
            },
            flags: flags.to_vec(),
            uid,
            modifiers: Vec::new(),
        };
        let tag = self.next_tag();
        self.send(&tag, body, None).await?;
        let mut messages = Vec::new();
        let mut collect = |response: &Response<'_>, frame: &bytes::Bytes| match response {
            Response::Data(Data::Fetch { seq, items }) => {
                messages.push(fetched(seq.get(), items.as_ref(), frame));
                true
            }
            _ => false,
        };
        self.complete(&tag, "STORE", &mut collect).await?;
        Ok(messages)
    }

    /// SEARCH: matching sequence numbers, in server order.
    pub async fn search(&mut self, query: &SearchQuery) -> Result<Vec<u32>, ImapError> {
        run!(self, "SEARCH", self.search_inner(query, false))
    }

    /// UID SEARCH: matching UIDs.
    pub async fn uid_search(&mut self, query: &SearchQuery) -> Result<Vec<u32>, ImapError> {
        run!(self, "UID SEARCH", self.search_inner(query, true))
    }

    async fn search_inner(
        &mut self,
        query: &SearchQuery,
        uid: bool,
    ) -> Result<Vec<u32>, ImapError> {
        let body = CommandBody::Search {
            charset: query.charset.clone(),
            criteria: query.criteria.clone(),
            uid,
        };
        let tag = self.next_tag();
        self.send(&tag, body, None).await?;
        let mut found = Vec::new();
        let mut collect = |response: &Response<'_>, _: &bytes::Bytes| match response {
            Response::Data(Data::Search(ids, _)) => {
                found.extend(ids.iter().map(|id| id.get()));
                true
            }
            _ => false,
        };
        self.complete(&tag, "SEARCH", &mut collect).await?;
        Ok(found)
    }

    /// APPEND `message` to `mailbox`. Uses a non-synchronizing literal when LITERAL+ is
    /// announced (and allowed, see [`set_use_literal_plus`](Self::set_use_literal_plus)),
    /// otherwise waits for the server's `+`. Returns `[APPENDUID]` when the server sends it.
    pub async fn append(
        &mut self,
        mailbox: &str,
        flags: &[Flag<'_>],
        date: Option<DateTime>,
        message: &[u8],
    ) -> Result<Option<AppendUid>, ImapError> {
        run!(
            self,
            "APPEND",
            self.append_inner(mailbox, flags, date, message)
        )
    }

    async fn append_inner(
        &mut self,
        mailbox: &str,
        flags: &[Flag<'_>],
        date: Option<DateTime>,
        message: &[u8],
    ) -> Result<Option<AppendUid>, ImapError> {
        let mut literal = Literal::try_from(message).map_err(|e| invalid("message", e))?;
        if self.non_sync_allowed(message.len()) {
            literal.set_mode(LiteralMode::NonSync);
        }
        let body = CommandBody::Append {
            mailbox: mailbox_arg(mailbox)?,
            flags: flags.to_vec(),
            date,
            message: LiteralOrLiteral8::Literal(literal),
        };
        let tag = self.next_tag();
        self.send(&tag, body, None).await?;
        let code = self.complete(&tag, "APPEND", &mut |_, _| false).await?;
        Ok(match code {
            Some(Code::AppendUid { uid_validity, uid }) => Some(AppendUid {
                uid_validity: uid_validity.get(),
                uid: uid.get(),
            }),
            _ => None,
        })
    }

    /// EXPUNGE: the sequence numbers the server reported, in order (each relative to the
    /// mailbox after the previous ones were removed).
    pub async fn expunge(&mut self) -> Result<Vec<u32>, ImapError> {
        run!(self, "EXPUNGE", self.expunge_inner(CommandBody::Expunge))
    }

    /// UID EXPUNGE (needs UIDPLUS): removes only the `\Deleted` messages among `uids`.
    pub async fn uid_expunge(&mut self, uids: &SequenceSet) -> Result<Vec<u32>, ImapError> {
        if !self.capabilities.has(Cap::UidPlus) {
            return Err(ImapError::Unsupported {
                command: "UID EXPUNGE",
                capability: "UIDPLUS",
            });
        }
        let body = CommandBody::ExpungeUid {
            sequence_set: uids.clone(),
        };
        run!(self, "UID EXPUNGE", self.expunge_inner(body))
    }

    async fn expunge_inner(&mut self, body: CommandBody<'_>) -> Result<Vec<u32>, ImapError> {
        let tag = self.next_tag();
        self.send(&tag, body, None).await?;
        let mut expunged = Vec::new();
        let mut collect = |response: &Response<'_>, _: &bytes::Bytes| match response {
            Response::Data(Data::Expunge(seq)) => {
                expunged.push(seq.get());
                true
            }
            _ => false,
        };
        self.complete(&tag, "EXPUNGE", &mut collect).await?;
        Ok(expunged)
    }

    /// ENABLE (RFC 5161): returns what the server reports as enabled.
    pub async fn enable(&mut self, capabilities: &[&str]) -> Result<Vec<String>, ImapError> {
        let list = capabilities
            .iter()
            .map(|c| CapabilityEnable::try_from(*c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("capability to enable", e))?;
        let list = Vec1::try_from(list).map_err(|_| invalid("ENABLE", "needs a capability"))?;
        run!(self, "ENABLE", self.enable_inner(list))
    }

    async fn enable_inner(
        &mut self,
        list: Vec1<CapabilityEnable<'_>>,
    ) -> Result<Vec<String>, ImapError> {
        let tag = self.next_tag();
        self.send(&tag, CommandBody::Enable { capabilities: list }, None)
            .await?;
        let mut enabled = Vec::new();
        let mut collect = |response: &Response<'_>, _: &bytes::Bytes| match response {
            Response::Data(Data::Enabled { capabilities }) => {
                enabled.extend(capabilities.iter().map(ToString::to_string));
                true
            }
            _ => false,
        };
        self.complete(&tag, "ENABLE", &mut collect).await?;
        Ok(enabled)
    }

    /// ID (RFC 2971): sends `fields` (or NIL) and returns the server's fields.
    pub async fn id(
        &mut self,
        fields: Option<&[(&str, Option<&str>)]>,
    ) -> Result<Vec<(String, Option<String>)>, ImapError> {
        let parameters = match fields {
            None => None,
            Some(fields) => Some(
                fields
                    .iter()
                    .map(|(key, value)| {
                        let key = IString::try_from(*key).map_err(|e| invalid("ID field", e))?;
                        let value = match value {
                            None => NString(None),
                            Some(v) => NString::try_from(*v).map_err(|e| invalid("ID value", e))?,
                        };
                        Ok((key, value))
                    })
                    .collect::<Result<Vec<_>, ImapError>>()?,
            ),
        };
        run!(self, "ID", self.id_inner(parameters))
    }

    async fn id_inner(
        &mut self,
        parameters: Option<Vec<(IString<'_>, NString<'_>)>>,
    ) -> Result<Vec<(String, Option<String>)>, ImapError> {
        let tag = self.next_tag();
        self.send(&tag, CommandBody::Id { parameters }, None)
            .await?;
        let mut fields = Vec::new();
        let mut collect = |response: &Response<'_>, _: &bytes::Bytes| match response {
            Response::Data(Data::Id { parameters }) => {
                for (key, value) in parameters.iter().flatten() {
                    let key = String::from_utf8_lossy(key.as_ref()).into_owned();
                    let value = value
                        .0
                        .as_ref()
                        .map(|v| String::from_utf8_lossy(v.as_ref()).into_owned());
                    fields.push((key, value));
                }
                true
            }
            _ => false,
        };
        self.complete(&tag, "ID", &mut collect).await?;
        Ok(fields)
    }
}
