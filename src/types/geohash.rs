//! Redis's 52-bit geohash: the sorted-set score `GEOADD` stores, the 11-character string
//! `GEOHASH` returns, cell decoding for `GEOPOS`, haversine distances for `GEODIST`, and the
//! helpers `GEOSEARCH`/`GEORADIUS` need (step estimate, neighbours, bounding boxes, score ranges).
//!
//! Written from the documented behaviour of Redis's GEO commands and the geohash idea (interleave
//! longitude and latitude bits); no code was copied from Redis or any other project.
//!
//! Redis deviates from textbook geohash in two ways, both reproduced here: latitudes are limited
//! to the Web Mercator range ±85.05112878 (so scores are not standard geohashes), and the
//! `GEOHASH` string is obtained by decoding the cell centre and re-encoding it with the standard
//! ±90 latitude range. Longitude bits sit at odd positions, latitude bits at even positions.

use std::fmt;

use thiserror::Error;

/// Smallest longitude Redis accepts.
pub const LON_MIN: f64 = -180.0;
/// Largest longitude Redis accepts.
pub const LON_MAX: f64 = 180.0;
/// Smallest latitude Redis accepts (Web Mercator limit).
pub const LAT_MIN: f64 = -85.051_128_78;
/// Largest latitude Redis accepts (Web Mercator limit).
pub const LAT_MAX: f64 = 85.051_128_78;
/// Bits per coordinate in a full-precision hash (26 × 2 = 52 bits, exact in an f64 score).
pub const STEP_MAX: u8 = 26;
/// Earth radius Redis uses for every distance, in metres.
pub const EARTH_RADIUS_M: f64 = 6_372_797.560_856;
/// Half the Mercator projection's width in metres, the start of the step estimate.
pub const MERCATOR_MAX: f64 = 20_037_726.37;

const GEOHASH_ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// A coordinate pair outside Redis's accepted ranges.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[error("ERR invalid longitude,latitude pair {longitude:.6},{latitude:.6}")]
pub struct InvalidCoordinates {
    /// The rejected longitude.
    pub longitude: f64,
    /// The rejected latitude.
    pub latitude: f64,
}

/// A closed interval of degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
}

/// The ranges Redis encodes scores in.
pub const LON_RANGE: Range = Range { min: LON_MIN, max: LON_MAX };
/// See [`LON_RANGE`].
pub const LAT_RANGE: Range = Range { min: LAT_MIN, max: LAT_MAX };

/// An interleaved hash of `step` bits per coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GeoHashBits {
    /// Interleaved bits: longitude at odd, latitude at even positions, `2 × step` bits used.
    pub bits: u64,
    /// Bits per coordinate, 1..=26.
    pub step: u8,
}

/// The rectangle a hash covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    /// The hash of the cell.
    pub hash: GeoHashBits,
    /// Longitude span.
    pub longitude: Range,
    /// Latitude span.
    pub latitude: Range,
}

/// The eight cells around a cell, at the same step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbors {
    /// Latitude + 1 cell.
    pub north: GeoHashBits,
    /// Latitude − 1 cell.
    pub south: GeoHashBits,
    /// Longitude + 1 cell.
    pub east: GeoHashBits,
    /// Longitude − 1 cell.
    pub west: GeoHashBits,
    /// North and east.
    pub north_east: GeoHashBits,
    /// North and west.
    pub north_west: GeoHashBits,
    /// South and east.
    pub south_east: GeoHashBits,
    /// South and west.
    pub south_west: GeoHashBits,
}

/// Spreads the 32 bits of `v` to the even bit positions of a u64.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bit positions of `x` into 32 bits.
fn squash(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    x = (x | (x >> 16)) & 0x0000_0000_ffff_ffff;
    x as u32
}

/// Interleaves latitude cells (even bits) with longitude cells (odd bits).
pub fn interleave(lat_cell: u32, lon_cell: u32) -> u64 {
    spread(lat_cell) | (spread(lon_cell) << 1)
}

/// Splits interleaved bits into `(lat_cell, lon_cell)`.
pub fn deinterleave(bits: u64) -> (u32, u32) {
    (squash(bits), squash(bits >> 1))
}

/// Checks a pair against Redis's limits (inclusive), as `GEOADD` and `GEOSEARCH FROMLONLAT` do.
pub fn validate(longitude: f64, latitude: f64) -> Result<(), InvalidCoordinates> {
    // `contains` is false for NaN, so NaN is rejected too.
    let lon_ok = (LON_MIN..=LON_MAX).contains(&longitude);
    let lat_ok = (LAT_MIN..=LAT_MAX).contains(&latitude);
    if lon_ok && lat_ok {
        Ok(())
    } else {
        Err(InvalidCoordinates { longitude, latitude })
    }
}

/// Encodes a point in the given ranges with `step` bits per coordinate (1..=32).
pub fn encode_in(
    lon_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Result<GeoHashBits, InvalidCoordinates> {
    let outside = !(longitude >= lon_range.min
        && longitude <= lon_range.max
        && latitude >= lat_range.min
        && latitude <= lat_range.max);
    if outside || step == 0 || step > 32 {
        return Err(InvalidCoordinates { longitude, latitude });
    }
    let cells = (1u64 << step) as f64;
    let lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min) * cells;
    let lon_offset = (longitude - lon_range.min) / (lon_range.max - lon_range.min) * cells;
    // Truncating float-to-integer conversion, as in C; the maximum coordinate maps to 2^step,
    // one past the last cell, exactly as Redis does.
    Ok(GeoHashBits { bits: interleave(lat_offset as u32, lon_offset as u32), step })
}

/// Encodes a point in Redis's WGS84/Mercator ranges.
pub fn encode(longitude: f64, latitude: f64, step: u8) -> Result<GeoHashBits, InvalidCoordinates> {
    encode_in(LON_RANGE, LAT_RANGE, longitude, latitude, step)
}

/// The sorted-set score `GEOADD` stores for a point: its 52-bit hash.
pub fn score(longitude: f64, latitude: f64) -> Result<u64, InvalidCoordinates> {
    validate(longitude, latitude)?;
    encode(longitude, latitude, STEP_MAX).map(|hash| hash.bits)
}

/// The rectangle a hash covers, in the given ranges.
pub fn decode_in(lon_range: Range, lat_range: Range, hash: GeoHashBits) -> Area {
    let (lat_cell, lon_cell) = deinterleave(hash.bits);
    let cells = (1u64 << hash.step) as f64;
    let lat_scale = lat_range.max - lat_range.min;
    let lon_scale = lon_range.max - lon_range.min;
    let lat_cell = f64::from(lat_cell);
    let lon_cell = f64::from(lon_cell);
    Area {
        hash,
        latitude: Range {
            min: lat_range.min + (lat_cell / cells) * lat_scale,
            max: lat_range.min + ((lat_cell + 1.0) / cells) * lat_scale,
        },
        longitude: Range {
            min: lon_range.min + (lon_cell / cells) * lon_scale,
            max: lon_range.min + ((lon_cell + 1.0) / cells) * lon_scale,
        },
    }
}

/// The rectangle a hash covers, in Redis's ranges.
pub fn decode(hash: GeoHashBits) -> Area {
    decode_in(LON_RANGE, LAT_RANGE, hash)
}

/// The centre of an area, clamped to Redis's limits: `(longitude, latitude)`.
pub fn area_center(area: &Area) -> (f64, f64) {
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The point a stored score stands for (`GEOPOS`): the centre of its 52-bit cell.
pub fn decode_score(score: f64) -> (f64, f64) {
    // Saturating cast as in C for in-range values; scores out of range give a clamped point.
    let bits = score as u64;
    area_center(&decode(GeoHashBits { bits, step: STEP_MAX }))
}

/// The 11-character string `GEOHASH` returns for a stored score: the cell centre re-encoded with
/// the standard ±90° latitude range, five bits per character, the 11th character always '0'.
pub fn hash_string(score: f64) -> String {
    let (lon, lat) = decode_score(score);
    let standard_lat = Range { min: -90.0, max: 90.0 };
    let bits = encode_in(LON_RANGE, standard_lat, lon, lat, STEP_MAX).map_or(0, |h| h.bits);
    (0..11)
        .map(|i| {
            let index = if i == 10 { 0 } else { (bits >> (52 - (i + 1) * 5)) & 0x1f };
            char::from(GEOHASH_ALPHABET[index as usize])
        })
        .collect()
}

fn deg_to_rad(degrees: f64) -> f64 {
    degrees * (std::f64::consts::PI / 180.0)
}

fn rad_to_deg(radians: f64) -> f64 {
    radians / (std::f64::consts::PI / 180.0)
}

/// Distance in metres along a meridian between two latitudes.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (deg_to_rad(lat2) - deg_to_rad(lat1)).abs()
}

/// Great-circle (haversine) distance in metres, with Redis's shortcut for equal longitudes.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((deg_to_rad(lon2) - deg_to_rad(lon1)) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_to_rad(lat1);
    let lat2r = deg_to_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// Metres per unit for the units GEO commands accept (`m`, `km`, `ft`, `mi`, any case).
pub fn unit_to_meters(unit: &[u8]) -> Option<f64> {
    match unit.to_ascii_lowercase().as_slice() {
        b"m" => Some(1.0),
        b"km" => Some(1000.0),
        b"ft" => Some(0.3048),
        b"mi" => Some(1609.34),
        _ => None,
    }
}

/// A coordinate as `GEOPOS` prints it: 17 decimals, trailing zeros (and a bare dot) removed.
pub fn format_coordinate(value: f64) -> String {
    let mut text = format!("{value:.17}");
    if text.contains('.') {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(trimmed);
    }
    if text == "-0" {
        text = "0".into();
    }
    text
}

/// A distance as `GEODIST` and `WITHDIST` print it: four decimals.
pub fn format_distance(value: f64) -> String {
    format!("{value:.4}")
}

/// How many bits per coordinate a search of `radius_m` metres around `latitude` should use, so
/// that the centre cell and its neighbours cover the radius (Redis's estimate).
pub fn estimate_steps_by_radius(radius_m: f64, latitude: f64) -> u8 {
    if radius_m == 0.0 {
        return STEP_MAX;
    }
    let mut range = radius_m;
    let mut step: i32 = 1;
    // Bounded: a positive radius doubles past MERCATOR_MAX within ~1100 iterations; NaN exits.
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    // Cells narrow towards the poles, so use bigger cells there.
    if !(-66.0..=66.0).contains(&latitude) {
        step -= 1;
        if !(-80.0..=80.0).contains(&latitude) {
            step -= 1;
        }
    }
    step.clamp(1, i32::from(STEP_MAX)) as u8
}

const EVEN_BITS: u64 = 0x5555_5555_5555_5555;
const ODD_BITS: u64 = 0xaaaa_aaaa_aaaa_aaaa;

/// Moves a hash by one cell along one axis, wrapping around at the edges. `axis_bits` selects
/// the axis (odd = longitude, even = latitude).
fn step_axis(hash: GeoHashBits, axis_bits: u64, other_bits: u64, forward: bool) -> GeoHashBits {
    let shift = 64 - 2 * u32::from(hash.step);
    let moving = hash.bits & axis_bits;
    let fixed = hash.bits & other_bits;
    // Filling the other axis' positions with ones lets a plain add/subtract carry across them.
    let filler = other_bits >> shift;
    let moved = if forward {
        moving.wrapping_add(filler.wrapping_add(1))
    } else {
        (moving | filler).wrapping_sub(filler.wrapping_add(1))
    };
    GeoHashBits { bits: (moved & (axis_bits >> shift)) | fixed, step: hash.step }
}

fn move_lon(hash: GeoHashBits, delta: i8) -> GeoHashBits {
    if delta == 0 {
        return hash;
    }
    step_axis(hash, ODD_BITS, EVEN_BITS, delta > 0)
}

fn move_lat(hash: GeoHashBits, delta: i8) -> GeoHashBits {
    if delta == 0 {
        return hash;
    }
    step_axis(hash, EVEN_BITS, ODD_BITS, delta > 0)
}

/// The eight neighbours of a cell (`step` must be 1..=32).
pub fn neighbors(hash: GeoHashBits) -> Neighbors {
    let at = |lon: i8, lat: i8| move_lat(move_lon(hash, lon), lat);
    Neighbors {
        north: at(0, 1),
        south: at(0, -1),
        east: at(1, 0),
        west: at(-1, 0),
        north_east: at(1, 1),
        north_west: at(-1, 1),
        south_east: at(1, -1),
        south_west: at(-1, -1),
    }
}

/// The half-open score range `[min, max)` of all 52-bit scores inside a cell.
pub fn score_range(hash: GeoHashBits) -> (u64, u64) {
    let shift = 2 * u32::from(STEP_MAX.saturating_sub(hash.step));
    (hash.bits << shift, (hash.bits + 1) << shift)
}

/// A search shape: a circle or an axis-aligned box (sizes in metres).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// `BYRADIUS`.
    Radius {
        /// Centre longitude.
        longitude: f64,
        /// Centre latitude.
        latitude: f64,
        /// Radius in metres.
        radius_m: f64,
    },
    /// `BYBOX`.
    Box {
        /// Centre longitude.
        longitude: f64,
        /// Centre latitude.
        latitude: f64,
        /// Full width in metres.
        width_m: f64,
        /// Full height in metres.
        height_m: f64,
    },
}

impl Shape {
    fn center(&self) -> (f64, f64) {
        match *self {
            Shape::Radius { longitude, latitude, .. } | Shape::Box { longitude, latitude, .. } => (longitude, latitude),
        }
    }

    /// `[min_lon, min_lat, max_lon, max_lat]` enclosing the shape.
    pub fn bounding_box(&self) -> [f64; 4] {
        let (longitude, latitude) = self.center();
        let (half_width, half_height) = match *self {
            Shape::Radius { radius_m, .. } => (radius_m, radius_m),
            Shape::Box { width_m, height_m, .. } => (width_m / 2.0, height_m / 2.0),
        };
        let lat_delta = rad_to_deg(half_height / EARTH_RADIUS_M);
        let lon_delta_top = rad_to_deg(half_width / EARTH_RADIUS_M / deg_to_rad(latitude + lat_delta).cos());
        let lon_delta_bottom = rad_to_deg(half_width / EARTH_RADIUS_M / deg_to_rad(latitude - lat_delta).cos());
        // The widest edge is the one nearer the pole: top in the north, bottom in the south.
        let lon_delta = if latitude < 0.0 { lon_delta_bottom } else { lon_delta_top };
        [longitude - lon_delta, latitude - lat_delta, longitude + lon_delta, latitude + lat_delta]
    }

    /// The radius to estimate the step from: the radius, or the box's half-diagonal.
    fn reach_m(&self) -> f64 {
        match *self {
            Shape::Radius { radius_m, .. } => radius_m,
            Shape::Box { width_m, height_m, .. } => {
                ((width_m / 2.0) * (width_m / 2.0) + (height_m / 2.0) * (height_m / 2.0)).sqrt()
            }
        }
    }

    /// The distance from the centre to a point if the point is inside the shape.
    pub fn contains(&self, longitude: f64, latitude: f64) -> Option<f64> {
        let (cx, cy) = self.center();
        match *self {
            Shape::Radius { radius_m, .. } => {
                let d = distance(cx, cy, longitude, latitude);
                (d <= radius_m).then_some(d)
            }
            Shape::Box { width_m, height_m, .. } => {
                // Latitude first: it is the cheaper test.
                if lat_distance(latitude, cy) > height_m / 2.0 {
                    return None;
                }
                if distance(longitude, latitude, cx, latitude) > width_m / 2.0 {
                    return None;
                }
                Some(distance(cx, cy, longitude, latitude))
            }
        }
    }
}

/// The cells a search must scan: the centre cell and up to eight neighbours (`None` where a
/// neighbour cannot intersect the shape). Scan each cell's [`score_range`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchAreas {
    /// The cell containing the centre.
    pub center: Area,
    /// North, south, east, west, north-east, north-west, south-east, south-west.
    pub neighbors: [Option<GeoHashBits>; 8],
}

impl SearchAreas {
    /// The cells to scan, centre first, skipping excluded neighbours and duplicates (at coarse
    /// steps several neighbours can be the same cell).
    pub fn cells(&self) -> Vec<GeoHashBits> {
        let mut cells = vec![self.center.hash];
        for hash in self.neighbors.iter().flatten() {
            if !cells.contains(hash) {
                cells.push(*hash);
            }
        }
        cells
    }
}

/// Chooses the cells to scan for a shape, as Redis does: estimate the step from the reach, use
/// one step coarser if a neighbour would not reach the bounding box, then drop neighbours on
/// sides the bounding box does not cross.
pub fn search_areas(shape: &Shape) -> Result<SearchAreas, InvalidCoordinates> {
    let (longitude, latitude) = shape.center();
    let [min_lon, min_lat, max_lon, max_lat] = shape.bounding_box();
    let mut step = estimate_steps_by_radius(shape.reach_m(), latitude);
    let mut hash = encode(longitude, latitude, step)?;
    let mut around = neighbors(hash);
    let too_fine = decode(around.north).latitude.max < max_lat
        || decode(around.south).latitude.min > min_lat
        || decode(around.east).longitude.max < max_lon
        || decode(around.west).longitude.min > min_lon;
    if step > 1 && too_fine {
        step -= 1;
        hash = encode(longitude, latitude, step)?;
        around = neighbors(hash);
    }
    let area = decode(hash);
    let mut keep = [true; 8];
    const N: usize = 0;
    const S: usize = 1;
    const E: usize = 2;
    const W: usize = 3;
    const NE: usize = 4;
    const NW: usize = 5;
    const SE: usize = 6;
    const SW: usize = 7;
    if step >= 2 {
        if area.latitude.min < min_lat {
            for i in [S, SW, SE] {
                keep[i] = false;
            }
        }
        if area.latitude.max > max_lat {
            for i in [N, NE, NW] {
                keep[i] = false;
            }
        }
        if area.longitude.min < min_lon {
            for i in [W, SW, NW] {
                keep[i] = false;
            }
        }
        if area.longitude.max > max_lon {
            for i in [E, SE, NE] {
                keep[i] = false;
            }
        }
    }
    let all = [
        around.north,
        around.south,
        around.east,
        around.west,
        around.north_east,
        around.north_west,
        around.south_east,
        around.south_west,
    ];
    let mut neighbors = [None; 8];
    for (i, hash) in all.into_iter().enumerate() {
        if keep[i] {
            neighbors[i] = Some(hash);
        }
    }
    Ok(SearchAreas { center: area, neighbors })
}

impl fmt::Display for GeoHashBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}/{}", self.bits, self.step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PALERMO: (f64, f64) = (13.361389, 38.115556);
    const CATANIA: (f64, f64) = (15.087269, 37.502669);

    #[test]
    fn known_scores() {
        assert_eq!(score(PALERMO.0, PALERMO.1), Ok(3479099956230698));
        assert_eq!(score(CATANIA.0, CATANIA.1), Ok(3479447370796909));
    }

    #[test]
    fn known_distance_and_strings() {
        let palermo = decode_score(3479099956230698.0);
        let catania = decode_score(3479447370796909.0);
        let d = distance(palermo.0, palermo.1, catania.0, catania.1);
        assert_eq!(format_distance(d), "166274.1516");
        assert_eq!(format_distance(d / 1000.0), "166.2742");
        assert_eq!(hash_string(3479099956230698.0), "sqc8b49rny0");
        assert_eq!(hash_string(3479447370796909.0), "sqdtr74hyu0");
        assert_eq!(format_coordinate(palermo.0), "13.36138933897018433");
        assert_eq!(format_coordinate(palermo.1), "38.11555639549629859");
    }

    #[test]
    fn interleave_round_trips() {
        for (lat, lon) in [(0u32, 0u32), (1, 0), (0, 1), (0x3ff_ffff, 0x155_5555), (u32::MAX, 7)] {
            assert_eq!(deinterleave(interleave(lat, lon)), (lat, lon));
        }
        assert_eq!(interleave(1, 0), 1);
        assert_eq!(interleave(0, 1), 2);
    }

    #[test]
    fn validation_limits() {
        assert!(validate(180.0, 85.05112878).is_ok());
        assert!(validate(-180.0, -85.05112878).is_ok());
        assert!(validate(180.0001, 0.0).is_err());
        assert!(validate(0.0, 85.06).is_err());
        assert!(validate(f64::NAN, 0.0).is_err());
        let err = validate(181.0, 10.0).unwrap_err();
        assert_eq!(err.to_string(), "ERR invalid longitude,latitude pair 181.000000,10.000000");
    }

    #[test]
    fn neighbors_are_adjacent() {
        let hash = encode(PALERMO.0, PALERMO.1, 10).unwrap();
        let area = decode(hash);
        let n = neighbors(hash);
        let east = decode(n.east);
        assert!((east.longitude.min - area.longitude.max).abs() < 1e-9);
        assert_eq!(east.latitude, area.latitude);
        let north = decode(n.north);
        assert!((north.latitude.min - area.latitude.max).abs() < 1e-9);
        assert_eq!(north.longitude, area.longitude);
        let sw = decode(n.south_west);
        assert!((sw.latitude.max - area.latitude.min).abs() < 1e-9);
        assert!((sw.longitude.max - area.longitude.min).abs() < 1e-9);
        // Moving east then west returns to the start.
        assert_eq!(neighbors(n.east).west, hash);
        assert_eq!(neighbors(n.north).south, hash);
    }

    #[test]
    fn step_estimate() {
        assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(200_000.0, 38.0), 6);
        assert!(estimate_steps_by_radius(1.0, 0.0) <= 26);
        assert_eq!(estimate_steps_by_radius(1e9, 0.0), 1);
        assert!(estimate_steps_by_radius(1000.0, 85.0) < estimate_steps_by_radius(1000.0, 0.0));
    }

    #[test]
    fn search_covers_the_radius() {
        // Every point inside the radius lies in one of the scanned cells.
        let shape = Shape::Radius { longitude: 15.0, latitude: 37.0, radius_m: 200_000.0 };
        let areas = search_areas(&shape).unwrap();
        let ranges: Vec<(u64, u64)> = areas.cells().into_iter().map(score_range).collect();
        for i in 0..2000 {
            let lon = 12.0 + (i % 50) as f64 * 0.12;
            let lat = 35.0 + (i / 50) as f64 * 0.1;
            let s = score(lon, lat).unwrap();
            let (plon, plat) = decode_score(s as f64);
            if shape.contains(plon, plat).is_some() {
                assert!(ranges.iter().any(|&(lo, hi)| s >= lo && s < hi), "({lon}, {lat})");
            }
        }
        assert!(shape.contains(CATANIA.0, CATANIA.1).is_some());
        assert!(shape.contains(PALERMO.0, PALERMO.1).is_some());
    }

    #[test]
    fn box_contains() {
        let shape = Shape::Box { longitude: 15.0, latitude: 37.0, width_m: 400_000.0, height_m: 400_000.0 };
        assert!(shape.contains(CATANIA.0, CATANIA.1).is_some());
        assert!(shape.contains(PALERMO.0, PALERMO.1).is_some());
        assert!(shape.contains(20.0, 37.0).is_none());
        let [min_lon, min_lat, max_lon, max_lat] = shape.bounding_box();
        assert!(min_lon < 13.0 && max_lon > 17.0 && min_lat < 35.3 && max_lat > 38.7);
    }

    #[test]
    fn score_range_of_full_step_is_one() {
        let hash = encode(PALERMO.0, PALERMO.1, STEP_MAX).unwrap();
        assert_eq!(score_range(hash), (hash.bits, hash.bits + 1));
        let coarse = encode(PALERMO.0, PALERMO.1, 20).unwrap();
        let (lo, hi) = score_range(coarse);
        assert!(lo <= hash.bits && hash.bits < hi);
        assert_eq!(hi - lo, 1 << 12);
    }
}
