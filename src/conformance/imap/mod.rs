//! IMAP checks (RFC 9051 / RFC 3501 and extensions), one submodule per area, each with its
//! own `CHECKS` table. [`checks`] gives them in report order.

mod concurrent;
mod condstore;
mod extensions;
mod idle;
mod mailboxes;
mod select;
mod tls;
mod untagged;

use super::Check;

/// Every IMAP check, in report order.
pub fn checks() -> Vec<Check> {
    let tables: &[&[Check]] = &[
        select::CHECKS,
        idle::CHECKS,
        concurrent::CHECKS,
        extensions::CHECKS,
        condstore::CHECKS,
        mailboxes::CHECKS,
        tls::CHECKS,
    ];
    tables.iter().flat_map(|t| t.iter().copied()).collect()
}
