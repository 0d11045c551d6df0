//! IMAP client.
