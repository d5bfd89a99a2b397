//! How far back in time a PromQL query reads.
//!
//! `rate(x[30s])` evaluated at `t` averages what happened in `(t-30s, t]`.
//! A window that must only see what came after some event (a CHECKPOINT, a
//! change) starts sampling that long after it, or its first samples still
//! report the past.

use std::time::Duration;

/// The longest range (`[30s]`, or a subquery's `[5m:1m]`) plus the longest
/// `offset` in `query`: an upper bound on how far back any of its samples
/// reach. Zero for a query with neither (an instant vector reads the latest
/// sample only). Ranges written with Prometheus' units (`ms s m h d w y`,
/// combined as in `1h30m`) are understood; anything else is ignored, since
/// Prometheus itself would have refused the query before tuning started.
pub fn lookback(query: &str) -> Duration {
    let range = brackets(query)
        .filter_map(|inside| parse(inside.split(':').next().unwrap_or_default()))
        .max()
        .unwrap_or_default();
    let offset = offsets(query).filter_map(parse).max().unwrap_or_default();
    range + offset
}

/// The text inside each `[...]` outside string literals.
fn brackets(query: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut open = None;
    let mut quote = None;
    for (i, c) in query.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '[') => open = Some(i + 1),
            (None, ']') => {
                if let Some(start) = open.take() {
                    out.push(&query[start..i]);
                }
            }
            _ => {}
        }
    }
    out.into_iter()
}

/// The duration after each `offset` keyword (`offset 5m`, `offset -1m` is a
/// look forward and adds nothing).
fn offsets(query: &str) -> impl Iterator<Item = &str> {
    let words: Vec<&str> = query
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .filter(|w| w[0].eq_ignore_ascii_case("offset"))
        .map(|w| w[1])
        .collect::<Vec<_>>()
        .into_iter()
}

/// A Prometheus duration: one or more `<number><unit>` in falling order.
fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = [
            ("ms", 2usize),
            ("s", 1),
            ("m", 1),
            ("h", 1),
            ("d", 1),
            ("w", 1),
            ("y", 1),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))?;
        let ms = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            _ => 365 * 86_400_000,
        };
        total += Duration::from_millis(n.checked_mul(ms)?);
        rest = &rest[len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_longest_range_counts() {
        assert_eq!(
            lookback(
                r#"sum(rate(pg_wal_lsn_bytes[30s])) / sum(rate(pg_stat_database_xact_commit{datname="bench"}[1m]))"#
            ),
            S(60)
        );
        assert_eq!(lookback("rate(x[1h30m])"), S(5400));
        assert_eq!(lookback("rate(x[500ms])"), Duration::from_millis(500));
    }

    #[test]
    fn subqueries_and_offsets_reach_further_back() {
        assert_eq!(lookback("max_over_time(rate(x[1m])[5m:30s])"), S(300));
        assert_eq!(lookback("rate(x[1m] offset 2m)"), S(180));
        assert_eq!(lookback("rate(x[1m] OFFSET -2m)"), S(60));
    }

    #[test]
    fn instant_vectors_and_brackets_in_strings_read_nothing_back() {
        assert_eq!(lookback("pg_up"), Duration::ZERO);
        assert_eq!(lookback(r#"up{job="a[5m]"}"#), Duration::ZERO);
        assert_eq!(lookback("rate(x[$window])"), Duration::ZERO);
    }
}
