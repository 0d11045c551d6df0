//! LMTP client (RFC 2033). LMTP is SMTP with LHLO instead of EHLO and one final reply per
//! accepted recipient after DATA, so it is the SMTP client in [`Flavor::Lmtp`]; this module
//! only gives that combination a name.
//!
//! [`SmtpClient::send`] returns the per-recipient replies as [`Delivery::PerRecipient`].

use std::net::SocketAddr;

use tokio::net::TcpStream;

pub use super::smtp::{Delivery, RecipientReply};
use super::smtp::{Flavor, SmtpClient, SmtpError, SmtpSettings};
use crate::proto::net::ConnectOptions;

/// An LMTP session: an [`SmtpClient`] whose flavor is [`Flavor::Lmtp`].
pub type LmtpClient<S = TcpStream> = SmtpClient<S>;

/// Connects, reads the greeting and sends LHLO.
pub async fn connect(
    addr: SocketAddr,
    opts: &ConnectOptions,
    settings: SmtpSettings,
    lhlo_domain: &str,
) -> Result<LmtpClient, SmtpError> {
    let mut client = SmtpClient::connect_with(addr, opts, Flavor::Lmtp, settings).await?;
    client.lhlo(lhlo_domain).await?;
    Ok(client)
}
