//! Every engine decoder fed random bytes and mutated valid records: errors, never panics (the same
//! decoders a cargo-fuzz target would hammer, run in the normal suite).

use std::path::Path;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use velo::engine::envelope::{self, CompressionPolicy, DictionaryMap, ValueKind};
use velo::engine::meta::{DataDirMeta, SlotMeta};
use velo::engine::page::{Cell, CellValue, Page, PAGE_KIND_PRIMARY, PAGE_SIZE};
use velo::engine::segment::{self, SegmentWriter};
use velo::engine::{dwb, format, wal};

fn mutate(rng: &mut SmallRng, valid: &[u8]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    match rng.gen_range(0..4) {
        0 => bytes.truncate(rng.gen_range(0..=bytes.len())),
        1 => {
            for _ in 0..rng.gen_range(1..8) {
                if !bytes.is_empty() {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] = rng.gen();
                }
            }
        }
        2 => bytes.extend((0..rng.gen_range(1..64)).map(|_| rng.gen::<u8>())),
        _ => bytes = (0..rng.gen_range(0..valid.len() + 64)).map(|_| rng.gen()).collect(),
    }
    bytes
}

#[test]
fn decoders_never_panic_on_hostile_bytes() {
    let mut rng = SmallRng::seed_from_u64(99);
    let path = Path::new("fuzz");
    let page = Page {
        kind: PAGE_KIND_PRIMARY,
        level: 2,
        bucket: 1,
        next_overflow: 0,
        checkpoint_seq: 3,
        cells: vec![Cell {
            hash: 5,
            seq: 1,
            expire_at: 0,
            db: 0,
            key: b"k".to_vec(),
            kind: ValueKind::String,
            value: CellValue::Inline(b"\x00\x00v".to_vec()),
        }],
    }
    .encode();
    let mut writer = SegmentWriter::new(4096, Some(3));
    writer.add(1, 0, b"key", &b"value".repeat(50));
    let segment = writer.seal(1, 16).bytes;
    let mut wal_file = format::file_header(format::MAGIC_WAL, 0).to_vec();
    wal::encode_record(1, 16, wal::WalOp::Set, 0, 0, b"k", b"\x00\x00v", &mut wal_file);
    let slot_meta = SlotMeta { checkpoint_seq: 4, ..Default::default() }.encode();
    let dir_meta = DataDirMeta { slot_count: 4, creation_id: 1 }.encode();
    let big = segment::encode_big_value(1, 0, b"k", b"\x00\x00v");
    let envelope_bytes = envelope::encode(ValueKind::String, &b"abc".repeat(500), CompressionPolicy::default());
    let dictionaries = DictionaryMap::default();
    for _ in 0..4_000 {
        let _ = Page::decode(&mutate(&mut rng, &page[..]), path, 0);
        let _ = velo::engine::page::find_cell(&mutate(&mut rng, &page[..]), 0, b"k");
        let _ = segment::decode_segment(&mutate(&mut rng, &segment), path, 0, None);
        let _ = wal::replay(&mutate(&mut rng, &wal_file), path);
        let _ = wal::decode_record(&mutate(&mut rng, &wal_file[16..]));
        let _ = SlotMeta::decode(&mutate(&mut rng, &slot_meta), path);
        let _ = DataDirMeta::decode(&mutate(&mut rng, &dir_meta), path);
        let _ = segment::decode_big_value(&mutate(&mut rng, &big), path);
        let _ = envelope::decode(&mutate(&mut rng, &envelope_bytes), &dictionaries);
        let _ = dwb::recover(&mutate(&mut rng, &wal_file), path);
    }
    assert_eq!(page.len(), PAGE_SIZE);
}
