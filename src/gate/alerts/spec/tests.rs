//! The `slos:` and `alerting:` reader: selectors, problems at file:line, defaults.

use super::*;

#[test]
fn selectors_take_equality_matchers_only() {
    let s = Selector::parse(r#"http_requests_total{code="500", job="api"}"#).unwrap();
    assert_eq!(s.name, "http_requests_total");
    assert_eq!(
        s.to_string(),
        r#"http_requests_total{code="500",job="api"}"#
    );
    assert_eq!(Selector::parse("slo:x_total").unwrap().labels, vec![]);
    for bad in [
        r#"x{code=~"5.."}"#,
        "x{",
        "9x",
        r#"x{__name__="y"}"#,
        "rate(x[5m])",
        "",
    ] {
        assert!(Selector::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn every_problem_is_reported_at_its_line() {
    let text = "objectives: {}\nslos:\n  a:\n    objective: 0\n    good: ok\n    bad: err\n  b:\n    objective: 99.9\n    good: ok\nalerting:\n  for: {page: soon}\n";
    let problems = read(Path::new("b.yaml"), text).unwrap_err();
    let all = problems.join("\n");
    assert!(
        all.contains("b.yaml:4:5: slos.a.objective: must lie strictly between 0 and 100"),
        "{all}"
    );
    assert!(
        all.contains("b.yaml:7:3: slos.b: name exactly two of"),
        "{all}"
    );
    assert!(all.contains("b.yaml:11:3: alerting.for.page:"), "{all}");
}

#[test]
fn the_defaults_are_the_workbook_windows() {
    let (alerting, slos) = read(Path::new("b.yaml"), "objectives: {}\n").unwrap();
    assert!(slos.is_empty());
    let page: Vec<String> = alerting.windows["page"]
        .iter()
        .map(|w| {
            format!(
                "{}/{}/{}",
                format_duration(w.long),
                format_duration(w.short),
                w.burn
            )
        })
        .collect();
    assert_eq!(page, ["1h/5m/14.4", "6h/30m/6"]);
    assert_eq!(alerting.windows["ticket"][1].burn.to_string(), "1");
    assert_eq!(alerting.severities["page"], "critical");
}
