//! STARTTLS (RFC 3501 6.2.1, RFC 2595): upgrade a plaintext session to TLS in place.
//!
//! Two rules keep it safe. Anything the server sent after its tagged OK and before the
//! handshake would be plaintext injected into the TLS session (the STARTTLS injection class of
//! bugs), so buffered bytes fail the upgrade. And capabilities learnt before TLS are forgotten:
//! the client must ask again over the protected channel.

use std::time::Duration;

use imap_types::response::StatusKind;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::client::ImapClient;
use super::error::ImapError;
use super::types::Capabilities;
use crate::proto::tls::{handshake, MaybeTlsStream};

impl<S> ImapClient<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Sends STARTTLS, checks the tagged OK and that nothing else is buffered, then performs
    /// the handshake within `deadline`. A failed handshake is an I/O error naming TLS.
    pub async fn starttls_stream(
        mut self,
        connector: &TlsConnector,
        name: ServerName<'static>,
        deadline: Duration,
    ) -> Result<ImapClient<TlsStream<S>>, ImapError> {
        if !self.capabilities().is_empty() && !self.capabilities().has_named("STARTTLS") {
            return Err(ImapError::Unsupported {
                command: "STARTTLS",
                capability: "STARTTLS",
            });
        }
        let exchange = self.execute_raw(b"STARTTLS").await?;
        if exchange.status() != Some(StatusKind::Ok) {
            let last = exchange.responses.last().map(|r| r.raw.to_vec());
            return Err(ImapError::No {
                command: "STARTTLS",
                text: String::from_utf8_lossy(&last.unwrap_or_default())
                    .trim_end()
                    .to_string(),
            });
        }
        if !self.framer.pending().is_empty() {
            return Err(ImapError::protocol(
                self.framer.pending(),
                "bytes after the STARTTLS OK, before the TLS handshake (injection)",
            ));
        }
        self.framer.release();
        self.capabilities = Capabilities::default();
        let (plain, session) = self.detach();
        let tls = handshake(plain, name, connector, deadline)
            .await
            .map_err(|e| ImapError::Io(std::io::Error::other(format!("TLS: {e}"))))?;
        Ok(session.attach(tls))
    }
}

impl ImapClient<TcpStream> {
    /// STARTTLS on a TCP session, returning the session over [`MaybeTlsStream`] so plain and
    /// TLS sessions share one type.
    pub async fn starttls(
        self,
        connector: &TlsConnector,
        name: ServerName<'static>,
        deadline: Duration,
    ) -> Result<ImapClient<MaybeTlsStream>, ImapError> {
        let client = self.starttls_stream(connector, name, deadline).await?;
        let (tls, session) = client.detach();
        Ok(session.attach(MaybeTlsStream::Tls(Box::new(tls))))
    }
}
