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
pub(crate) struct LatencyLogWriter {
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
