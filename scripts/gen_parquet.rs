//! Writes the ingest benchmark's input: `cargo run --release --example gen_parquet -- OUT.parquet ROWS [OUT.resp]`.
//! With OUT.resp it also writes the same rows as RESP `SET` commands, for `redis-cli --pipe`.
//! Columns `key` (16 bytes, `k` + 15 digits, unique) and `value` (100 pseudo-random printable bytes),
//! snappy, one row group per 1M rows (about 128 MB of raw data, as the benchmark asks).

use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args.next().expect("usage: gen_parquet OUT.parquet ROWS");
    let rows: usize = args.next().map(|n| n.parse().expect("ROWS is a number")).unwrap_or(10_000_000);
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ]));
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let mut resp =
        args.next().map(|path| std::io::BufWriter::new(std::fs::File::create(path).expect("create RESP output")));
    let file = std::fs::File::create(&out).expect("create output");
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties)).expect("writer");
    // xorshift: fixed seed, so runs are comparable.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let chunk = 65536;
    let mut start = 0;
    while start < rows {
        let n = chunk.min(rows - start);
        let keys: Vec<String> = (start..start + n).map(|i| format!("k{i:015}")).collect();
        let values: Vec<String> =
            (0..n).map(|_| (0..100).map(|_| (b'!' + (next() % 94) as u8) as char).collect()).collect();
        if let Some(resp) = resp.as_mut() {
            use std::io::Write;
            for (key, value) in keys.iter().zip(&values) {
                write!(resp, "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n", key.len(), value.len())
                    .expect("write RESP");
            }
        }
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(keys)), Arc::new(StringArray::from(values))],
        )
        .expect("batch");
        writer.write(&batch).expect("write");
        start += n;
    }
    writer.close().expect("close");
    if let Some(mut resp) = resp {
        std::io::Write::flush(&mut resp).expect("flush RESP");
    }
}
