//! Small helpers shared by the IMAP check modules: reading raw exchanges, flags, strings and
//! UID sets out of decoded responses, and fetching one message by UID.

use imap_types::core::{IString, NString};
use imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_types::flag::FlagFetch;
use imap_types::response::{Code, Data, Response, Status, StatusKind};

use crate::conformance::context::{uid_set, Session};
use crate::conformance::{fail, CheckError};
use crate::proto::imap::{FetchItem, FetchedMessage, RawExchange, RawResponse};

/// The exact bytes of a response, without the final CRLF, for failure messages.
pub fn line(response: &RawResponse) -> String {
    String::from_utf8_lossy(&response.raw)
        .trim_end()
        .to_string()
}

/// The tagged completion line of an exchange.
pub fn completion(exchange: &RawExchange) -> String {
    line(&exchange.completion)
}

/// The response code of the tagged completion.
pub fn completion_code(exchange: &RawExchange) -> Option<&Code<'static>> {
    exchange.completion.decoded_code()
}

/// Every response code of the exchange: untagged status responses first, then the tagged one.
pub fn codes(exchange: &RawExchange) -> impl Iterator<Item = &Code<'static>> {
    exchange
        .responses
        .iter()
        .chain(std::iter::once(&exchange.completion))
        .filter_map(RawResponse::decoded_code)
}

trait DecodedCode {
    fn decoded_code(&self) -> Option<&Code<'static>>;
}

impl DecodedCode for RawResponse {
    fn decoded_code(&self) -> Option<&Code<'static>> {
        match &self.decoded {
            Response::Status(Status::Untagged(body)) => body.code.as_ref(),
            Response::Status(Status::Tagged(tagged)) => tagged.body.code.as_ref(),
            Response::Status(Status::Bye(bye)) => bye.code.as_ref(),
            _ => None,
        }
    }
}

/// The untagged data responses of an exchange.
pub fn data(exchange: &RawExchange) -> impl Iterator<Item = &Data<'static>> {
    exchange.responses.iter().filter_map(|r| match &r.decoded {
        Response::Data(d) => Some(d),
        _ => None,
    })
}

/// Whether the exchange ended with this status.
pub fn is(exchange: &RawExchange, kind: StatusKind) -> bool {
    exchange.status() == Some(kind)
}

/// Whether any untagged BYE came back.
pub fn saw_bye(exchange: &RawExchange) -> bool {
    exchange
        .responses
        .iter()
        .any(|r| matches!(r.decoded, Response::Status(Status::Bye(_))))
}

/// The flags of a FETCH answer as the server spelled them (`\Seen`, `$Kw`, `\Recent`).
pub fn flag_names(message: &FetchedMessage) -> Vec<String> {
    message
        .flags
        .iter()
        .flatten()
        .map(|f| match f {
            FlagFetch::Flag(flag) => flag.to_string(),
            FlagFetch::Recent => "\\Recent".to_string(),
        })
        .collect()
}

/// Whether a FETCH answer lists `name` among its flags (ASCII case-insensitive).
pub fn has_flag(message: &FetchedMessage, name: &str) -> bool {
    flag_names(message)
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
}

/// An nstring as text (`None` for NIL).
pub fn nstring(value: &NString<'_>) -> Option<String> {
    value
        .0
        .as_ref()
        .map(|s| String::from_utf8_lossy(s.as_ref()).into_owned())
}

/// An IMAP string as text.
pub fn istring(value: &IString<'_>) -> String {
    String::from_utf8_lossy(value.as_ref()).into_owned()
}

/// The UIDs of a UIDPLUS set, in the order given.
pub fn expand(set: &UidSet) -> Vec<u32> {
    let mut out = Vec::new();
    for element in set.0.as_ref() {
        match element {
            UidElement::Single(n) => out.push(n.get()),
            UidElement::Range(a, b) => {
                let (a, b) = (a.get(), b.get());
                if a <= b {
                    out.extend(a..=b);
                } else {
                    out.extend((b..=a).rev());
                }
            }
        }
    }
    out
}

/// UID FETCH of one message; the answer for that UID (servers may add others).
pub async fn fetch_uid(
    session: &mut Session<'_>,
    uid: u32,
    items: &[FetchItem<'_>],
) -> Result<FetchedMessage, CheckError> {
    let answers = session.uid_fetch(&uid_set(&[uid]), items).await?;
    answers
        .into_iter()
        .find(|m| m.uid == Some(uid))
        .ok_or_else(|| fail(format!("a FETCH answer with UID {uid}"), "none"))
}

/// A full-message peek item.
pub const PEEK_ALL: FetchItem<'static> = FetchItem::Body {
    part: crate::proto::imap::BodyPart::Full,
    peek: true,
    partial: None,
};
