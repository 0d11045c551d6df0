//! LMTP checks (RFC 2033), against the `--lmtp` endpoint.

use super::{ensure, Check, CheckResult, Ctx};
use crate::conform_check as check;

pub const CHECKS: &[Check] = &[check!(
    "lmtp.lhlo.accepted",
    "LHLO is answered with 250",
    "RFC 2033 4.1",
    Must,
    Lmtp,
    lhlo_accepted
)];

async fn lhlo_accepted(ctx: &Ctx) -> CheckResult {
    let client = ctx.lmtp().await?;
    ensure(
        client.capabilities().is_some(),
        "250 to LHLO",
        "no capabilities",
    )
}
