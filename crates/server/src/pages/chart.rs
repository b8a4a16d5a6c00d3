//! The usage chart of the console and the portal: tokens issued per hour over the last seven
//! days, as an SVG bar chart drawn on the server (no script), with the same figures per day
//! in a table for people who cannot see it.

use crate::manage::views::UsageView;

/// Hours the chart covers.
pub const HOURS: i64 = 7 * 24;
/// Width of one hour's bar, in SVG units.
const BAR: i64 = 4;
/// Height of the plot, in SVG units.
const HEIGHT: i64 = 120;

/// One hour's bar.
pub struct Bar {
    /// Left edge.
    pub x: i64,
    /// Top edge.
    pub y: i64,
    /// Height (0 for an hour without tokens).
    pub h: i64,
    /// `2026-11-30 09:00 UTC: 12 tokens`, the bar's tooltip.
    pub label: String,
}

/// A chart ready for the template.
pub struct UsageChart {
    /// One bar per hour, oldest first.
    pub bars: Vec<Bar>,
    /// Tokens in the whole period.
    pub total: i64,
    /// The busiest hour's count (the top of the scale).
    pub peak: i64,
    /// `(day, tokens)` per day, oldest first.
    pub days: Vec<(String, i64)>,
    /// Width of the drawing.
    pub width: i64,
    /// Height of the drawing.
    pub height: i64,
    /// A one-sentence summary, the drawing's accessible name.
    pub summary: String,
}

/// The first hour the chart shows, for reading usage `since`.
pub fn since(now: i64) -> i64 {
    now - now.rem_euclid(3600) - (HOURS - 1) * 3600
}

/// Lays out `usage` (any order, hours outside the window ignored) for the window ending at
/// the hour of `now`.
pub fn layout(usage: &[UsageView], now: i64) -> UsageChart {
    let first = since(now);
    let mut counts = vec![0_i64; HOURS as usize];
    for u in usage {
        let i = (u.hour - first).div_euclid(3600);
        if (0..HOURS).contains(&i) {
            counts[i as usize] += u.tokens;
        }
    }
    let peak = counts.iter().copied().max().unwrap_or(0);
    let total: i64 = counts.iter().sum();
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let h = if peak == 0 {
                0
            } else {
                (n * HEIGHT + peak - 1) / peak
            };
            let hour = first + i as i64 * 3600;
            Bar {
                x: i as i64 * BAR,
                y: HEIGHT - h,
                h,
                label: format!("{}: {n} tokens", super::account::when(hour)),
            }
        })
        .collect();
    let days = counts
        .chunks(24)
        .enumerate()
        .map(|(d, c)| {
            let day = super::account::when(first + d as i64 * 86_400);
            (day[..10].to_owned(), c.iter().sum())
        })
        .collect();
    UsageChart {
        bars,
        total,
        peak,
        days,
        width: HOURS * BAR,
        height: HEIGHT,
        summary: format!(
            "Tokens issued per hour over the last 7 days: {total} in all, at most {peak} in one hour."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_land_in_their_bars_and_days() {
        let now = 1_800_000_000;
        let first = since(now);
        let usage = [
            UsageView {
                hour: first,
                tokens: 4,
            },
            UsageView {
                hour: first + 3600 * (HOURS - 1),
                tokens: 2,
            },
            // Outside the window: ignored.
            UsageView {
                hour: first - 3600,
                tokens: 99,
            },
        ];
        let c = layout(&usage, now);
        assert_eq!(c.bars.len(), HOURS as usize);
        assert_eq!((c.total, c.peak), (6, 4));
        assert_eq!(c.bars[0].h, HEIGHT);
        assert_eq!(c.bars[HOURS as usize - 1].h, HEIGHT / 2);
        assert_eq!(c.bars[1].h, 0);
        assert_eq!(c.days.len(), 7);
        assert_eq!(c.days[0].1, 4);
        assert_eq!(c.days[6].1, 2);
        assert!(c.bars[0].label.ends_with(": 4 tokens"));
    }

    #[test]
    fn an_idle_week_draws_no_bars() {
        let c = layout(&[], 1_800_000_000);
        assert_eq!(c.total, 0);
        assert!(c.bars.iter().all(|b| b.h == 0));
    }
}
