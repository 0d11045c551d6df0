//! `mailswarm compare A B [C...]`: runs side by side against the first, on the console and as
//! one HTML file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::report::compare::{compare, load_runs, print_comparison, write_compare_html};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run folders (holding results.json) or results.json files. The first is the baseline.
    #[arg(required = true, num_args = 2.., value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// Where to write the HTML comparison.
    #[arg(long, value_name = "FILE", default_value = "compare.html")]
    pub out: PathBuf,
}

pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let runs = load_runs(&args.runs).context("compare")?;
    let comparison = compare(runs);
    let mut stdout = std::io::stdout().lock();
    print_comparison(&mut stdout, &comparison)?;
    let path = write_compare_html(&comparison, &args.out).context("compare")?;
    writeln!(stdout, "wrote {}", path.display())?;
    Ok(ExitCode::from(super::EXIT_OK))
}
