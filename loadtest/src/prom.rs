//! Prometheus text-format scrapes of the server's `/metrics`, and the differences between two of them: counter
//! deltas and histogram quantiles from bucket deltas.

use std::collections::BTreeMap;

/// One scrape: every sample, keyed by metric name then by its label set (as written, `{...}` or empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    samples: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Scrape {
    /// Parses Prometheus text exposition format; comments and malformed lines are skipped.
    pub fn parse(text: &str) -> Scrape {
        let mut samples: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, labels, rest) = match line.find('{') {
                Some(open) => {
                    let Some(close) = line[open..].find('}') else { continue };
                    let close = open + close;
                    (&line[..open], &line[open..=close], &line[close + 1..])
                }
                None => match line.split_once(char::is_whitespace) {
                    Some((n, r)) => (n, "", r),
                    None => continue,
                },
            };
            // The value is the first field after the name; an optional timestamp may follow.
            let Some(value) = rest.split_whitespace().next().and_then(parse_value) else {
                continue;
            };
            samples
                .entry(name.trim().to_owned())
                .or_default()
                .insert(labels.to_owned(), value);
        }
        Scrape { samples }
    }

    /// The sum of a metric over all its label sets (None when absent).
    pub fn sum(&self, name: &str) -> Option<f64> {
        self.samples.get(name).map(|m| m.values().sum())
    }

    /// Buckets of histogram `name` (upper bound -> cumulative count, summed over other labels).
    pub fn buckets(&self, name: &str) -> Vec<(f64, f64)> {
        let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        if let Some(series) = self.samples.get(&format!("{name}_bucket")) {
            for (labels, v) in series {
                let Some(le) = label(labels, "le").and_then(parse_value) else {
                    continue;
                };
                let e = by_le.entry(order_key(le)).or_insert((le, 0.0));
                e.1 += v;
            }
        }
        by_le.into_values().collect()
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// A total order key for non-NaN floats (so bucket bounds sort numerically).
fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The value of label `name` in a `{a="x",b="y"}` label set.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let inner = labels.strip_prefix('{')?.strip_suffix('}')?;
    inner.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// `end - start` of a metric summed over label sets (a missing start counts as 0; a missing end gives None).
pub fn counter_delta(start: &Scrape, end: &Scrape, name: &str) -> Option<f64> {
    let e = end.sum(name)?;
    Some((e - start.sum(name).unwrap_or(0.0)).max(0.0))
}

/// What each cumulative bucket `(le, count)` of a histogram gained between two scrapes.
fn bucket_deltas(start: &Scrape, end: &Scrape, name: &str) -> Vec<(f64, f64)> {
    let before: BTreeMap<u64, f64> = start
        .buckets(name)
        .into_iter()
        .map(|(le, c)| (order_key(le), c))
        .collect();
    end.buckets(name)
        .into_iter()
        .map(|(le, c)| (le, (c - before.get(&order_key(le)).copied().unwrap_or(0.0)).max(0.0)))
        .collect()
}

/// The `q` quantile of the observations a histogram gained between two scrapes, like PromQL's
/// `histogram_quantile`: linear interpolation inside the bucket that holds it, from the previous bucket's upper bound
/// (0 for the first). A quantile that falls in the `+Inf` bucket gives the largest finite bound. None when the
/// histogram is absent or gained no observations.
pub fn histogram_quantile(start: &Scrape, end: &Scrape, name: &str, q: f64) -> Option<f64> {
    let deltas = bucket_deltas(start, end, name);
    quantile_of_buckets(&deltas, q)
}

/// The upper bound of the bucket holding the `q` quantile of what a histogram gained between two scrapes: "the p99
/// is at most this". Infinite when it falls in the `+Inf` bucket. Better than interpolation when most observations
/// sit just above a bucket bound (tick intervals of 50.1 ms in a (50, 75] bucket would interpolate to ~75).
pub fn histogram_quantile_bound(start: &Scrape, end: &Scrape, name: &str, q: f64) -> Option<f64> {
    let deltas = bucket_deltas(start, end, name);
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    deltas.iter().find(|(_, c)| *c >= rank).map(|(le, _)| *le)
}

/// The `q` quantile of cumulative buckets `(upper bound, cumulative count)` sorted by bound.
pub fn quantile_of_buckets(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut prev_bound = 0.0;
    let mut prev_count = 0.0;
    for &(bound, count) in buckets {
        if count >= rank && count > prev_count {
            if bound.is_infinite() {
                return Some(prev_bound);
            }
            let frac = (rank - prev_count) / (count - prev_count);
            return Some(prev_bound + (bound - prev_bound) * frac);
        }
        if bound.is_finite() {
            prev_bound = bound;
        }
        prev_count = count;
    }
    Some(prev_bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = r#"# HELP orrery_ticks_total sector ticks
# TYPE orrery_ticks_total counter
orrery_ticks_total 1000
orrery_tick_overruns_total 2
orrery_commands_total{kind="thrust"} 50
orrery_commands_total{kind="warp"} 5
# TYPE orrery_tick_duration_seconds histogram
orrery_tick_duration_seconds_bucket{le="0.001"} 900
orrery_tick_duration_seconds_bucket{le="0.0025"} 990
orrery_tick_duration_seconds_bucket{le="0.005"} 1000
orrery_tick_duration_seconds_bucket{le="+Inf"} 1000
orrery_tick_duration_seconds_sum 0.8
orrery_tick_duration_seconds_count 1000
orrery_sessions 3 1700000000000
"#;

    const B: &str = r#"orrery_ticks_total 2000
orrery_tick_overruns_total 3
orrery_commands_total{kind="thrust"} 150
orrery_commands_total{kind="warp"} 15
orrery_tick_duration_seconds_bucket{le="0.001"} 1000
orrery_tick_duration_seconds_bucket{le="0.0025"} 1090
orrery_tick_duration_seconds_bucket{le="0.005"} 1900
orrery_tick_duration_seconds_bucket{le="+Inf"} 2000
"#;

    #[test]
    fn parses_counters_labels_and_timestamps() {
        let a = Scrape::parse(A);
        assert_eq!(a.sum("orrery_ticks_total"), Some(1000.0));
        assert_eq!(a.sum("orrery_commands_total"), Some(55.0));
        assert_eq!(a.sum("orrery_sessions"), Some(3.0));
        assert_eq!(a.sum("orrery_missing"), None);
        assert_eq!(a.buckets("orrery_tick_duration_seconds").len(), 4);
        let b = Scrape::parse(B);
        assert_eq!(counter_delta(&a, &b, "orrery_commands_total"), Some(110.0));
        assert_eq!(counter_delta(&a, &b, "orrery_tick_overruns_total"), Some(1.0));
        assert_eq!(
            counter_delta(&Scrape::default(), &b, "orrery_ticks_total"),
            Some(2000.0)
        );
        assert_eq!(counter_delta(&a, &Scrape::default(), "orrery_ticks_total"), None);
    }

    #[test]
    fn quantiles_come_from_bucket_deltas() {
        let a = Scrape::parse(A);
        let b = Scrape::parse(B);
        // Window deltas (cumulative): <=1ms 100, <=2.5ms 100, <=5ms 900, +Inf 1000.
        let p50 = histogram_quantile(&a, &b, "orrery_tick_duration_seconds", 0.5).unwrap();
        // rank 500 falls in (2.5ms, 5ms], which holds ranks 100..900: 2.5ms + 2.5ms * 400/800.
        assert!((p50 - 0.00375).abs() < 1e-12, "{p50}");
        let p05 = histogram_quantile(&a, &b, "orrery_tick_duration_seconds", 0.05).unwrap();
        assert!((p05 - 0.0005).abs() < 1e-12, "{p05}");
        // rank 990 falls in +Inf: the largest finite bound.
        let p99 = histogram_quantile(&a, &b, "orrery_tick_duration_seconds", 0.99).unwrap();
        assert_eq!(p99, 0.005);
        // Nothing observed in between: no quantile.
        assert_eq!(histogram_quantile(&a, &a, "orrery_tick_duration_seconds", 0.99), None);
        assert_eq!(histogram_quantile(&a, &b, "orrery_nothing", 0.99), None);
        assert_eq!(
            histogram_quantile_bound(&a, &b, "orrery_tick_duration_seconds", 0.5),
            Some(0.005)
        );
        assert_eq!(
            histogram_quantile_bound(&a, &b, "orrery_tick_duration_seconds", 0.1),
            Some(0.001)
        );
        assert_eq!(
            histogram_quantile_bound(&a, &b, "orrery_tick_duration_seconds", 0.99),
            Some(f64::INFINITY)
        );
        assert_eq!(
            histogram_quantile_bound(&a, &a, "orrery_tick_duration_seconds", 0.99),
            None
        );
    }

    #[test]
    fn quantile_of_plain_buckets() {
        let b = [(1.0, 10.0), (2.0, 10.0), (4.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(quantile_of_buckets(&b, 0.5), Some(1.0));
        assert_eq!(quantile_of_buckets(&b, 1.0), Some(4.0));
        assert_eq!(quantile_of_buckets(&b, 0.75), Some(3.0));
        assert_eq!(quantile_of_buckets(&[], 0.5), None);
    }
}
