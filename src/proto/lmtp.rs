//! LMTP client.
