//! What `tuner alerts` reads from the budget file beside its objectives:
//! the `slos:` (ratio objectives over counters, judged by burn rate) and
//! the `alerting:` settings (severity names, `for:` per tier, burn-rate
//! windows, runbook links). Every problem is gathered and placed at
//! `file:line:col`, as for the rest of the budget.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::decimal::Decimal;
use crate::config::load::locate;
use crate::config::units::{format_duration, parse_duration_unbounded};

/// The tiers every generated alert carries in its `tier` label, so
/// Alertmanager can inhibit one by another without parsing alert names.
pub const TIERS: [&str; 5] = ["sla", "warning", "critical", "page", "ticket"];

#[derive(Debug, Default, Deserialize)]
struct RawFile {
    #[serde(default)]
    slos: BTreeMap<String, RawSlo>,
    #[serde(default)]
    alerting: Option<RawAlerting>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerting {
    #[serde(default)]
    severities: BTreeMap<String, String>,
    #[serde(default, rename = "for")]
    for_: BTreeMap<String, String>,
    #[serde(default)]
    windows: BTreeMap<String, Vec<RawWindow>>,
    #[serde(default)]
    runbook_url: Option<String>,
    #[serde(default)]
    min_events: Option<u64>,
    #[serde(default)]
    recent: Option<String>,
    #[serde(default)]
    floors: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    long: String,
    short: String,
    burn: Number,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlo {
    objective: Number,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    good: Option<String>,
    #[serde(default)]
    bad: Option<String>,
    #[serde(default)]
    total: Option<String>,
    #[serde(default)]
    min_events: Option<u64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    runbook_url: Option<String>,
}

/// A number as YAML gives it (`99.9`) or as a string (`"99.9%"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Float(f64),
    Text(String),
}

impl Number {
    fn decimal(&self) -> Option<Decimal> {
        match self {
            Number::Float(f) => Decimal::from_f64(*f),
            Number::Text(s) => Decimal::parse(s.trim().trim_end_matches('%')),
        }
    }
}

/// A counter selector: `name{label="value",...}`, equality matchers only,
/// so the generated unit tests can write series that match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl Selector {
    pub fn parse(input: &str) -> Option<Selector> {
        let s = input.trim();
        let (name, rest) = match s.find('{') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let ident = |t: &str, colon: bool| {
            let mut chars = t.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
        };
        if !ident(name, true) {
            return None;
        }
        let mut labels = Vec::new();
        if let Some(rest) = rest {
            let inner = rest.strip_prefix('{')?.strip_suffix('}')?;
            for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = part.split_once('=')?;
                let (k, v) = (k.trim(), v.trim());
                let v = v.strip_prefix('"')?.strip_suffix('"')?;
                if !ident(k, false) || v.contains(['"', '\\']) || k.starts_with("__") {
                    return None;
                }
                labels.push((k.to_string(), v.to_string()));
            }
        }
        Some(Selector {
            name: name.to_string(),
            labels,
        })
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let parts: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            write!(f, "{{{}}}", parts.join(","))?;
        }
        Ok(())
    }
}

/// Which counters an SLO's error ratio is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum Events {
    BadOfTotal { bad: Selector, total: Selector },
    GoodOfTotal { good: Selector, total: Selector },
    GoodAndBad { good: Selector, bad: Selector },
}

/// One burn-rate condition: the error ratio over both windows above
/// `burn` times the error budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub long: Duration,
    pub short: Duration,
    pub burn: Decimal,
}

#[derive(Debug, Clone)]
pub struct Slo {
    pub name: String,
    pub objective: Decimal,
    pub period: Duration,
    pub events: Events,
    pub min_events: u64,
    pub description: Option<String>,
    pub runbook_url: Option<String>,
}

impl Slo {
    /// The error budget as a ratio: 99.9 -> 0.001.
    pub fn budget(&self) -> Decimal {
        Decimal::from_int(100).minus(self.objective).percent()
    }
}

#[derive(Debug, Clone)]
pub struct Alerting {
    /// Tier -> the `severity` label value.
    pub severities: BTreeMap<String, String>,
    /// Tier -> `for:`.
    pub for_: BTreeMap<String, Duration>,
    /// `page` and `ticket` -> their burn-rate conditions.
    pub windows: BTreeMap<String, Vec<Window>>,
    pub runbook_url: String,
    pub min_events: u64,
    /// How far back a relative objective looks for "normal" when there is
    /// no baseline to turn it into a number.
    pub recent: Duration,
    /// Metric -> the value below which a relative alert stays quiet.
    pub floors: BTreeMap<String, String>,
}

pub const DEFAULT_RUNBOOK: &str = "https://github.com/tuner/tuner/blob/main/README.md#alerts";

impl Default for Alerting {
    fn default() -> Alerting {
        let tiers = |values: [&str; 5]| {
            TIERS
                .iter()
                .zip(values)
                .map(|(t, v)| (t.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let w = |long, short, burn: &str| Window {
            long,
            short,
            burn: Decimal::parse(burn).unwrap_or(Decimal::ZERO),
        };
        Alerting {
            severities: tiers(["warning", "warning", "critical", "critical", "warning"]),
            for_: TIERS
                .iter()
                .zip([2, 5, 2, 2, 15])
                .map(|(t, m)| (t.to_string(), minutes(m)))
                .collect(),
            windows: [
                (
                    "page".to_string(),
                    vec![
                        w(hours(1), minutes(5), "14.4"),
                        w(hours(6), minutes(30), "6"),
                    ],
                ),
                (
                    "ticket".to_string(),
                    vec![w(hours(24), hours(2), "3"), w(hours(72), hours(6), "1")],
                ),
            ]
            .into(),
            runbook_url: DEFAULT_RUNBOOK.to_string(),
            min_events: 100,
            recent: hours(1),
            floors: BTreeMap::new(),
        }
    }
}

/// Reads `slos:` and `alerting:` from the budget text; other keys belong to
/// `budget.rs`. All problems at once, each at `file:line:col`.
pub fn read(path: &Path, text: &str) -> Result<(Alerting, Vec<Slo>), Vec<String>> {
    let raw: RawFile = crate::config::yaml::parse(path, text).map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    let at = |keys: &[&str]| {
        let place = locate(path, text, keys);
        format!("{place}: {}", keys.join("."))
    };
    let alerting = alerting(raw.alerting.unwrap_or_default(), &at, &mut problems);
    let mut slos = Vec::new();
    for (name, raw) in raw.slos {
        if let Some(slo) = slo(&name, raw, &alerting, &at, &mut problems) {
            slos.push(slo);
        }
    }
    if problems.is_empty() {
        Ok((alerting, slos))
    } else {
        Err(problems)
    }
}

fn duration(written: &str, key: String, problems: &mut Vec<String>) -> Option<Duration> {
    match parse_duration_unbounded(written) {
        Ok(d) if d.as_secs() > 0 && d.subsec_nanos() == 0 => Some(d),
        Ok(_) => {
            problems.push(format!(
                "{key}: {written:?} must be whole seconds, at least 1s"
            ));
            None
        }
        Err(e) => {
            problems.push(format!("{key}: {e}"));
            None
        }
    }
}

fn alerting(
    raw: RawAlerting,
    at: &dyn Fn(&[&str]) -> String,
    problems: &mut Vec<String>,
) -> Alerting {
    let mut out = Alerting::default();
    let known = |section: &str, tier: &str, problems: &mut Vec<String>| {
        let ok = TIERS.contains(&tier);
        if !ok {
            problems.push(format!(
                "{}: unknown tier {tier:?}; tiers are {}",
                at(&["alerting", section, tier]),
                TIERS.join(", ")
            ));
        }
        ok
    };
    for (tier, severity) in raw.severities {
        if known("severities", &tier, problems) {
            if severity.trim().is_empty() {
                problems.push(format!(
                    "{}: empty; name the severity your routes use (e.g. critical)",
                    at(&["alerting", "severities", &tier])
                ));
            }
            out.severities.insert(tier, severity.trim().to_string());
        }
    }
    for (tier, written) in raw.for_ {
        if known("for", &tier, problems) {
            let key = at(&["alerting", "for", &tier]);
            if let Some(d) = duration(&written, key, problems) {
                out.for_.insert(tier, d);
            }
        }
    }
    for (tier, windows) in raw.windows {
        if tier != "page" && tier != "ticket" {
            problems.push(format!(
                "{}: burn-rate windows are for `page` and `ticket` only",
                at(&["alerting", "windows", &tier])
            ));
            continue;
        }
        let key = at(&["alerting", "windows", &tier]);
        if windows.is_empty() {
            problems.push(format!("{key}: give at least one {{long, short, burn}}"));
        }
        let mut parsed = Vec::new();
        for (i, w) in windows.iter().enumerate() {
            let here = format!("{key}[{i}]");
            let long = duration(&w.long, format!("{here}.long"), problems);
            let short = duration(&w.short, format!("{here}.short"), problems);
            let burn = w.burn.decimal().filter(|b| b.is_positive());
            if burn.is_none() {
                problems.push(format!(
                    "{here}.burn: must be a positive number such as 14.4"
                ));
            }
            if let (Some(long), Some(short), Some(burn)) = (long, short, burn) {
                if short >= long {
                    problems.push(format!(
                        "{here}: the short window ({}) must be shorter than the long one ({})",
                        format_duration(short),
                        format_duration(long)
                    ));
                }
                parsed.push(Window { long, short, burn });
            }
        }
        out.windows.insert(tier, parsed);
    }
    if let Some(url) = raw.runbook_url {
        out.runbook_url = url;
    }
    if let Some(n) = raw.min_events {
        out.min_events = n;
    }
    if let Some(r) = raw.recent {
        if let Some(d) = duration(&r, at(&["alerting", "recent"]), problems) {
            out.recent = d;
        }
    }
    out.floors = raw.floors;
    out
}

fn selector(
    written: &Option<String>,
    key: &str,
    at: &dyn Fn(&[&str]) -> String,
    name: &str,
    problems: &mut Vec<String>,
) -> Option<Selector> {
    let w = written.as_ref()?;
    let parsed = Selector::parse(w);
    if parsed.is_none() {
        problems.push(format!(
            "{}: {w:?} is not a counter selector like `http_requests_total{{code=\"500\"}}` (a metric name, then optional label=\"value\" pairs)",
            at(&["slos", name, key])
        ));
    }
    parsed
}

fn slo(
    name: &str,
    raw: RawSlo,
    alerting: &Alerting,
    at: &dyn Fn(&[&str]) -> String,
    problems: &mut Vec<String>,
) -> Option<Slo> {
    let before = problems.len();
    let objective = raw.objective.decimal();
    let hundred = Decimal::from_int(100);
    match objective {
        Some(o) if o.is_positive() && o.cmp_value(hundred).is_lt() => {}
        _ => problems.push(format!(
            "{}: must lie strictly between 0 and 100 (percent of good events, e.g. 99.9)",
            at(&["slos", name, "objective"])
        )),
    }
    let period = match &raw.period {
        None => Some(Duration::from_secs(30 * 86_400)),
        Some(p) => duration(p, at(&["slos", name, "period"]), problems),
    };
    let good = selector(&raw.good, "good", at, name, problems);
    let bad = selector(&raw.bad, "bad", at, name, problems);
    let total = selector(&raw.total, "total", at, name, problems);
    let events = match (good, bad, total) {
        (None, Some(bad), Some(total)) => Some(Events::BadOfTotal { bad, total }),
        (Some(good), None, Some(total)) => Some(Events::GoodOfTotal { good, total }),
        (Some(good), Some(bad), None) => Some(Events::GoodAndBad { good, bad }),
        _ => {
            if problems.len() == before {
                problems.push(format!(
                    "{}: name exactly two of `good`, `bad` and `total` (counters)",
                    at(&["slos", name])
                ));
            }
            None
        }
    };
    if let (Some(o), Some(period)) = (objective, period) {
        let budget = hundred.minus(o).percent();
        for (tier, windows) in &alerting.windows {
            for w in windows {
                if w.long > period {
                    problems.push(format!(
                        "{}: the {tier} window of {} does not fit the SLO period of {}; shorten the window or lengthen `period`",
                        at(&["slos", name, "period"]),
                        format_duration(w.long),
                        format_duration(period)
                    ));
                }
                let ratio = w.burn.times(budget);
                if o.is_positive() && ratio.cmp_value(Decimal::from_int(1)).is_ge() {
                    problems.push(format!(
                        "{}: a {tier} burn rate of {} over an error budget of {budget} asks for an error ratio of {ratio}, which can never be reached; raise the objective or lower the burn rate",
                        at(&["slos", name, "objective"]),
                        w.burn
                    ));
                }
            }
        }
    }
    if problems.len() > before {
        return None;
    }
    Some(Slo {
        name: name.to_string(),
        objective: objective?,
        period: period?,
        events: events?,
        min_events: raw.min_events.unwrap_or(alerting.min_events),
        description: raw.description,
        runbook_url: raw.runbook_url,
    })
}

#[cfg(test)]
mod tests;
