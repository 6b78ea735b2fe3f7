//! Counts and drops: the sink for benchmarks, where only the request path is measured.

use super::Batch;

#[derive(Debug, Default)]
pub struct BlackholeSink {
    pub records: u64,
}

impl BlackholeSink {
    pub fn write(&mut self, batch: &Batch) {
        self.records += batch.records() as u64;
    }
}
