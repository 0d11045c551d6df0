use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use super::*;

/// A process group this test started; killed (all of it) when dropped, even on a failed assert.
struct Tree(Child);

impl Tree {
    fn spawn(program: &str, args: &[&str]) -> Tree {
        let child = Command::new(program)
            .args(args)
            .process_group(0)
            .spawn()
            .expect("spawn test process");
        Tree(child)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // The group id is the leader's pid (process_group(0)); this reaches only our processes.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn gauges(connected: u64) -> Arc<Gauges> {
    let gauges = Arc::new(Gauges::default());
    for _ in 0..connected {
        gauges.connection_opened();
    }
    gauges
}

/// Polls until the tree has `n` processes (the shell forks its children asynchronously).
async fn sample_with(sampler: &ServerSampler, n: u64) -> ServerSample {
    for _ in 0..100 {
        let sample = sampler.sample(0.0).await.unwrap();
        if sample.processes == Some(n) {
            return sample;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process tree never reached {n} processes");
}

#[tokio::test]
async fn sums_a_real_process_tree() {
    let tree = Tree::spawn("sh", &["-c", "sleep 30 & sleep 30 & wait"]);
    let sampler = ServerSampler::new(ServerTarget::Pid(tree.pid()), gauges(7)).unwrap();
    let sample = sample_with(&sampler, 3).await;
    assert_eq!(sample.kind, MemoryKind::Pss);
    assert!(sample.pss_bytes > 0, "{sample:?}");
    // Three tiny processes: well under 100 MB of PSS, so the sum is not e.g. a whole-system one.
    assert!(sample.pss_bytes < 100 << 20, "{sample:?}");
    assert_eq!(
        sample.rss_fallback, 0,
        "we own these processes: PSS is readable"
    );
    assert!(sample.cpu_s.unwrap() >= 0.0);
    assert_eq!(sample.connected, 7);
}

#[tokio::test]
async fn pid_file_and_process_name_find_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    // A uniquely named program: comm is the basename the process was executed as.
    let name = format!("mswsamp{}", std::process::id() % 100_000);
    let program = dir.path().join(&name);
    std::os::unix::fs::symlink("/bin/sleep", &program).unwrap();
    let a = Tree::spawn(program.to_str().unwrap(), &["30"]);
    let _b = Tree::spawn(program.to_str().unwrap(), &["30"]);

    let pid_file = dir.path().join("master.pid");
    std::fs::write(&pid_file, format!("{}\n", a.pid())).unwrap();
    let by_file = ServerSampler::new(ServerTarget::PidFile(pid_file), gauges(0)).unwrap();
    assert_eq!(sample_with(&by_file, 1).await.processes, Some(1));

    let by_name = ServerSampler::new(ServerTarget::ProcessName(name), gauges(0)).unwrap();
    let sample = sample_with(&by_name, 2).await;
    assert!(sample.pss_bytes > 0);
}

#[tokio::test]
async fn dead_pid_is_a_clear_error() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    let err = ServerSampler::new(ServerTarget::Pid(pid), gauges(0)).unwrap_err();
    assert!(matches!(err, SamplerError::NoSuchProcess { pid: p } if p == pid));
    let text = err.to_string();
    assert!(text.contains(&pid.to_string()) && text.contains("is the server running"));
}

#[test]
fn bad_pid_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pid");
    let err = ServerSampler::new(ServerTarget::PidFile(missing.clone()), gauges(0)).unwrap_err();
    assert!(matches!(err, SamplerError::PidFile { .. }));
    assert!(err.to_string().contains("nope.pid"));
    let junk = dir.path().join("junk.pid");
    std::fs::write(&junk, "dovecot\n").unwrap();
    let err = ServerSampler::new(ServerTarget::PidFile(junk), gauges(0)).unwrap_err();
    assert!(matches!(err, SamplerError::PidFileContent { ref found, .. } if found == "dovecot"));
}

#[tokio::test]
async fn unknown_process_name_fails_the_first_sample() {
    let sampler = ServerSampler::new(
        ServerTarget::ProcessName("no-such-server-x".into()),
        gauges(0),
    )
    .unwrap();
    let err = sampler.start(Instant::now()).await.err().unwrap();
    assert!(matches!(err, SamplerError::NoSuchName { .. }), "{err}");
}

#[tokio::test]
async fn cgroup_v2_files() {
    // The same three files a cgroup v2 directory holds (this machine runs cgroup v1).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("memory.current"), "6200000000\n").unwrap();
    std::fs::write(dir.path().join("cgroup.procs"), "10\n11\n12\n").unwrap();
    std::fs::write(
        dir.path().join("cpu.stat"),
        "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
    )
    .unwrap();
    let sampler =
        ServerSampler::new(ServerTarget::Cgroup(dir.path().to_path_buf()), gauges(3)).unwrap();
    let sample = sampler.sample(1.0).await.unwrap();
    assert_eq!(sample.pss_bytes, 6_200_000_000);
    assert_eq!(sample.kind, MemoryKind::Cgroup);
    assert_eq!(sample.processes, Some(3));
    assert_eq!(sample.cpu_s, Some(2.5));

    let empty = tempfile::tempdir().unwrap();
    let sampler =
        ServerSampler::new(ServerTarget::Cgroup(empty.path().to_path_buf()), gauges(0)).unwrap();
    let err = sampler.sample(0.0).await.unwrap_err();
    assert!(err.to_string().contains("memory.current"), "{err}");
}

#[tokio::test]
async fn memory_command_output_is_parsed_and_checked() {
    let ok = ServerSampler::new(ServerTarget::Command("echo 123456".into()), gauges(2)).unwrap();
    let sample = ok.sample(0.5).await.unwrap();
    assert_eq!(sample.pss_bytes, 123_456);
    assert_eq!((sample.kind, sample.connected), (MemoryKind::Command, 2));

    let junk = ServerSampler::new(ServerTarget::Command("echo lots".into()), gauges(0)).unwrap();
    let err = junk.sample(0.0).await.unwrap_err();
    assert!(err.to_string().contains("\"lots\""), "{err}");

    let failing = ServerSampler::new(
        ServerTarget::Command("echo no route >&2; exit 3".into()),
        gauges(0),
    )
    .unwrap();
    let err = failing.sample(0.0).await.unwrap_err().to_string();
    assert!(err.contains("no route") && err.contains('3'), "{err}");
}

#[tokio::test]
async fn running_sampler_records_a_series() {
    let tree = Tree::spawn("sh", &["-c", "sleep 30 & wait"]);
    let g = gauges(0);
    let sampler = ServerSampler::new(ServerTarget::Pid(tree.pid()), g.clone())
        .unwrap()
        .every(Duration::from_millis(100));
    let running = sampler.start(Instant::now()).await.unwrap();
    g.connection_opened();
    tokio::time::sleep(Duration::from_millis(450)).await;
    let recording = running.finish().await;
    // First sample, ~4 ticks, the final one: at least 3 whatever the scheduling.
    assert!(recording.samples.len() >= 3, "{recording:?}");
    assert_eq!(recording.failures, 0);
    assert!(recording.samples.windows(2).all(|w| w[0].t_s <= w[1].t_s));
    assert_eq!(recording.samples.last().unwrap().connected, 1);
    assert!(recording.samples.iter().all(|s| s.pss_bytes > 0));
}
