//! Input files: expanding PATH arguments (file, directory, glob), opening a Parquet file with a clear
//! message for each kind of damage, and reading it as Arrow record batches whose read errors name the row
//! group and column.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;

use super::IngestError;

/// Rows per Arrow batch: large enough to amortise per-batch work, small enough to keep memory flat.
const BATCH_ROWS: usize = 8192;

/// Expands the PATH arguments: a directory gives its `*.parquet` files sorted by name, a pattern with
/// `*`, `?` or `[` the matching files of its directory sorted, anything else itself.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, IngestError> {
    let mut out = Vec::new();
    for path in paths {
        let text = path.to_string_lossy();
        if path.is_dir() {
            let mut found = list_dir(path, b"*.parquet")?;
            found.sort();
            out.extend(found);
        } else if !path.exists() && text.contains(['*', '?', '[']) {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let pattern = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mut found = list_dir(dir, pattern.as_bytes())?;
            if found.is_empty() {
                return Err(IngestError::Input(format!("{text}: no file matches")));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn list_dir(dir: &Path, pattern: &[u8]) -> Result<Vec<PathBuf>, IngestError> {
    let entries = std::fs::read_dir(dir).map_err(|e| IngestError::Input(format!("{}: {e}", dir.display())))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| IngestError::Input(format!("{}: {e}", dir.display())))?;
        let name = entry.file_name();
        if entry.path().is_file() && crate::glob::matches(pattern, name.to_string_lossy().as_bytes(), false) {
            found.push(entry.path());
        }
    }
    Ok(found)
}

/// How a file is named in messages: its path as given.
pub fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// An opened, footer-checked Parquet file.
pub struct ParquetInput {
    path: PathBuf,
    file: File,
    metadata: Arc<ParquetMetaData>,
    schema: SchemaRef,
}

impl ParquetInput {
    /// Opens `path`, checking the magic bytes and footer length first so that damage gets a plain message,
    /// and every column chunk's codec so that an unsupported one is named before any row is read.
    pub fn open(path: &Path) -> Result<ParquetInput, IngestError> {
        let name = display_name(path);
        let fail = |what: String| IngestError::File { file: name.clone(), what };
        let mut file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        let size = file.metadata().map_err(|e| fail(format!("cannot stat: {e}")))?.len();
        let mut head = [0u8; 4];
        let head_len = file.read(&mut head).map_err(|e| fail(format!("cannot read: {e}")))?;
        if head_len < 4 || &head != b"PAR1" {
            return Err(fail(format!("not a Parquet file (starts with {})", quote_bytes(&head[..head_len]))));
        }
        if size < 12 {
            return Err(fail(format!("not a valid Parquet file: {size} bytes is too short to hold a footer")));
        }
        let mut tail = [0u8; 8];
        file.seek(SeekFrom::End(-8))
            .and_then(|_| file.read_exact(&mut tail))
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if &tail[4..] != b"PAR1" {
            return Err(fail(if &tail[4..7] == b"PAR" {
                format!("the footer magic is wrong: expected \"PAR1\", found {}", quote_bytes(&tail[4..]))
            } else {
                "not a valid Parquet file: it is truncated or has no footer (it starts with \"PAR1\" but does not end with it)"
                    .to_string()
            }));
        }
        let footer_len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
        if footer_len + 12 > size {
            return Err(fail(format!("the footer length {footer_len} does not fit in a {size}-byte file")));
        }
        file.seek(SeekFrom::Start(0)).map_err(|e| fail(format!("cannot read: {e}")))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file.try_clone().map_err(|e| fail(e.to_string()))?)
            .map_err(|e| fail(format!("corrupt footer: {e}")))?;
        let metadata = builder.metadata().clone();
        let schema = builder.schema().clone();
        for (group_index, group) in metadata.row_groups().iter().enumerate() {
            for column in group.columns() {
                let codec = column.compression();
                if matches!(codec, Compression::LZO | Compression::BROTLI(_)) {
                    return Err(fail(format!(
                        "row group {group_index}, column \"{}\": codec {} is not supported (velo reads UNCOMPRESSED, SNAPPY, GZIP, ZSTD, LZ4 and LZ4_RAW)",
                        column.column_path().string(),
                        codec_name(codec)
                    )));
                }
            }
        }
        Ok(ParquetInput { path: path.to_path_buf(), file, metadata, schema })
    }

    /// The Arrow schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Total rows in the footer.
    pub fn row_count(&self) -> u64 {
        self.metadata.file_metadata().num_rows().max(0) as u64
    }

    /// The file's size in bytes of compressed column data (for progress).
    pub fn data_bytes(&self) -> u64 {
        self.metadata.row_groups().iter().map(|g| g.compressed_size().max(0) as u64).sum()
    }

    /// Reads the file batch by batch.
    pub fn batches(&self) -> Result<Batches<'_>, IngestError> {
        let reader = self.reader(None, None)?;
        Ok(Batches { input: self, reader, rows_done: 0 })
    }

    /// Rows of each row group, in order.
    pub fn row_group_rows(&self) -> Vec<u64> {
        self.metadata.row_groups().iter().map(|g| g.num_rows().max(0) as u64).collect()
    }

    /// Reads one row group batch by batch (row numbers in its errors count from the group's start).
    pub fn group_batches(&self, group: usize) -> Result<Batches<'_>, IngestError> {
        let reader = self.reader(Some(group), None)?;
        Ok(Batches { input: self, reader, rows_done: 0 })
    }

    fn reader(&self, group: Option<usize>, column: Option<usize>) -> Result<ParquetRecordBatchReader, IngestError> {
        let file = self.file.try_clone().map_err(|e| self.fail(e.to_string()))?;
        let mut builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| self.fail(format!("corrupt footer: {e}")))?
            .with_batch_size(BATCH_ROWS);
        if let Some(group) = group {
            builder = builder.with_row_groups(vec![group]);
        }
        if let Some(column) = column {
            let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
            builder = builder.with_projection(mask);
        }
        builder.build().map_err(|e| self.fail(format!("cannot read: {e}")))
    }

    fn fail(&self, what: String) -> IngestError {
        IngestError::File { file: display_name(&self.path), what }
    }

    /// After a read error in a batch starting at `row`: reads each column of each row group from the one
    /// holding `row` on its own, and names the first that fails, for a message that says where the damage is.
    fn locate(&self, row: u64, error: &str) -> IngestError {
        let mut start = 0u64;
        for (group, meta) in self.metadata.row_groups().iter().enumerate() {
            let end = start + meta.num_rows().max(0) as u64;
            let holds_or_follows = row < end;
            start = end;
            if !holds_or_follows {
                continue;
            }
            for (index, field) in self.schema.fields().iter().enumerate() {
                let failed = match self.reader(Some(group), Some(index)) {
                    Ok(mut reader) => reader.any(|batch| batch.is_err()),
                    Err(_) => true,
                };
                if failed {
                    return self.fail(format!(
                        "row group {group}, column \"{}\": corrupt page or page header ({error})",
                        field.name()
                    ));
                }
            }
        }
        self.fail(format!("corrupt data near row {row} ({error})"))
    }
}

/// Record batches of one file, in order.
pub struct Batches<'a> {
    input: &'a ParquetInput,
    reader: ParquetRecordBatchReader,
    rows_done: u64,
}

impl Iterator for Batches<'_> {
    type Item = Result<RecordBatch, IngestError>;
    fn next(&mut self) -> Option<Self::Item> {
        // The decoders are third-party code fed untrusted bytes: a panic there becomes an error naming the file.
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.reader.next()));
        match next {
            Ok(None) => None,
            Ok(Some(Ok(batch))) => {
                self.rows_done += batch.num_rows() as u64;
                Some(Ok(batch))
            }
            Ok(Some(Err(error))) => Some(Err(self.input.locate(self.rows_done, &error.to_string()))),
            Err(_) => Some(Err(self.input.fail(format!("the Parquet decoder failed near row {}", self.rows_done)))),
        }
    }
}

fn codec_name(codec: Compression) -> String {
    match codec {
        Compression::BROTLI(_) => "BROTLI".into(),
        Compression::LZO => "LZO".into(),
        other => format!("{other:?}"),
    }
}

/// Bytes for a message: printable ASCII as text in quotes, otherwise hex.
fn quote_bytes(bytes: &[u8]) -> String {
    if !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("\"{}\"", String::from_utf8_lossy(bytes))
    } else {
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("bytes {}", hex.join(" "))
    }
}
