//! What the server offers, read from the EHLO/LHLO reply (RFC 5321 §4.1.1.1): the first line is
//! the server's name, every further line one extension keyword with optional parameters.

use super::reply::Reply;

/// Extensions advertised by the server; only what the client acts on, plus the raw keyword
/// list for reports and conformance checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The domain (or text) on the first line.
    pub hostname: String,
    pub pipelining: bool,
    /// `Some(limit)` when SIZE is advertised; `Some(0)` means no fixed limit (RFC 1870).
    pub size: Option<u64>,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub chunking: bool,
    pub starttls: bool,
    pub enhanced_status_codes: bool,
    /// SASL mechanisms after `AUTH`, upper-cased, in the server's order.
    pub auth: Vec<String>,
    /// Every extension keyword, upper-cased, in the server's order.
    pub keywords: Vec<String>,
}

impl Capabilities {
    /// Reads a positive EHLO/LHLO reply.
    pub fn from_reply(reply: &Reply) -> Capabilities {
        let mut lines = reply.lines();
        let mut caps = Capabilities {
            hostname: lines
                .next()
                .and_then(|first| first.split_whitespace().next())
                .unwrap_or_default()
                .to_owned(),
            ..Capabilities::default()
        };
        for line in lines {
            let mut words = line.split_whitespace();
            let Some(first) = words.next() else { continue };
            // `AUTH=LOGIN PLAIN` is the pre-standard form some servers still send.
            let (keyword, inline_param) = match first.split_once('=') {
                Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
                None => (first.to_ascii_uppercase(), None),
            };
            match keyword.as_str() {
                "PIPELINING" => caps.pipelining = true,
                "SIZE" => {
                    caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0));
                }
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "CHUNKING" => caps.chunking = true,
                "STARTTLS" => caps.starttls = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "AUTH" => {
                    for mechanism in inline_param.into_iter().chain(words) {
                        let mechanism = mechanism.to_ascii_uppercase();
                        if !caps.auth.contains(&mechanism) {
                            caps.auth.push(mechanism);
                        }
                    }
                }
                _ => {}
            }
            if !caps.keywords.contains(&keyword) {
                caps.keywords.push(keyword);
            }
        }
        caps
    }

    /// Whether `keyword` (any case) was advertised.
    pub fn has(&self, keyword: &str) -> bool {
        self.keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }

    /// Whether the SASL mechanism (any case) was advertised.
    pub fn has_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::smtp::reply::parse_frame;

    fn caps(raw: &[u8]) -> Capabilities {
        Capabilities::from_reply(&parse_frame(raw).unwrap())
    }

    #[test]
    fn dovecot_lhlo() {
        let c = caps(b"250-vm\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n250 PIPELINING\r\n");
        assert_eq!(c.hostname, "vm");
        assert!(c.eight_bit_mime && c.chunking && c.enhanced_status_codes && c.pipelining);
        assert!(!c.starttls && !c.smtputf8);
        assert_eq!(c.size, None);
        assert_eq!(
            c.keywords,
            ["8BITMIME", "CHUNKING", "ENHANCEDSTATUSCODES", "PIPELINING"]
        );
    }

    #[test]
    fn postfix_ehlo_with_size_and_auth() {
        let c = caps(
            b"250-mx.lab.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n\
              250-AUTH PLAIN login\r\n250-AUTH=LOGIN PLAIN\r\n250-ENHANCEDSTATUSCODES\r\n\
              250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
        );
        assert_eq!(c.size, Some(10_240_000));
        assert!(c.starttls && c.smtputf8 && c.chunking);
        assert_eq!(c.auth, ["PLAIN", "LOGIN"]);
        assert!(c.has_auth("login") && !c.has_auth("CRAM-MD5"));
        assert!(c.has("dsn"));
        assert_eq!(c.keywords.iter().filter(|k| *k == "AUTH").count(), 1);
    }

    #[test]
    fn size_without_limit_and_single_line_reply() {
        assert_eq!(caps(b"250-h\r\n250 SIZE\r\n").size, Some(0));
        let c = caps(b"250 h greets you\r\n");
        assert_eq!(c.hostname, "h");
        assert!(c.keywords.is_empty());
    }
}
