//! One measured run from a plan to files on disk: collector, server sampler and engine, then
//! the audit, thresholds, `results.json` and the report. `run` does this once, `sweep` once
//! per level.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::engine::{self, plan::RunPlan};
use crate::gate::threshold;
use crate::gate::CriterionOutcome;
use crate::metrics::{spawn_collector, Gauges, PhasePlan, RunningSampler, ServerSample};
use crate::metrics::{ServerSampler, ServerTarget};
use crate::report::progress::Progress;
use crate::report::{self, Results, RunContext, ScenarioInfo};

pub struct ExecuteOptions {
    pub quiet: bool,
    /// Open-file limits (soft, hard) as raised at start-up, for the run summary.
    pub nofile: (u64, u64),
}

/// What a finished run left behind (also on disk in the output folder).
pub struct Executed {
    pub results: Results,
    /// The scenario's thresholds as evaluated on `results`.
    pub thresholds: Vec<CriterionOutcome>,
    /// Per-second server samples (empty when nothing was sampled); `sweep` averages them.
    pub server: Vec<ServerSample>,
    /// Connections open at the end of each timeline second: (seconds since start, count).
    pub connected: Vec<(f64, u64)>,
}

impl Executed {
    pub fn server_bytes_per_user(&self) -> Option<f64> {
        self.results
            .extra
            .get("server")
            .and_then(|v| v.get("bytes_per_user"))
            .and_then(|v| v.as_f64())
    }
}

pub async fn execute(
    run_plan: Arc<RunPlan>,
    out: &Path,
    options: &ExecuteOptions,
    interrupt: CancellationToken,
) -> anyhow::Result<Executed> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let s = &run_plan.scenario;
    if !options.quiet {
        eprintln!(
            "mailswarm: running {} for {:?} ({} users, {} sessions, open files {}/{}) -> {}",
            s.scenario.name,
            run_plan.duration,
            run_plan.population.count(),
            run_plan.sessions,
            options.nofile.0,
            options.nofile.1,
            out.display()
        );
    }
    let phases = PhasePlan {
        ramp_up: run_plan.ramp_up,
        steady: run_plan.duration - run_plan.ramp_up - run_plan.ramp_down,
    };
    let started = SystemTime::now();
    let client_cpu_started = crate::metrics::process_cpu_seconds();
    let (sink, collector) = spawn_collector(phases);
    if !options.quiet {
        let progress = Progress::for_stderr(run_plan.duration);
        tokio::spawn(report::progress::follow(collector.progress(), progress));
    }
    let sampler = match &run_plan.server {
        Some(target) => start_sampler(target.clone(), sink.shared_gauges()).await,
        None => None,
    };
    let outcome = engine::run(run_plan.clone(), sink, interrupt).await;
    let metrics = collector.finish().await;
    let ended = SystemTime::now();
    let mut sampler_cpu_s = 0.0;
    let server = match sampler {
        Some(running) => {
            let recording = running.finish().await;
            if recording.failures > 0 {
                eprintln!(
                    "mailswarm: warning: {} server samples failed (last: {})",
                    recording.failures,
                    recording.last_error.as_deref().unwrap_or("?")
                );
            }
            sampler_cpu_s = recording.sampler_cpu_s;
            recording.samples
        }
        None => Vec::new(),
    };

    let ctx = RunContext {
        scenario: ScenarioInfo {
            name: s.scenario.name.clone(),
            file: s.path.clone(),
            seed: s.scenario.seed,
            digest: s.digest.clone(),
        },
        started,
        ended,
        interrupted: outcome.interrupted,
        model: format!("{:?}", run_plan.model).to_lowercase(),
        // The plan, not the file: `sweep --warmup` adds a ramp-up the scenario lacks.
        has_ramps: !(run_plan.ramp_up.is_zero() && run_plan.ramp_down.is_zero()),
        nofile_soft: options.nofile.0,
        nofile_hard: options.nofile.1,
    };
    let mut results = Results::build(&ctx, &metrics);
    if let Some(auditor) = &run_plan.audit {
        if !options.quiet {
            eprintln!("mailswarm: audit: reading back every accepted message over IMAP");
        }
        let audit = auditor.verify(&run_plan, run_plan.audit_grace).await;
        results.extra.insert(
            "audit".to_string(),
            serde_json::to_value(&audit).expect("the audit report serializes"),
        );
    }
    if let Some(checks) = &run_plan.checks {
        results.extra.insert(
            "checks".to_string(),
            serde_json::to_value(checks.summary()).expect("the checks summary serializes"),
        );
    }
    report::attach_server_summary(&mut results, &server);
    attach_client_cpu(
        &mut results,
        crate::metrics::process_cpu_seconds() - client_cpu_started,
        sampler_cpu_s,
    );
    let definitions: BTreeMap<String, String> = s
        .scenario
        .thresholds
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    // Checked before the run, so this cannot fail; an error would still leave results.
    let thresholds = threshold::record(&mut results, &definitions).unwrap_or_default();
    let path = out.join("results.json");
    // results.json first, on its own: whatever goes wrong with plots or HTML afterwards, the
    // measurements are on disk.
    if let Err(err) = results.write(&path) {
        // Never lose a measured run to an unwritable folder: save it where it can be written.
        let fallback =
            std::env::temp_dir().join(format!("mailswarm-results-{}.json", std::process::id()));
        let saved = match results.write(&fallback) {
            Ok(()) => format!("the results were saved to {} instead", fallback.display()),
            Err(_) => "no other place to save them was writable either".to_string(),
        };
        anyhow::bail!("writing {}: {err:#}; {saved}", path.display());
    }
    match report::write_run_report(out, &results, &metrics, &server, &s.source) {
        Ok(files) => {
            for warning in &files.warnings {
                eprintln!("mailswarm: warning: {warning}");
            }
        }
        Err(err) => eprintln!("mailswarm: warning: report not complete: {err}"),
    }
    let connected = metrics
        .timeline
        .iter()
        .map(|p| (p.t_s as f64, p.connected))
        .collect();
    Ok(Executed {
        results,
        thresholds,
        server,
        connected,
    })
}

/// Starts server sampling; a target that cannot be sampled is a warning, not a failed run.
async fn start_sampler(target: ServerTarget, gauges: Arc<Gauges>) -> Option<RunningSampler> {
    let sampler = match ServerSampler::new(target, gauges) {
        Ok(sampler) => sampler,
        Err(err) => {
            eprintln!("mailswarm: warning: server sampling off: {err}");
            return None;
        }
    };
    match sampler.start(std::time::Instant::now()).await {
        Ok(running) => Some(running),
        Err(err) => {
            eprintln!("mailswarm: warning: server sampling off: {err}");
            None
        }
    }
}

/// `extra.client`: the CPU mailswarm used generating load (`cpu_s`, without the server
/// sampler's reads of /proc, `sampler_cpu_s`) and, when the server's CPU was sampled, its share
/// of the server's: a load generator that costs as much as the server measures itself.
fn attach_client_cpu(results: &mut Results, total_cpu_s: f64, sampler_cpu_s: f64) {
    let cpu_s = (total_cpu_s - sampler_cpu_s).max(0.0);
    let server_cpu = results
        .extra
        .get(report::server::EXTRA_KEY)
        .and_then(|s| s.get("cpu_s"))
        .and_then(serde_json::Value::as_f64);
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let mut client = serde_json::json!({
        "cpu_s": round(cpu_s),
        "sampler_cpu_s": round(sampler_cpu_s),
    });
    if let Some(server) = server_cpu.filter(|s| *s > 0.0) {
        client["server_cpu_s"] = server.into();
        client["cpu_share_of_server"] = round(cpu_s / server).into();
    }
    results.extra.insert("client".to_string(), client);
}
