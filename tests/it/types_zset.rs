//! Differential test: `velo::types::zset_index` orders, ranks and ranges like a real
//! `redis-server` sorted set.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use velo::types::zset_index::{LexBound, ScoreBound, ZsetIndex};

use crate::types_support::{RedisServer, Reply};

fn member(rng: &mut SmallRng) -> Vec<u8> {
    // Short binary members make ties and prefix orderings (b"a" < b"a\0") common.
    (0..rng.gen_range(0..4)).map(|_| [b'a', b'b', 0, 0xff][rng.gen_range(0..4)]).collect()
}

fn flat(items: impl Iterator<Item = (Vec<u8>, f64)>) -> Vec<Vec<u8>> {
    items.flat_map(|(m, s)| [m, velo_score(s).into_bytes()]).collect()
}

/// Scores as Redis prints small integers and quarters (`%.17g`): exact for these values.
fn velo_score(s: f64) -> String {
    if s == s.trunc() && s.abs() < 1e15 {
        format!("{}", s as i64)
    } else {
        format!("{s}")
    }
}

fn bulk_list(reply: &Reply) -> Vec<Vec<u8>> {
    reply.array().iter().map(|r| r.bulk().expect("bulk")).collect()
}

#[test]
fn zset_index_matches_redis() {
    let mut redis = RedisServer::start();
    let mut rng = SmallRng::seed_from_u64(0x7a73_6574);
    let mut z = ZsetIndex::new();
    for round in 0..30 {
        let mut commands = Vec::new();
        for _ in 0..40 {
            let m = member(&mut rng);
            if rng.gen_bool(0.2) {
                commands.push(vec![b"ZREM".to_vec(), b"z".to_vec(), m.clone()]);
                z.remove(&m);
            } else {
                let s = f64::from(rng.gen_range(-8..8)) / 4.0;
                commands.push(vec![b"ZADD".to_vec(), b"z".to_vec(), velo_score(s).into_bytes(), m.clone()]);
                z.insert(&m, s).expect("not NaN");
            }
        }
        redis.pipeline(&commands);

        let all = redis.cmd(&[b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"]);
        let ours = flat(z.iter().map(|(m, s)| (m.to_vec(), s)));
        assert_eq!(bulk_list(&all), ours, "round {round}");

        for (i, (m, _)) in z.iter().enumerate() {
            assert_eq!(redis.cmd(&[b"ZRANK", b"z", m]).int(), i as i64);
        }
        for _ in 0..10 {
            let text = |rng: &mut SmallRng| -> String {
                let s = velo_score(f64::from(rng.gen_range(-10..10)) / 4.0);
                match rng.gen_range(0..5) {
                    0 => format!("({s}"),
                    1 => "-inf".into(),
                    2 => "+inf".into(),
                    _ => s,
                }
            };
            let (min, max) = (text(&mut rng), text(&mut rng));
            let reply = redis.cmd(&[b"ZRANGEBYSCORE", b"z", min.as_bytes(), max.as_bytes()]);
            let ranks = z.score_rank_range(
                ScoreBound::parse(min.as_bytes()).expect("min"),
                ScoreBound::parse(max.as_bytes()).expect("max"),
            );
            let ours: Vec<Vec<u8>> = z.range(ranks.clone()).map(|(m, _)| m.to_vec()).collect();
            assert_eq!(bulk_list(&reply), ours, "ZRANGEBYSCORE {min} {max}");
            let reply = redis.cmd(&[b"ZREVRANGEBYSCORE", b"z", max.as_bytes(), min.as_bytes()]);
            let ours: Vec<Vec<u8>> = z.range_rev(ranks).map(|(m, _)| m.to_vec()).collect();
            assert_eq!(bulk_list(&reply), ours, "ZREVRANGEBYSCORE {max} {min}");
        }
    }

    // Lex ranges need one score for every member.
    let mut lex = ZsetIndex::new();
    let mut commands = Vec::new();
    for _ in 0..200 {
        let m = member(&mut rng);
        commands.push(vec![b"ZADD".to_vec(), b"lex".to_vec(), b"0".to_vec(), m.clone()]);
        lex.insert(&m, 0.0).expect("not NaN");
    }
    redis.pipeline(&commands);
    for _ in 0..200 {
        let bound = |rng: &mut SmallRng| -> Vec<u8> {
            match rng.gen_range(0..6) {
                0 => b"-".to_vec(),
                1 => b"+".to_vec(),
                2 | 3 => [&b"["[..], &member(rng)].concat(),
                _ => [&b"("[..], &member(rng)].concat(),
            }
        };
        let (min, max) = (bound(&mut rng), bound(&mut rng));
        let reply = redis.cmd(&[b"ZRANGEBYLEX", b"lex", &min, &max]);
        let ranks = lex.lex_rank_range(&LexBound::parse(&min).expect("min"), &LexBound::parse(&max).expect("max"));
        let ours: Vec<Vec<u8>> = lex.range(ranks).map(|(m, _)| m.to_vec()).collect();
        assert_eq!(bulk_list(&reply), ours, "ZRANGEBYLEX {min:?} {max:?}");
    }
}
