//! The connection: greeting, EHLO/LHLO, STARTTLS, AUTH and the single commands, each under a
//! deadline. Whole transactions are in `transaction.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::capabilities::Capabilities;
use super::reply::{quote, Reply, ReplyBuffer};
use super::{Flavor, SmtpError, SmtpSettings};
use crate::proto::net::{connect_tcp, ConnectOptions};
use crate::proto::tls;

/// SASL mechanisms the client can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMechanism {
    Plain,
    Login,
}

impl AuthMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
        }
    }
}

/// One SMTP or LMTP session over any byte stream (TCP, TLS, or a test pipe).
///
/// Invariant: between calls no reply is outstanding, so bytes already buffered before a new
/// command are unsolicited and reported as a protocol error.
#[derive(Debug)]
pub struct SmtpClient<S> {
    pub(super) stream: S,
    pub(super) replies: ReplyBuffer,
    pub(super) flavor: Flavor,
    pub(super) settings: SmtpSettings,
    greeting: Reply,
    pub(super) capabilities: Option<Capabilities>,
}

impl SmtpClient<TcpStream> {
    /// Connects (TCP_NODELAY, optional source address) and reads the greeting.
    pub async fn connect(
        addr: SocketAddr,
        opts: &ConnectOptions,
        flavor: Flavor,
    ) -> Result<Self, SmtpError> {
        Self::connect_with(addr, opts, flavor, SmtpSettings::default()).await
    }

    pub async fn connect_with(
        addr: SocketAddr,
        opts: &ConnectOptions,
        flavor: Flavor,
        settings: SmtpSettings,
    ) -> Result<Self, SmtpError> {
        let tcp = connect_tcp(addr, opts)
            .await
            .map_err(|source| SmtpError::Io {
                command: "connect",
                source,
            })?;
        SmtpClient::from_stream(tcp, flavor, settings).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> SmtpClient<S> {
    /// Reads the greeting on an already connected stream: 220 starts the session, a 4xx/5xx
    /// (554 "no service") is a rejection.
    pub async fn from_stream(
        stream: S,
        flavor: Flavor,
        settings: SmtpSettings,
    ) -> Result<Self, SmtpError> {
        let mut client = SmtpClient {
            stream,
            replies: ReplyBuffer::default(),
            flavor,
            settings,
            greeting: Reply {
                code: 0,
                enhanced: None,
                text: String::new(),
            },
            capabilities: None,
        };
        let greeting = client.read_reply("greeting").await?;
        match greeting.code {
            220 => {}
            400..=599 => return Err(SmtpError::rejected("greeting", greeting)),
            _ => return Err(SmtpError::unexpected("greeting", "220", &greeting)),
        }
        client.greeting = greeting;
        Ok(client)
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The 220 greeting.
    pub fn greeting(&self) -> &Reply {
        &self.greeting
    }

    /// Capabilities from the last EHLO/LHLO (none before it, and none right after STARTTLS).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.capabilities.as_ref()
    }

    pub fn set_command_timeout(&mut self, timeout: Duration) {
        self.settings.command_timeout = timeout;
    }

    /// The stream underneath (e.g. to read socket addresses).
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// EHLO for SMTP, LHLO for LMTP.
    pub async fn hello(&mut self, domain: &str) -> Result<&Capabilities, SmtpError> {
        match self.flavor {
            Flavor::Smtp => self.ehlo(domain).await,
            Flavor::Lmtp => self.lhlo(domain).await,
        }
    }

    pub async fn ehlo(&mut self, domain: &str) -> Result<&Capabilities, SmtpError> {
        self.hello_command("EHLO", domain).await
    }

    /// LMTP's greeting command (RFC 2033 §4.1); the reply has the EHLO format.
    pub async fn lhlo(&mut self, domain: &str) -> Result<&Capabilities, SmtpError> {
        self.hello_command("LHLO", domain).await
    }

    async fn hello_command(
        &mut self,
        verb: &'static str,
        domain: &str,
    ) -> Result<&Capabilities, SmtpError> {
        check_word(verb, domain)?;
        let reply = self
            .command(verb, format!("{verb} {domain}\r\n").as_bytes())
            .await?;
        if reply.code != 250 {
            return Err(self.refusal(verb, reply, "250"));
        }
        Ok(self.capabilities.insert(Capabilities::from_reply(&reply)))
    }

    /// Upgrades to TLS (RFC 3207). The server must send nothing after its 220: bytes already
    /// waiting would be read as if they had come through TLS (the STARTTLS injection attack,
    /// CVE-2011-0411), so they are a protocol error. Capabilities are forgotten: send EHLO again.
    pub async fn starttls(
        mut self,
        connector: &TlsConnector,
        server_name: ServerName<'static>,
    ) -> Result<SmtpClient<TlsStream<S>>, SmtpError> {
        let reply = self.command("STARTTLS", b"STARTTLS\r\n").await?;
        if reply.code != 220 {
            return Err(self.refusal("STARTTLS", reply, "220"));
        }
        if !self.replies.pending().is_empty() {
            return Err(SmtpError::protocol(
                "STARTTLS",
                "data after the 220 reply before the TLS handshake (STARTTLS injection)",
                quote(self.replies.pending()),
            ));
        }
        let deadline = self.settings.tls_handshake_timeout;
        let stream = tls::handshake(self.stream, server_name, connector, deadline).await?;
        Ok(SmtpClient {
            stream,
            replies: ReplyBuffer::default(),
            flavor: self.flavor,
            settings: self.settings,
            greeting: self.greeting,
            capabilities: None,
        })
    }

    /// SASL authentication (RFC 4954). With `initial_response` the first client message goes on
    /// the AUTH line; without it the client waits for the server's empty 334 first. The
    /// credentials are only base64-encoded onto the wire and never kept or printed.
    pub async fn auth(
        &mut self,
        mechanism: AuthMechanism,
        username: &str,
        password: &str,
        initial_response: bool,
    ) -> Result<(), SmtpError> {
        let mut messages: Vec<String> = match mechanism {
            AuthMechanism::Plain => vec![BASE64.encode(format!("\0{username}\0{password}"))],
            AuthMechanism::Login => vec![BASE64.encode(username), BASE64.encode(password)],
        };
        messages.reverse();
        let mut line = format!("AUTH {}", mechanism.as_str());
        if initial_response {
            if let Some(first) = messages.pop() {
                line.push(' ');
                line.push_str(&first);
            }
        }
        line.push_str("\r\n");
        let mut reply = self.command("AUTH", line.as_bytes()).await?;
        loop {
            match reply.code {
                235 => return Ok(()),
                334 => {}
                400..=599 => {
                    return Err(SmtpError::Auth {
                        code: reply.code,
                        enhanced: reply.enhanced,
                        text: reply.text,
                    })
                }
                _ => return Err(SmtpError::unexpected("AUTH", "235 or 334", &reply)),
            }
            // Challenges must be base64 (RFC 4954 §4); their content does not matter to
            // PLAIN and LOGIN.
            let challenge_ok = BASE64.decode(reply.text.trim()).is_ok();
            let next = messages.pop().filter(|_| challenge_ok);
            let Some(message) = next else {
                // Cancel so the server leaves the exchange, then report what was wrong.
                let _ = self.command("AUTH", b"*\r\n").await;
                let reason = if challenge_ok {
                    "more 334 challenges than the mechanism has steps"
                } else {
                    "334 challenge is not base64"
                };
                return Err(SmtpError::protocol("AUTH", reason, reply.text));
            };
            reply = self
                .command("AUTH", format!("{message}\r\n").as_bytes())
                .await?;
        }
    }

    /// RSET: abort the current transaction.
    pub async fn rset(&mut self) -> Result<Reply, SmtpError> {
        self.simple("RSET", b"RSET\r\n").await
    }

    pub async fn noop(&mut self) -> Result<Reply, SmtpError> {
        self.simple("NOOP", b"NOOP\r\n").await
    }

    /// QUIT, wait for 221, close the stream.
    pub async fn quit(mut self) -> Result<Reply, SmtpError> {
        let reply = self.command("QUIT", b"QUIT\r\n").await?;
        if reply.code != 221 {
            return Err(self.refusal("QUIT", reply, "221"));
        }
        // The server closes too; a failed shutdown changes nothing for the caller.
        let _ = self.stream.shutdown().await;
        Ok(reply)
    }

    /// Sends `bytes` exactly as given (one or more CRLF-terminated lines) and reads one reply,
    /// whatever its code. For conformance checks that need commands the typed API refuses to
    /// build (unknown verbs, AUTH without an initial response, pipelined groups).
    pub async fn raw_command(&mut self, bytes: &[u8]) -> Result<Reply, SmtpError> {
        self.command("raw command", bytes).await
    }

    /// Reads the next reply (after [`raw_command`](Self::raw_command) on a pipelined group, or
    /// after [`write_bytes`](Self::write_bytes)).
    pub async fn next_reply(&mut self) -> Result<Reply, SmtpError> {
        self.read_reply("raw command").await
    }

    /// Writes `bytes` without reading anything (message content, a pipelined group).
    pub async fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), SmtpError> {
        self.write_raw("raw command", bytes).await
    }

    /// Bytes received but not yet taken as a reply: after a command's reply there should be
    /// none (a STARTTLS injection leaves some).
    pub fn unread(&self) -> &[u8] {
        self.replies.pending()
    }

    /// Sends a command whose only success is 250.
    async fn simple(&mut self, verb: &'static str, line: &[u8]) -> Result<Reply, SmtpError> {
        let reply = self.command(verb, line).await?;
        if reply.code != 250 {
            return Err(self.refusal(verb, reply, "250"));
        }
        Ok(reply)
    }

    /// A 4xx/5xx is a rejection; any other wrong code breaks the command's grammar.
    pub(super) fn refusal(&self, verb: &'static str, reply: Reply, expected: &str) -> SmtpError {
        if (400..600).contains(&reply.code) {
            SmtpError::rejected(verb, reply)
        } else {
            SmtpError::unexpected(verb, expected, &reply)
        }
    }

    /// Writes one command (or a pipelined group) and reads one reply.
    pub(super) async fn command(
        &mut self,
        verb: &'static str,
        line: &[u8],
    ) -> Result<Reply, SmtpError> {
        self.send_bytes(verb, line).await?;
        self.read_reply(verb).await
    }

    /// Writes and flushes under the command deadline, after checking that the server has not
    /// sent anything nobody asked for.
    pub(super) async fn send_bytes(
        &mut self,
        verb: &'static str,
        bytes: &[u8],
    ) -> Result<(), SmtpError> {
        if !self.replies.pending().is_empty() {
            return Err(SmtpError::protocol(
                verb,
                format!("unsolicited data from the server before {verb}"),
                quote(self.replies.pending()),
            ));
        }
        self.write_raw(verb, bytes).await
    }

    /// Writes without the unsolicited-data check (message bodies, pipelined groups).
    pub(super) async fn write_raw(
        &mut self,
        verb: &'static str,
        bytes: &[u8],
    ) -> Result<(), SmtpError> {
        let after = self.settings.command_timeout;
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(after, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(SmtpError::Io {
                command: verb,
                source,
            }),
            Err(_) => Err(SmtpError::Timeout {
                command: verb,
                after,
            }),
        }
    }

    /// Reads one reply; the deadline covers the whole reply, however it is split.
    pub(super) async fn read_reply(&mut self, verb: &'static str) -> Result<Reply, SmtpError> {
        let after = self.settings.command_timeout;
        let deadline = tokio::time::Instant::now() + after;
        loop {
            match self.replies.take_reply() {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(v) => return Err(SmtpError::protocol(verb, v.reason, v.raw)),
            }
            let read = self.replies.fill(&mut self.stream);
            match tokio::time::timeout_at(deadline, read).await {
                Err(_) => {
                    return Err(SmtpError::Timeout {
                        command: verb,
                        after,
                    })
                }
                Ok(Err(source)) => {
                    return Err(SmtpError::Io {
                        command: verb,
                        source,
                    })
                }
                Ok(Ok(0)) => {
                    return Err(SmtpError::Closed {
                        command: verb,
                        partial: quote(self.replies.pending()),
                    })
                }
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// Refuses values that would end or split the command line.
pub(super) fn check_word(what: &'static str, value: &str) -> Result<(), SmtpError> {
    if value.is_empty() || value.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(SmtpError::InvalidInput {
            what,
            reason: format!("{value:?} is empty or contains spaces or control characters"),
        });
    }
    Ok(())
}
