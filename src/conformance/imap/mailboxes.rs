//! Mailbox management: LIST (with LIST-EXTENDED and SPECIAL-USE), CREATE, DELETE, RENAME, and
//! leaving a mailbox with UNSELECT, CLOSE or EXPUNGE.

use imap_types::response::StatusKind;

use super::untagged::{expunges, lines, raw, require_ok};
use crate::conform_check as check;
use crate::conformance::context::{expect_ok, mark_deleted, Session};
use crate::conformance::{ensure, fail, Check, CheckError, CheckResult, Ctx};
use crate::proto::imap::{BodyPart, FetchItem, ListEntry, SearchQuery};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.list.root-delimiter",
        "LIST \"\" \"\" returns the hierarchy delimiter",
        "RFC 9051 6.3.9",
        Must,
        Imap,
        root_delimiter
    ),
    check!(
        "imap.list.inbox",
        "LIST \"\" INBOX returns INBOX",
        "RFC 9051 6.3.9",
        Must,
        Imap,
        list_inbox
    ),
    check!(
        "imap.list.create-delete",
        "a created mailbox is listed, and no longer listed after DELETE",
        "RFC 9051 6.3.4",
        Must,
        Imap,
        create_delete,
        destructive
    ),
    check!(
        "imap.list.extended-patterns",
        "LIST with several patterns returns the mailboxes matching each",
        "RFC 5258 3",
        Must,
        Imap,
        extended_patterns,
        needs: ["LIST-EXTENDED"],
        destructive
    ),
    check!(
        "imap.list.special-use-selection",
        "LIST (SPECIAL-USE) returns only mailboxes with a special-use attribute",
        "RFC 6154 2",
        Must,
        Imap,
        special_use,
        needs: ["SPECIAL-USE", "LIST-EXTENDED"]
    ),
    check!(
        "imap.create.existing-no",
        "CREATE of an existing mailbox is answered NO",
        "RFC 9051 6.3.4",
        Must,
        Imap,
        create_existing,
        destructive
    ),
    check!(
        "imap.delete.inbox-no",
        "DELETE INBOX is answered NO",
        "RFC 9051 6.3.5",
        Must,
        Imap,
        delete_inbox,
        destructive
    ),
    check!(
        "imap.rename.keeps-messages",
        "RENAME keeps the messages, and their UIDs unless UIDVALIDITY changes",
        "RFC 9051 6.3.6",
        Must,
        Imap,
        rename_keeps,
        destructive
    ),
    check!(
        "imap.unselect.no-expunge",
        "UNSELECT leaves no mailbox selected and expunges nothing",
        "RFC 3691 2",
        Must,
        Imap,
        unselect,
        needs: ["UNSELECT"],
        destructive
    ),
    check!(
        "imap.close.silent-expunge",
        "CLOSE removes \\Deleted messages without untagged EXPUNGE responses",
        "RFC 9051 6.4.1",
        Must,
        Imap,
        close_silent,
        destructive
    ),
    check!(
        "imap.expunge.reports-each",
        "EXPUNGE reports every removed message with a consistent sequence number",
        "RFC 9051 6.4.3",
        Must,
        Imap,
        expunge_reports,
        destructive
    ),
];

fn names(entries: &[ListEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

fn is_no(status: Option<StatusKind>) -> bool {
    status == Some(StatusKind::No)
}

pub async fn root_delimiter(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let entries = s.list("", "").await?;
    // The root name is left open (it MAY be empty); the delimiter must be one answer.
    let delimiters: Vec<Option<char>> = entries.iter().map(|e| e.delimiter).collect();
    ensure(
        !entries.is_empty() && delimiters.windows(2).all(|w| w[0] == w[1]),
        "`* LIST (..) delimiter root` naming one hierarchy delimiter",
        format!("{entries:?}"),
    )
}

pub async fn list_inbox(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let entries = s.list("", "INBOX").await?;
    ensure(
        entries.iter().any(|e| e.name.eq_ignore_ascii_case("INBOX")),
        "`* LIST (..) delim INBOX`",
        format!("{:?}", names(&entries)),
    )
}

pub async fn create_delete(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let name = ctx.unique("list-created");
    expect_ok(&mut s, &format!("CREATE {name}")).await?;
    let result = async {
        let listed = s.list("", "*").await?;
        ensure(
            listed.iter().any(|e| e.name == name),
            format!("{name} in LIST \"\" *"),
            format!("{} entries, not it", listed.len()),
        )?;
        expect_ok(&mut s, &format!("DELETE {name}")).await?;
        let after = s.list("", "*").await?;
        ensure(
            !after.iter().any(|e| e.name == name),
            format!("{name} gone from LIST \"\" * after DELETE"),
            "still listed",
        )
    }
    .await;
    if result.is_err() {
        let _ = s.execute_raw(format!("DELETE {name}").as_bytes()).await;
    }
    result
}

pub async fn create_existing(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let name = ctx.scratch_mailbox(&mut s, 0, "create-twice").await?;
    let ex = raw(&mut s, &format!("CREATE {name}")).await?;
    ensure(
        is_no(ex.status()),
        "NO to CREATE of an existing mailbox",
        lines(&ex),
    )
}

pub async fn delete_inbox(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let ex = raw(&mut s, "DELETE INBOX").await?;
    ensure(is_no(ex.status()), "NO to DELETE INBOX", lines(&ex))
}

/// UID and Message-ID of every message in the selected mailbox, by UID.
async fn inventory(s: &mut Session<'_>) -> Result<Vec<(u32, String)>, CheckError> {
    let all = s
        .fetch(
            &"1:*".try_into().expect("valid set"),
            &[
                FetchItem::Uid,
                FetchItem::Body {
                    part: BodyPart::HeaderFields(&["Message-ID"]),
                    peek: true,
                    partial: None,
                },
            ],
        )
        .await?;
    let mut list: Vec<(u32, String)> = all
        .iter()
        .map(|m| {
            let header = m.header_fields().map(|b| b.to_vec()).unwrap_or_default();
            (
                m.uid.unwrap_or(0),
                String::from_utf8_lossy(&header).trim().to_string(),
            )
        })
        .collect();
    list.sort();
    Ok(list)
}

pub async fn rename_keeps(ctx: &Ctx) -> CheckResult {
    let (mut s, name, _) = ctx
        .mailbox_with("rename", &ctx.messages("rename", 2))
        .await?;
    let before = s.examine(&name).await?.uid_validity;
    let old = inventory(&mut s).await?;
    expect_ok(&mut s, "CLOSE").await?;
    let new = ctx.unique("renamed");
    expect_ok(&mut s, &format!("RENAME {name} {new}")).await?;
    let result = async {
        let info = s.examine(&new).await?;
        let now = inventory(&mut s).await?;
        let ids = |l: &[(u32, String)]| {
            let mut v: Vec<String> = l.iter().map(|(_, m)| m.clone()).collect();
            v.sort();
            v
        };
        ensure(
            ids(&now) == ids(&old),
            "the same messages under the new name",
            format!("before {old:?}, after {now:?}"),
        )?;
        if info.uid_validity == before {
            ensure(
                now == old,
                "same UIDs for the same messages while UIDVALIDITY is unchanged",
                format!("UIDVALIDITY {before:?}: before {old:?}, after {now:?}"),
            )?;
        }
        expect_ok(&mut s, "CLOSE").await?;
        let gone = raw(&mut s, &format!("EXAMINE {name}")).await?;
        ensure(
            gone.status() != Some(StatusKind::Ok),
            format!("the old name {name} no longer selectable"),
            lines(&gone),
        )
    }
    .await;
    // Put the name back so the run's cleanup deletes it.
    let _ = s.execute_raw(b"UNSELECT").await;
    let _ = s
        .execute_raw(format!("RENAME {new} {name}").as_bytes())
        .await;
    result
}

pub async fn extended_patterns(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let name = ctx.scratch_mailbox(&mut s, 0, "list-ext").await?;
    let ex = raw(&mut s, &format!("LIST \"\" (INBOX {name})")).await?;
    require_ok(&ex, "LIST with two patterns")?;
    let text = lines(&ex);
    let listed = |want: &str| {
        ex.responses.iter().any(|r| match &r.decoded {
            imap_types::response::Response::Data(imap_types::response::Data::List {
                mailbox,
                ..
            }) => {
                let got = super::untagged::mailbox_name(mailbox);
                got == want || (want == "INBOX" && got.eq_ignore_ascii_case("INBOX"))
            }
            _ => false,
        })
    };
    ensure(
        listed("INBOX") && listed(&name),
        format!("both INBOX and {name} listed"),
        text,
    )
}

pub async fn special_use(ctx: &Ctx) -> CheckResult {
    const USES: &[&str] = &[
        "\\all",
        "\\archive",
        "\\drafts",
        "\\flagged",
        "\\junk",
        "\\sent",
        "\\trash",
    ];
    let mut s = ctx.login(0).await?;
    let ex = raw(&mut s, "LIST (SPECIAL-USE) \"\" \"*\"").await?;
    require_ok(&ex, "LIST (SPECIAL-USE)")?;
    for r in &ex.responses {
        if let imap_types::response::Response::Data(imap_types::response::Data::List {
            items,
            ..
        }) = &r.decoded
        {
            let special = items
                .iter()
                .any(|a| USES.contains(&a.to_string().to_ascii_lowercase().as_str()));
            ensure(
                special,
                "a special-use attribute on every mailbox listed",
                super::untagged::line(r),
            )?;
        }
    }
    Ok(())
}

pub async fn unselect(ctx: &Ctx) -> CheckResult {
    let (mut s, name, uids) = ctx
        .mailbox_with("unselect", &ctx.messages("unselect", 2))
        .await?;
    mark_deleted(&mut s, &uids[..1]).await?;
    let ex = raw(&mut s, "UNSELECT").await?;
    require_ok(&ex, "UNSELECT")?;
    ensure(
        expunges(&ex).is_empty(),
        "no EXPUNGE in the answer to UNSELECT",
        lines(&ex),
    )?;
    let after = raw(&mut s, "FETCH 1 (FLAGS)").await?;
    ensure(
        after.status() != Some(StatusKind::Ok),
        "FETCH refused (NO or BAD) with no mailbox selected",
        lines(&after),
    )?;
    let info = s.examine(&name).await?;
    ensure(
        info.exists == 2,
        "both messages still there (EXISTS 2)",
        format!("EXISTS {}", info.exists),
    )
}

pub async fn close_silent(ctx: &Ctx) -> CheckResult {
    let (mut s, name, uids) = ctx.mailbox_with("close", &ctx.messages("close", 2)).await?;
    mark_deleted(&mut s, &uids[..1]).await?;
    let ex = raw(&mut s, "CLOSE").await?;
    require_ok(&ex, "CLOSE")?;
    ensure(
        expunges(&ex).is_empty(),
        "no untagged EXPUNGE in the answer to CLOSE",
        lines(&ex),
    )?;
    s.examine(&name).await?;
    let left = s.uid_search(&SearchQuery::all()).await?;
    ensure(
        left == vec![uids[1]],
        format!("only UID {} left after CLOSE", uids[1]),
        format!("{left:?}"),
    )
}

pub async fn expunge_reports(ctx: &Ctx) -> CheckResult {
    let (mut s, _, uids) = ctx
        .mailbox_with("expunge", &ctx.messages("expunge", 3))
        .await?;
    let text = format!(
        "UID STORE {},{} +FLAGS.SILENT (\\Deleted)",
        uids[0], uids[2]
    );
    expect_ok(&mut s, &text).await?;
    let reported = s.expunge().await?;
    // Replay the reports on the UID list: the result must be the message not deleted.
    let mut view = uids.clone();
    for &seq in &reported {
        let at = seq as usize;
        if at == 0 || at > view.len() {
            return Err(fail(
                "EXPUNGE numbers within the mailbox",
                format!("{reported:?}"),
            ));
        }
        view.remove(at - 1);
    }
    ensure(
        view == vec![uids[1]],
        format!("two EXPUNGE responses that leave UID {}", uids[1]),
        format!("EXPUNGE {reported:?} leaves {view:?}"),
    )?;
    let left = s.uid_search(&SearchQuery::all()).await?;
    ensure(
        left == vec![uids[1]],
        format!("UID SEARCH ALL = [{}]", uids[1]),
        format!("{left:?}"),
    )
}

#[cfg(test)]
mod tests {
    use imap_codec::decode::Decoder;
    use imap_codec::ResponseCodec;
    use imap_types::response::{Data, Response};

    /// The special-use check compares attribute names as text: make sure the strict codec
    /// decodes them and prints them back as sent.
    #[test]
    fn special_use_attributes_decode_and_print() {
        let line = b"* LIST (\\HasNoChildren \\Sent) \".\" Sent\r\n";
        let (_, response) = ResponseCodec::default().decode(line).unwrap();
        let Response::Data(Data::List { items, .. }) = response else {
            panic!("not a LIST response");
        };
        let names: Vec<String> = items.iter().map(|a| a.to_string()).collect();
        assert!(
            names.iter().any(|n| n.eq_ignore_ascii_case("\\Sent")),
            "{names:?}"
        );
    }
}
