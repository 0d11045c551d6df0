//! Reading a process tree from `/proc`: the memory and CPU of a server made of many processes
//! (Dovecot spawns one `imap` process per connection under its `dovecot` master).

use std::collections::HashMap;
use std::path::Path;

use procfs::process::Process;
use procfs::ProcError;

use super::SamplerError;

/// One pass over a process tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct TreeReading {
    pub pss_bytes: u64,
    /// Processes whose `smaps_rollup` could not be read; their RSS was counted instead.
    pub rss_fallback: u64,
    pub cpu_s: f64,
    pub processes: u64,
}

/// What each listed process is, from `/proc/PID/stat`.
struct Entry {
    ppid: i32,
    comm: String,
}

/// Which processes are the tops of the tree.
#[derive(Debug, Clone)]
pub(super) enum Roots {
    Pid(i32),
    /// Every process with this `comm` whose parent has a different one.
    Name(String),
}

/// The kernel keeps only the first 15 bytes of a process name in `comm`.
const COMM_LEN: usize = 15;

pub(super) fn comm_matches(comm: &str, name: &str) -> bool {
    let name = name.as_bytes();
    comm.as_bytes() == &name[..name.len().min(COMM_LEN)]
}

/// Reads the pid a pid file holds (Dovecot writes `master.pid` in its `base_dir`).
pub(super) fn read_pid_file(path: &Path) -> Result<i32, SamplerError> {
    let text = std::fs::read_to_string(path).map_err(|source| SamplerError::PidFile {
        path: path.to_path_buf(),
        source,
    })?;
    let first = text.lines().next().unwrap_or("").trim();
    match first.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(SamplerError::PidFileContent {
            path: path.to_path_buf(),
            found: first.chars().take(40).collect(),
        }),
    }
}

pub(super) fn check_alive(pid: i32) -> Result<(), SamplerError> {
    match Process::new(pid).and_then(|p| p.stat()) {
        Ok(_) => Ok(()),
        Err(ProcError::NotFound(_)) => Err(SamplerError::NoSuchProcess { pid }),
        Err(err) => Err(SamplerError::Proc {
            pid,
            reason: err.to_string(),
        }),
    }
}

/// Sums PSS and CPU over every process under `roots`. Processes that exit while they are being
/// read are skipped: between two readings a server's tree always changes.
pub(super) fn read_tree(roots: &Roots) -> Result<TreeReading, SamplerError> {
    let listing = list_processes()?;
    let tops: Vec<i32> = match roots {
        Roots::Pid(pid) => {
            if !listing.contains_key(pid) {
                return Err(SamplerError::NoSuchProcess { pid: *pid });
            }
            vec![*pid]
        }
        Roots::Name(name) => {
            let tops: Vec<i32> = listing
                .iter()
                .filter(|(_, e)| comm_matches(&e.comm, name))
                .filter(|(_, e)| {
                    listing
                        .get(&e.ppid)
                        .is_none_or(|parent| !comm_matches(&parent.comm, name))
                })
                .map(|(pid, _)| *pid)
                .collect();
            if tops.is_empty() {
                return Err(SamplerError::NoSuchName { name: name.clone() });
            }
            tops
        }
    };
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, e) in &listing {
        children.entry(e.ppid).or_default().push(*pid);
    }
    let mut tree = tops;
    let mut next = 0;
    while next < tree.len() {
        if let Some(kids) = children.get(&tree[next]) {
            tree.extend_from_slice(kids);
        }
        next += 1;
    }
    let mut reading = TreeReading {
        pss_bytes: 0,
        rss_fallback: 0,
        cpu_s: 0.0,
        processes: 0,
    };
    let ticks = procfs::ticks_per_second() as f64;
    let page = procfs::page_size();
    for pid in tree {
        let process = match Process::new(pid) {
            Ok(p) => p,
            Err(_) => continue,
        };
        // cutime/cstime hold the CPU of children already reaped: without them the CPU of every
        // session process that ended during the run would vanish from the total.
        let Ok(stat) = process.stat() else { continue };
        let cpu_ticks =
            stat.utime + stat.stime + stat.cutime.max(0) as u64 + stat.cstime.max(0) as u64;
        let memory = match pss_of(&process) {
            Some(pss) => pss,
            None => match process.statm() {
                Ok(statm) => {
                    reading.rss_fallback += 1;
                    statm.resident * page
                }
                Err(_) => continue,
            },
        };
        reading.pss_bytes += memory;
        reading.cpu_s += cpu_ticks as f64 / ticks;
        reading.processes += 1;
    }
    Ok(reading)
}

/// PSS in bytes, or `None` when `smaps_rollup` is unreadable (another user's process without
/// ptrace rights, or a kernel older than 4.14).
fn pss_of(process: &Process) -> Option<u64> {
    let rollup = process.smaps_rollup().ok()?;
    let maps = rollup.memory_map_rollup.0;
    // A kernel thread has an empty rollup: it owns no user memory.
    Some(maps.iter().filter_map(|m| m.extension.map.get("Pss")).sum())
}

fn list_processes() -> Result<HashMap<i32, Entry>, SamplerError> {
    let all = procfs::process::all_processes().map_err(|err| SamplerError::Proc {
        pid: 0,
        reason: format!("cannot list /proc: {err}"),
    })?;
    let mut out = HashMap::new();
    for process in all.flatten() {
        if let Ok(stat) = process.stat() {
            out.insert(
                stat.pid,
                Entry {
                    ppid: stat.ppid,
                    comm: stat.comm,
                },
            );
        }
    }
    Ok(out)
}
