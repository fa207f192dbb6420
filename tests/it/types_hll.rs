//! Differential tests: `velo::types::hll` against a real `redis-server`, byte for byte.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use velo::types::hll::{Hll, HllError};

use crate::types_support::{RedisServer, Reply};

/// Elements of the kinds the test mixes: short text, binary of every tail length, empty.
fn random_element(rng: &mut SmallRng, kind: u32) -> Vec<u8> {
    match kind % 3 {
        0 => format!("member:{}", rng.gen::<u64>()).into_bytes(),
        1 => (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect(),
        _ => (0..rng.gen_range(0..3)).map(|_| rng.gen_range(0..4u8)).collect(),
    }
}

/// PFADDs `elements` in batches to both sides, comparing PFADD's reply, the raw bytes after every
/// batch and, every few batches, PFCOUNT (which also rewrites the cache bytes on both sides).
fn feed(redis: &mut RedisServer, key: &str, hll: &mut Hll, elements: &[Vec<u8>], batch: usize) {
    if elements.is_empty() {
        assert_eq!(redis.cmd(&[b"PFADD", key.as_bytes()]).int(), 1);
        // PFADD counts creating the key as an update, so even without elements the cache flag is set.
        hll.invalidate_cache();
    }
    for (n, chunk) in elements.chunks(batch).enumerate() {
        let mut args: Vec<&[u8]> = vec![b"PFADD", key.as_bytes()];
        args.extend(chunk.iter().map(Vec::as_slice));
        let redis_changed = redis.cmd(&args).int();
        let mut changed = false;
        for element in chunk {
            changed |= hll.add(element);
        }
        if n > 0 {
            assert_eq!(redis_changed, i64::from(changed), "{key}: PFADD reply, batch {n}");
        }
        if n % 3 == 1 {
            let redis_count = redis.cmd(&[b"PFCOUNT", key.as_bytes()]).int();
            assert_eq!(redis_count as u64, hll.count(), "{key}: PFCOUNT after batch {n}");
        }
        let bytes = redis.cmd(&[b"GET", key.as_bytes()]).bulk().expect("key exists");
        assert!(bytes == hll.as_bytes(), "{key}: bytes differ after batch {n} ({} elements)", n * batch);
    }
    let bytes = redis.cmd(&[b"GET", key.as_bytes()]).bulk().expect("key exists");
    assert_eq!(bytes, hll.as_bytes(), "{key}: final bytes");
    let redis_count = redis.cmd(&[b"PFCOUNT", key.as_bytes()]).int() as u64;
    assert_eq!(redis_count, hll.count(), "{key}: final PFCOUNT");
    // Redis's bytes (now with a valid cache) load and count the same.
    let bytes = redis.cmd(&[b"GET", key.as_bytes()]).bulk().expect("key exists");
    let mut loaded = Hll::from_bytes(&bytes).expect("redis bytes load");
    assert_eq!(loaded.count(), redis_count);
    loaded.invalidate_cache();
    assert_eq!(loaded.count(), redis_count, "{key}: recomputed count of redis's bytes");
}

#[test]
fn hll_matches_redis_byte_for_byte() {
    let mut redis = RedisServer::start();
    let mut rng = SmallRng::seed_from_u64(0x4859_4c4c);
    let mut hlls = Vec::new();
    for (i, &size) in [0usize, 1, 10, 100, 1000, 10_000, 100_000].iter().enumerate() {
        let elements: Vec<Vec<u8>> = (0..size).map(|j| random_element(&mut rng, j as u32)).collect();
        let key = format!("hll:{size}");
        let mut hll = Hll::new_sparse();
        let batch = if size <= 1000 { 7 } else { 250 };
        feed(&mut redis, &key, &mut hll, &elements, batch.max(1));
        eprintln!("hll {size}: count {} dense {}", hll.count(), hll.is_dense());
        hlls.push((key, hll, i));
    }
    // Duplicates: a small pool repeated many times, never counted twice.
    let pool: Vec<Vec<u8>> = (0..300).map(|j| random_element(&mut rng, j)).collect();
    let repeated: Vec<Vec<u8>> = (0..20_000).map(|_| pool[rng.gen_range(0..pool.len())].clone()).collect();
    let mut dup = Hll::new_sparse();
    feed(&mut redis, "hll:dup", &mut dup, &repeated, 50);
    hlls.push(("hll:dup".into(), dup, 99));

    // Sparse stays sparse until 3000 bytes, then turns dense: both forms were compared above.
    assert!(!hlls[3].1.is_dense(), "100 elements stay sparse");
    assert!(hlls[5].1.is_dense(), "10000 elements are dense");

    // PFMERGE into a fresh key and into existing keys, sparse and dense mixes.
    let cases: &[(&str, &[usize])] = &[
        ("merge:sparse", &[1, 2, 3]),
        ("merge:mixed", &[3, 5]),
        ("merge:dense", &[5, 6]),
        ("merge:grows", &[3, 4]),
        ("merge:empty", &[0]),
    ];
    for &(dest, sources) in cases {
        let mut args: Vec<Vec<u8>> = vec![b"PFMERGE".to_vec(), dest.as_bytes().to_vec()];
        args.extend(sources.iter().map(|&s| hlls[s].0.as_bytes().to_vec()));
        let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        assert_eq!(redis.cmd(&argv), Reply::Status("OK".into()));
        let refs: Vec<&Hll> = sources.iter().map(|&s| &hlls[s].1).collect();
        let mut merged = Hll::merged(&refs);
        let bytes = redis.cmd(&[b"GET", dest.as_bytes()]).bulk().expect("merged");
        assert_eq!(bytes, merged.as_bytes(), "{dest}: merged bytes");
        let count = redis.cmd(&[b"PFCOUNT", dest.as_bytes()]).int() as u64;
        assert_eq!(count, merged.count(), "{dest}: merged count");
        // Multi-key PFCOUNT is the union count.
        let mut argv: Vec<&[u8]> = vec![b"PFCOUNT"];
        argv.extend(sources.iter().map(|&s| hlls[s].0.as_bytes()));
        assert_eq!(redis.cmd(&argv).int() as u64, Hll::count_union(&refs), "{dest}: union count");
    }
    // Merging into an existing destination counts the destination as a source.
    let (dest_key, mut dest, _) = hlls[2].clone();
    let argv: Vec<&[u8]> = vec![b"PFMERGE", dest_key.as_bytes(), hlls[3].0.as_bytes()];
    assert_eq!(redis.cmd(&argv), Reply::Status("OK".into()));
    dest.merge_into(&[&hlls[3].1]);
    assert_eq!(redis.cmd(&[b"GET", dest_key.as_bytes()]).bulk().expect("dest"), dest.as_bytes());
    assert_eq!(redis.cmd(&[b"PFCOUNT", dest_key.as_bytes()]).int() as u64, dest.count());
}

#[test]
fn hll_corruption_matches_redis_errors() {
    let mut redis = RedisServer::start();
    // Invalidate the cache: with a valid cache Redis answers PFCOUNT without reading the body.
    let mut header = Hll::new_sparse().to_bytes()[..16].to_vec();
    header[15] = 0x80;
    let header = header.as_slice();
    let corrupt_cases: Vec<Vec<u8>> = vec![
        [header, &[0x7f, 0xfe][..]].concat(),       // covers 16383 registers
        [header, &[0x7f, 0xff, 0x80][..]].concat(), // covers 16385
        [header, &[0x7f, 0xfe, 0x83][..]].concat(), // VAL overflowing the end
        header.to_vec(),                            // no opcodes at all
    ];
    for (i, bytes) in corrupt_cases.iter().enumerate() {
        let key = format!("corrupt:{i}");
        redis.cmd(&[b"SET", key.as_bytes(), bytes]);
        let reply = redis.cmd(&[b"PFCOUNT", key.as_bytes()]);
        let err = Hll::from_bytes(bytes).expect_err("corrupt");
        assert!(matches!(err, HllError::Corrupted(_)), "case {i}: {err:?}");
        assert_eq!(reply, Reply::Error(err.redis_reply().to_string()), "case {i}");
    }
    let not_hll_cases: Vec<Vec<u8>> = vec![
        b"HYLL".to_vec(),
        [b"HYLX", &header[4..], &[0x7f, 0xff][..]].concat(),
        [&header[..4], &[2u8][..], &header[5..], &[0x7f, 0xff][..]].concat(),
        [&header[..4], &[0u8][..], &header[5..], &[0x7f, 0xff][..]].concat(),
    ];
    for (i, bytes) in not_hll_cases.iter().enumerate() {
        let key = format!("nothll:{i}");
        redis.cmd(&[b"SET", key.as_bytes(), bytes]);
        let reply = redis.cmd(&[b"PFCOUNT", key.as_bytes()]);
        let err = Hll::from_bytes(bytes).expect_err("not an hll");
        assert!(matches!(err, HllError::NotHll(_)), "case {i}: {err:?}");
        assert_eq!(reply, Reply::Error(err.redis_reply().to_string()), "case {i}");
    }
}

/// One element per PFADD, bytes compared after every single add: pins every sparse edit (ZERO and
/// XZERO splits, VAL splits, merges of neighbouring VALs) and the promotion point.
#[test]
fn hll_sparse_edits_match_redis_one_by_one() {
    let mut redis = RedisServer::start();
    let mut rng = SmallRng::seed_from_u64(0x5350_4152);
    for round in 0..12 {
        let key = format!("single:{round}");
        let mut hll = Hll::new_sparse();
        // Small pools make repeated registers (VAL runs and splits) likely.
        let pool_size = [50, 500, 5000][round % 3];
        let mut commands = Vec::new();
        let mut expected = Vec::new();
        for i in 0..1200 {
            let element = format!("{}", rng.gen_range(0..pool_size)).into_bytes();
            commands.push(vec![b"PFADD".to_vec(), key.as_bytes().to_vec(), element.clone()]);
            let changed = hll.add(&element);
            expected.push(Reply::Int(if i == 0 { 1 } else { i64::from(changed) }));
            if rng.gen_bool(0.05) {
                commands.push(vec![b"PFCOUNT".to_vec(), key.as_bytes().to_vec()]);
                expected.push(Reply::Int(hll.count() as i64));
            }
            commands.push(vec![b"GET".to_vec(), key.as_bytes().to_vec()]);
            expected.push(Reply::Bulk(Some(hll.to_bytes())));
        }
        let replies = redis.pipeline(&commands);
        for (n, (got, want)) in replies.iter().zip(&expected).enumerate() {
            assert!(got == want, "{key}: reply {n} differs");
        }
    }
}
