//! When a slot's active-expire sweep over its buckets has work: the gate that lets an idle slot without
//! expiring keys read no pages.
//!
//! The sweep (`Slot::active_expire`) visits 16 buckets per slot per call, ten calls a second in the server,
//! whether or not any key has a TTL. With data larger than RAM that was a steady stream of page reads
//! (about 5 MB/s with 8 slots: the whole bucket files read again and again), each through the page cache,
//! evicting the pages GETs wanted. The gate closes once a complete pass over the buckets met no cell the
//! sweep acts on (a key with an expiry, a cell of a flushed database) while nothing that could add one
//! reached the buckets, and opens again when a checkpoint installs expiring entries or FLUSHDB markers.
//! A fresh open starts with it open (the files may hold anything).

/// See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct SweepGate {
    /// The sweep should visit buckets.
    open: bool,
    /// The pass in progress started at bucket 0 (a pass joined midway proves nothing).
    pass_started: bool,
    /// The pass in progress met a cell with an expiry or of a flushed database.
    saw_work: bool,
    /// Something the sweep may act on reached the buckets during the pass in progress.
    dirty: bool,
}

impl Default for SweepGate {
    fn default() -> Self {
        SweepGate { open: true, pass_started: false, saw_work: false, dirty: false }
    }
}

impl SweepGate {
    /// Whether the sweep should visit buckets now.
    pub(crate) fn is_open(&self) -> bool {
        self.open
    }

    /// The sweep is at bucket 0: the pass before it (if it began at bucket 0) is complete. Closes the gate
    /// if that pass found nothing to act on and nothing arrived during it.
    pub(crate) fn pass_boundary(&mut self) {
        if self.pass_started && !self.saw_work && !self.dirty {
            self.open = false;
        }
        self.pass_started = true;
        self.saw_work = false;
        self.dirty = false;
    }

    /// The sweep met a cell it acts on, or will (a future expiry).
    pub(crate) fn saw_work(&mut self) {
        self.saw_work = true;
    }

    /// A checkpoint brought cells the sweep may act on. A closed gate opens for a new pass from bucket 0
    /// (`sweep_bucket` is the slot's sweep position).
    pub(crate) fn wake(&mut self, sweep_bucket: &mut u64) {
        if self.open {
            self.dirty = true;
        } else {
            *self = SweepGate::default();
            *sweep_bucket = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_after_a_whole_clean_pass_only() {
        let mut gate = SweepGate::default();
        let mut position = 7;
        // Joined midway: the first boundary only starts a pass.
        gate.pass_boundary();
        assert!(gate.is_open());
        gate.saw_work();
        gate.pass_boundary();
        assert!(gate.is_open(), "a pass that met expiring cells keeps the sweep going");
        gate.wake(&mut position);
        gate.pass_boundary();
        assert!(gate.is_open(), "expiring cells arrived during that pass: it proves nothing");
        assert_eq!(position, 7, "an open gate keeps its position");
        gate.pass_boundary();
        assert!(!gate.is_open(), "a clean pass closes it");
        gate.wake(&mut position);
        assert!(gate.is_open());
        assert_eq!(position, 0, "a reopened gate starts a pass at bucket 0");
        gate.pass_boundary();
        assert!(gate.is_open());
        gate.pass_boundary();
        assert!(!gate.is_open());
    }
}
