//! The live progress line while a run goes. On a terminal one line on stderr is rewritten
//! every second; anywhere else (CI logs, `2> file`) a plain line is added every 10 s, because
//! carriage returns turn a log into one unreadable line.
//!
//! It reads only the collector's [`ProgressSnapshot`]s, never a histogram.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use tokio::sync::watch;

use crate::metrics::ProgressSnapshot;

/// Seconds between lines when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// Renders snapshots as progress lines.
#[derive(Debug)]
pub struct Progress {
    total: Duration,
    is_tty: bool,
    /// Plain mode: what happened since the last printed line.
    window: Window,
    next_plain: Duration,
    /// A terminal line is on screen and needs a newline before anything else prints.
    line_open: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    seconds: f64,
    ops: u64,
    errors: u64,
    /// Worst one-second p99 in the window: percentiles of different intervals do not merge.
    worst_p99_us: Option<u64>,
}

impl Window {
    fn add(&mut self, s: &ProgressSnapshot) {
        self.seconds += s.interval.as_secs_f64();
        self.ops += s.ops;
        self.errors += s.errors;
        self.worst_p99_us = match (self.worst_p99_us, s.p99_us) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

impl Progress {
    /// `total` is the planned run length (the percentage shown); zero hides it.
    pub fn new(total: Duration, is_tty: bool) -> Progress {
        Progress {
            total,
            is_tty,
            window: Window::default(),
            next_plain: PLAIN_EVERY,
            line_open: false,
        }
    }

    /// Progress on stderr, in terminal mode when stderr is one.
    pub fn for_stderr(total: Duration) -> Progress {
        Progress::new(total, io::stderr().is_terminal())
    }

    /// Shows one snapshot on stderr. Errors writing it are ignored: progress must never stop
    /// a run.
    pub fn update(&mut self, snapshot: &ProgressSnapshot) {
        let _ = self.update_to(&mut io::stderr().lock(), snapshot);
    }

    /// Ends the terminal line so the summary starts on a fresh one.
    pub fn finish(&mut self) {
        let _ = self.finish_to(&mut io::stderr().lock());
    }

    pub fn update_to(
        &mut self,
        out: &mut impl Write,
        snapshot: &ProgressSnapshot,
    ) -> io::Result<()> {
        if self.is_tty {
            let mut window = Window::default();
            window.add(snapshot);
            // \x1b[K clears what a longer previous line left behind.
            write!(
                out,
                "\r{}\x1b[K",
                self.line(snapshot.elapsed, snapshot.connected, &window)
            )?;
            self.line_open = true;
            return out.flush();
        }
        self.window.add(snapshot);
        if snapshot.elapsed < self.next_plain {
            return Ok(());
        }
        let window = std::mem::take(&mut self.window);
        while self.next_plain <= snapshot.elapsed {
            self.next_plain += PLAIN_EVERY;
        }
        writeln!(
            out,
            "{}",
            self.line(snapshot.elapsed, snapshot.connected, &window)
        )?;
        out.flush()
    }

    pub fn finish_to(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.line_open {
            self.line_open = false;
            writeln!(out)?;
        }
        out.flush()
    }

    fn line(&self, elapsed: Duration, connected: u64, w: &Window) -> String {
        let secs = elapsed.as_secs();
        let clock = if self.total.is_zero() {
            format!("{secs:>4}s")
        } else {
            let pct = (elapsed.as_secs_f64() / self.total.as_secs_f64() * 100.0).min(100.0);
            format!("{secs:>4}s/{}s {pct:>3.0}%", self.total.as_secs())
        };
        let per_s = |n: u64| {
            if w.seconds > 0.0 {
                n as f64 / w.seconds
            } else {
                0.0
            }
        };
        let p99 = match w.worst_p99_us {
            Some(us) => format!("{:.2} ms", us as f64 / 1000.0),
            None => "-".to_string(),
        };
        let p99_name = if w.seconds > 1.5 {
            "worst 1-s p99"
        } else {
            "p99"
        };
        format!(
            "[{clock}] {connected} connected | {:.0} ops/s | {:.1} errors/s | {p99_name} {p99}",
            per_s(w.ops),
            per_s(w.errors)
        )
    }
}

/// Shows every snapshot the collector publishes until it finishes (its sender is dropped),
/// then ends the line. Spawn it next to the run: `tokio::spawn(follow(collector.progress(),
/// Progress::for_stderr(total)))`.
pub async fn follow(mut snapshots: watch::Receiver<ProgressSnapshot>, mut progress: Progress) {
    while snapshots.changed().await.is_ok() {
        let snapshot = *snapshots.borrow_and_update();
        progress.update(&snapshot);
    }
    progress.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(t: u64, ops: u64, errors: u64, p99_us: Option<u64>) -> ProgressSnapshot {
        ProgressSnapshot {
            elapsed: Duration::from_secs(t),
            interval: Duration::from_secs(1),
            connected: 100 + t,
            ops,
            errors,
            p99_us,
        }
    }

    #[test]
    fn plain_output_is_one_line_per_ten_seconds() {
        let mut progress = Progress::new(Duration::from_secs(60), false);
        let mut out = Vec::new();
        for t in 1..=25 {
            let p99 = if t == 7 { Some(9_000) } else { Some(1_200) };
            progress
                .update_to(&mut out, &snapshot(t, 200, u64::from(t > 15), p99))
                .unwrap();
        }
        progress.finish_to(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(!text.contains('\r'));
        assert_eq!(
            lines[0],
            "[  10s/60s  17%] 110 connected | 200 ops/s | 0.0 errors/s | worst 1-s p99 9.00 ms"
        );
        // 16..=20 had one error each: 5 over the 10 s window.
        assert_eq!(
            lines[1],
            "[  20s/60s  33%] 120 connected | 200 ops/s | 0.5 errors/s | worst 1-s p99 1.20 ms"
        );
    }

    #[test]
    fn terminal_output_rewrites_one_line() {
        let mut progress = Progress::new(Duration::ZERO, true);
        let mut out = Vec::new();
        progress
            .update_to(&mut out, &snapshot(1, 50, 0, None))
            .unwrap();
        progress
            .update_to(&mut out, &snapshot(2, 80, 2, Some(450)))
            .unwrap();
        progress.finish_to(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "\r[   1s] 101 connected | 50 ops/s | 0.0 errors/s | p99 -\x1b[K\
             \r[   2s] 102 connected | 80 ops/s | 2.0 errors/s | p99 0.45 ms\x1b[K\n"
        );
    }

    #[tokio::test]
    async fn follow_ends_when_the_collector_is_gone() {
        let (tx, rx) = watch::channel(ProgressSnapshot::default());
        let task = tokio::spawn(follow(rx, Progress::new(Duration::from_secs(5), false)));
        tx.send_replace(snapshot(1, 10, 0, None));
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("follow returns once the sender is dropped")
            .unwrap();
    }
}
