//! The ASCII graph of LATENCY GRAPH, drawn as Redis 7.0 draws it: 4 rows of `_o#` steps filled with `|`
//! below, 80 columns a band, each sample labelled vertically with how long ago it happened.

use crate::server::slowlog::EventSeries;

const CHARSET_FILL: &[u8] = b"_o#";
const COLUMNS: usize = 80;
const ROWS: usize = 4;

struct Sample {
    value: f64,
    label: Vec<u8>,
}

/// The LATENCY GRAPH text for `event`.
pub fn latency_graph(event: &str, series: &EventSeries, now: u64) -> String {
    let mut samples = Vec::new();
    let (mut low, mut high) = (0u64, 0u64);
    let (mut min, mut max) = (0f64, 0f64);
    for (index, &(time, latency)) in series.samples.iter().enumerate() {
        if index == 0 {
            low = latency;
            high = latency;
        } else {
            high = high.max(latency);
            low = low.min(latency);
        }
        let elapsed = now.saturating_sub(time);
        let label = if elapsed < 60 {
            format!("{elapsed}s")
        } else if elapsed < 3600 {
            format!("{}m", elapsed / 60)
        } else if elapsed < 86400 {
            format!("{}h", elapsed / 3600)
        } else {
            format!("{}d", elapsed / 86400)
        };
        let value = latency as f64;
        // Redis's running min/max: a new minimum is never also checked as a maximum.
        if index == 0 {
            min = value;
            max = value;
        } else if value < min {
            min = value;
        } else if value > max {
            max = value;
        }
        samples.push(Sample { value, label: label.into_bytes() });
    }
    let mut out = format!("{event} - high {high} ms, low {low} ms (all time high {} ms)\n", series.max);
    out.push_str(&"-".repeat(COLUMNS));
    out.push('\n');
    let mut start = 0;
    while start < samples.len() {
        let len = (samples.len() - start).min(COLUMNS);
        if start != 0 {
            out.push('\n');
        }
        render(&mut out, &samples[start..start + len], min, max);
        start += COLUMNS;
    }
    out
}

fn render(out: &mut String, samples: &[Sample], min: f64, max: f64) {
    let steps = (CHARSET_FILL.len() * ROWS) as i64;
    let relmax = if max - min == 0.0 { 1.0 } else { max - min };
    let has_labels = samples.iter().any(|s| !s.label.is_empty());
    let mut row = 0;
    loop {
        let mut more = false;
        let mut chars = vec![b' '; samples.len()];
        for (j, sample) in samples.iter().enumerate() {
            let relval = sample.value - min;
            let step = ((((relval * steps as f64) as i64) as f64 / relmax) as i64).clamp(0, steps - 1);
            if row < ROWS {
                let index = step - ((ROWS - row - 1) * CHARSET_FILL.len()) as i64;
                more = true;
                if (0..CHARSET_FILL.len() as i64).contains(&index) {
                    chars[j] = CHARSET_FILL[index as usize];
                } else if index >= CHARSET_FILL.len() as i64 {
                    chars[j] = b'|';
                }
            } else {
                // One blank line between the graph and the labels.
                if has_labels && row - ROWS < 1 {
                    more = true;
                    break;
                }
                let position = row - ROWS - 1;
                if let Some(&c) = sample.label.get(position) {
                    more = true;
                    chars[j] = c;
                }
            }
        }
        if !more {
            break;
        }
        row += 1;
        out.push_str(&String::from_utf8_lossy(&chars));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn draws_steps_and_labels() {
        let series = EventSeries { samples: VecDeque::from(vec![(100, 10), (101, 20)]), max: 20 };
        let graph = latency_graph("command", &series, 101);
        let expected = format!(
            "command - high 20 ms, low 10 ms (all time high 20 ms)\n{}\n #\n |\n |\n_|\n  \n10\nss\n",
            "-".repeat(80)
        );
        assert_eq!(graph, expected);
    }
}
