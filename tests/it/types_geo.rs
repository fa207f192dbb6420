//! Differential tests: `velo::types::geohash` against a real `redis-server`.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use velo::types::geohash::{self, Shape};

use crate::types_support::{RedisServer, Reply};

fn random_point(rng: &mut SmallRng) -> (f64, f64) {
    match rng.gen_range(0..10) {
        // Edges and poles of the accepted range.
        0 => {
            ([-180.0, 180.0, 0.0][rng.gen_range(0..3)], [geohash::LAT_MIN, geohash::LAT_MAX, 0.0][rng.gen_range(0..3)])
        }
        // Coordinates with few decimals, as users type them.
        1 => (f64::from(rng.gen_range(-1800..=1800)) / 10.0, f64::from(rng.gen_range(-850..=850)) / 10.0),
        _ => (rng.gen_range(geohash::LON_MIN..=geohash::LON_MAX), rng.gen_range(geohash::LAT_MIN..=geohash::LAT_MAX)),
    }
}

fn args(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

#[test]
fn geo_matches_redis() {
    let mut redis = RedisServer::start();
    let mut rng = SmallRng::seed_from_u64(0x0067_656f);
    let mut points: Vec<(f64, f64)> = vec![(13.361389, 38.115556), (15.087269, 37.502669)];
    points.extend((0..400).map(|_| random_point(&mut rng)));

    let mut commands = Vec::new();
    for (i, &(lon, lat)) in points.iter().enumerate() {
        // `{:?}` prints the shortest string that parses back to the same f64, as strtod reads it.
        commands.push(args(&["GEOADD", "geo", &format!("{lon:?}"), &format!("{lat:?}"), &format!("p{i}")]));
    }
    for reply in redis.pipeline(&commands) {
        assert_eq!(reply, Reply::Int(1));
    }

    let members: Vec<String> = (0..points.len()).map(|i| format!("p{i}")).collect();
    let mut commands = Vec::new();
    for member in &members {
        commands.push(args(&["ZSCORE", "geo", member]));
    }
    let scores = redis.pipeline(&commands);
    let mut hash_cmd = args(&["GEOHASH", "geo"]);
    hash_cmd.extend(members.iter().map(|m| m.as_bytes().to_vec()));
    let mut pos_cmd = args(&["GEOPOS", "geo"]);
    pos_cmd.extend(members.iter().map(|m| m.as_bytes().to_vec()));
    let replies = redis.pipeline(&[hash_cmd, pos_cmd]);
    let hashes = replies[0].array();
    let positions = replies[1].array();

    for (i, &(lon, lat)) in points.iter().enumerate() {
        let score = geohash::score(lon, lat).expect("valid point");
        let redis_score: f64 = scores[i].text().expect("score").parse().expect("float");
        assert_eq!(redis_score as u64, score, "score of ({lon:?}, {lat:?})");
        assert_eq!(redis_score, score as f64);
        assert_eq!(hashes[i].text().expect("hash"), geohash::hash_string(score as f64), "GEOHASH ({lon:?}, {lat:?})");
        let pos = positions[i].array();
        let (dlon, dlat) = geohash::decode_score(score as f64);
        assert_eq!(pos[0].text().expect("lon"), geohash::format_coordinate(dlon), "GEOPOS lon of ({lon:?}, {lat:?})");
        assert_eq!(pos[1].text().expect("lat"), geohash::format_coordinate(dlat), "GEOPOS lat of ({lon:?}, {lat:?})");
    }

    // Distances between neighbours in the list, in metres and kilometres.
    let mut commands = Vec::new();
    let mut expected = Vec::new();
    for i in 0..points.len() - 1 {
        for unit in ["m", "km", "mi", "ft"] {
            commands.push(args(&["GEODIST", "geo", &members[i], &members[i + 1], unit]));
            let a = geohash::decode_score(geohash::score(points[i].0, points[i].1).expect("valid") as f64);
            let b = geohash::decode_score(geohash::score(points[i + 1].0, points[i + 1].1).expect("valid") as f64);
            let d = geohash::distance(a.0, a.1, b.0, b.1);
            let per_unit = geohash::unit_to_meters(unit.as_bytes()).expect("unit");
            expected.push(geohash::format_distance(d / per_unit));
        }
    }
    let replies = redis.pipeline(&commands);
    for (reply, want) in replies.iter().zip(&expected) {
        assert_eq!(reply.text().expect("distance"), *want);
    }
    assert_eq!(redis.cmd(&[b"GEODIST", b"geo", b"p0", b"p1"]).text().expect("distance"), "166274.1516");

    // Out-of-range coordinates: same error text.
    let reply = redis.cmd(&[b"GEOADD", b"geo", b"181", b"10", b"bad"]);
    let err = geohash::validate(181.0, 10.0).expect_err("out of range");
    assert_eq!(reply, Reply::Error(err.to_string()));
}

/// GEOSEARCH from redis and a scan of our chosen cells over the same points return the same set.
#[test]
fn geo_search_cells_find_what_redis_finds() {
    search_differential(0x5345_4152, (10.0, 20.0), (33.0, 43.0), (11.0, 19.0), (34.0, 42.0), 1.0..300.0, 1000);
}

/// The same worldwide: poles, the antimeridian, radii up to thousands of kilometres.
#[test]
fn geo_search_cells_find_what_redis_finds_worldwide() {
    search_differential(
        0x574f_524c,
        (geohash::LON_MIN, geohash::LON_MAX),
        (geohash::LAT_MIN, geohash::LAT_MAX),
        (geohash::LON_MIN, geohash::LON_MAX),
        (-84.0, 84.0),
        0.5..5000.0,
        100,
    );
}

fn search_differential(
    seed: u64,
    lon_range: (f64, f64),
    lat_range: (f64, f64),
    center_lon: (f64, f64),
    center_lat: (f64, f64),
    size_km: std::ops::Range<f64>,
    min_found: usize,
) {
    let mut redis = RedisServer::start();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut points = Vec::new();
    let mut commands = Vec::new();
    for i in 0..3000 {
        let lon = rng.gen_range(lon_range.0..=lon_range.1);
        let lat = rng.gen_range(lat_range.0..=lat_range.1);
        commands.push(args(&["GEOADD", "pts", &format!("{lon:?}"), &format!("{lat:?}"), &format!("m{i}")]));
        points.push((format!("m{i}"), geohash::score(lon, lat).expect("valid")));
    }
    redis.pipeline(&commands);
    let mut found = 0;
    for _ in 0..200 {
        let lon: f64 = rng.gen_range(center_lon.0..center_lon.1);
        let lat: f64 = rng.gen_range(center_lat.0..center_lat.1);
        let (shape, command) = if rng.gen_bool(0.5) {
            let r = rng.gen_range(size_km.clone());
            let shape = Shape::Radius { longitude: lon, latitude: lat, radius_m: r * 1000.0 };
            let radius = format!("{r:?}");
            (
                shape,
                args(&[
                    "GEOSEARCH",
                    "pts",
                    "FROMLONLAT",
                    &format!("{lon:?}"),
                    &format!("{lat:?}"),
                    "BYRADIUS",
                    &radius,
                    "km",
                    "ASC",
                    "WITHDIST",
                ]),
            )
        } else {
            let w = rng.gen_range(size_km.clone());
            let h = rng.gen_range(size_km.clone());
            let shape = Shape::Box { longitude: lon, latitude: lat, width_m: w * 1000.0, height_m: h * 1000.0 };
            (
                shape,
                args(&[
                    "GEOSEARCH",
                    "pts",
                    "FROMLONLAT",
                    &format!("{lon:?}"),
                    &format!("{lat:?}"),
                    "BYBOX",
                    &format!("{w:?}"),
                    &format!("{h:?}"),
                    "km",
                    "ASC",
                    "WITHDIST",
                ]),
            )
        };
        let reply = redis.pipeline(&[command]).remove(0);
        let mut from_redis: Vec<(String, String)> = reply
            .array()
            .iter()
            .map(|item| {
                let pair = item.array();
                (pair[0].text().expect("member"), pair[1].text().expect("dist"))
            })
            .collect();
        from_redis.sort();
        let cells = geohash::search_areas(&shape).expect("valid centre").cells();
        let mut ours: Vec<(String, String)> = points
            .iter()
            .filter(|(_, score)| {
                cells.iter().any(|&cell| {
                    let (lo, hi) = geohash::score_range(cell);
                    *score >= lo && *score < hi
                })
            })
            .filter_map(|(member, score)| {
                let (plon, plat) = geohash::decode_score(*score as f64);
                shape.contains(plon, plat).map(|d| (member.clone(), geohash::format_distance(d / 1000.0)))
            })
            .collect();
        ours.sort();
        assert_eq!(ours, from_redis, "{shape:?}");
        found += ours.len();
    }
    eprintln!("geo search: {found} members found over 200 searches");
    assert!(found > min_found, "searches should find members: {found}");
}
