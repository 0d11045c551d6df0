//! Waivers: known failures a team has accepted for a target, each with a reason. A waived check
//! still runs; the report shows it as waived, with the reason and what it really did.
//!
//! ```yaml
//! waivers:
//!   - id: imap.search.charset-utf8       # a check id, or a group such as imap.condstore
//!     reason: "upstream bug #123, fixed in 2.4"
//!     target: 127.0.0.1:10143            # optional: only for this IMAP endpoint
//! ```

use std::path::Path;

use serde::Deserialize;

use super::runner::selects;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waivers {
    #[serde(default)]
    pub waivers: Vec<Waiver>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    pub id: String,
    pub reason: String,
    #[serde(default)]
    pub target: Option<String>,
}

impl Waivers {
    pub fn load(path: &Path) -> Result<Waivers, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read waivers {}: {e}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, name: &str) -> Result<Waivers, String> {
        let options = serde_saphyr::options! { strict_booleans: true };
        let waivers: Waivers = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            format!("{name}: {e} (hint: `waivers:` is a list of {{id, reason, target}})")
        })?;
        for w in &waivers.waivers {
            if w.reason.trim().is_empty() {
                return Err(format!(
                    "{name}: the waiver for `{}` has no reason; say why it is accepted",
                    w.id
                ));
            }
        }
        Ok(waivers)
    }

    /// The waiver covering check `id` on the IMAP endpoint `target`, if any.
    pub fn find(&self, id: &str, target: &str) -> Option<&Waiver> {
        self.waivers
            .iter()
            .find(|w| selects(&w.id, id) && w.target.as_deref().is_none_or(|t| t == target))
    }

    /// Waiver ids that match no known check: most likely typos.
    pub fn unknown_ids<'a>(&'a self, known: &[&str]) -> Vec<&'a str> {
        self.waivers
            .iter()
            .filter(|w| !known.iter().any(|id| selects(&w.id, id)))
            .map(|w| w.id.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waivers_match_ids_groups_and_targets() {
        let w = Waivers::parse(
            "waivers:\n  - {id: imap.idle, reason: slow push}\n  - {id: smtp.ehlo.syntax, reason: x, target: \"127.0.0.1:25\"}\n",
            "w.yaml",
        )
        .unwrap();
        assert_eq!(
            w.find("imap.idle.push-exists", "127.0.0.1:143")
                .unwrap()
                .reason,
            "slow push"
        );
        assert!(w.find("imap.idler.x", "127.0.0.1:143").is_none());
        assert!(w.find("smtp.ehlo.syntax", "127.0.0.1:143").is_none());
        assert!(w.find("smtp.ehlo.syntax", "127.0.0.1:25").is_some());
        assert_eq!(
            w.unknown_ids(&["imap.idle.push-exists"]),
            vec!["smtp.ehlo.syntax"]
        );
    }

    #[test]
    fn a_waiver_needs_a_reason_and_known_keys() {
        let err =
            Waivers::parse("waivers:\n  - {id: imap.x.y, reason: \" \"}\n", "w.yaml").unwrap_err();
        assert!(err.contains("no reason"), "{err}");
        let err = Waivers::parse(
            "waivers:\n  - {id: imap.x.y, reason: r, until: 2027}\n",
            "w.yaml",
        )
        .unwrap_err();
        assert!(err.contains("w.yaml"), "{err}");
    }
}
