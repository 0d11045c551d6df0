//! Logging in: AUTHENTICATE PLAIN (with SASL-IR when announced) or LOGIN, with the password
//! kept out of errors and transcripts.

use base64::Engine;
use imap_types::auth::AuthMechanism;
use imap_types::command::CommandBody;
use imap_types::core::{AString, IString, LiteralMode};
use tokio::io::{AsyncRead, AsyncWrite};

use super::client::{ImapClient, SessionState};
use super::commands::{invalid, run};
use super::error::ImapError;
use super::types::Cap;
use crate::proto::Secret;

/// How [`ImapClient::login_with`] authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// AUTHENTICATE PLAIN when the server announces AUTH=PLAIN, LOGIN otherwise.
    Auto,
    /// AUTHENTICATE PLAIN (with SASL-IR when announced).
    Plain,
    /// The LOGIN command.
    Login,
}

impl<S> ImapClient<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Logs in with [`LoginMethod::Auto`].
    pub async fn login(&mut self, user: &str, password: &Secret<String>) -> Result<(), ImapError> {
        self.login_with(user, password, LoginMethod::Auto).await
    }

    /// Logs in. A failure is `No`/`Bad` with `command` LOGIN or AUTHENTICATE, whose
    /// [`kind`](ImapError::kind) is `Auth`. The password never appears in errors or the
    /// transcript.
    pub async fn login_with(
        &mut self,
        user: &str,
        password: &Secret<String>,
        method: LoginMethod,
    ) -> Result<(), ImapError> {
        if self.state != SessionState::NotAuthenticated {
            return Err(ImapError::WrongState(
                "login needs the not-authenticated state",
            ));
        }
        if method == LoginMethod::Auto && self.capabilities.is_empty() {
            // The greeting carried no capabilities (Dovecot's "Waiting for authentication
            // process" greeting, for one): ask before choosing.
            self.capability().await?;
        }
        let plain = match method {
            LoginMethod::Auto => self.capabilities.has(Cap::AuthPlain),
            LoginMethod::Plain => true,
            LoginMethod::Login => false,
        };
        let pass = password.expose().as_str();
        let result = if plain {
            run!(self, "AUTHENTICATE", self.authenticate_plain(user, pass))
        } else if self.capabilities.has(Cap::LoginDisabled) {
            Err(ImapError::Unsupported {
                command: "LOGIN",
                capability: "LOGIN (the server announces LOGINDISABLED)",
            })
        } else {
            run!(self, "LOGIN", self.login_command(user, pass))
        };
        result.map_err(|err| {
            let blob = plain_blob(user, pass);
            let encoded = base64::engine::general_purpose::STANDARD.encode(blob);
            err.redact(&[pass, &encoded])
        })
    }

    async fn authenticate_plain(&mut self, user: &str, pass: &str) -> Result<(), ImapError> {
        if user.contains('\0') || pass.contains('\0') {
            return Err(invalid("credentials", "NUL byte in user name or password"));
        }
        let blob = plain_blob(user, pass);
        let tag = self.next_tag();
        if self.capabilities.has(Cap::SaslIr) {
            let shown = format!("{} AUTHENTICATE PLAIN <redacted>\r\n", tag.as_str());
            let body = CommandBody::authenticate_with_ir(AuthMechanism::Plain, blob.as_slice());
            self.send(&tag, body, Some(&shown)).await?;
        } else {
            let body = CommandBody::authenticate(AuthMechanism::Plain);
            self.send(&tag, body, None).await?;
            self.wait_continuation(&tag, "AUTHENTICATE").await?;
            let mut line = base64::engine::general_purpose::STANDARD.encode(&blob);
            line.push_str("\r\n");
            self.write(line.as_bytes(), Some("<redacted>\r\n")).await?;
        }
        self.complete(&tag, "AUTHENTICATE", &mut |_, _| false)
            .await?;
        self.state = SessionState::Authenticated;
        Ok(())
    }

    async fn login_command(&mut self, user: &str, pass: &str) -> Result<(), ImapError> {
        let username = self.astring(user, "user name")?;
        let password = self.astring(pass, "password")?;
        let body = CommandBody::Login {
            username,
            password: imap_types::secret::Secret::new(password),
        };
        let tag = self.next_tag();
        let shown = format!("{} LOGIN <redacted>\r\n", tag.as_str());
        self.send(&tag, body, Some(&shown)).await?;
        self.complete(&tag, "LOGIN", &mut |_, _| false).await?;
        self.state = SessionState::Authenticated;
        Ok(())
    }

    /// An astring argument; a literal becomes non-synchronizing when LITERAL+ allows it.
    fn astring<'a>(&self, value: &'a str, what: &'static str) -> Result<AString<'a>, ImapError> {
        let astring = AString::try_from(value).map_err(|e| invalid(what, e))?;
        Ok(match astring {
            AString::String(IString::Literal(mut literal)) => {
                if self.non_sync_allowed(literal.data().len()) {
                    literal.set_mode(LiteralMode::NonSync);
                }
                AString::String(IString::Literal(literal))
            }
            other => other,
        })
    }
}

fn plain_blob(user: &str, pass: &str) -> Vec<u8> {
    let mut blob = Vec::with_capacity(user.len() + pass.len() + 2);
    blob.push(0);
    blob.extend_from_slice(user.as_bytes());
    blob.push(0);
    blob.extend_from_slice(pass.as_bytes());
    blob
}
