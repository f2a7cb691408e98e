//! The request log: the records in the order the requests came, within a cap in records and in
//! bytes, the oldest dropped first and counted.

use std::collections::VecDeque;

use crate::RequestRecord;

/// The caps of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogLimits {
    /// The most records it holds.
    pub records: usize,
    /// The most bytes its records hold, as [`RequestRecord::heap_size`] counts them.
    pub bytes: usize,
}

/// A record and what the log keeps beside it.
#[derive(Debug)]
struct Entry {
    id: u64,
    /// Whether the request went to a token path (whatever its method).
    token: bool,
    /// The record's size when it was written; a status set later does not change it.
    size: usize,
    record: RequestRecord,
}

/// Where a record sits in the log, for [`Log::set_status`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogSlot(u64);

/// The request log.
#[derive(Debug)]
pub(crate) struct Log {
    entries: VecDeque<Entry>,
    /// The id of the next record: ids are never reused, so a slot taken before the log was
    /// emptied, or before its record was dropped, names no record written after.
    next_id: u64,
    bytes: usize,
    dropped: u64,
    /// How many records were written since the log was last emptied, dropped ones included.
    written: usize,
    limits: LogLimits,
}

impl Log {
    pub(crate) fn new(limits: LogLimits) -> Self {
        Self {
            entries: VecDeque::new(),
            next_id: 0,
            bytes: 0,
            dropped: 0,
            written: 0,
            limits,
        }
    }

    /// Appends a record, dropping the oldest ones while the log is over a cap (but never the
    /// record just written); returns where it is.
    pub(crate) fn push(&mut self, record: RequestRecord, token: bool) -> LogSlot {
        let id = self.next_id;
        self.next_id += 1;
        self.written = self.written.saturating_add(1);
        let size = record.heap_size();
        self.bytes = self.bytes.saturating_add(size);
        self.entries.push_back(Entry {
            id,
            token,
            size,
            record,
        });
        while self.entries.len() > 1
            && (self.entries.len() > self.limits.records || self.bytes > self.limits.bytes)
        {
            if let Some(oldest) = self.entries.pop_front() {
                self.bytes -= oldest.size;
                self.dropped += 1;
            }
        }
        LogSlot(id)
    }

    /// Sets the status of a record written earlier, unless it is no longer in the log.
    pub(crate) fn set_status(&mut self, slot: LogSlot, status: Option<u16>) {
        let Some(first) = self.entries.front().map(|e| e.id) else {
            return;
        };
        let index = slot
            .0
            .checked_sub(first)
            .and_then(|i| usize::try_from(i).ok());
        if let Some(entry) = index.and_then(|i| self.entries.get_mut(i))
            && entry.id == slot.0
        {
            entry.record.status = status;
        }
    }

    /// Empties the log and zeroes its counts.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
        self.dropped = 0;
        self.written = 0;
    }

    /// The records, oldest first.
    pub(crate) fn records(&self) -> impl ExactSizeIterator<Item = &RequestRecord> {
        self.entries.iter().map(|e| &e.record)
    }

    /// How many records it holds.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many records it holds of requests to a token path.
    pub(crate) fn token_requests(&self) -> usize {
        self.entries.iter().filter(|e| e.token).count()
    }

    /// How many records were dropped to keep within the caps since the log was last emptied.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// How many records were written since the log was last emptied, dropped ones included.
    pub(crate) fn written(&self) -> usize {
        self.written
    }
}
