use super::*;

const GOOD: &str = r#"
description: seed 003's alert thresholds
regression: 15%
objectives:
  p99_latency:
    metric: latency
    stat: p99
    target: "< 5ms"
    warning: "> 4ms"
    critical: "> 5ms"
  throughput:
    metric: throughput
    target: "> 100/s"
    warning: "< 150/s"
    critical: "< 100/s"
  errors:
    metric: error_rate
    target: "< 1%"
    warning: "> 1%"
    critical: "> 5%"
  cache_hit_rate:
    metric: cache_hits
    tags: {cache: redis}
    warning: "< 80%"
    critical: "< 70%"
"#;

fn load(text: &str) -> Result<Budget, String> {
    Budget::from_str(Path::new("budget.yaml"), text).map_err(|e| e.to_string())
}

#[test]
fn objectives_load_in_file_order_with_their_units() {
    let b = load(GOOD).unwrap();
    let names: Vec<&str> = b.objectives.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        ["p99_latency", "throughput", "errors", "cache_hit_rate"]
    );
    assert_eq!(b.regression, 15.0);
    let p99 = &b.objectives[0];
    assert_eq!(p99.stat, Some(Stat::Percentile(99.0)));
    let levels = p99.levels(MetricUnit::Milliseconds).unwrap();
    assert!(levels.higher_is_worse());
    assert_eq!(levels.critical.unwrap().value, 5.0);
    let tput = b.objectives[1].levels(MetricUnit::PerSecond).unwrap();
    assert!(!tput.higher_is_worse());
    assert_eq!(b.objectives[3].label(), "cache_hits{cache:redis}");
    assert_eq!(b.objectives[3].unit, None, "known once the input says");
    assert!(
        b.objectives[3].at.starts_with("budget.yaml:21:"),
        "{}",
        b.objectives[3].at
    );
}

#[test]
fn unknown_keys_and_bad_units_are_errors_at_file_line() {
    let err =
        load(&GOOD.replace("    stat: p99\n", "    stat: p99\n    stats: p95\n")).unwrap_err();
    assert!(err.starts_with("budget.yaml:8:"), "{err}");
    assert!(err.contains("unknown field `stats`"), "{err}");

    let err = load(&GOOD.replace("\"> 5ms\"", "\"> 5 parsecs\"")).unwrap_err();
    assert!(
        err.contains("budget.yaml:10:5: objectives.p99_latency.critical"),
        "{err}"
    );
    assert!(err.contains("200ms"), "names the accepted forms: {err}");

    let err = load(
        &GOOD
            .replace("\"< 1%\"", "\"< lots\"")
            .replace("stat: p99", "stat: p101"),
    )
    .unwrap_err();
    assert!(
        err.contains("budget.yaml:7:5: objectives.p99_latency.stat"),
        "{err}"
    );
    assert!(
        err.contains("budget.yaml:18:5: objectives.errors.target"),
        "{err}"
    );
}

#[test]
fn contradictory_or_incomplete_objectives_are_refused() {
    let cases = [
        (
            GOOD.replace("warning: \"> 4ms\"", "warning: \"> 6ms\""),
            "lies beyond critical",
        ),
        (
            GOOD.replace("target: \"< 5ms\"", "target: \"> 5ms\""),
            "asks for high values",
        ),
        (GOOD.replace("    stat: p99\n", ""), "latency needs a stat"),
        (
            GOOD.replace("metric: throughput", "metric: throughput\n    stat: p95"),
            "takes no stat",
        ),
        (
            GOOD.replace("critical: \"> 5ms\"", "critical: \"> 1.5x baseline\""),
            "is relative",
        ),
        (
            GOOD.replace("    target: \"< 5ms\"\n", "")
                .replace("    critical: \"> 5ms\"\n", ""),
            "give a `target` or a `critical`",
        ),
        (
            GOOD.replace("regression: 15%", "regression: lots"),
            "budget.yaml:3:1: regression",
        ),
        ("objectives: {}\n".to_string(), "at least one objective"),
    ];
    for (text, expected) in cases {
        let err = load(&text).unwrap_err();
        assert!(err.contains(expected), "{expected:?} not in {err}");
    }
}

#[test]
fn stats_parse_in_k6_and_plain_spellings() {
    assert_eq!(Stat::parse("p(95)").unwrap(), Stat::Percentile(95.0));
    assert_eq!(Stat::parse("P99.9").unwrap(), Stat::Percentile(99.9));
    assert_eq!(Stat::parse("median").unwrap(), Stat::Median);
    assert_eq!(Stat::Percentile(99.9).to_string(), "p99.9");
    assert!(Stat::parse("p0").is_err());
    assert!(Stat::parse("mode").unwrap_err().contains("p99.9"));
}
