//! IMAP checks (RFC 9051 / RFC 3501 and extensions), one submodule per area, each with its
//! own `CHECKS` table. [`checks`] gives them in report order.

mod append;
mod concurrent;
mod condstore;
mod envelope;
mod extensions;
mod fetch;
mod idle;
mod literal;
mod mailboxes;
mod search;
mod select;
mod state;
mod store;
mod structure;
mod support;
mod tls;
mod untagged;

use super::Check;

/// Every IMAP check, in report order.
pub fn checks() -> Vec<Check> {
    let tables: &[&[Check]] = &[
        select::CHECKS,
        state::CHECKS,
        search::CHECKS,
        store::CHECKS,
        fetch::CHECKS,
        structure::CHECKS,
        envelope::CHECKS,
        append::CHECKS,
        literal::CHECKS,
        idle::CHECKS,
        concurrent::CHECKS,
        extensions::CHECKS,
        condstore::CHECKS,
        mailboxes::CHECKS,
        tls::CHECKS,
    ];
    tables.iter().flat_map(|t| t.iter().copied()).collect()
}
