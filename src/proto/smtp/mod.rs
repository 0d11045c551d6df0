//! SMTP client.
