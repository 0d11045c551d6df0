//! An optional log of every session's planned actions (`mailswarm run --trace-actions FILE`):
//! one JSON line per session with user, session number, behaviour and actions. Two runs with
//! one seed agree line by line for every (user, session) both ran, which is how determinism
//! is checked.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

use super::population::UserId;
use super::session::script::Action;

pub struct ActionTrace {
    out: Mutex<BufWriter<File>>,
}

#[derive(Serialize)]
struct Line<'a> {
    user: UserId,
    session: u32,
    behaviour: &'a str,
    actions: &'a [Action],
}

impl ActionTrace {
    pub fn create(path: &Path) -> std::io::Result<ActionTrace> {
        Ok(ActionTrace {
            out: Mutex::new(BufWriter::new(File::create(path)?)),
        })
    }

    /// Appends one session. A write error loses trace lines, never the run: the trace is a
    /// diagnostic, the measurements are the product.
    pub fn record(&self, user: UserId, session: u32, behaviour: &str, actions: &[Action]) {
        let line = Line {
            user,
            session,
            behaviour,
            actions,
        };
        if let Ok(mut out) = self.out.lock() {
            if serde_json::to_writer(&mut *out, &line).is_ok() {
                let _ = out.write_all(b"\n");
            }
        }
    }

    pub fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}
