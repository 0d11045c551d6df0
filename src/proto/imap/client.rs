//! The connection core: greeting, tags, sending commands (with synchronizing literals),
//! reading responses until the tagged completion, deadlines, and tracking of unsolicited
//! responses. The typed commands in `commands.rs` are built on these primitives.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use imap_codec::decode::Decoder;
use imap_codec::encode::{Encoder, Fragment};
use imap_codec::{CommandCodec, GreetingCodec, ResponseCodec};
use imap_types::command::{Command, CommandBody};
use imap_types::core::{LiteralMode, Tag};
use imap_types::response::{Bye, Code, Data, GreetingKind, Response, Status, StatusKind};
use imap_types::ToStatic;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::convert::fetched;
use super::error::ImapError;
use super::framing::{Framer, ImapLimits, MessageKind};
use super::types::{
    Capabilities, Direction, MailboxEvent, MailboxView, SequenceViolations, Transcript,
    TranscriptEntry,
};
use crate::proto::net::{connect_tcp, ConnectOptions};

/// Where the session is in the IMAP state machine (RFC 3501 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    NotAuthenticated,
    Authenticated,
    Selected,
    /// IDLE is running; only `wait_for_event` and `done` are allowed.
    Idle,
    LoggedOut,
    /// An earlier fatal error or a cancelled command left the session in an unknown state.
    Broken,
}

/// A tag such as `A17`, formatted on the stack.
#[derive(Clone, Copy)]
pub(crate) struct TagBuf {
    bytes: [u8; 11],
    len: u8,
}

impl TagBuf {
    fn new(number: u32) -> TagBuf {
        let mut digits = [0u8; 10];
        let mut n = number;
        let mut count = 0;
        loop {
            digits[count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut bytes = [0u8; 11];
        bytes[0] = b'A';
        for i in 0..count {
            bytes[1 + i] = digits[count - 1 - i];
        }
        TagBuf {
            bytes,
            len: 1 + count as u8,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits and 'A' are ever written.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("A")
    }

    fn tag(&self) -> Tag<'_> {
        Tag::unvalidated(self.as_str())
    }
}

/// What to do with an untagged response the running command does not consume.
/// `Send` so that command futures stay `Send` and can run in spawned tasks.
pub(crate) type Handler<'h> = &'h mut (dyn FnMut(&Response<'_>, &Bytes) -> bool + Send);

/// An IMAP client connection over any byte stream (TCP now, TLS later).
///
/// Deadlines: every command must complete within `ImapLimits::command_timeout`. Cancelling a
/// command future (dropping it) leaves the session unusable, since the server's answer would
/// still arrive; [`wait_for_event`](ImapClient::wait_for_event) is the exception and may be
/// cancelled freely.
pub struct ImapClient<S> {
    pub(crate) stream: S,
    pub(crate) framer: Framer,
    next_tag: u32,
    pub(crate) state: SessionState,
    /// State to return to when IDLE ends.
    pub(crate) state_before_idle: SessionState,
    pub(crate) idle_tag: Option<TagBuf>,
    /// Set while a command runs; still set at the next call means that command was cancelled.
    busy: bool,
    pub(crate) capabilities: Capabilities,
    pub(crate) view: MailboxView,
    pub(crate) command_timeout: Duration,
    /// Use `{N+}` when the server announces LITERAL+ (on by default).
    pub(crate) use_literal_plus: bool,
    pub(crate) transcript: Option<Box<Transcript>>,
}

impl<S> std::fmt::Debug for ImapClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapClient")
            .field("state", &self.state)
            .field("exists", &self.view.exists)
            .field("buffer_capacity", &self.framer.capacity())
            .finish_non_exhaustive()
    }
}

impl ImapClient<TcpStream> {
    /// Connects (with `TCP_NODELAY`) and reads the greeting.
    pub async fn connect(
        addr: SocketAddr,
        options: &ConnectOptions,
        limits: ImapLimits,
    ) -> Result<Self, ImapError> {
        let stream = connect_tcp(addr, options).await?;
        ImapClient::from_stream(stream, limits).await
    }
}

impl<S> ImapClient<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Wraps an open stream and reads the greeting: `OK` and `PREAUTH` succeed, `BYE` is
    /// [`ImapError::Bye`].
    pub async fn from_stream(stream: S, limits: ImapLimits) -> Result<Self, ImapError> {
        let mut client = ImapClient {
            stream,
            framer: Framer::new(limits),
            next_tag: 1,
            state: SessionState::NotAuthenticated,
            state_before_idle: SessionState::NotAuthenticated,
            idle_tag: None,
            busy: false,
            capabilities: Capabilities::default(),
            view: MailboxView::default(),
            command_timeout: limits.command_timeout,
            use_literal_plus: true,
            transcript: None,
        };
        let after = client.command_timeout;
        match tokio::time::timeout(after, client.read_greeting()).await {
            Ok(Ok(())) => Ok(client),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(ImapError::Timeout {
                command: "greeting",
                after,
            }),
        }
    }

    async fn read_greeting(&mut self) -> Result<(), ImapError> {
        let frame = self.read_frame(MessageKind::Greeting).await?;
        let greeting = match GreetingCodec::default().decode(&frame) {
            Ok(([], greeting)) => greeting,
            _ => return Err(ImapError::protocol(&frame, "invalid greeting")),
        };
        if let Some(Code::Capability(list)) = &greeting.code {
            self.capabilities = Capabilities::from_list(list.as_ref());
        }
        match greeting.kind {
            GreetingKind::Ok => self.state = SessionState::NotAuthenticated,
            GreetingKind::PreAuth => self.state = SessionState::Authenticated,
            GreetingKind::Bye => {
                self.state = SessionState::LoggedOut;
                return Err(ImapError::Bye {
                    text: greeting.text.inner().to_owned(),
                });
            }
        }
        self.framer.release();
        Ok(())
    }

    // ----- accessors -------------------------------------------------------------------------

    pub fn state(&self) -> SessionState {
        self.state
    }

    /// Capabilities as last announced by the server.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Sequence-number rule breaches seen since the last call (which resets them).
    pub fn take_sequence_violations(&mut self) -> SequenceViolations {
        self.view.take_violations()
    }

    /// The selected mailbox as far as the responses so far tell.
    pub fn mailbox(&self) -> &MailboxView {
        &self.view
    }

    /// Takes the oldest queued unsolicited event.
    pub fn pop_event(&mut self) -> Option<MailboxEvent> {
        self.view.pop_event()
    }

    /// Takes every queued unsolicited event.
    pub fn drain_events(&mut self) -> Vec<MailboxEvent> {
        std::iter::from_fn(|| self.view.pop_event()).collect()
    }

    pub fn set_command_timeout(&mut self, timeout: Duration) {
        self.command_timeout = timeout;
    }

    /// Whether APPEND and LOGIN may use non-synchronizing literals when the server announces
    /// LITERAL+ (default true). Off forces the `{N}` / `+` round trip.
    pub fn set_use_literal_plus(&mut self, enabled: bool) {
        self.use_literal_plus = enabled;
    }

    /// Keeps the last `entries` sent and received messages (0 turns it off, the default).
    pub fn enable_transcript(&mut self, entries: usize) {
        self.transcript = (entries > 0).then(|| {
            Box::new(Transcript {
                entries: Default::default(),
                capacity: entries,
            })
        });
    }

    /// The recorded transcript, oldest first.
    pub fn transcript(&self) -> Vec<TranscriptEntry> {
        self.transcript
            .as_ref()
            .map(|t| t.entries.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Heap bytes of the read buffer right now.
    pub fn buffer_capacity(&self) -> usize {
        self.framer.capacity()
    }

    /// Heap bytes this client holds itself (read buffer, capability list, event queue,
    /// transcript); the socket's own kernel and runtime state is not included.
    pub fn heap_bytes(&self) -> usize {
        let transcript = self.transcript.as_ref().map_or(0, |t| {
            std::mem::size_of::<Transcript>()
                + t.entries.iter().map(|e| e.bytes.len()).sum::<usize>()
        });
        self.framer.capacity()
            + self.capabilities.heap_bytes()
            + self.view.heap_bytes()
            + transcript
    }

    /// The underlying stream (for example to read socket options).
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    // ----- command lifecycle -----------------------------------------------------------------

    /// Checks the session can run `command` and marks it busy.
    pub(crate) fn begin(&mut self, command: &'static str) -> Result<(), ImapError> {
        if self.busy {
            self.state = SessionState::Broken;
            self.busy = false;
            return Err(ImapError::Unusable {
                reason: "an earlier command was cancelled before its answer arrived",
            });
        }
        match self.state {
            SessionState::Broken => Err(ImapError::Unusable {
                reason: "an earlier error left the session in an unknown state",
            }),
            SessionState::LoggedOut => Err(ImapError::Unusable {
                reason: "the session has ended (LOGOUT or BYE)",
            }),
            SessionState::Idle if command != "DONE" => Err(ImapError::WrongState(
                "IDLE is running: call done() before other commands",
            )),
            _ => {
                self.busy = true;
                self.view.in_seq_command = matches!(command, "FETCH" | "STORE" | "SEARCH");
                Ok(())
            }
        }
    }

    /// Ends a command: a fatal error poisons the session; the read buffer is given back.
    pub(crate) fn end<T>(&mut self, result: Result<T, ImapError>) -> Result<T, ImapError> {
        self.busy = false;
        self.view.in_seq_command = false;
        if let Err(err) = &result {
            if err.is_fatal() && self.state != SessionState::LoggedOut {
                self.state = SessionState::Broken;
            }
        }
        self.framer.release();
        result
    }

    pub(crate) fn timed_out(&self, command: &'static str) -> ImapError {
        ImapError::Timeout {
            command,
            after: self.command_timeout,
        }
    }

    pub(crate) fn next_tag(&mut self) -> TagBuf {
        let tag = TagBuf::new(self.next_tag);
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        tag
    }

    // ----- wire I/O --------------------------------------------------------------------------

    pub(crate) async fn read_frame(&mut self, kind: MessageKind) -> Result<Bytes, ImapError> {
        let frame = self.framer.read_message(&mut self.stream, kind).await?;
        if let Some(transcript) = &mut self.transcript {
            transcript.record(Direction::Received, &frame);
        }
        Ok(frame)
    }

    pub(crate) async fn write(
        &mut self,
        data: &[u8],
        redacted: Option<&str>,
    ) -> Result<(), ImapError> {
        if let Some(transcript) = &mut self.transcript {
            let shown = match redacted {
                Some(text) => Bytes::copy_from_slice(text.as_bytes()),
                None => Bytes::copy_from_slice(data),
            };
            transcript.record(Direction::Sent, &shown);
        }
        self.stream.write_all(data).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Encodes and sends `body` under `tag`. A synchronizing literal waits for the server's
    /// `+` before its data goes out; non-synchronizing literals are sent in one write with the
    /// rest. `redacted` replaces the command in the transcript (credentials).
    pub(crate) async fn send(
        &mut self,
        tag: &TagBuf,
        body: CommandBody<'_>,
        redacted: Option<&str>,
    ) -> Result<(), ImapError> {
        let command = Command {
            tag: tag.tag(),
            body,
        };
        let name = command.name();
        let mut pending: Vec<u8> = Vec::new();
        for fragment in CommandCodec::default().encode(&command) {
            let (data, sync) = match fragment {
                Fragment::Line { data } => (data, false),
                Fragment::Literal { data, mode } => (data, mode == LiteralMode::Sync),
            };
            if sync {
                self.write(&pending, redacted).await?;
                pending.clear();
                self.wait_continuation(tag, name).await?;
            }
            if pending.is_empty() {
                pending = data;
            } else {
                pending.extend_from_slice(&data);
            }
        }
        self.write(&pending, redacted).await
    }

    /// Waits for a `+` continuation request; untagged responses on the way are tracked, and a
    /// tagged answer means the server refused the command before its literal.
    pub(crate) async fn wait_continuation(
        &mut self,
        tag: &TagBuf,
        command: &'static str,
    ) -> Result<(), ImapError> {
        loop {
            let frame = self.read_frame(MessageKind::Response).await?;
            let response = decode(&frame)?;
            self.observe(&response);
            match &response {
                Response::CommandContinuationRequest(_) => return Ok(()),
                Response::Status(Status::Tagged(tagged)) => {
                    check_tag(&frame, tagged.tag.inner(), tag)?;
                    let err = status_error(command, tagged.body.kind, &frame);
                    return Err(err.unwrap_or_else(|| {
                        ImapError::protocol(&frame, "tagged OK before the literal was sent")
                    }));
                }
                Response::Status(Status::Bye(bye)) => return Err(self.bye(bye)),
                _ => self.queue_event(&response, &frame),
            }
        }
    }

    /// Reads responses until the tagged completion of `tag`. Each untagged response first
    /// updates the mailbox view, then goes to `handler`; if the handler does not consume it,
    /// it is queued as an event. Returns the code of the tagged OK.
    pub(crate) async fn complete(
        &mut self,
        tag: &TagBuf,
        command: &'static str,
        handler: Handler<'_>,
    ) -> Result<Option<Code<'static>>, ImapError> {
        loop {
            let frame = self.read_frame(MessageKind::Response).await?;
            let response = decode(&frame)?;
            self.observe(&response);
            match &response {
                Response::Status(Status::Tagged(tagged)) => {
                    check_tag(&frame, tagged.tag.inner(), tag)?;
                    if let Some(err) = status_error(command, tagged.body.kind, &frame) {
                        return Err(err);
                    }
                    return Ok(match &tagged.body.code {
                        None | Some(Code::Capability(_)) => None,
                        Some(code) => Some(code.to_static()),
                    });
                }
                Response::Status(Status::Bye(bye)) => return Err(self.bye(bye)),
                Response::CommandContinuationRequest(_) => {
                    return Err(ImapError::protocol(
                        &frame,
                        "continuation request while no literal was announced",
                    ))
                }
                _ => {
                    if !handler(&response, &frame) {
                        self.queue_event(&response, &frame);
                    }
                }
            }
        }
    }

    /// Runs a command with no result data: everything untagged is queued as events.
    pub(crate) async fn simple(
        &mut self,
        body: CommandBody<'_>,
    ) -> Result<Option<Code<'static>>, ImapError> {
        let name = body.name();
        let tag = self.next_tag();
        self.send(&tag, body, None).await?;
        self.complete(&tag, name, &mut |_, _| false).await
    }

    /// Marks the session closed after a BYE and builds the error.
    pub(crate) fn bye(&mut self, bye: &Bye<'_>) -> ImapError {
        self.state = SessionState::LoggedOut;
        ImapError::Bye {
            text: bye.text.inner().to_owned(),
        }
    }

    /// Updates capabilities and the mailbox view from any response.
    pub(crate) fn observe(&mut self, response: &Response<'_>) {
        match response {
            Response::Data(Data::Capability(list)) => {
                self.capabilities = Capabilities::from_list(list.as_ref());
            }
            Response::Data(Data::Exists(n)) => {
                if self.view.selected && *n < self.view.exists {
                    self.view.violations.exists_decreased += 1;
                }
                self.view.exists = *n;
            }
            Response::Data(Data::Recent(n)) => self.view.recent = *n,
            Response::Data(Data::Expunge(seq)) => {
                if self.view.selected && seq.get() > self.view.exists {
                    self.view.violations.expunge_out_of_range += 1;
                }
                if self.view.in_seq_command {
                    self.view.violations.expunge_during_fetch_store_search += 1;
                }
                self.view.exists = self.view.exists.saturating_sub(1)
            }
            Response::Status(status) => match status.code() {
                Some(Code::Capability(list)) => {
                    self.capabilities = Capabilities::from_list(list.as_ref());
                }
                Some(Code::UidValidity(v)) => self.view.uid_validity = Some(*v),
                _ => {}
            },
            _ => {}
        }
    }

    /// Queues an unconsumed untagged response as an event, if it is one.
    pub(crate) fn queue_event(&mut self, response: &Response<'_>, frame: &Bytes) {
        if let Some(event) = event_of(response, frame) {
            let max = self.framer.limits.max_queued_events;
            self.view.push_event(event, max);
        }
    }
}

/// The event an untagged response stands for, if any.
pub(crate) fn event_of(response: &Response<'_>, frame: &Bytes) -> Option<MailboxEvent> {
    Some(match response {
        Response::Data(Data::Exists(n)) => MailboxEvent::Exists(*n),
        Response::Data(Data::Recent(n)) => MailboxEvent::Recent(*n),
        Response::Data(Data::Expunge(seq)) => MailboxEvent::Expunge(seq.get()),
        Response::Data(Data::Fetch { seq, items }) => {
            MailboxEvent::Fetch(Box::new(fetched(seq.get(), items.as_ref(), frame)))
        }
        _ => return None,
    })
}

/// Decodes one complete response message with the strict grammar.
pub(crate) fn decode(frame: &Bytes) -> Result<Response<'_>, ImapError> {
    match ResponseCodec::default().decode(frame) {
        Ok(([], response)) => Ok(response),
        Ok(_) => Err(ImapError::protocol(
            frame,
            "data after the end of a response (bad literal length?)",
        )),
        Err(_) => Err(ImapError::protocol(
            frame,
            "response does not match the IMAP grammar (RFC 3501 and announced extensions)",
        )),
    }
}

pub(crate) fn check_tag(frame: &[u8], got: &str, want: &TagBuf) -> Result<(), ImapError> {
    if got == want.as_str() {
        Ok(())
    } else {
        Err(ImapError::protocol(
            frame,
            format!(
                "tagged response for unknown tag {got:?} (waiting for {})",
                want.as_str()
            ),
        ))
    }
}

/// `NO`/`BAD` as an error; `None` for `OK`.
pub(crate) fn status_error(
    command: &'static str,
    kind: StatusKind,
    frame: &[u8],
) -> Option<ImapError> {
    match kind {
        StatusKind::Ok => None,
        StatusKind::No => Some(ImapError::No {
            command,
            text: status_text(frame),
        }),
        StatusKind::Bad => Some(ImapError::Bad {
            command,
            text: status_text(frame),
        }),
    }
}

/// The text after `tag OK|NO|BAD ` (including any `[CODE]`), as the server sent it.
fn status_text(frame: &[u8]) -> String {
    let line = frame.strip_suffix(b"\r\n").unwrap_or(frame);
    let text = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

/// A session taken off its stream, to be put on another one (after a TLS handshake).
pub(crate) struct DetachedSession {
    framer: Framer,
    next_tag: u32,
    state: SessionState,
    state_before_idle: SessionState,
    idle_tag: Option<TagBuf>,
    busy: bool,
    capabilities: Capabilities,
    view: MailboxView,
    command_timeout: Duration,
    use_literal_plus: bool,
    transcript: Option<Box<Transcript>>,
}

impl<S> ImapClient<S> {
    /// Splits off the stream. Only sound with nothing buffered: bytes read before a switch
    /// belong to the old layer.
    pub(crate) fn detach(self) -> (S, DetachedSession) {
        let rest = DetachedSession {
            framer: self.framer,
            next_tag: self.next_tag,
            state: self.state,
            state_before_idle: self.state_before_idle,
            idle_tag: self.idle_tag,
            busy: self.busy,
            capabilities: self.capabilities,
            view: self.view,
            command_timeout: self.command_timeout,
            use_literal_plus: self.use_literal_plus,
            transcript: self.transcript,
        };
        (self.stream, rest)
    }
}

impl DetachedSession {
    pub(crate) fn attach<T>(self, stream: T) -> ImapClient<T> {
        ImapClient {
            stream,
            framer: self.framer,
            next_tag: self.next_tag,
            state: self.state,
            state_before_idle: self.state_before_idle,
            idle_tag: self.idle_tag,
            busy: self.busy,
            capabilities: self.capabilities,
            view: self.view,
            command_timeout: self.command_timeout,
            use_literal_plus: self.use_literal_plus,
            transcript: self.transcript,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_types::sequence::SequenceSet;

    /// Command futures must be `Send`: the engine runs each connection in a spawned task.
    #[allow(dead_code)]
    fn futures_are_send(client: &mut ImapClient<TcpStream>, set: &SequenceSet) {
        fn send<T: Send>(_: T) {}
        send(client.noop());
        send(client.fetch(set, &[]));
        send(client.select("INBOX"));
        send(client.append("INBOX", &[], None, b""));
        send(client.login("u", &crate::proto::Secret::from("p")));
        send(client.wait_for_event(Duration::from_secs(1)));
        send(client.execute_raw(b"NOOP"));
        send(client.logout());
        send(client.done());
        send(ImapClient::connect(
            ([127, 0, 0, 1], 1).into(),
            &ConnectOptions::default(),
            ImapLimits::default(),
        ));
    }

    #[test]
    fn tags_count_up() {
        assert_eq!(TagBuf::new(1).as_str(), "A1");
        assert_eq!(TagBuf::new(907).as_str(), "A907");
        assert_eq!(TagBuf::new(u32::MAX).as_str(), "A4294967295");
    }

    #[test]
    fn status_text_keeps_codes() {
        assert_eq!(
            status_text(b"A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
    }
}
