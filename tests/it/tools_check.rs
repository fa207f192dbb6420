//! `velo check` against directories built by the test: clean when healthy (garbage records are not
//! damage), and after each kind of injected damage a finding naming the exact file and offset. Damaged
//! input (random bytes, truncations, bit flips in every file) never panics any of the offline tools.

use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use velo::inspect::{self, DataDir};

use crate::support::server::TestServer;
use crate::tools_fixtures::{chunk_files, flip, velo, velo_json, Healthy};

/// Runs `velo check --json`; returns the exit code and the findings as (severity, file, offset).
/// A finding: severity, file, offset, what.
type Finding = (String, PathBuf, Option<u64>, String);

fn check(dir: &Path) -> (i32, Vec<Finding>, Value) {
    let (code, report) = velo_json(&["check", "--dir", dir.to_str().unwrap()]);
    let findings = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                PathBuf::from(f["file"].as_str().unwrap()),
                f["offset"].as_u64(),
                f["what"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (code, findings, report)
}

fn assert_damage_at(dir: &Path, file: &Path, offset: u64) {
    let (code, findings, report) = check(dir);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["clean"], false);
    assert!(
        findings.iter().any(|(sev, f, o, _)| sev == "damage" && f == file && *o == Some(offset)),
        "no damage finding at {}:{offset}: {findings:#?}",
        file.display()
    );
}

/// The WAL file (of slot 0 or 1, `wal.log` or `wal-1.log`) holding the most records.
fn wal_with_records(dir: &Path) -> PathBuf {
    let candidates = (0..2).flat_map(|s| ["wal.log", "wal-1.log"].map(|name| dir.join(format!("slot-{s}/{name}"))));
    candidates.max_by_key(|path| std::fs::metadata(path).map_or(0, |m| m.len())).unwrap()
}

#[test]
fn healthy_directory_is_clean() {
    let fixture = Healthy::new();
    let (code, findings, report) = check(&fixture.dir);
    assert_eq!(code, 0, "{report}");
    assert!(findings.is_empty(), "{findings:#?}");
    let stats = &report["stats"];
    assert_eq!(stats["slots"], 2);
    assert!(stats["garbage_records"].as_u64().unwrap() >= 60, "the first versions of doc:N are garbage: {stats}");
    assert_eq!(stats["big_files"], 1);
    assert_eq!(stats["wal_records"], 6);
    assert!(stats["cells"].as_u64().unwrap() >= 265);
    let (code, report) = velo_json(&["check", "--dir", fixture.dir.to_str().unwrap(), "--slot", "1"]);
    assert_eq!((code, report["stats"]["slots"].as_u64()), (0, Some(1)));
    let out = velo(&["check", "--dir", fixture.dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("clean: 2 slots"));
}

#[test]
fn bit_flips_are_found_at_their_file_and_offset() {
    let fixture = Healthy::new();

    let dir = fixture.copy("page");
    flip(&dir.join("slot-0/buckets"), 4096 + 100, 3);
    assert_damage_at(&dir, &dir.join("slot-0/buckets"), 4096);

    let dir = fixture.copy("page-header");
    flip(&dir.join("slot-1/buckets"), 2, 0);
    assert_damage_at(&dir, &dir.join("slot-1/buckets"), 0);

    // The first segment of a chunk file, then a later one.
    let dir = fixture.copy("segment");
    let chunk = chunk_files(&dir.join("slot-0")).remove(0);
    flip(&chunk, 16 + 30, 5);
    assert_damage_at(&dir, &chunk, 16);
    let dir = fixture.copy("segment-later");
    let (_, seg) = velo_json(&["inspect-segment", "--dir", dir.to_str().unwrap(), "--slot", "1", "--file", "1"]);
    let third = seg["segments"][2]["offset"].as_u64().unwrap();
    let chunk = chunk_files(&dir.join("slot-1")).remove(0);
    flip(&chunk, third + 20, 1);
    assert_damage_at(&dir, &chunk, third);

    let dir = fixture.copy("big");
    let (_, path) = velo_json(&["inspect-bucket", "--dir", dir.to_str().unwrap(), "--key", "blob:big"]);
    let big = PathBuf::from(path["record"]["path"].as_str().unwrap());
    flip(&big, 5000, 2);
    assert_damage_at(&dir, &big, 16);

    // The first WAL record of a WAL whose later records prove it was synced.
    let dir = fixture.copy("wal");
    let wal = wal_with_records(&dir);
    flip(&wal, 16 + 30, 4);
    assert_damage_at(&dir, &wal, 16);

    let dir = fixture.copy("slot-meta");
    flip(&dir.join("slot-1/meta"), 40, 0);
    let (code, findings, _) = check(&dir);
    assert_eq!(code, 1);
    assert!(
        findings.iter().any(|(s, f, o, _)| s == "damage" && *f == dir.join("slot-1/meta") && o.is_some()),
        "{findings:#?}"
    );

    let dir = fixture.copy("dir-meta");
    flip(&dir.join("velo.meta"), 20, 0);
    let (code, findings, _) = check(&dir);
    assert_eq!(code, 1);
    assert!(
        findings.iter().any(|(s, f, o, _)| s == "damage" && *f == dir.join("velo.meta") && o.is_some()),
        "{findings:#?}"
    );

    // A complete double-write batch whose checksum is wrong.
    let dir = fixture.copy("dwb");
    let mut bytes = velo::engine::format::file_header(velo::engine::format::MAGIC_DOUBLE_WRITE, 0).to_vec();
    bytes.extend_from_slice(&[7u8; 40]);
    let trailer_at = bytes.len() as u64;
    bytes.extend_from_slice(&40u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&0xdeadbeefu32.to_le_bytes());
    bytes.extend_from_slice(b"VDWBDONE");
    std::fs::write(dir.join("slot-0/dwb"), bytes).unwrap();
    assert_damage_at(&dir, &dir.join("slot-0/dwb"), trailer_at);
}

#[test]
fn truncations_and_missing_files() {
    let fixture = Healthy::new();

    let dir = fixture.copy("chunk-cut");
    let chunk = chunk_files(&dir.join("slot-1")).remove(0);
    let (_, seg) = velo_json(&["inspect-segment", "--dir", dir.to_str().unwrap(), "--slot", "1", "--file", "1"]);
    let last = seg["segments"].as_array().unwrap().last().unwrap()["offset"].as_u64().unwrap();
    let len = std::fs::metadata(&chunk).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&chunk).unwrap().set_len(len - 10).unwrap();
    assert_damage_at(&dir, &chunk, last);
    assert_damage_at(&dir, &chunk, len - 10);

    let dir = fixture.copy("buckets-cut");
    std::fs::OpenOptions::new().write(true).open(dir.join("slot-0/buckets")).unwrap().set_len(4096).unwrap();
    assert_damage_at(&dir, &dir.join("slot-0/buckets"), 4096);

    let dir = fixture.copy("big-cut");
    let (_, path) = velo_json(&["inspect-bucket", "--dir", dir.to_str().unwrap(), "--key", "blob:big"]);
    let big = PathBuf::from(path["record"]["path"].as_str().unwrap());
    std::fs::OpenOptions::new().write(true).open(&big).unwrap().set_len(1000).unwrap();
    assert_damage_at(&dir, &big, 16);

    // A big value that is gone: the finding names the page whose cell points at it.
    let dir = fixture.copy("big-gone");
    std::fs::remove_file(dir.join(big.strip_prefix(fixture.dir.with_file_name("big-cut")).unwrap())).unwrap();
    let page = path["pages"][0]["offset"].as_u64().unwrap();
    let slot = path["slot"].as_u64().unwrap();
    assert_damage_at(&dir, &dir.join(format!("slot-{slot}/buckets")), page);

    // A cut WAL tail is a torn tail: never synced, dropped on open; a warning, not damage.
    let dir = fixture.copy("wal-cut");
    let wal = wal_with_records(&dir);
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&wal).unwrap().set_len(len - 3).unwrap();
    let (code, findings, _) = check(&dir);
    assert_eq!(code, 0, "{findings:#?}");
    assert!(
        findings.iter().any(|(s, f, _, what)| s == "warning" && *f == wal && what.contains("torn tail")),
        "{findings:#?}"
    );
}

/// Random bytes, truncations and bit flips in every file never panic check, inspect-bucket,
/// inspect-segment or bigkeys; damage to a verified file is always reported.
#[test]
fn damaged_input_never_panics() {
    let fixture = Healthy::new();
    let mut rng = SmallRng::seed_from_u64(99);
    let mut files = Vec::new();
    for entry in walk(&fixture.dir) {
        if entry.file_name().is_some_and(|n| n != "LOCK") {
            files.push(entry.strip_prefix(&fixture.dir).unwrap().to_path_buf());
        }
    }
    assert!(files.len() >= 12, "{files:?}");
    let work = fixture.copy("fuzz");
    for relative in &files {
        let original = std::fs::read(fixture.dir.join(relative)).unwrap();
        let target = work.join(relative);
        let mut variants: Vec<Vec<u8>> = Vec::new();
        variants.push((0..original.len().max(64)).map(|_| rng.gen()).collect());
        for cut in [0, 1, 15, 16, original.len() / 2, original.len().saturating_sub(1)] {
            variants.push(original[..cut.min(original.len())].to_vec());
        }
        for _ in 0..8 {
            let mut bytes = original.clone();
            if !bytes.is_empty() {
                let at = rng.gen_range(0..bytes.len());
                bytes[at] ^= 1 << rng.gen_range(0..8);
            }
            variants.push(bytes);
        }
        for bytes in variants {
            std::fs::write(&target, &bytes).unwrap();
            let dir = match DataDir::open(&work) {
                Ok(dir) => dir,
                Err(_) => continue,
            };
            let report = inspect::check::check(&dir, None, &|_| {});
            let changed = bytes != original;
            // A torn tail of the WAL or the transaction log is tolerated (a warning), as recovery tolerates it.
            let verified = !relative.ends_with("dwb")
                && !relative.ends_with("wal.log")
                && !relative.ends_with("wal-1.log")
                && !relative.ends_with("txlog");
            if changed && verified && !bytes.is_empty() {
                assert!(
                    !report.clean || report.findings.iter().any(|f| f.file.ends_with(relative)),
                    "{} damaged but check is clean",
                    relative.display()
                );
            }
            for key in ["user:1", "doc:3", "blob:big", "h:large"] {
                let _ = inspect::bucket::inspect_key(&dir, 0, key.as_bytes(), true);
            }
            for slot in 0..2 {
                let _ = inspect::bucket::inspect_bucket(&dir, slot, 0, true);
                let _ = inspect::segment::inspect(
                    &dir,
                    slot,
                    inspect::segment::Target::Chunk { id: 1, offset: None },
                    true,
                );
            }
            let _ = inspect::bigkeys::offline(&dir, None, 3, 10, &|_| {});
        }
        std::fs::write(&target, &original).unwrap();
    }
    let (code, findings, _) = check(&work);
    assert_eq!(code, 0, "restored copy is clean again: {findings:#?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out.sort();
    out
}

/// Read-only beside a running server: the lock it holds does not stop check, and a checkpointed,
/// synced directory is clean.
#[test]
fn check_beside_a_running_server() {
    let temp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(temp.path(), &["--fsync", "always"]);
    let mut conn = server.connect();
    for n in 0..300 {
        conn.cmd(&["SET", &format!("k:{n}"), &"v".repeat(n % 90)]);
    }
    let (code, findings, report) = check(temp.path());
    assert_eq!(code, 0, "{findings:#?} {report}");
    let (code, report) = velo_json(&["inspect-bucket", "--dir", temp.path().to_str().unwrap(), "--key", "k:7"]);
    assert_eq!(code, 0);
    // Not checkpointed yet: the server keeps it in the WAL.
    assert!(report["cell"].is_object() || !report["wal"].as_array().unwrap().is_empty(), "{report}");
    drop(server);
}

/// The slot's index of segment references is bounded: with a bound of one reference the chunk files
/// are matched in batches (the pages walked again for each), and the report is the same as with the
/// whole index in memory, on a healthy directory and on one with a damaged segment.
#[test]
fn a_bounded_reference_index_gives_the_same_report() {
    let fixture = Healthy::new();
    let damaged = fixture.copy("bounded-segment");
    let chunk = chunk_files(&damaged.join("slot-0")).remove(0);
    flip(&chunk, 16 + 30, 5);
    for dir in [fixture.dir.clone(), damaged] {
        let data = DataDir::open(&dir).unwrap();
        let whole = inspect::check::check(&data, None, &|_| {});
        let batched = inspect::check::check_with_budget(&data, None, &|_| {}, 1);
        let shape = |r: &inspect::check::CheckReport| {
            let findings: Vec<_> =
                r.findings.iter().map(|f| (f.severity, f.file.clone(), f.offset, f.what.clone())).collect();
            (r.clean, findings, serde_json::to_value(&r.stats).unwrap())
        };
        assert_eq!(shape(&whole), shape(&batched), "{}", dir.display());
    }
}

/// Damage in a segment no cell points into (all its records are garbage) is still found: such a
/// segment is verified by its CRC over the stored bytes, without decompressing it.
#[test]
fn damage_in_a_garbage_segment_is_found() {
    let fixture = Healthy::new();
    // The first versions of doc:N were overwritten: find a segment with no live record.
    for slot in 0..2 {
        let (_, seg) = velo_json(&[
            "inspect-segment",
            "--dir",
            fixture.dir.to_str().unwrap(),
            "--slot",
            &slot.to_string(),
            "--file",
            "1",
        ]);
        let garbage = seg["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["records"].as_array().unwrap().iter().all(|r| r["live"] == false));
        let Some(garbage) = garbage else { continue };
        let offset = garbage["offset"].as_u64().unwrap();
        let dir = fixture.copy(&format!("garbage-segment-{slot}"));
        let chunk = chunk_files(&dir.join(format!("slot-{slot}"))).remove(0);
        flip(&chunk, offset + 20, 6);
        assert_damage_at(&dir, &chunk, offset);
        return;
    }
    panic!("the fixture has no segment without live records");
}

/// More kinds of damage: a chunk file the metadata commits that is gone (named, and every cell pointing
/// into it named at its page), a cut slot metadata file, and exit code 2 (an error, not a finding) for a
/// directory that is not a Velo data directory.
#[test]
fn missing_chunk_file_cut_metadata_and_errors() {
    let fixture = Healthy::new();

    let dir = fixture.copy("chunk-gone");
    let chunk = chunk_files(&dir.join("slot-0")).remove(0);
    std::fs::remove_file(&chunk).unwrap();
    let (code, findings, report) = check(&dir);
    assert_eq!(code, 1, "{report}");
    assert!(
        findings.iter().any(|(s, f, o, what)| s == "damage" && *f == chunk && o.is_none() && what.contains("missing")),
        "{findings:#?}"
    );
    assert!(
        findings.iter().any(|(s, f, o, what)| s == "damage"
            && *f == dir.join("slot-0/buckets")
            && o.is_some_and(|o| o % 4096 == 0 && o > 0)
            && what.contains("a cell points to chunk-00000001.dat")),
        "{findings:#?}"
    );

    let dir = fixture.copy("meta-cut");
    let meta = dir.join("slot-1/meta");
    let len = std::fs::metadata(&meta).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&meta).unwrap().set_len(len / 2).unwrap();
    let (code, findings, report) = check(&dir);
    assert_eq!(code, 1, "{report}");
    assert!(findings.iter().any(|(s, f, o, _)| s == "damage" && *f == meta && o.is_some()), "{findings:#?}");

    let empty = tempfile::tempdir().unwrap();
    let out = velo(&["check", "--dir", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("velo check: error: "));
    let out = velo(&["check", "--dir", empty.path().join("nothing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// A failed reference is named at the page of the cell holding it (the reference index keeps no page
/// numbers: the pages are walked again to find it): with a chunk file gone, every such finding's page
/// has a cell pointing at the segment record the finding names.
#[test]
fn a_failed_reference_is_named_at_its_cells_page() {
    let fixture = Healthy::new();
    let dir = fixture.copy("chunk-gone-pages");
    let chunk = chunk_files(&dir.join("slot-0")).remove(0);
    let file_id: u64 = chunk.file_name().unwrap().to_str().unwrap()[6..14].parse().unwrap();
    std::fs::remove_file(&chunk).unwrap();
    let (code, findings, report) = check(&dir);
    assert_eq!(code, 1, "{report}");
    let prefix = format!("a cell points to {} segment ", chunk.file_name().unwrap().to_str().unwrap());
    let named: Vec<&Finding> = findings.iter().filter(|(_, _, _, what)| what.starts_with(&prefix)).collect();
    assert!(!named.is_empty(), "{findings:#?}");
    for (severity, file, offset, what) in named {
        assert_eq!((severity.as_str(), file), ("damage", &dir.join("slot-0/buckets")), "{what}");
        let words: Vec<&str> = what.split_whitespace().collect();
        let (segment, record): (u64, u64) =
            (words[6].parse().unwrap(), words[8].trim_end_matches(',').parse().unwrap());
        let page = offset.unwrap() / 4096;
        let (_, listing) = velo_json(&[
            "inspect-bucket",
            "--dir",
            dir.to_str().unwrap(),
            "--slot",
            "0",
            "--bucket",
            &(page - 1).to_string(),
        ]);
        let first = &listing["pages"][0];
        assert_eq!(first["page"], page, "{listing}");
        assert!(
            first["cells"].as_array().unwrap().iter().any(|cell| cell["file"] == file_id
                && cell["segment_offset"] == segment
                && cell["record_offset"] == record),
            "{what}: {listing}"
        );
    }
}

/// A directory written by the engine whose bucket chains have overflow pages: long keys (about 14 cells
/// to a page) make some buckets outgrow their page before the slot's average fill splits them. Returns
/// the directory and a (slot, bucket) whose chain has at least two pages.
fn with_overflow_chains(temp: &Path) -> (PathBuf, usize, u64) {
    let dir = temp.join("chains");
    let engine = velo::engine::Engine::open(&dir, crate::tools_fixtures::options()).unwrap();
    for n in 0..1500 {
        let key = format!("chain:{n:05}:{}", "k".repeat(260));
        engine.set(0, key.as_bytes(), velo::engine::ValueKind::String, b"v", None).unwrap();
    }
    engine.close().unwrap();
    let data = DataDir::open(&dir).unwrap();
    for slot in 0..data.slot_count as usize {
        let view = data.slot(slot).unwrap();
        for bucket in 0..view.meta.bucket_count() {
            if view.chain(bucket).pages.len() >= 2 {
                return (dir, slot, bucket);
            }
        }
    }
    panic!("no bucket chain with an overflow page");
}

/// Damage in an overflow page of a chain: `check` names the overflow file and the page's offset (exit 1),
/// and `inspect-bucket` shows the checksum failure on the path of a key whose chain runs through it
/// (exit 1), with the pages before it verified.
#[test]
fn damage_in_an_overflow_chain_is_found_and_shown_on_the_path() {
    let temp = tempfile::tempdir().unwrap();
    let (healthy, slot, bucket) = with_overflow_chains(temp.path());
    let (code, findings, _) = check(&healthy);
    assert_eq!(code, 0, "{findings:#?}");
    // The key of the first cell of the chain's second page (an overflow page).
    let (_, listing) = velo_json(&[
        "inspect-bucket",
        "--dir",
        healthy.to_str().unwrap(),
        "--slot",
        &slot.to_string(),
        "--bucket",
        &bucket.to_string(),
    ]);
    let second = &listing["pages"][1];
    assert_eq!(second["file"], "overflow", "{listing}");
    let page = second["page"].as_u64().unwrap();
    let key = second["cells"][0]["key"].as_str().unwrap().trim_matches('"').to_string();

    let dir = temp.path().join("chains-damaged");
    crate::tools_fixtures::copy_dir(&healthy, &dir);
    let overflow = dir.join(format!("slot-{slot}/overflow"));
    flip(&overflow, page * 4096 + 300, 2);
    assert_damage_at(&dir, &overflow, page * 4096);
    let (_, findings, _) = check(&dir);
    let finding = findings.iter().find(|(_, f, o, _)| *f == overflow && *o == Some(page * 4096)).unwrap();
    assert!(finding.3.contains("checksum"), "{finding:?}");

    let (code, path) = velo_json(&["inspect-bucket", "--dir", dir.to_str().unwrap(), "--key", &key]);
    assert_eq!(code, 1, "{path}");
    let pages = path["pages"].as_array().unwrap();
    assert_eq!(pages[0]["status"], "ok", "{path}");
    let bad =
        pages.iter().find(|p| p["file"] == "overflow" && p["page"] == page).expect("the damaged page is on the path");
    assert_eq!(bad["offset"], page * 4096);
    assert!(bad["status"].as_str().unwrap().contains("checksum mismatch"), "{bad}");
    let out = velo(&["inspect-bucket", "--dir", dir.to_str().unwrap(), "--key", &key]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("checksum mismatch"));
}

/// Damage in the transaction log (a commit record followed by valid ones, so not a torn tail) and in a
/// bulk load's commit file (encoded by the engine for a load it staged) is found with its file and offset.
#[test]
fn damage_in_the_transaction_log_and_a_bulk_commit_file_is_found() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("tx");
    let engine = velo::engine::Engine::open(&dir, crate::tools_fixtures::options()).unwrap();
    // Transactions over keys of both slots: each commit goes to the transaction log.
    let keys: Vec<String> = (0..40).map(|n| format!("tx:{n}")).collect();
    let slots: std::collections::BTreeSet<usize> = keys.iter().map(|k| engine.slot_of(k.as_bytes())).collect();
    assert_eq!(slots.len(), 2);
    for round in 0..4 {
        let tx = engine.transaction();
        for key in &keys {
            engine
                .set(0, key.as_bytes(), velo::engine::ValueKind::String, format!("v{round}").as_bytes(), None)
                .unwrap();
        }
        tx.commit().unwrap();
    }
    engine.sync().unwrap();
    drop(engine);
    let txlog = dir.join(velo::engine::txn::TXLOG_FILE);
    let (commits, end) =
        velo::engine::txn::decode_log(&std::fs::read(&txlog).unwrap(), &txlog).expect("the log decodes");
    assert!(commits.len() >= 2, "{commits:?}");
    assert_eq!(end, std::fs::metadata(&txlog).unwrap().len());
    let (code, findings, _) = check(&dir);
    assert_eq!(code, 0, "{findings:#?}");

    let damaged = temp.path().join("tx-damaged");
    crate::tools_fixtures::copy_dir(&dir, &damaged);
    let txlog = damaged.join(velo::engine::txn::TXLOG_FILE);
    flip(&txlog, 16 + 9, 1);
    assert_damage_at(&damaged, &txlog, 16);

    // A bulk load staged by the engine, with a commit file the engine's encoder wrote, then damaged.
    let dir = temp.path().join("bulk");
    let engine = velo::engine::Engine::open(&dir, crate::tools_fixtures::options()).unwrap();
    let mut load = engine.bulk_load().unwrap();
    for n in 0..100u32 {
        let key = format!("bulk:{n}").into_bytes();
        let op = velo::engine::BatchOp::Set {
            db: 0,
            key: key.clone(),
            kind: velo::engine::ValueKind::String,
            value: b"staged".to_vec(),
            expire_at_ms: None,
        };
        load.write_slot(engine.slot_of(&key), vec![op]).unwrap();
    }
    let staging = velo::engine::bulk::staging_dir(&dir);
    let plan = velo::engine::bulk::CommitPlan { slots: vec![(0, 1, vec!["meta".into()]), (1, 1, vec!["meta".into()])] };
    let commit = staging.join(velo::engine::bulk::COMMIT_FILE);
    std::fs::write(&commit, plan.encode()).unwrap();
    let (code, findings, _) = check(&dir);
    assert_eq!(code, 0, "a committed load not yet moved is a warning: {findings:#?}");
    assert!(findings.iter().any(|(s, f, _, _)| s == "warning" && *f == commit), "{findings:#?}");
    flip(&commit, 16 + 6, 3);
    assert_damage_at(&dir, &commit, 16);
    std::fs::remove_file(&commit).unwrap();
    drop(load);
    drop(engine);
}
