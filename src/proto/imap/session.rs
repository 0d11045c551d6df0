//! Commands that shape the session rather than return data: IDLE (which spans several calls),
//! LOGOUT (which ends with BYE), and `execute_raw` for the conformance suite, which needs the
//! exact bytes of every response.

use std::time::Duration;

use imap_types::command::CommandBody;
use imap_types::response::{Response, Status, StatusKind};
use imap_types::ToStatic;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::client::{check_tag, decode, event_of, status_error, ImapClient, SessionState};
use super::commands::run;
use super::error::ImapError;
use super::framing::{literal_announcement, MessageKind};
use super::types::{Cap, MailboxEvent, RawExchange, RawResponse};

impl<S> ImapClient<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Starts IDLE (RFC 2177) and waits for the server's `+`. Then call
    /// [`wait_for_event`](Self::wait_for_event) to receive pushes and [`done`](Self::done) to
    /// end it.
    pub async fn idle(&mut self) -> Result<(), ImapError> {
        if !self.capabilities.has(Cap::Idle) {
            return Err(ImapError::Unsupported {
                command: "IDLE",
                capability: "IDLE",
            });
        }
        run!(self, "IDLE", self.idle_inner())
    }

    async fn idle_inner(&mut self) -> Result<(), ImapError> {
        let tag = self.next_tag();
        self.send(&tag, CommandBody::Idle, None).await?;
        self.wait_continuation(&tag, "IDLE").await?;
        self.state_before_idle = self.state;
        self.state = SessionState::Idle;
        self.idle_tag = Some(tag);
        Ok(())
    }

    /// Returns the next unsolicited event: a queued one at once, otherwise the next one the
    /// server pushes, or `None` after `timeout`. Works during IDLE and between commands.
    ///
    /// Cancel-safe: dropping the future (for example in `select!`) loses no data. While it
    /// waits the client holds no read buffer.
    pub async fn wait_for_event(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<MailboxEvent>, ImapError> {
        if let Some(event) = self.view.pop_event() {
            return Ok(Some(event));
        }
        match self.state {
            SessionState::Broken | SessionState::LoggedOut => {
                return Err(ImapError::Unusable {
                    reason: "the session has ended or failed earlier",
                })
            }
            _ => {}
        }
        self.framer.release();
        match tokio::time::timeout(timeout, self.read_event()).await {
            Err(_) => Ok(None),
            Ok(Ok(event)) => Ok(Some(event)),
            Ok(Err(err)) => {
                if err.is_fatal() && self.state != SessionState::LoggedOut {
                    self.state = SessionState::Broken;
                }
                self.framer.release();
                Err(err)
            }
        }
    }

    async fn read_event(&mut self) -> Result<MailboxEvent, ImapError> {
        loop {
            let frame = self.read_frame(MessageKind::Response).await?;
            let response = decode(&frame)?;
            self.observe(&response);
            match &response {
                Response::Data(_) => {
                    if let Some(event) = event_of(&response, &frame) {
                        return Ok(event);
                    }
                }
                // `* OK Still here` keep-alives and the like.
                Response::Status(Status::Untagged(_)) => {}
                Response::Status(Status::Bye(bye)) => return Err(self.bye(bye)),
                Response::Status(Status::Tagged(tagged)) => {
                    let Some(idle_tag) = self.idle_tag.filter(|_| self.state == SessionState::Idle)
                    else {
                        return Err(ImapError::protocol(
                            &frame,
                            "tagged response while no command runs",
                        ));
                    };
                    check_tag(&frame, tagged.tag.inner(), &idle_tag)?;
                    self.state = self.state_before_idle;
                    self.idle_tag = None;
                    return Err(
                        status_error("IDLE", tagged.body.kind, &frame).unwrap_or_else(|| {
                            ImapError::protocol(&frame, "server ended IDLE before DONE")
                        }),
                    );
                }
                Response::CommandContinuationRequest(_) => {
                    return Err(ImapError::protocol(
                        &frame,
                        "continuation request while none was due",
                    ))
                }
            }
        }
    }

    /// Ends IDLE: sends DONE and reads the tagged OK. Events that arrive meanwhile are queued.
    pub async fn done(&mut self) -> Result<(), ImapError> {
        let Some(tag) = self.idle_tag.filter(|_| self.state == SessionState::Idle) else {
            return Err(ImapError::WrongState("done() without a running IDLE"));
        };
        run!(self, "DONE", async {
            self.write(b"DONE\r\n", None).await?;
            self.complete(&tag, "IDLE", &mut |_, _| false).await?;
            self.state = self.state_before_idle;
            self.idle_tag = None;
            Ok(())
        })
    }

    /// LOGOUT: expects `* BYE` and then the tagged OK; a connection closed right after the BYE
    /// counts as success.
    pub async fn logout(&mut self) -> Result<(), ImapError> {
        run!(self, "LOGOUT", self.logout_inner())
    }

    async fn logout_inner(&mut self) -> Result<(), ImapError> {
        let tag = self.next_tag();
        self.send(&tag, CommandBody::Logout, None).await?;
        let mut saw_bye = false;
        loop {
            let frame = match self.read_frame(MessageKind::Response).await {
                Ok(frame) => frame,
                Err(ImapError::Closed { .. }) if saw_bye => break,
                Err(err) => return Err(err),
            };
            let response = decode(&frame)?;
            self.observe(&response);
            match &response {
                Response::Status(Status::Bye(_)) => saw_bye = true,
                Response::Status(Status::Tagged(tagged)) => {
                    check_tag(&frame, tagged.tag.inner(), &tag)?;
                    if let Some(err) = status_error("LOGOUT", tagged.body.kind, &frame) {
                        return Err(err);
                    }
                    if !saw_bye {
                        return Err(ImapError::protocol(
                            &frame,
                            "tagged OK to LOGOUT without the required untagged BYE",
                        ));
                    }
                    break;
                }
                Response::CommandContinuationRequest(_) => {
                    return Err(ImapError::protocol(
                        &frame,
                        "continuation request during LOGOUT",
                    ))
                }
                _ => self.queue_event(&response, &frame),
            }
        }
        self.state = SessionState::LoggedOut;
        // The server closes too; a failed shutdown changes nothing.
        let _ = self.stream.shutdown().await;
        Ok(())
    }

    /// Sends `command` (everything after the tag, without the final CRLF) under a fresh tag
    /// and returns every response up to the tagged completion with its exact bytes. NO and BAD
    /// are results here, not errors. Literals `{N}` / `{N+}` inside `command` are honoured
    /// (the client waits for `+` after a synchronizing one); any other CR or LF is rejected.
    ///
    /// Untagged responses update the mailbox view but are not queued as events (they are in
    /// the exchange). SELECT/EXAMINE/LOGIN/AUTHENTICATE/CLOSE/UNSELECT update the session state
    /// on OK; IDLE is refused (use [`idle`](Self::idle)).
    pub async fn execute_raw(&mut self, command: &[u8]) -> Result<RawExchange, ImapError> {
        let segments = split_raw(command)?;
        let verb = command
            .split(|&b| b == b' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if verb == b"IDLE" || verb == b"DONE" {
            return Err(ImapError::WrongState("use idle()/done() for IDLE"));
        }
        run!(self, "raw command", self.raw_inner(&segments, &verb))
    }

    async fn raw_inner(
        &mut self,
        segments: &[RawSegment<'_>],
        verb: &[u8],
    ) -> Result<RawExchange, ImapError> {
        let tag = self.next_tag();
        if matches!(verb, b"SELECT" | b"EXAMINE") {
            self.view.reset(false);
        }
        let secret = matches!(verb, b"LOGIN" | b"AUTHENTICATE");
        let shown = secret.then(|| {
            format!(
                "{} {} <redacted>\r\n",
                tag.as_str(),
                String::from_utf8_lossy(verb)
            )
        });
        let mut responses = Vec::new();
        let mut saw_bye = None;
        for (index, segment) in segments.iter().enumerate() {
            let mut out = Vec::with_capacity(segment.bytes.len() + 16);
            if index == 0 {
                out.extend_from_slice(tag.as_str().as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(segment.bytes);
            if !segment.wait_for_continuation {
                out.extend_from_slice(b"\r\n");
            }
            self.write(&out, shown.as_deref()).await?;
            if !segment.wait_for_continuation {
                break;
            }
            // Wait for `+`; the server may refuse with the tagged completion instead.
            loop {
                let frame = self.read_frame(MessageKind::Response).await?;
                let response = decode(&frame)?;
                self.observe(&response);
                let is_continue = matches!(response, Response::CommandContinuationRequest(_));
                let completed = self.raw_completion(&response, &frame, &tag, &mut saw_bye)?;
                let entry = RawResponse {
                    raw: frame.clone(),
                    decoded: response.to_static(),
                };
                if completed {
                    return Ok(RawExchange {
                        responses,
                        completion: entry,
                    });
                }
                responses.push(entry);
                if is_continue {
                    break;
                }
            }
        }
        loop {
            let frame = match self.read_frame(MessageKind::Response).await {
                Ok(frame) => frame,
                Err(ImapError::Closed { .. }) if saw_bye.is_some() => {
                    return Err(ImapError::Bye {
                        text: saw_bye.unwrap_or_default(),
                    })
                }
                Err(err) => return Err(err),
            };
            let response = decode(&frame)?;
            self.observe(&response);
            if matches!(response, Response::CommandContinuationRequest(_)) {
                return Err(ImapError::Unusable {
                    reason: "a raw command got a continuation request it cannot answer (only literals are supported)",
                });
            }
            let completed = self.raw_completion(&response, &frame, &tag, &mut saw_bye)?;
            let entry = RawResponse {
                raw: frame.clone(),
                decoded: response.to_static(),
            };
            if completed {
                self.raw_state_change(verb, &entry);
                return Ok(RawExchange {
                    responses,
                    completion: entry,
                });
            }
            responses.push(entry);
        }
    }

    /// Whether `response` is the tagged completion of `tag`; BYE is remembered.
    fn raw_completion(
        &mut self,
        response: &Response<'_>,
        frame: &[u8],
        tag: &super::client::TagBuf,
        saw_bye: &mut Option<String>,
    ) -> Result<bool, ImapError> {
        match response {
            Response::Status(Status::Tagged(tagged)) => {
                check_tag(frame, tagged.tag.inner(), tag)?;
                Ok(true)
            }
            Response::Status(Status::Bye(bye)) => {
                *saw_bye = Some(bye.text.inner().to_owned());
                self.state = SessionState::LoggedOut;
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    fn raw_state_change(&mut self, verb: &[u8], completion: &RawResponse) {
        let ok = matches!(
            &completion.decoded,
            Response::Status(Status::Tagged(t)) if t.body.kind == StatusKind::Ok
        );
        if self.state == SessionState::LoggedOut {
            return;
        }
        match verb {
            b"SELECT" | b"EXAMINE" => {
                if ok {
                    self.view.selected = true;
                    self.state = SessionState::Selected;
                } else if self.state == SessionState::Selected {
                    self.state = SessionState::Authenticated;
                }
            }
            b"LOGIN" | b"AUTHENTICATE" if ok => self.state = SessionState::Authenticated,
            b"CLOSE" | b"UNSELECT" if ok => {
                self.view.reset(false);
                self.state = SessionState::Authenticated;
            }
            _ => {}
        }
    }
}

/// One piece of a raw command: bytes to send, and whether a synchronizing literal follows
/// (so the client must wait for `+` before the next piece).
#[derive(Debug, PartialEq, Eq)]
struct RawSegment<'a> {
    bytes: &'a [u8],
    wait_for_continuation: bool,
}

/// Splits a raw command at its synchronizing literals and checks that every CRLF ends a
/// literal announcement, so the command cannot smuggle a second, untagged command.
fn split_raw(command: &[u8]) -> Result<Vec<RawSegment<'_>>, ImapError> {
    let invalid = |reason: &str| ImapError::InvalidArgument {
        what: "raw command",
        reason: reason.to_owned(),
    };
    if command.is_empty() {
        return Err(invalid("empty command"));
    }
    let mut segments = Vec::new();
    let (mut segment_start, mut line_start, mut pos) = (0, 0, 0);
    while pos < command.len() {
        match command[pos] {
            b'\r' | b'\n' => {
                if !command[pos..].starts_with(b"\r\n") {
                    return Err(invalid(
                        "bare CR or LF (only CRLF after a literal announcement)",
                    ));
                }
                let Some((length, non_sync)) = literal_announcement(&command[line_start..pos])
                else {
                    return Err(invalid(
                        "CRLF is only allowed right after a literal announcement {N}",
                    ));
                };
                let data_start = pos + 2;
                let data_end = usize::try_from(length)
                    .ok()
                    .and_then(|len| data_start.checked_add(len))
                    .filter(|&end| end <= command.len())
                    .ok_or_else(|| invalid("literal is longer than the rest of the command"))?;
                if !non_sync {
                    segments.push(RawSegment {
                        bytes: &command[segment_start..data_start],
                        wait_for_continuation: true,
                    });
                    segment_start = data_start;
                }
                pos = data_end;
                line_start = data_end;
            }
            _ => pos += 1,
        }
    }
    segments.push(RawSegment {
        bytes: &command[segment_start..],
        wait_for_continuation: false,
    });
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_commands_split_at_sync_literals() {
        let segments = split_raw(b"APPEND INBOX {5}\r\nhello").unwrap();
        assert_eq!(
            segments,
            vec![
                RawSegment {
                    bytes: b"APPEND INBOX {5}\r\n",
                    wait_for_continuation: true
                },
                RawSegment {
                    bytes: b"hello",
                    wait_for_continuation: false
                },
            ]
        );
        let segments = split_raw(b"LOGIN {1+}\r\na {2}\r\n\r\n").unwrap();
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[0].bytes, b"LOGIN {1+}\r\na {2}\r\n");
        assert_eq!(segments[1].bytes, b"\r\n");
        assert_eq!(split_raw(b"NOOP").unwrap().len(), 1);
    }

    #[test]
    fn raw_commands_cannot_smuggle_lines() {
        for bad in [
            &b"NOOP\r\nA9 LOGOUT"[..],
            b"NOOP\n",
            b"APPEND x {10}\r\nshort",
            b"",
        ] {
            assert!(
                matches!(split_raw(bad), Err(ImapError::InvalidArgument { .. })),
                "{bad:?}"
            );
        }
    }
}
