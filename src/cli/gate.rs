//! `mailswarm gate RESULTS`: the CI verdict. Exit 0 = pass, 1 = a criterion failed,
//! 2 = no verdict possible (unreadable files, incomplete run, incomparable baseline).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::{EXIT_FAILED, EXIT_OK};
use crate::gate::render::{junit, junit_error, markdown, markdown_error, print_verdict};
use crate::gate::threshold::parse_entry;
use crate::gate::{run_gate, GateInputs, Tolerances};

#[derive(Debug, Args)]
pub struct GateArgs {
    /// Run folder (holding results.json) or a results.json file.
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,

    /// Baseline to compare with, or to write with --update-baseline
    /// [default: <results dir>/../baseline.json, compared only if it exists].
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Allowed regression against the baseline, per statistic: `p99=15%`, `p90=20%`, `p50=off`,
    /// `errors=0.5%` (absolute rise of the error rate). Repeatable or comma-separated.
    /// [default: p99=15%, p50=25%, errors=0.1%]
    #[arg(long, value_name = "STAT=PCT", value_parser = check_tolerance)]
    pub tolerance: Vec<String>,

    /// A latency regression must also grow by more than this, so tiny latencies don't flap.
    #[arg(long, value_name = "DURATION", default_value = "200us", value_parser = Tolerances::parse_noise_floor)]
    pub noise_floor: f64,

    /// Conformance results (`mailswarm conform --json`); any failed check fails the gate.
    #[arg(long, value_name = "FILE")]
    pub conformance: Option<PathBuf>,

    /// An extra threshold besides the scenario's, as `KEY=CONDITIONS`:
    /// `--threshold 'imap.fetch=p99 < 50ms'`. Repeatable.
    #[arg(long, value_name = "KEY=CONDITIONS", value_parser = check_threshold)]
    pub threshold: Vec<(String, String)>,

    /// Write a JUnit XML report (one test case per criterion).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write a Markdown summary, e.g. for $GITHUB_STEP_SUMMARY.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,

    /// Record this run as the baseline if the rest of the gate passes (no comparison).
    #[arg(long)]
    pub update_baseline: bool,

    /// List passing and skipped criteria too.
    #[arg(short, long)]
    pub verbose: bool,
}

fn check_tolerance(text: &str) -> Result<String, String> {
    Tolerances::default().apply(text)?;
    Ok(text.to_string())
}

fn check_threshold(text: &str) -> Result<(String, String), String> {
    let Some((key, conditions)) = text.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
        return Err("expected KEY=CONDITIONS, such as `imap.fetch=p99 < 50ms`".into());
    };
    let (key, conditions) = (key.trim(), conditions.trim());
    parse_entry(key, conditions).map_err(|e| e.to_string())?;
    Ok((key.to_string(), conditions.to_string()))
}

pub fn run(args: GateArgs) -> anyhow::Result<ExitCode> {
    let mut tolerances = Tolerances {
        noise_floor_us: args.noise_floor,
        ..Tolerances::default()
    };
    for spec in &args.tolerance {
        // Already validated by clap; applied in order so later flags win.
        tolerances.apply(spec).map_err(anyhow::Error::msg)?;
    }
    let mut thresholds = BTreeMap::new();
    for (key, conditions) in &args.threshold {
        // Several flags for one key add up, like several conditions in one value.
        thresholds
            .entry(key.clone())
            .and_modify(|c: &mut String| *c = format!("{c}, {conditions}"))
            .or_insert_with(|| conditions.clone());
    }
    let inputs = GateInputs {
        results: args.results.clone(),
        baseline: args.baseline.clone(),
        tolerances,
        conformance: args.conformance.clone(),
        thresholds,
        update_baseline: args.update_baseline,
    };
    let report = match run_gate(&inputs) {
        Ok(report) => report,
        Err(err) => {
            // CI should still show why the gate gave no verdict.
            let message = err.to_string();
            if let Some(path) = &args.junit {
                let xml = junit_error(&message).to_string()?;
                write_file(path, xml.as_bytes())?;
            }
            if let Some(path) = &args.markdown {
                write_file(path, markdown_error(&message).as_bytes())?;
            }
            return Err(err.into());
        }
    };
    for warning in &report.warnings {
        eprintln!("mailswarm: warning: {warning}");
    }
    if let Some(path) = &args.junit {
        let xml = junit(&report).to_string()?;
        write_file(path, xml.as_bytes())?;
    }
    if let Some(path) = &args.markdown {
        write_file(path, markdown(&report).as_bytes())?;
    }
    let mut stdout = std::io::stdout().lock();
    let printed = print_verdict(&mut stdout, &report, args.verbose).and_then(|()| stdout.flush());
    match printed {
        // `cli::main` maps a broken pipe to exit 0; a closed stdout must not turn a failed
        // gate into a pass, so the verdict's code wins.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(ExitCode::from(if report.passed() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }))
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};

    fn parse(args: &[&str]) -> Result<super::GateArgs, clap::Error> {
        let mut argv = vec!["mailswarm", "gate"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Gate(args) => args,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn defaults() {
        let a = parse(&["reports/gate"]).unwrap();
        assert_eq!(a.noise_floor, 200.0);
        assert!(a.tolerance.is_empty() && a.threshold.is_empty());
        assert!(!a.update_baseline);
    }

    #[test]
    fn every_flag_parses() {
        let a = parse(&[
            "r",
            "--baseline",
            "b.json",
            "--tolerance",
            "p99=10%",
            "--tolerance",
            "p50=off,errors=1%",
            "--noise-floor",
            "0.5ms",
            "--conformance",
            "c.json",
            "--threshold",
            "imap.fetch=p99 < 50ms",
            "--junit",
            "j.xml",
            "--markdown",
            "s.md",
            "--update-baseline",
            "-v",
        ])
        .unwrap();
        assert_eq!(a.noise_floor, 500.0);
        assert_eq!(a.tolerance, ["p99=10%", "p50=off,errors=1%"]);
        assert_eq!(a.threshold, [("imap.fetch".into(), "p99 < 50ms".into())]);
        assert!(a.update_baseline && a.verbose);
    }

    #[test]
    fn bad_values_are_usage_errors_naming_the_fix() {
        let e = parse(&["r", "--tolerance", "p99=15"]).unwrap_err();
        assert!(e.to_string().contains("15%"), "{e}");
        let e = parse(&["r", "--noise-floor", "200"]).unwrap_err();
        assert!(e.to_string().contains("200us"), "{e}");
        let e = parse(&["r", "--threshold", "imap.fetch=p99 < 50"]).unwrap_err();
        assert!(e.to_string().contains("time unit"), "{e}");
        let e = parse(&["r", "--threshold", "p99 < 50ms"]).unwrap_err();
        assert!(e.to_string().contains("KEY=CONDITIONS"), "{e}");
        assert!(e.use_stderr());
    }
}
