//! SMTP submission checks (RFC 5321 and its extensions), against the `--smtp` endpoint.

use super::{ensure, Check, CheckResult, Ctx};
use crate::conform_check as check;

pub const CHECKS: &[Check] = &[check!(
    "smtp.greeting.code-220",
    "The greeting is a 220 reply",
    "RFC 5321 4.2",
    Must,
    Smtp,
    greeting_220
)];

async fn greeting_220(ctx: &Ctx) -> CheckResult {
    let client = ctx.smtp().await?;
    let code = client.greeting().code;
    ensure(code == 220, "220 greeting", code.to_string())
}
