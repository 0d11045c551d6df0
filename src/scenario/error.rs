//! Scenario errors: always with a place (`file:line:column`) when the YAML gives one, and a
//! hint that says what to write instead.

use std::fmt;

use serde_saphyr::Location;

#[derive(Debug, Clone, PartialEq)]
pub enum ScenarioError {
    Io {
        path: String,
        message: String,
    },
    Invalid {
        file: String,
        line: u64,
        column: u64,
        message: String,
        hint: Option<String>,
    },
}

impl ScenarioError {
    /// `source` is the YAML text: serde-saphyr's messages for scalars of the wrong type
    /// ("invalid u64") do not quote the value, so it is taken from the source at the location.
    pub(crate) fn from_yaml(file: &str, source: &str, err: &serde_saphyr::Error) -> ScenarioError {
        let (line, column) = err
            .location()
            .map(|loc| (loc.line(), loc.column()))
            .unwrap_or((0, 0));
        let message = err.without_snippet().to_string();
        let hint = hint_for(&message);
        let mut message = first_line(&message);
        if let Some(value) = scalar_at(source, line, column) {
            if message.starts_with("invalid") && !message.contains(value) {
                message = format!("{message}, found `{value}`");
            }
        }
        ScenarioError::Invalid {
            file: file.to_string(),
            line,
            column,
            message,
            hint,
        }
    }

    pub(crate) fn at(file: &str, loc: &Location, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            file: file.to_string(),
            line: loc.line(),
            column: loc.column(),
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, text: impl Into<String>) -> ScenarioError {
        if let ScenarioError::Invalid { hint, .. } = &mut self {
            *hint = Some(text.into());
        }
        self
    }
}

/// The first line of serde-saphyr's message, without its own ` at line N, column M` suffix
/// (our prefix already says where).
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    // serde-saphyr's advice to its own API users is no help in a scenario file.
    let line = line
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(line)
        .split("; use from_str_multiple")
        .next()
        .unwrap_or(line);
    match line.rfind(" at line ") {
        Some(i) => line[..i].to_string(),
        None => line.to_string(),
    }
}

/// The plain scalar starting at `line:column` (1-based), without a trailing comment.
fn scalar_at(source: &str, line: u64, column: u64) -> Option<&str> {
    let text = source
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let rest = text.get(usize::try_from(column).ok()?.checked_sub(1)?..)?;
    let value = rest.split(" #").next()?.trim();
    (!value.is_empty() && value.len() <= 80).then_some(value)
}

/// serde's messages say what was wrong; these say what to do about the common cases.
fn hint_for(message: &str) -> Option<String> {
    if message.contains("unknown field") {
        Some("check the spelling; the scenario reference in README.md lists every key".into())
    } else if message.contains("unknown variant") {
        Some("use one of the names listed in the message".into())
    } else if message.contains("invalid type") || message.starts_with("invalid ") {
        Some("this key takes a value of the type named in the message".into())
    } else if message.contains("duplicate mapping key") {
        Some("each key may appear once in a mapping: remove or merge the repeated one".into())
    } else if message.contains("from_str_multiple") {
        Some("a scenario is one YAML document: remove the `---` separator and what follows".into())
    } else if message.contains("missing field") {
        Some("add the key; README.md's scenario reference shows an example".into())
    } else {
        None
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::Io { path, message } => write!(f, "cannot read {path}: {message}"),
            ScenarioError::Invalid {
                file,
                line,
                column,
                message,
                hint,
            } => {
                write!(f, "{file}:{line}:{column}: {message}")?;
                if let Some(hint) = hint {
                    write!(f, " (hint: {hint})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ScenarioError {}
