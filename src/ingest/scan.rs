//! The reading side of a load, run on a thread of its own so that decoding and converting rows overlaps
//! with the writes on the caller's thread: Parquet batches are decoded, rows converted to records, and the
//! records sent in chunks over a bounded channel (so memory stays flat whatever the input size).
//!
//! - [`validate`]: the validation pass: rejections, and one duplicate-detection entry per valid row
//!   ([`super::dedup`]); forwards the records when the caller writes or checks keys as it goes.
//! - [`write_pass`]: the second pass of a two-pass load: the rows to write, the losers skipped.
//! - [`key_hashes`] and [`keys`]: the keys of chosen rows read back (contested hashes, messages).

use std::sync::mpsc::SyncSender;

use super::source::ParquetInput;
use super::{dedup, IngestError, Plan, Record, Rejection, REJECTIONS_SHOWN};

/// Everything the reading side needs, shared by reference with the caller's thread.
pub(crate) struct Context<'a> {
    pub inputs: &'a [ParquetInput],
    pub plans: &'a [Plan],
    /// Global row number of each file's first row.
    pub bases: &'a [u64],
    /// Each file as named in messages.
    pub names: &'a [String],
    pub now_ms: u64,
}

/// What the reading thread sends.
pub(crate) enum Message {
    /// A decoded batch: its size (for progress) and the records forwarded, with their global rows.
    Rows { rows: u64, bytes: u64, records: Vec<(u64, Record)> },
    /// Every row of this file has been sent.
    FileDone { file: usize },
}

/// The outcome of the validation pass.
pub(crate) struct Validated {
    /// One [`dedup::entry`] per valid row, sorted.
    pub entries: Vec<u128>,
    /// The first [`REJECTIONS_SHOWN`] rejected rows, with their global rows, in row order.
    pub rejections: Vec<(u64, Rejection)>,
    /// Rows rejected, per file.
    pub rejected: Vec<u64>,
    /// Rows read, per file.
    pub rows: Vec<u64>,
}

/// The receiving side went away (it failed, and reports its own error).
fn hung_up() -> IngestError {
    IngestError::Target("the writer stopped".into())
}

/// Chunk sizes for progress: each file's compressed bytes spread evenly over its rows.
fn bytes_per_row(input: &ParquetInput) -> f64 {
    input.data_bytes() as f64 / input.row_count().max(1) as f64
}

/// The validation pass. With `forward`, valid rows' records are sent, until more than `stop_after` rows
/// have been rejected (a load that will not be written needs no more writes).
pub(crate) fn validate(
    ctx: &Context<'_>,
    total_rows: u64,
    forward: bool,
    stop_after: Option<u64>,
    tx: SyncSender<Message>,
) -> Result<Validated, IngestError> {
    // Sized once from the footers (bounded, in case a footer claims absurd counts): no regrowth copies.
    let mut entries: Vec<u128> = Vec::with_capacity(total_rows.min(1 << 27) as usize);
    let mut rejections = Vec::new();
    let mut rejected = vec![0u64; ctx.inputs.len()];
    let mut rows_read = vec![0u64; ctx.inputs.len()];
    let mut total_rejected = 0u64;
    for (file, input) in ctx.inputs.iter().enumerate() {
        let plan = &ctx.plans[file];
        let base = ctx.bases[file];
        let per_row = bytes_per_row(input);
        let mut row = 0u64;
        for batch in input.batches()? {
            let batch = batch?;
            let sending = forward && stop_after.is_none_or(|limit| total_rejected <= limit);
            let mut records = Vec::with_capacity(if sending { batch.num_rows() } else { 0 });
            for i in 0..batch.num_rows() {
                let global = base + row + i as u64;
                match plan.record(&batch, i, ctx.now_ms) {
                    Err(reason) => {
                        rejected[file] += 1;
                        total_rejected += 1;
                        if rejections.len() < REJECTIONS_SHOWN {
                            let rejection = Rejection { file: ctx.names[file].clone(), row: row + i as u64, reason };
                            rejections.push((global, rejection));
                        }
                    }
                    Ok(record) => {
                        entries.push(dedup::entry(super::key_hash(&record.key), global));
                        if sending {
                            records.push((global, record));
                        }
                    }
                }
            }
            let rows = batch.num_rows() as u64;
            row += rows;
            tx.send(Message::Rows { rows, bytes: (rows as f64 * per_row) as u64, records }).map_err(|_| hung_up())?;
        }
        rows_read[file] = row;
        tx.send(Message::FileDone { file }).map_err(|_| hung_up())?;
    }
    drop(tx);
    // A radix sort on the entries' bytes (hashes: uniform): several times faster than a comparison sort
    // of 16-byte integers, and it runs after the last row was sent, while the writers finish.
    crate::engine::radix::sort_by_key(&mut entries, 16, |&entry| entry);
    Ok(Validated { entries, rejections, rejected, rows: rows_read })
}

/// The write pass of a two-pass load: sends the records of the valid rows not in `skip` (ascending global
/// rows: duplicates' losers and keys left as they exist).
pub(crate) fn write_pass(ctx: &Context<'_>, skip: &[u64], tx: SyncSender<Message>) -> Result<(), IngestError> {
    let mut next_skip = 0;
    for (file, input) in ctx.inputs.iter().enumerate() {
        let plan = &ctx.plans[file];
        let base = ctx.bases[file];
        let per_row = bytes_per_row(input);
        let mut row = 0u64;
        for batch in input.batches()? {
            let batch = batch?;
            let mut records = Vec::with_capacity(batch.num_rows());
            for i in 0..batch.num_rows() {
                let global = base + row + i as u64;
                while next_skip < skip.len() && skip[next_skip] < global {
                    next_skip += 1;
                }
                if skip.get(next_skip) == Some(&global) {
                    continue;
                }
                if let Ok(record) = plan.record(&batch, i, ctx.now_ms) {
                    records.push((global, record));
                }
            }
            let rows = batch.num_rows() as u64;
            row += rows;
            tx.send(Message::Rows { rows, bytes: (rows as f64 * per_row) as u64, records }).map_err(|_| hung_up())?;
        }
        tx.send(Message::FileDone { file }).map_err(|_| hung_up())?;
    }
    Ok(())
}

/// Calls `found(index, key)` for each of `rows` (ascending global rows of valid rows), reading only the
/// row groups that hold them.
fn for_rows(ctx: &Context<'_>, rows: &[u64], mut found: impl FnMut(usize, &[u8])) -> Result<(), IngestError> {
    let mut next = 0;
    for (file, input) in ctx.inputs.iter().enumerate() {
        let plan = &ctx.plans[file];
        let mut group_start = ctx.bases[file];
        for (group, group_rows) in input.row_group_rows().into_iter().enumerate() {
            let group_end = group_start + group_rows;
            if next < rows.len() && rows[next] < group_end {
                let mut batch_start = group_start;
                for batch in input.group_batches(group)? {
                    let batch = batch?;
                    let batch_end = batch_start + batch.num_rows() as u64;
                    while next < rows.len() && rows[next] < batch_end {
                        let key = plan
                            .key(&batch, (rows[next] - batch_start) as usize)
                            .map_err(|what| IngestError::File { file: ctx.names[file].clone(), what })?;
                        found(next, &key);
                        next += 1;
                    }
                    batch_start = batch_end;
                }
            }
            group_start = group_end;
        }
    }
    Ok(())
}

/// The verification halves ([`dedup::halves`]) of the keys of `rows` (ascending), in the same order.
pub(crate) fn key_hashes(ctx: &Context<'_>, rows: &[u64]) -> Result<Vec<u64>, IngestError> {
    let mut out = vec![0u64; rows.len()];
    for_rows(ctx, rows, |index, key| out[index] = dedup::halves(super::key_hash(key)).1)?;
    Ok(out)
}

/// The keys of `rows` (ascending), in the same order.
pub(crate) fn keys(ctx: &Context<'_>, rows: &[u64]) -> Result<Vec<Vec<u8>>, IngestError> {
    let mut out = vec![Vec::new(); rows.len()];
    for_rows(ctx, rows, |index, key| out[index] = key.to_vec())?;
    Ok(out)
}
