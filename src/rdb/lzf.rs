//! LZF, the compression Redis applies to RDB strings longer than 20 bytes: a decompressor for what any
//! Redis wrote and a compressor whose output any Redis can read. Format (written from its description):
//! a control byte `c`; `c < 32` starts a literal run of `c + 1` bytes; otherwise `c >> 5` is a match
//! length minus 2 (7 means "plus the next byte"), and the low 5 bits with the following byte give the
//! back-reference distance minus 1 (at most 8191).

/// Longest back-reference distance the format can express.
const MAX_DISTANCE: usize = 1 << 13;
/// Longest match: 7 + 255 + 2.
const MAX_MATCH: usize = 264;
/// Longest literal run.
const MAX_LITERAL: usize = 32;
const HASH_BITS: u32 = 14;

/// Decompresses `input` into exactly `out_len` bytes; `None` if the input is malformed or does not
/// produce exactly that many bytes.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    decompress_to(input, out_len, &mut out)?;
    Some(out)
}

/// [`decompress`] into `out` (cleared first), reusing its allocation.
pub fn decompress_to(input: &[u8], out_len: usize, out: &mut Vec<u8>) -> Option<()> {
    // Three input bytes yield at most 264 output bytes: a longer claimed length is damage, and is not
    // allocated.
    if out_len > input.len().saturating_mul(MAX_MATCH / 3 + 1) {
        return None;
    }
    out.clear();
    out.resize(out_len, 0);
    decompress_into(input, out)
}

/// Decompresses `input` into `out`, which it must fill exactly; `None` if the input is malformed or
/// does not produce exactly `out.len()` bytes. Copies whole runs (a back-reference that overlaps what
/// it produces is copied in steps of its distance), not byte by byte: RDB loads spend much of their
/// time here.
pub fn decompress_into(input: &[u8], out: &mut [u8]) -> Option<()> {
    let out_len = out.len();
    let mut at = 0;
    let mut o: usize = 0;
    while at < input.len() {
        let ctrl = *input.get(at)? as usize;
        at += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let literal = input.get(at..at.checked_add(run)?)?;
            out.get_mut(o..o.checked_add(run)?)?.copy_from_slice(literal);
            o += run;
            at += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(at)? as usize;
                at += 1;
            }
            let distance = ((ctrl & 0x1f) << 8) + *input.get(at)? as usize + 1;
            at += 1;
            let len = len + 2;
            if distance > o || o + len > out_len {
                return None;
            }
            let start = o - distance;
            if distance == 1 {
                let byte = *out.get(start)?;
                out.get_mut(o..o + len)?.fill(byte);
            } else {
                // A match longer than its distance repeats the last `distance` bytes: copy them in
                // pieces of at most `distance` bytes, each reading only bytes already produced.
                let mut done = 0;
                while done < len {
                    let piece = (len - done).min(distance);
                    let from = start + done;
                    out.get(from..from + piece)?;
                    out.copy_within(from..from + piece, o + done);
                    done += piece;
                }
            }
            o += len;
        }
    }
    (o == out_len).then_some(())
}

/// Compresses `input`; `None` when the result would be longer than `max_len` bytes (Redis stores the
/// string uncompressed then).
pub fn compress(input: &[u8], max_len: usize) -> Option<Vec<u8>> {
    MATCH_TABLE.with(|table| compress_with(input, max_len, &mut table.borrow_mut()))
}

thread_local! {
    /// The match finder's hash table, kept per thread: clearing 128 KiB for every short string was most of
    /// the time of a SAVE (perf: memset at 48%). Stale entries left by earlier inputs are harmless, because
    /// a candidate is used only if it lies before the current position and its bytes really match.
    static MATCH_TABLE: std::cell::RefCell<Vec<usize>> = std::cell::RefCell::new(vec![0; 1 << HASH_BITS]);
}

fn compress_with(input: &[u8], max_len: usize, table: &mut [usize]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(max_len.min(input.len()));
    let mut literal_start = 0;
    let mut at = 0;
    while let Some(&[a, b, c]) = input.get(at..at + 3) {
        let word = (a as u32) << 16 | (b as u32) << 8 | c as u32;
        let slot = (word.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)) as usize;
        let candidate = table.get(slot).copied().unwrap_or(usize::MAX);
        if let Some(entry) = table.get_mut(slot) {
            *entry = at;
        }
        let len = if candidate < at && at - candidate <= MAX_DISTANCE {
            let limit = (input.len() - at).min(MAX_MATCH);
            let earlier = input.get(candidate..candidate + limit).unwrap_or_default();
            let here = input.get(at..at + limit).unwrap_or_default();
            earlier.iter().zip(here).take_while(|(x, y)| x == y).count()
        } else {
            0
        };
        if len >= 3 {
            push_literals(&mut out, input.get(literal_start..at).unwrap_or_default());
            let distance = at - candidate - 1;
            let code = len - 2;
            if code < 7 {
                out.push(((code << 5) | (distance >> 8)) as u8);
            } else {
                out.push(((7 << 5) | (distance >> 8)) as u8);
                out.push((code - 7) as u8);
            }
            out.push((distance & 0xff) as u8);
            at += len;
            literal_start = at;
        } else {
            at += 1;
        }
        if out.len() > max_len {
            return None;
        }
    }
    push_literals(&mut out, input.get(literal_start..).unwrap_or_default());
    (out.len() <= max_len && !out.is_empty()).then_some(out)
}

/// Appends `literals` as runs of at most 32 bytes.
fn push_literals(out: &mut Vec<u8>, literals: &[u8]) {
    for run in literals.chunks(MAX_LITERAL) {
        out.push((run.len() - 1) as u8);
        out.extend_from_slice(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let samples: Vec<Vec<u8>> = vec![
            vec![b'a'; 137],
            b"hello hello hello hello hello world world world".to_vec(),
            (0..20_000u32).map(|i| (i % 251) as u8).collect(),
            (0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect(),
        ];
        for sample in samples {
            if let Some(packed) = compress(&sample, sample.len() + sample.len() / 16 + 64) {
                assert_eq!(decompress(&packed, sample.len()).as_deref(), Some(&sample[..]));
            }
        }
        let packed = compress(&[b'a'; 137], 133).expect("compressible");
        assert!(packed.len() < 10);
    }

    /// The format's definition, byte by byte: what the faster decompressor must agree with.
    fn reference(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
        let mut out: Vec<u8> = Vec::new();
        let mut at = 0;
        while at < input.len() {
            let ctrl = *input.get(at)? as usize;
            at += 1;
            if ctrl < 32 {
                for _ in 0..=ctrl {
                    out.push(*input.get(at)?);
                    at += 1;
                }
            } else {
                let mut len = ctrl >> 5;
                if len == 7 {
                    len += *input.get(at)? as usize;
                    at += 1;
                }
                let distance = ((ctrl & 0x1f) << 8) + *input.get(at)? as usize + 1;
                at += 1;
                let start = out.len().checked_sub(distance)?;
                for i in 0..len + 2 {
                    out.push(*out.get(start + i)?);
                }
            }
            if out.len() > out_len {
                return None;
            }
        }
        (out.len() == out_len).then_some(out)
    }

    #[test]
    fn overlapping_matches_of_every_distance_and_random_streams_agree_with_the_definition() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut random = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound.max(1) as u64) as usize
        };
        for _ in 0..3000 {
            // A valid stream: literal runs and matches (often longer than their distance, so they
            // overlap what they produce), with the length it produces.
            let (mut input, mut produced) = (Vec::new(), 0usize);
            for _ in 0..1 + random(12) {
                if produced == 0 || random(3) == 0 {
                    let run = 1 + random(32);
                    input.push((run - 1) as u8);
                    input.extend((0..run).map(|_| random(256) as u8));
                    produced += run;
                } else {
                    let distance = 1 + random(produced.min(MAX_DISTANCE));
                    let len = 3 + random(MAX_MATCH - 2);
                    let code = len - 2;
                    let high = ((distance - 1) >> 8) as u8;
                    if code < 7 {
                        input.push(((code as u8) << 5) | high);
                    } else {
                        input.push((7 << 5) | high);
                        input.push((code - 7) as u8);
                    }
                    input.push(((distance - 1) & 0xff) as u8);
                    produced += len;
                }
            }
            let expected = reference(&input, produced);
            assert!(expected.is_some());
            assert_eq!(decompress(&input, produced), expected);
            // Wrong lengths and damaged bytes: both refuse, or both give the same bytes.
            assert_eq!(decompress(&input, produced + 1), None);
            assert_eq!(decompress(&input, produced - 1), None);
            let mut damaged = input.clone();
            let at = random(damaged.len());
            if let Some(byte) = damaged.get_mut(at) {
                *byte ^= 1 << random(8);
            }
            assert_eq!(decompress(&damaged, produced), reference(&damaged, produced));
        }
    }

    #[test]
    fn a_claimed_length_beyond_what_the_input_can_produce_is_refused_unallocated() {
        assert_eq!(decompress(&[0x00, b'a'], 1 << 40), None);
    }

    #[test]
    fn stale_table_entries_from_earlier_inputs_never_corrupt_output() {
        // A long input fills the shared table with positions far beyond the short inputs that follow;
        // then short inputs whose bytes differ from what those positions held in the long one.
        let long: Vec<u8> = (0..60_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        assert!(compress(&long, long.len() * 2).is_some());
        for seed in 0..2_000u32 {
            let short: Vec<u8> =
                (0..21 + seed % 300).map(|i| ((i / 3 + seed).wrapping_mul(2_246_822_519) >> 27) as u8).collect();
            if let Some(packed) = compress(&short, short.len() * 2) {
                assert_eq!(decompress(&packed, short.len()).as_deref(), Some(&short[..]), "seed {seed}");
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decompress(&[0x20, 0x00], 3), None);
        assert_eq!(decompress(&[0x02, b'a'], 3), None);
        assert_eq!(decompress(&[0x00, b'a'], 2), None);
    }
}
