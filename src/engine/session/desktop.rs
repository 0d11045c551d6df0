//! A desktop client: Thunderbird keeps several connections per account. One sits in IDLE on
//! INBOX and downloads new mail whole; another LISTs the folders once and then STATUSes the
//! ones it shows every few minutes. Both run in this one task, for as long as the session lasts.

use std::time::Duration;

use rand_pcg::Pcg32;
use tokio::time::Instant;

use super::exec::run_actions;
use super::script::Action;
use super::{open, Imap, SessionCtx};
use crate::proto::imap::{ImapError, StatusDataItemName};
use crate::scenario::DesktopSpec;

pub async fn run(
    ctx: &SessionCtx,
    inbox: &mut Imap,
    spec: &DesktopSpec,
    actions: &[Action],
    mut rng: Pcg32,
) -> Result<(), ImapError> {
    let length = actions
        .iter()
        .find_map(|a| match a {
            Action::Idle { ms, .. } => Some(Duration::from_millis(*ms)),
            _ => None,
        })
        .unwrap_or_default();
    let until = Instant::now() + length;
    let Ok(mut folders) = open(ctx).await else {
        // The second connection failed (and was counted); the IDLE one carries on alone.
        return super::exec::run_actions(ctx, inbox, "INBOX", actions).await;
    };
    let status_loop = async {
        let listed = folders
            .timed("LIST", async |c| c.list("", "*").await)
            .await?;
        let present: Vec<&String> = spec
            .folders
            .iter()
            .filter(|f| listed.iter().any(|entry| &entry.name == *f))
            .collect();
        let items = [
            StatusDataItemName::Messages,
            StatusDataItemName::UidNext,
            StatusDataItemName::Unseen,
        ];
        loop {
            for folder in &present {
                folders
                    .timed("STATUS", async |c| c.status(folder, &items).await)
                    .await?;
            }
            let pause = spec.status_interval.sample(&mut rng).0;
            let next = Instant::now() + pause;
            if next >= until {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = ctx.signals.wrap_up.cancelled() => break,
            }
        }
        Ok::<(), ImapError>(())
    };
    let (idle, status) = tokio::join!(run_actions(ctx, inbox, "INBOX", actions), status_loop);
    let _ = folders.timed("LOGOUT", async |c| c.logout().await).await;
    ctx.sink.gauges().connection_closed();
    idle.and(status)
}
