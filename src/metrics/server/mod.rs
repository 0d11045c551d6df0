//! Server resource sampling: the server's memory, CPU and process count once a second, next to
//! the number of connected users, so a report can say what one more user costs the server.
//!
//! Memory is PSS summed over the server's process tree: RSS would count the pages Dovecot's
//! processes share once per process and overstate a 10,000-process server several times over.
//! A cgroup's `memory.current` (systemd units, containers) or a user's shell command (a remote
//! server, e.g. `ssh mail1 ...`) can stand in.

mod procs;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Gauges;
use procs::Roots;

/// Whose resources to sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTarget {
    /// This process and all its descendants.
    Pid(i32),
    /// A file holding the root pid (Dovecot's `base_dir/master.pid`), read once at start.
    PidFile(PathBuf),
    /// Every process with this name (`/proc/PID/comm`) and its descendants, looked up at every
    /// sample so a restarted server is still found.
    ProcessName(String),
    /// A cgroup directory (v2 `memory.current`, or v1 `memory.usage_in_bytes`), or that file.
    Cgroup(PathBuf),
    /// A shell command (`sh -c`) that prints the server's memory in bytes on stdout.
    Command(String),
}

/// What [`ServerSample::pss_bytes`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    /// PSS summed over a process tree (RSS for the processes counted in `rss_fallback`).
    Pss,
    /// The cgroup's charged memory (includes page cache the server caused).
    Cgroup,
    /// Whatever the user's command printed.
    Command,
}

/// One reading of the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Server memory in bytes; see `kind`.
    pub pss_bytes: u64,
    pub kind: MemoryKind,
    /// Processes whose PSS was unreadable (`smaps_rollup` needs ptrace rights over them) and
    /// whose RSS was counted instead, which overstates shared memory.
    #[serde(default)]
    pub rss_fallback: u64,
    /// CPU seconds used so far (user + system, including reaped children); absent for a command.
    pub cpu_s: Option<f64>,
    /// Processes in the tree or cgroup; absent for a command.
    pub processes: Option<u64>,
    /// Client connections open at this moment.
    pub connected: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    #[error(
        "server process {pid} does not exist: is the server running, and is the pid (or pid \
         file) the current one?"
    )]
    NoSuchProcess { pid: i32 },
    #[error("cannot read pid file {}: {source}", path.display())]
    PidFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("pid file {} does not start with a process id (found {found:?})", path.display())]
    PidFileContent { path: PathBuf, found: String },
    #[error(
        "no running process is named {name:?} (matched against /proc/PID/comm, which keeps \
         the first 15 characters of the program name)"
    )]
    NoSuchName { name: String },
    #[error(
        "cannot read cgroup memory from {}: {source} (give a cgroup directory such as \
         /sys/fs/cgroup/system.slice/dovecot.service)", path.display()
    )]
    Cgroup {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} does not hold a byte count (found {found:?})", path.display())]
    CgroupContent { path: PathBuf, found: String },
    #[error("server memory command {command:?} failed: {reason}")]
    Command { command: String, reason: String },
    #[error("cannot read /proc for process {pid}: {reason}")]
    Proc { pid: i32, reason: String },
}

/// A shell command gets this long before its sample is counted as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Source {
    Tree(Roots),
    Cgroup { memory_file: PathBuf, dir: PathBuf },
    Command(String),
}

/// Samples one server. Build it with [`ServerSampler::new`], then [`ServerSampler::start`] it
/// next to the run; it stops when the run calls [`RunningSampler::finish`].
#[derive(Debug)]
pub struct ServerSampler {
    source: Source,
    gauges: Arc<Gauges>,
    every: Duration,
    /// CPU nanoseconds spent reading /proc: the measurement's own cost, kept apart from the
    /// load generator's.
    own_cpu_ns: Arc<AtomicU64>,
}

impl ServerSampler {
    /// Resolves the target (reads a pid file, checks the process exists). Commands and names are
    /// checked by the first sample, which [`start`](Self::start) takes before returning.
    pub fn new(target: ServerTarget, gauges: Arc<Gauges>) -> Result<ServerSampler, SamplerError> {
        let source = match target {
            ServerTarget::Pid(pid) => {
                procs::check_alive(pid)?;
                Source::Tree(Roots::Pid(pid))
            }
            ServerTarget::PidFile(path) => {
                let pid = procs::read_pid_file(&path)?;
                procs::check_alive(pid)?;
                Source::Tree(Roots::Pid(pid))
            }
            ServerTarget::ProcessName(name) => Source::Tree(Roots::Name(name)),
            ServerTarget::Cgroup(path) => cgroup_source(path),
            ServerTarget::Command(command) => Source::Command(command),
        };
        Ok(ServerSampler {
            source,
            gauges,
            every: Duration::from_secs(1),
            own_cpu_ns: Arc::default(),
        })
    }

    /// Sampling period (default one second). A tree of 10,000 processes takes ~0.7 s of CPU to
    /// read (72 µs per `smaps_rollup`), so a huge server may want a longer one.
    pub fn every(mut self, period: Duration) -> ServerSampler {
        self.every = period.max(Duration::from_millis(100));
        self
    }

    /// Takes one sample now. `t_s` is stamped on it.
    pub async fn sample(&self, t_s: f64) -> Result<ServerSample, SamplerError> {
        let connected = self.gauges.connected();
        let t_s = (t_s * 1000.0).round() / 1000.0;
        match &self.source {
            Source::Tree(roots) => {
                let roots = roots.clone();
                let own_cpu_ns = self.own_cpu_ns.clone();
                let reading = tokio::task::spawn_blocking(move || {
                    let started = crate::metrics::thread_cpu_seconds();
                    let reading = procs::read_tree(&roots);
                    let spent = crate::metrics::thread_cpu_seconds() - started;
                    own_cpu_ns.fetch_add((spent * 1e9) as u64, Ordering::Relaxed);
                    reading
                })
                .await
                .map_err(|err| SamplerError::Proc {
                    pid: 0,
                    reason: format!("reader task failed: {err}"),
                })??;
                Ok(ServerSample {
                    t_s,
                    pss_bytes: reading.pss_bytes,
                    kind: MemoryKind::Pss,
                    rss_fallback: reading.rss_fallback,
                    cpu_s: Some((reading.cpu_s * 100.0).round() / 100.0),
                    processes: Some(reading.processes),
                    connected,
                })
            }
            Source::Cgroup { memory_file, dir } => {
                let bytes = read_u64_file(memory_file)?;
                Ok(ServerSample {
                    t_s,
                    pss_bytes: bytes,
                    kind: MemoryKind::Cgroup,
                    rss_fallback: 0,
                    cpu_s: cgroup_cpu_s(dir),
                    processes: std::fs::read_to_string(dir.join("cgroup.procs"))
                        .ok()
                        .map(|s| s.lines().filter(|l| !l.trim().is_empty()).count() as u64),
                    connected,
                })
            }
            Source::Command(command) => Ok(ServerSample {
                t_s,
                pss_bytes: run_memory_command(command).await?,
                kind: MemoryKind::Command,
                rss_fallback: 0,
                cpu_s: None,
                processes: None,
                connected,
            }),
        }
    }

    /// Takes the first sample (so a wrong target fails before the run starts), then samples in
    /// a task until [`RunningSampler::finish`]. `run_start` is the run's clock zero.
    pub async fn start(self, run_start: Instant) -> Result<RunningSampler, SamplerError> {
        let first = self.sample(run_start.elapsed().as_secs_f64()).await?;
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut recording = ServerRecording {
                samples: vec![first],
                ..ServerRecording::default()
            };
            let mut tick = tokio::time::interval(self.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate: that sample is taken
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    _ = tick.tick() => {
                        match self.sample(run_start.elapsed().as_secs_f64()).await {
                            Ok(sample) => recording.samples.push(sample),
                            Err(err) => {
                                recording.failures += 1;
                                recording.last_error = Some(err.to_string());
                            }
                        }
                    }
                }
            }
            // One last reading so the series covers the run's end.
            match self.sample(run_start.elapsed().as_secs_f64()).await {
                Ok(sample) => recording.samples.push(sample),
                Err(err) => {
                    recording.failures += 1;
                    recording.last_error = Some(err.to_string());
                }
            }
            recording.sampler_cpu_s = self.own_cpu_ns.load(Ordering::Relaxed) as f64 / 1e9;
            recording
        });
        Ok(RunningSampler {
            stop: stop_tx,
            task,
        })
    }
}

/// A sampler running in its own task.
pub struct RunningSampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<ServerRecording>,
}

impl RunningSampler {
    /// Stops sampling after one final sample and returns everything recorded.
    pub async fn finish(self) -> ServerRecording {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// The samples of a run. A failed sample (the server restarting, a command timing out) is
/// counted and skipped; the series goes on.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRecording {
    pub samples: Vec<ServerSample>,
    pub failures: u64,
    pub last_error: Option<String>,
    /// CPU seconds mailswarm spent reading the server's /proc entries (PSS is not free:
    /// about 72 µs per process per sample).
    #[serde(default)]
    pub sampler_cpu_s: f64,
}

fn cgroup_source(path: PathBuf) -> Source {
    if path.is_dir() {
        let v2 = path.join("memory.current");
        let memory_file = if v2.exists() {
            v2
        } else if path.join("memory.usage_in_bytes").exists() {
            path.join("memory.usage_in_bytes")
        } else {
            // Reported by the first sample, with the path the user gave.
            v2
        };
        Source::Cgroup {
            memory_file,
            dir: path,
        }
    } else {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Source::Cgroup {
            memory_file: path,
            dir,
        }
    }
}

fn read_u64_file(path: &Path) -> Result<u64, SamplerError> {
    let text = std::fs::read_to_string(path).map_err(|source| SamplerError::Cgroup {
        path: path.to_path_buf(),
        source,
    })?;
    text.trim()
        .parse()
        .map_err(|_| SamplerError::CgroupContent {
            path: path.to_path_buf(),
            found: text.trim().chars().take(40).collect(),
        })
}

/// v2 `cpu.stat` `usage_usec`, else v1 `cpuacct.usage` (ns) when the file is there.
fn cgroup_cpu_s(dir: &Path) -> Option<f64> {
    if let Ok(stat) = std::fs::read_to_string(dir.join("cpu.stat")) {
        let usec = stat
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(usec) = usec {
            return Some(usec as f64 / 1e6);
        }
    }
    let ns: u64 = std::fs::read_to_string(dir.join("cpuacct.usage"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(ns as f64 / 1e9)
}

async fn run_memory_command(command: &str) -> Result<u64, SamplerError> {
    let fail = |reason: String| SamplerError::Command {
        command: command.to_string(),
        reason,
    };
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child)
        .await
        .map_err(|_| fail(format!("no answer within {} s", COMMAND_TIMEOUT.as_secs())))?
        .map_err(|err| fail(format!("cannot run sh: {err}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(fail(format!(
            "exited with {}: {}",
            output.status,
            stderr.trim().chars().take(200).collect::<String>()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.trim().parse().map_err(|_| {
        fail(format!(
            "expected a byte count on stdout, got {:?}",
            stdout.trim().chars().take(40).collect::<String>()
        ))
    })
}

#[cfg(test)]
mod tests;
