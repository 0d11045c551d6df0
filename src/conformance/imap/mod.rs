//! IMAP checks (RFC 9051 / RFC 3501 and extensions), one submodule per area, each with its
//! own `CHECKS` table. [`checks`] gives them in report order.

mod append;
mod envelope;
mod fetch;
mod literal;
mod search;
mod select;
mod state;
mod store;
mod structure;
mod support;

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
    ];
    tables.iter().flat_map(|t| t.iter().copied()).collect()
}
