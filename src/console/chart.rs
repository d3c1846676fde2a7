//! Events per hour (or per day, over long ranges) by type, drawn on the server as inline SVG:
//! stacked bars, the busiest seven types by colour and the rest as "other".

use std::collections::BTreeMap;

use maud::{Markup, html};

/// Colours of the series, then "other".
const COLOURS: [&str; 8] = [
    "#2563eb", "#16a34a", "#dc2626", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#6b7280",
];
const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 200.0;

/// Counts by bucket start (unix seconds) and type.
pub struct Series {
    /// First bucket's start.
    pub start: i64,
    /// Bucket length in seconds.
    pub step: i64,
    /// Number of buckets.
    pub buckets: usize,
    counts: Vec<BTreeMap<String, u64>>,
}

impl Series {
    /// Buckets covering `[since, until]`: hours, or days beyond 31 days.
    pub fn new(since: i64, until: i64) -> Series {
        let span = (until - since).max(1);
        let step = if span > 31 * 86400 { 86400 } else { 3600 };
        let start = since - since.rem_euclid(step);
        let buckets = usize::try_from((until - start) / step + 1)
            .unwrap_or(1)
            .clamp(1, 2000);
        Series {
            start,
            step,
            buckets,
            counts: vec![BTreeMap::new(); buckets],
        }
    }

    /// Counts one event of `kind` at `at`.
    pub fn add(&mut self, at: i64, kind: &str) {
        let Ok(i) = usize::try_from((at - self.start).div_euclid(self.step)) else {
            return;
        };
        if let Some(b) = self.counts.get_mut(i) {
            *b.entry(kind.to_string()).or_default() += 1;
        }
    }

    /// The total counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flat_map(|b| b.values()).sum()
    }

    /// The chart and its legend.
    pub fn render(&self) -> Markup {
        let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
        for b in &self.counts {
            for (k, n) in b {
                *by_type.entry(k).or_default() += n;
            }
        }
        let mut ranked: Vec<(&str, u64)> = by_type.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let shown: Vec<&str> = ranked.iter().take(7).map(|(k, _)| *k).collect();
        let series_of = |k: &str| shown.iter().position(|s| *s == k).unwrap_or(7);
        let stacks: Vec<[u64; 8]> = self
            .counts
            .iter()
            .map(|b| {
                let mut s = [0u64; 8];
                for (k, n) in b {
                    s[series_of(k)] += n;
                }
                s
            })
            .collect();
        let max = stacks
            .iter()
            .map(|s| s.iter().sum::<u64>())
            .max()
            .unwrap_or(0)
            .max(1);
        let bar = WIDTH / self.buckets as f64;
        let unit = if self.step == 3600 { "hour" } else { "day" };
        let label = |i: usize| {
            let t = self.start + self.step * i as i64;
            super::layout::when(t)
                .get(..if self.step == 3600 { 16 } else { 10 })
                .unwrap_or_default()
                .to_string()
        };
        let others = ranked.len() > 7;
        let mut rects = Vec::new();
        for (i, s) in stacks.iter().enumerate() {
            let mut y = HEIGHT;
            for (k, n) in s.iter().enumerate().filter(|(_, n)| **n > 0) {
                let h = HEIGHT * (*n as f64) / (max as f64);
                y -= h;
                let name = shown.get(k).copied().unwrap_or("other");
                rects.push((
                    format!("{:.2}", bar * i as f64 + bar * 0.1),
                    format!("{y:.2}"),
                    format!("{:.2}", (bar * 0.8).max(0.5)),
                    format!("{h:.2}"),
                    COLOURS[k],
                    format!("{}: {n} {name}", label(i)),
                ));
            }
        }
        html! {
            figure.chart {
                svg viewBox={"0 0 " (WIDTH) " " (HEIGHT + 20.0)} role="img"
                    aria-label={"Events per " (unit) " by type"} preserveAspectRatio="none" {
                    line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) stroke="#9ca3af" stroke-width="1" {}
                    @for (x, y, w, h, fill, title) in &rects {
                        rect x=(x) y=(y) width=(w) height=(h) fill=(fill) { title { (title) } }
                    }
                    text x="2" y="12" font-size="11" fill="#374151" { (max) " / " (unit) }
                    text x="2" y=(HEIGHT + 15.0) font-size="11" fill="#374151" { (label(0)) }
                    text x=(WIDTH - 2.0) y=(HEIGHT + 15.0) font-size="11" fill="#374151" text-anchor="end" { (label(self.buckets - 1)) }
                }
                figcaption {
                    ul.legend {
                        @for (k, name) in shown.iter().enumerate() {
                            li { svg width="12" height="12" aria-hidden="true" { rect width="12" height="12" fill=(COLOURS[k]) {} } " " (name) }
                        }
                        @if others {
                            li { svg width="12" height="12" aria-hidden="true" { rect width="12" height="12" fill=(COLOURS[7]) {} } " other" }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_by_hour_and_counts_each_event_once() {
        let mut s = Series::new(7200, 7200 + 5 * 3600 - 1);
        assert_eq!((s.step, s.buckets), (3600, 5));
        s.add(7200, "secret.read");
        s.add(7200 + 3599, "secret.read");
        s.add(7200 + 4 * 3600, "lease.granted");
        s.add(1, "outside");
        assert_eq!(s.total(), 3);
        let svg = s.render().into_string();
        assert_eq!(
            svg.matches("<rect").count(),
            2 + 2,
            "two bars and two swatches"
        );
        assert!(svg.contains("secret.read") && svg.contains("lease.granted"));
    }

    #[test]
    fn long_ranges_bucket_by_day() {
        let s = Series::new(0, 60 * 86400);
        assert_eq!((s.step, s.buckets), (86400, 61));
    }
}
