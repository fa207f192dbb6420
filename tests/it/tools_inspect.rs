//! `velo inspect-bucket` and `velo inspect-segment` against a directory built by the test: the path of
//! known keys (inline, segment, big value, WAL-only versions), bucket listings, and segment liveness
//! after overwrites.

use serde_json::Value;
use velo::engine::{Engine, ValueKind};

use crate::tools_fixtures::{options, velo, velo_json, Healthy};

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[test]
fn key_path_of_inline_segment_and_big_values() {
    let fixture = Healthy::new();
    let dir = fixture.dir.to_str().unwrap();

    let (code, report) = velo_json(&["inspect-bucket", "--dir", dir, "--key", "user:1"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(s(&report["key"]), "\"user:1\"");
    let hash_slot = velo::engine::key::hash_slot(b"user:1");
    assert_eq!(report["hash_slot"], hash_slot);
    assert_eq!(report["slot"], velo::engine::key::internal_slot(hash_slot, 2));
    assert_eq!(report["slot_count"], 2);
    assert_eq!(s(&report["status"]), "found");
    let hash = velo::engine::key::key_hash(0, b"user:1");
    assert_eq!(s(&report["key_hash"]), format!("{hash:016x}"));
    let pages = report["pages"].as_array().unwrap();
    assert!(!pages.is_empty());
    assert!(pages.iter().all(|p| p["status"] == "ok"), "{report}");
    assert_eq!(pages[0]["file"], "buckets");
    assert_eq!(pages[0]["page"], report["bucket"].as_u64().unwrap() + 1);
    assert_eq!(pages[0]["offset"], (report["bucket"].as_u64().unwrap() + 1) * 4096);
    let cell = &report["cell"];
    assert_eq!(cell["type"], "string");
    assert_eq!(cell["storage"], "inline");
    assert_eq!(cell["envelope"]["codec"], "raw");
    // The newer version of user:1 is only in the WAL.
    let wal = report["wal"].as_array().unwrap();
    assert_eq!(wal.len(), 1, "{report}");
    assert_eq!(wal[0]["op"], "set");
    assert!(wal[0]["seq"].as_u64().unwrap() > report["checkpoint_seq"].as_u64().unwrap());

    let (code, report) = velo_json(&["inspect-bucket", "--dir", dir, "--key", "doc:3", "--values"]);
    assert_eq!(code, 0);
    assert_eq!(report["cell"]["storage"], "segment", "{report}");
    let record = &report["record"];
    assert_eq!(record["status"], "ok");
    assert_eq!(record["offset"], report["cell"]["segment_offset"]);
    assert!(s(&record["path"]).ends_with("chunk-00000001.dat"));
    assert_eq!(record["envelope"]["raw_len"], 200);
    // The second round wrote doc:3 as letters starting at 'a' + 3 + 1.
    assert!(s(&record["value"]).starts_with("\"efgh"), "{record}");
    assert_eq!(report["wal"].as_array().unwrap().len(), 0);

    let (_, report) = velo_json(&["inspect-bucket", "--dir", dir, "--key", "blob:big"]);
    assert_eq!(report["cell"]["storage"], "big");
    assert!(s(&report["record"]["path"]).ends_with(".val"));
    assert_eq!(report["record"]["status"], "ok");
    assert_eq!(report["record"]["envelope"]["raw_len"], 20000);

    // Expiry, another database, and a key redis-cli escapes.
    let (_, report) = velo_json(&["inspect-bucket", "--dir", dir, "--key", "exp:1"]);
    assert_eq!(report["cell"]["expire_at_ms"], 9_000_000_000_000u64);
    let (_, report) = velo_json(&["inspect-bucket", "--dir", dir, "--key", "wal:2"]);
    assert_eq!(s(&report["status"]), "not_found");
    assert_eq!(report["wal"][0]["op"], "set", "a key only in the WAL is shown there");
    let (code, report) = velo_json(&["inspect-bucket", "--dir", dir, "--key", "nosuch"]);
    assert_eq!((code, s(&report["status"])), (0, "not_found"));

    // Text output names the path too.
    let out = velo(&["inspect-bucket", "--dir", dir, "--key", "user:1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("hash slot    {hash_slot}")), "{text}");
    assert!(text.contains("newer versions not yet checkpointed"), "{text}");
}

#[test]
fn escaped_keys_and_other_databases() {
    let fixture = Healthy::new();
    let dir = fixture.dir.to_str().unwrap();
    let engine_key = b"odd\n\"key\"\xff";
    let slot = velo::engine::key::internal_slot(velo::engine::key::hash_slot(engine_key), 2);
    let bucket_of = |db: u16| {
        // The bucket listing shows every cell; find the one holding the odd key.
        (0..2u64)
            .map(|b| {
                velo_json(&["inspect-bucket", "--dir", dir, "--slot", &slot.to_string(), "--bucket", &b.to_string()]).1
            })
            .find(|r| {
                r["pages"].as_array().unwrap().iter().any(|p| {
                    p["cells"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|c| c["db"] == db && c["key"] == "\"odd\\n\\\"key\\\"\\xff\"")
                })
            })
    };
    let report = bucket_of(1).expect("the odd key is listed, escaped as redis-cli escapes it");
    assert_eq!(report["slot"], slot);
    assert!(report["pages"][0]["cells"].as_array().unwrap().len() > 1);
}

#[test]
fn bucket_listing_and_bad_addresses() {
    let fixture = Healthy::new();
    let dir = fixture.dir.to_str().unwrap();
    let (code, report) = velo_json(&["inspect-bucket", "--dir", dir, "--slot", "0", "--bucket", "0"]);
    assert_eq!(code, 0);
    let cells: usize = report["pages"].as_array().unwrap().iter().map(|p| p["cells"].as_array().unwrap().len()).sum();
    assert_eq!(
        cells as u64,
        report["pages"].as_array().unwrap().iter().map(|p| p["cell_count"].as_u64().unwrap()).sum::<u64>()
    );
    assert!(cells > 10);
    let out = velo(&["inspect-bucket", "--dir", dir, "--slot", "0", "--bucket", "99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bucket 99 does not exist"));
    let out = velo(&["inspect-bucket", "--dir", dir, "--slot", "7", "--bucket", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Every record a live cell points at is live, every other record garbage; an overwrite turns a live
/// record into garbage.
#[test]
fn segment_liveness_follows_overwrites() {
    let fixture = Healthy::new();
    let dir = fixture.dir.to_str().unwrap();
    let slot = velo::engine::key::internal_slot(velo::engine::key::hash_slot(b"doc:0"), 2).to_string();
    let (code, report) = velo_json(&["inspect-segment", "--dir", dir, "--slot", &slot, "--file", "1"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["kind"], "chunk");
    assert_eq!(report["header"], "ok");
    let records: Vec<&Value> =
        report["segments"].as_array().unwrap().iter().flat_map(|seg| seg["records"].as_array().unwrap()).collect();
    // Every doc key of this slot was written twice: one live and one garbage record each.
    let docs: Vec<&&Value> = records.iter().filter(|r| s(&r["key"]).starts_with("\"doc:")).collect();
    let live = docs.iter().filter(|r| r["live"] == true).count();
    assert!(live > 5);
    assert_eq!(live * 2, docs.len(), "{report}");
    // Each live record is where its key's cell points; each garbage one is not.
    for segment in report["segments"].as_array().unwrap() {
        for record in
            segment["records"].as_array().unwrap().iter().filter(|r| s(&r["key"]).starts_with("\"doc:")).take(3)
        {
            let key = s(&record["key"]).trim_matches('"').to_string();
            let (_, path) = velo_json(&["inspect-bucket", "--dir", dir, "--key", &key]);
            let points_here = path["cell"]["segment_offset"] == segment["offset"]
                && path["cell"]["record_offset"] == record["record_offset"];
            assert_eq!(points_here, record["live"] == true, "{key}: {record} vs {path}");
        }
    }
    let summary = &report["summary"];
    let share = summary["live_share"].as_f64().unwrap();
    assert!(share > 0.3 && share < 0.8, "{summary}");
    assert_eq!(summary["records"].as_u64().unwrap() as usize, records.len());

    // Overwrite doc:0 and checkpoint: its old record becomes garbage.
    let (_, before) = velo_json(&["inspect-bucket", "--dir", dir, "--key", "doc:0"]);
    let engine = Engine::open(&fixture.dir, options()).expect("open");
    engine.set(0, b"doc:0", ValueKind::String, &[b'z'; 300], None).unwrap();
    engine.close().unwrap();
    let segment = format!("1:{}", before["cell"]["segment_offset"]);
    let (code, report) = velo_json(&["inspect-segment", "--dir", dir, "--slot", &slot, "--segment", &segment]);
    assert_eq!(code, 0);
    assert_eq!(report["segments"].as_array().unwrap().len(), 1);
    let old = report["segments"][0]["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "\"doc:0\"" && r["record_offset"] == before["cell"]["record_offset"])
        .expect("the old record is still in its segment");
    assert_eq!(old["live"], false);
    let (_, after) = velo_json(&["inspect-bucket", "--dir", dir, "--key", "doc:0"]);
    assert_ne!(after["cell"]["segment_offset"], before["cell"]["segment_offset"]);
}

#[test]
fn segment_by_offset_big_files_and_values() {
    let fixture = Healthy::new();
    let dir = fixture.dir.to_str().unwrap();
    let (_, path) = velo_json(&["inspect-bucket", "--dir", dir, "--key", "doc:5"]);
    let slot = path["slot"].to_string();
    let offset = path["cell"]["segment_offset"].to_string();
    let (code, report) = velo_json(&[
        "inspect-segment",
        "--dir",
        dir,
        "--slot",
        &slot,
        "--file",
        "chunk-00000001.dat",
        "--offset",
        &offset,
        "--values",
    ]);
    assert_eq!(code, 0);
    let record = report["segments"][0]["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "\"doc:5\"" && r["live"] == true)
        .unwrap()
        .clone();
    assert!(s(&record["value"]).starts_with('"'));
    assert_eq!(record["envelope"]["kind"], "string");
    let out = velo(&["inspect-segment", "--dir", dir, "--slot", &slot, "--file", "1", "--offset", "17"]);
    assert_eq!(out.status.code(), Some(2), "no segment starts at 17");

    let (_, big) = velo_json(&["inspect-bucket", "--dir", dir, "--key", "blob:big"]);
    let name = s(&big["record"]["path"]).rsplit('/').next().unwrap().to_string();
    let (code, report) =
        velo_json(&["inspect-segment", "--dir", dir, "--slot", &big["slot"].to_string(), "--file", &name]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["kind"], "big");
    assert_eq!(report["segments"][0]["records"][0]["live"], true);
    assert_eq!(report["summary"]["live_share"], 1.0);
}
