//! The run's latency time series as a standard HdrHistogram interval log (`latency.hlog`):
//! one V2+DEFLATE histogram per command per second, tagged with the metric name (`imap.fetch`).
//! HdrHistogram's own tools (HistogramLogProcessor, HdrHistogramVisualizer) read it, so users
//! can re-slice a run without mailswarm.
//!
//! The collector appends each interval as it is cut and then reuses the histogram: a
//! compressed interval is a few hundred bytes, a live histogram 184 KiB.

use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

/// An interval log being written into memory.
pub struct LatencyLogWriter {
    text: Vec<u8>,
    serializer: V2DeflateSerializer,
    /// Intervals that could not be written (a tag the format cannot hold, a codec failure).
    pub skipped: u64,
}

impl LatencyLogWriter {
    /// Writes the header. Interval timestamps are seconds since `started_at`.
    pub fn new(started_at: SystemTime) -> LatencyLogWriter {
        let mut text = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        let header = IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "mailswarm {} latency log: values in microseconds, one histogram per \
                 command per interval, tagged with the metric name",
                env!("CARGO_PKG_VERSION")
            ))
            .with_start_time(started_at)
            .with_base_time(started_at)
            .begin_log_with(&mut text, &mut serializer)
            .map(drop);
        debug_assert!(header.is_ok(), "writes to a Vec cannot fail");
        LatencyLogWriter {
            text,
            serializer,
            skipped: 0,
        }
    }

    /// Appends one interval; `start` is measured from the run's start.
    pub fn write(&mut self, tag: &str, h: &Histogram<u64>, start: Duration, length: Duration) {
        let Some(tag) = Tag::new(tag) else {
            self.skipped += 1;
            return;
        };
        // A builder without headers writes nothing itself: it only borrows the buffers.
        let written = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut self.text, &mut self.serializer)
            .map_err(|_| ())
            .and_then(|mut log| {
                log.write_histogram(h, start, length, Some(tag))
                    .map_err(|_| ())
            });
        if written.is_err() {
            self.skipped += 1;
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.text
    }
}

/// One interval read back from a log.
#[derive(Debug, Clone)]
pub struct LoggedInterval {
    pub tag: Option<String>,
    /// From the log's base time.
    pub start: Duration,
    pub length: Duration,
    pub histogram: Histogram<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    #[error("latency log line {line}: {reason}")]
    Line { line: usize, reason: String },
}

/// Reads every interval of an interval log (as written by mailswarm or HdrHistogram's tools).
pub fn read_latency_log(text: &[u8]) -> Result<Vec<LoggedInterval>, LogReadError> {
    use base64::Engine as _;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    let mut deserializer = Deserializer::new();
    let mut out = Vec::new();
    for (i, entry) in IntervalLogIterator::new(text).enumerate() {
        let fail = |reason: String| LogReadError::Line {
            line: i + 1,
            reason,
        };
        let LogEntry::Interval(interval) = entry.map_err(|e| fail(format!("{e:?}")))? else {
            continue;
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| fail(format!("bad base64: {e}")))?;
        let histogram = deserializer
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| fail(format!("bad histogram: {e:?}")))?;
        out.push(LoggedInterval {
            tag: interval.tag().map(|t| t.as_str().to_string()),
            start: interval.start_timestamp(),
            length: interval.duration(),
            histogram,
        });
    }
    Ok(out)
}
