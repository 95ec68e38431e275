//! The time axis: tick steps a reader can add up in their head (1, 2 or
//! 5 x 10^n milliseconds or seconds), and their labels.

use std::time::Duration;

/// One labelled tick on the time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Where, in seconds from the start of the run.
    pub at: f64,
    /// What it says, e.g. `200 ms` or `1.5 s`.
    pub label: String,
}

/// The ticks for an axis from 0 to `span`: at most `max_ticks` steps
/// (at least one), each step 1, 2 or 5 x 10^n, labelled in seconds when
/// the axis reaches a second, in milliseconds below that.
pub fn ticks(span: Duration, max_ticks: usize) -> Vec<Tick> {
    // A zero span (nothing ran) still gets an axis, a millisecond long.
    let span = span.as_secs_f64().max(0.001);
    let step = nice_step(span / max_ticks.max(1) as f64);
    let count = (span / step + 1e-9).floor() as usize;
    let seconds = count as f64 * step >= 1.0 - 1e-9;
    let (unit, scale) = if seconds { ("s", 1.0) } else { ("ms", 1000.0) };
    // Enough decimals to tell two ticks apart, and no more: a step of 0.2
    // needs one, a step of 50 none.
    let decimals = (-(step * scale).log10().floor()).max(0.0) as usize;
    (0..=count)
        .map(|k| {
            let at = k as f64 * step;
            let label = format!("{:.*} {unit}", decimals, at * scale);
            Tick { at, label }
        })
        .collect()
}

/// The smallest of 1, 2, 5 x 10^n that is at least `raw` (> 0).
fn nice_step(raw: f64) -> f64 {
    let decade = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        // Rounding in `powf` may leave 2 x 10^n a hair under `raw`
        // when `raw` is exactly that: allow for it.
        .find(|&step| step >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * decade)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(span_ms: u64, max_ticks: usize) -> Vec<String> {
        ticks(Duration::from_millis(span_ms), max_ticks)
            .into_iter()
            .map(|t| t.label)
            .collect()
    }

    /// Steps are 1, 2 or 5 x 10^n, in ms below a second and s above.
    #[test]
    fn steps_are_one_two_five() {
        assert_eq!(
            labels(1000, 5),
            ["0.0 s", "0.2 s", "0.4 s", "0.6 s", "0.8 s", "1.0 s"]
        );
        assert_eq!(labels(730, 4), ["0 ms", "200 ms", "400 ms", "600 ms"]);
        assert_eq!(
            labels(3600, 8),
            [
                "0.0 s", "0.5 s", "1.0 s", "1.5 s", "2.0 s", "2.5 s", "3.0 s",
                "3.5 s"
            ]
        );
        assert_eq!(
            labels(12_000, 6),
            ["0 s", "2 s", "4 s", "6 s", "8 s", "10 s", "12 s"]
        );
        // Nothing ran: an axis a millisecond long all the same.
        assert_eq!(labels(0, 4), ["0.0 ms", "0.5 ms", "1.0 ms"]);
    }
}
