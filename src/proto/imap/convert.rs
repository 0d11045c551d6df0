//! Conversions between the client's own argument/result types and imap-types values: FETCH
//! items out, FETCH data in, and search criteria validated by the strict command parser.

use std::num::NonZeroU32;

use bytes::Bytes;
use imap_codec::decode::Decoder;
use imap_codec::CommandCodec;
use imap_types::command::CommandBody;
use imap_types::core::{AString, Charset, IString, NString, Vec1};
use imap_types::fetch::{MessageDataItem, MessageDataItemName, Part, Section};
use imap_types::search::SearchKey;
use imap_types::{IntoStatic, ToStatic};

use super::error::ImapError;
use super::types::{BodyPart, BodySection, FetchItem, FetchedMessage};

/// Search criteria, either built from typed [`SearchKey`]s or parsed from IMAP syntax by the
/// strict command grammar, so only well-formed criteria ever reach the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub(crate) charset: Option<Charset<'static>>,
    pub(crate) criteria: Vec1<SearchKey<'static>>,
}

impl SearchQuery {
    /// Criteria ANDed together.
    pub fn new(criteria: Vec1<SearchKey<'static>>) -> SearchQuery {
        SearchQuery {
            charset: None,
            criteria,
        }
    }

    /// `ALL`.
    pub fn all() -> SearchQuery {
        SearchQuery::new(Vec1::from(SearchKey::All))
    }

    /// Parses criteria in IMAP syntax, e.g. `UNSEEN SINCE 1-Feb-2024` or
    /// `CHARSET UTF-8 SUBJECT "hello"`. Literals are not accepted (use quoted strings).
    pub fn parse(text: &str) -> Result<SearchQuery, ImapError> {
        let invalid = |reason: String| ImapError::InvalidArgument {
            what: "search criteria",
            reason,
        };
        if text.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(invalid("criteria must be one line".into()));
        }
        let mut line = Vec::with_capacity(text.len() + 12);
        line.extend_from_slice(b"S SEARCH ");
        line.extend_from_slice(text.as_bytes());
        line.extend_from_slice(b"\r\n");
        match CommandCodec::default().decode(&line) {
            Ok(([], command)) => match command.body {
                CommandBody::Search {
                    charset, criteria, ..
                } => Ok(SearchQuery {
                    charset: charset.map(IntoStatic::into_static),
                    criteria: criteria.into_static(),
                }),
                _ => Err(invalid(format!("{text:?} is not search criteria"))),
            },
            Ok(_) => Err(invalid(format!(
                "trailing input after criteria in {text:?}"
            ))),
            Err(_) => Err(invalid(format!(
                "{text:?} does not match the SEARCH grammar of RFC 3501 (literals are not accepted)"
            ))),
        }
    }

    /// Adds `CHARSET name`.
    pub fn with_charset(mut self, charset: &str) -> Result<SearchQuery, ImapError> {
        let charset =
            Charset::try_from(charset.to_owned()).map_err(|e| ImapError::InvalidArgument {
                what: "charset",
                reason: e.to_string(),
            })?;
        self.charset = Some(charset);
        Ok(self)
    }
}

/// Builds the FETCH item list; validates header names, part numbers and partial lengths.
pub(crate) fn item_names<'a>(
    items: &[FetchItem<'a>],
) -> Result<Vec<MessageDataItemName<'a>>, ImapError> {
    let invalid = |reason: String| ImapError::InvalidArgument {
        what: "FETCH item",
        reason,
    };
    if items.is_empty() {
        return Err(invalid("at least one item is needed".into()));
    }
    items
        .iter()
        .map(|item| {
            Ok(match *item {
                FetchItem::Flags => MessageDataItemName::Flags,
                FetchItem::Uid => MessageDataItemName::Uid,
                FetchItem::Rfc822Size => MessageDataItemName::Rfc822Size,
                FetchItem::Envelope => MessageDataItemName::Envelope,
                FetchItem::BodyStructure => MessageDataItemName::BodyStructure,
                FetchItem::InternalDate => MessageDataItemName::InternalDate,
                FetchItem::ModSeq => MessageDataItemName::ModSeq,
                FetchItem::Body {
                    part,
                    peek,
                    partial,
                } => {
                    let section = match part {
                        BodyPart::Full => None,
                        BodyPart::Header => Some(Section::Header(None)),
                        BodyPart::Text => Some(Section::Text(None)),
                        BodyPart::HeaderFields(names) => {
                            let names = names
                                .iter()
                                .map(|n| AString::try_from(*n))
                                .collect::<Result<Vec<_>, _>>()
                                .map_err(|e| invalid(format!("header field name: {e}")))?;
                            let names = Vec1::try_from(names)
                                .map_err(|_| invalid("HEADER.FIELDS needs a field name".into()))?;
                            Some(Section::HeaderFields(None, names))
                        }
                        BodyPart::Part(numbers) => {
                            let numbers = numbers
                                .iter()
                                .map(|&n| NonZeroU32::new(n))
                                .collect::<Option<Vec<_>>>()
                                .ok_or_else(|| invalid("part numbers start at 1".into()))?;
                            let numbers = Vec1::try_from(numbers)
                                .map_err(|_| invalid("a part needs a number".into()))?;
                            Some(Section::Part(Part(numbers)))
                        }
                    };
                    let partial = match partial {
                        None => None,
                        Some((offset, length)) => Some((
                            offset,
                            NonZeroU32::new(length)
                                .ok_or_else(|| invalid("partial length must be > 0".into()))?,
                        )),
                    };
                    MessageDataItemName::BodyExt {
                        section,
                        partial,
                        peek,
                    }
                }
            })
        })
        .collect()
}

/// Converts one FETCH response; body data stays a slice of `frame`, the received message.
pub(crate) fn fetched(seq: u32, items: &[MessageDataItem<'_>], frame: &Bytes) -> FetchedMessage {
    let mut message = FetchedMessage {
        seq,
        ..FetchedMessage::default()
    };
    for item in items {
        match item {
            MessageDataItem::Uid(uid) => message.uid = Some(uid.get()),
            MessageDataItem::Flags(flags) => message.flags = Some(flags.to_static()),
            MessageDataItem::Rfc822Size(size) => message.rfc822_size = Some(*size),
            MessageDataItem::InternalDate(date) => message.internal_date = Some(date.clone()),
            MessageDataItem::Envelope(envelope) => {
                message.envelope = Some(Box::new(envelope.to_static()))
            }
            MessageDataItem::BodyStructure(body) | MessageDataItem::Body(body) => {
                message.body_structure = Some(Box::new(body.to_static()))
            }
            MessageDataItem::ModSeq(modseq) => message.modseq = Some(modseq.get()),
            MessageDataItem::BodyExt {
                section,
                origin,
                data,
            } => message.sections.push(BodySection {
                section: section.as_ref().map(ToStatic::to_static),
                origin: *origin,
                data: nstring_bytes(data, frame),
            }),
            MessageDataItem::Rfc822(data) => message.sections.push(BodySection {
                section: None,
                origin: None,
                data: nstring_bytes(data, frame),
            }),
            MessageDataItem::Rfc822Header(data) => message.sections.push(BodySection {
                section: Some(Section::Header(None)),
                origin: None,
                data: nstring_bytes(data, frame),
            }),
            MessageDataItem::Rfc822Text(data) => message.sections.push(BodySection {
                section: Some(Section::Text(None)),
                origin: None,
                data: nstring_bytes(data, frame),
            }),
            MessageDataItem::Binary { .. } | MessageDataItem::BinarySize { .. } => {}
        }
    }
    message
}

fn nstring_bytes(data: &NString<'_>, frame: &Bytes) -> Option<Bytes> {
    let bytes: &[u8] = match data.0.as_ref()? {
        IString::Literal(literal) => literal.data(),
        IString::Quoted(quoted) => quoted.inner().as_bytes(),
    };
    Some(share(frame, bytes))
}

/// A `Bytes` for `data`: a zero-copy slice when it lies inside `frame` (literals and
/// unescaped quoted strings borrow from it), a copy otherwise.
pub(crate) fn share(frame: &Bytes, data: &[u8]) -> Bytes {
    let start = frame.as_ptr() as usize;
    let end = start + frame.len();
    let at = data.as_ptr() as usize;
    if !data.is_empty() && at >= start && at + data.len() <= end {
        frame.slice_ref(data)
    } else {
        Bytes::copy_from_slice(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_query_is_validated_by_the_grammar() {
        let query = SearchQuery::parse("UNSEEN SINCE 1-Feb-2024").unwrap();
        assert_eq!(query.criteria.as_ref().len(), 2);
        assert!(SearchQuery::parse("SUBJECT \"hi there\" UID 1:*").is_ok());
        for bad in [
            "",
            "UNSEEN ",
            "SINCE yesterday",
            "SUBJECT {3}",
            "ALL\r\nA2 LOGOUT",
        ] {
            let err = SearchQuery::parse(bad).unwrap_err();
            assert!(
                matches!(err, ImapError::InvalidArgument { .. }),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn fetch_items_are_validated() {
        assert!(item_names(&[]).is_err());
        let bad_partial = FetchItem::Body {
            part: BodyPart::Full,
            peek: true,
            partial: Some((0, 0)),
        };
        assert!(item_names(&[bad_partial]).is_err());
        let bad_part = FetchItem::Body {
            part: BodyPart::Part(&[0]),
            peek: true,
            partial: None,
        };
        assert!(item_names(&[bad_part]).is_err());
        let ok = item_names(&[
            FetchItem::Uid,
            FetchItem::Body {
                part: BodyPart::HeaderFields(&["Subject", "From"]),
                peek: true,
                partial: None,
            },
        ])
        .unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn share_slices_inside_and_copies_outside() {
        let frame = Bytes::from_static(b"0123456789");
        let inside = share(&frame, &frame[2..5]);
        assert_eq!(&inside[..], b"234");
        assert_eq!(inside.as_ptr(), frame[2..].as_ptr());
        let outside = share(&frame, b"xyz");
        assert_eq!(&outside[..], b"xyz");
    }
}
