//! Small extensions: ENABLE (RFC 5161), NAMESPACE (RFC 2342), ID (RFC 2971).

use imap_types::response::Data;

use super::untagged::{data, lines, raw, require_ok};
use crate::conform_check as check;
use crate::conformance::{ensure, fail, Check, CheckResult, Ctx};

pub const CHECKS: &[Check] = &[
    check!(
        "imap.enable.condstore",
        "ENABLE CONDSTORE is answered with `* ENABLED CONDSTORE`",
        "RFC 5161 3.1",
        Must,
        Imap,
        enable_condstore,
        needs: ["ENABLE", "CONDSTORE"]
    ),
    check!(
        "imap.namespace.present",
        "NAMESPACE is answered with an untagged NAMESPACE response",
        "RFC 2342 5",
        Must,
        Imap,
        namespace_present,
        needs: ["NAMESPACE"]
    ),
    check!(
        "imap.namespace.delimiter-matches-list",
        "each personal namespace's delimiter is the one LIST reports for that hierarchy",
        "RFC 2342 5",
        Must,
        Imap,
        namespace_delimiter,
        needs: ["NAMESPACE"]
    ),
    check!(
        "imap.id.response",
        "ID NIL is answered with `* ID (...)` or `* ID NIL`",
        "RFC 2971 3.1",
        Must,
        Imap,
        id_response,
        needs: ["ID"]
    ),
    check!(
        "imap.id.field-limits",
        "the server's ID has at most 30 pairs, names of at most 30 octets, values of at most 1024",
        "RFC 2971 3.3",
        Must,
        Imap,
        id_field_limits,
        needs: ["ID"]
    ),
];

pub async fn enable_condstore(ctx: &Ctx) -> CheckResult {
    let mut s = ctx.login(0).await?;
    let ex = raw(&mut s, "ENABLE CONDSTORE").await?;
    require_ok(&ex, "ENABLE CONDSTORE")?;
    let enabled = data(&ex).any(|(_, d)| match d {
        Data::Enabled { capabilities } => capabilities
            .iter()
            .any(|c| c.to_string().eq_ignore_ascii_case("CONDSTORE")),
        _ => false,
    });
    ensure(enabled, "`* ENABLED CONDSTORE`", lines(&ex))
}

/// The personal namespaces as (prefix, delimiter).
async fn personal_namespaces(
    ctx: &Ctx,
) -> Result<Vec<(String, Option<char>)>, crate::conformance::CheckError> {
    let mut s = ctx.login(0).await?;
    let ex = raw(&mut s, "NAMESPACE").await?;
    require_ok(&ex, "NAMESPACE")?;
    let found = data(&ex).find_map(|(_, d)| match d {
        Data::Namespace { personal, .. } => Some(
            personal
                .iter()
                .map(|n| {
                    (
                        String::from_utf8_lossy(n.prefix.as_ref()).into_owned(),
                        n.delimiter.as_ref().map(|d| d.inner()),
                    )
                })
                .collect::<Vec<_>>(),
        ),
        _ => None,
    });
    found.ok_or_else(|| fail("an untagged `* NAMESPACE` response", lines(&ex)))
}

pub async fn namespace_present(ctx: &Ctx) -> CheckResult {
    personal_namespaces(ctx).await.map(|_| ())
}

pub async fn namespace_delimiter(ctx: &Ctx) -> CheckResult {
    let personal = personal_namespaces(ctx).await?;
    if personal.is_empty() {
        return Err(crate::conformance::CheckError::Skip(
            "no personal namespace (NIL)".into(),
        ));
    }
    let mut s = ctx.login(0).await?;
    for (prefix, delimiter) in personal {
        // `LIST prefix ""` returns the hierarchy delimiter of the hierarchy `prefix` is in.
        let entries = s.list(&prefix, "").await?;
        let listed: Vec<Option<char>> = entries.iter().map(|e| e.delimiter).collect();
        ensure(
            !listed.is_empty() && listed.iter().all(|d| *d == delimiter),
            format!("LIST {prefix:?} \"\" reports delimiter {delimiter:?} as NAMESPACE does"),
            format!("{listed:?}"),
        )?;
    }
    Ok(())
}

/// The `* ID` fields (`None` for `* ID NIL`), failing when there is no `* ID` response.
async fn server_id(
    ctx: &Ctx,
) -> Result<Option<Vec<(Vec<u8>, Option<Vec<u8>>)>>, crate::conformance::CheckError> {
    let mut s = ctx.login(0).await?;
    let ex = raw(&mut s, "ID NIL").await?;
    require_ok(&ex, "ID NIL")?;
    let found = data(&ex).find_map(|(_, d)| match d {
        Data::Id { parameters } => Some(parameters.as_ref().map(|list| {
            list.iter()
                .map(|(k, v)| {
                    (
                        k.as_ref().to_vec(),
                        v.0.as_ref().map(|v| v.as_ref().to_vec()),
                    )
                })
                .collect()
        })),
        _ => None,
    });
    found.ok_or_else(|| fail("an untagged `* ID` response", lines(&ex)))
}

pub async fn id_response(ctx: &Ctx) -> CheckResult {
    server_id(ctx).await.map(|_| ())
}

pub async fn id_field_limits(ctx: &Ctx) -> CheckResult {
    let fields = server_id(ctx).await?.unwrap_or_default();
    ensure(
        fields.len() <= 30,
        "at most 30 field-value pairs",
        format!("{} pairs", fields.len()),
    )?;
    for (key, value) in &fields {
        let shown = String::from_utf8_lossy(key);
        ensure(
            key.len() <= 30,
            "field names of at most 30 octets",
            format!("{shown:?} ({} octets)", key.len()),
        )?;
        let len = value.as_ref().map_or(0, Vec::len);
        ensure(
            len <= 1024,
            "values of at most 1024 octets",
            format!("{shown:?} has a value of {len} octets"),
        )?;
    }
    Ok(())
}
