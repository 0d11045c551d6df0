//! One gate criterion and how it came out. Thresholds, the baseline comparison and conformance
//! checks all produce [`CriterionOutcome`]s, so the verdict, the console, JUnit and Markdown
//! render one list instead of three shapes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which part of the gate produced a criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Threshold,
    Baseline,
    Conformance,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Threshold => "threshold",
            Group::Baseline => "baseline",
            Group::Conformance => "conformance",
        }
    }
}

/// A comparison operator, serialized as its symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// `observed <op> limit`. NaN never holds, so a broken number cannot pass.
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        if observed.is_nan() || limit.is_nan() {
            return false;
        }
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
            Op::Eq => observed == limit,
            Op::Ne => observed != limit,
        }
    }
}

/// What a number measures; decides how it is printed. Values are stored in the canonical
/// unit: microseconds, a fraction (0.001 = 0.1%), or a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Micros,
    Ratio,
    Count,
}

impl Unit {
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Micros => format_micros(value),
            Unit::Ratio => format!("{}%", trim_float(value * 100.0, 3)),
            Unit::Count => trim_float(value, 3),
        }
    }
}

fn format_micros(us: f64) -> String {
    let abs = us.abs();
    if abs >= 1_000_000.0 {
        format!("{}s", trim_float(us / 1_000_000.0, 3))
    } else if abs >= 1000.0 {
        format!("{}ms", trim_float(us / 1000.0, 2))
    } else {
        format!("{}us", trim_float(us, 1))
    }
}

/// Fixed decimals without trailing zeros: 12.50 -> "12.5", 3.00 -> "3".
pub(crate) fn trim_float(value: f64, decimals: usize) -> String {
    let s = format!("{value:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// An observed value: a number in the criterion's unit, or a word such as a check status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Observed {
    Number(f64),
    Text(String),
}

/// The bound a criterion holds the observed value to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    pub op: Op,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionOutcome {
    pub group: Group,
    /// Stable name, also the JUnit test case name: `imap.fetch: p99 < 50ms`.
    pub criterion: String,
    pub passed: bool,
    /// Not evaluated (a skipped or waived conformance check); always `passed`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// Unit of `observed`, `limit` and `baseline` when they are numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    pub observed: Option<Observed>,
    pub limit: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// One sentence with the numbers, for people: `p99 is 61.2ms, needs < 50ms`.
    pub reason: String,
}

impl CriterionOutcome {
    /// A criterion that could not be measured: it fails, because a silent pass would hide a
    /// broken run.
    pub fn unmeasured(group: Group, criterion: String, reason: String) -> CriterionOutcome {
        CriterionOutcome {
            group,
            criterion,
            passed: false,
            skipped: false,
            unit: None,
            observed: None,
            limit: None,
            baseline: None,
            reason,
        }
    }

    pub fn observed_display(&self) -> String {
        match &self.observed {
            Some(Observed::Number(v)) => self.unit.unwrap_or(Unit::Count).format(*v),
            Some(Observed::Text(t)) => t.clone(),
            None => "-".to_string(),
        }
    }

    pub fn limit_display(&self) -> String {
        match self.limit {
            Some(limit) => format!(
                "{} {}",
                limit.op.symbol(),
                self.unit.unwrap_or(Unit::Count).format(limit.value)
            ),
            None => "-".to_string(),
        }
    }

    pub fn baseline_display(&self) -> String {
        match self.baseline {
            Some(v) => self.unit.unwrap_or(Unit::Count).format(v),
            None => "-".to_string(),
        }
    }
}

impl fmt::Display for CriterionOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.passed, self.skipped) {
            (_, true) => "SKIP",
            (true, false) => "PASS",
            (false, false) => "FAIL",
        };
        write!(
            f,
            "{status} [{}] {}: {}",
            self.group.as_str(),
            self.criterion,
            self.reason
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_pick_a_readable_unit() {
        assert_eq!(Unit::Micros.format(850.0), "850us");
        assert_eq!(Unit::Micros.format(61_200.0), "61.2ms");
        assert_eq!(Unit::Micros.format(50_000.0), "50ms");
        assert_eq!(Unit::Micros.format(1_500_000.0), "1.5s");
        assert_eq!(Unit::Micros.format(0.0), "0us");
    }

    #[test]
    fn ratio_and_count_formats() {
        assert_eq!(Unit::Ratio.format(0.001), "0.1%");
        assert_eq!(Unit::Ratio.format(0.0), "0%");
        assert_eq!(Unit::Ratio.format(0.12345), "12.345%");
        assert_eq!(Unit::Count.format(100.0), "100");
        assert_eq!(Unit::Count.format(2.5), "2.5");
    }

    #[test]
    fn nan_never_satisfies_an_operator() {
        for op in [Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Eq, Op::Ne] {
            assert!(!op.holds(f64::NAN, 1.0), "{op:?}");
        }
        assert!(Op::Le.holds(5.0, 5.0));
        assert!(!Op::Lt.holds(5.0, 5.0));
        assert!(Op::Ne.holds(4.0, 5.0));
    }

    #[test]
    fn outcome_round_trips_with_symbol_ops() {
        let outcome = CriterionOutcome {
            group: Group::Threshold,
            criterion: "imap.fetch: p99 < 50ms".into(),
            passed: false,
            skipped: false,
            unit: Some(Unit::Micros),
            observed: Some(Observed::Number(61_200.0)),
            limit: Some(Limit {
                op: Op::Lt,
                value: 50_000.0,
            }),
            baseline: None,
            reason: "p99 is 61.2ms, needs < 50ms".into(),
        };
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["limit"]["op"], "<");
        assert_eq!(json["observed"], 61_200.0);
        assert!(json.get("skipped").is_none());
        let back: CriterionOutcome = serde_json::from_value(json).unwrap();
        assert_eq!(back, outcome);
        assert_eq!(back.limit_display(), "< 50ms");
        assert_eq!(back.observed_display(), "61.2ms");
        assert_eq!(
            back.to_string(),
            "FAIL [threshold] imap.fetch: p99 < 50ms: p99 is 61.2ms, needs < 50ms"
        );
    }
}
