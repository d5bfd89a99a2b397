//! One time-series plot as inline SVG: the Prometheus range as a line,
//! tuning.log's samples as dots, the objective as a dashed line, each
//! observation window shaded, each judged change a marker with its verdict.

use std::fmt::Write as _;

use chrono::{DateTime, Local, Utc};

use super::{Change, LogSample, Plot};

const W: f64 = 920.0;
const H: f64 = 240.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 30.0;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A short number for an axis label: `1.2M`, `350`, `0.25`.
fn short(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if scaled.abs() >= 100.0 || scaled == scaled.trunc() {
        format!("{scaled:.0}")
    } else {
        format!("{scaled:.2}")
    };
    format!("{s}{suffix}")
}

/// Observation windows: the span of each change's samples per phase.
fn windows(samples: &[LogSample]) -> Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> {
    let mut out: Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for s in samples
        .iter()
        .filter(|s| s.phase == "observe" || s.phase == "before")
    {
        match out
            .iter_mut()
            .find(|(id, phase, ..)| *id == s.change_id && *phase == s.phase)
        {
            Some(w) => {
                w.2 = w.2.min(s.at);
                w.3 = w.3.max(s.at);
            }
            None => out.push((s.change_id.clone(), s.phase.clone(), s.at, s.at)),
        }
    }
    out
}

pub fn plot(
    p: &Plot,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    samples: &[LogSample],
    changes: &[Change],
) -> String {
    let span = (end - start).num_milliseconds().max(1) as f64;
    let x =
        |t: DateTime<Utc>| LEFT + (t - start).num_milliseconds() as f64 / span * (W - LEFT - RIGHT);
    let values = p
        .line
        .iter()
        .chain(p.dots.iter())
        .map(|(_, v)| *v)
        .chain(p.objective.as_ref().map(|(_, v)| *v))
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    lo = lo.min(0.0);
    if hi <= lo {
        hi = lo + 1.0;
    }
    hi += (hi - lo) * 0.08;
    let y = |v: f64| TOP + (1.0 - (v - lo) / (hi - lo)) * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="plot" data-metric="{m}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{m}">"#,
        m = escape(&p.metric)
    );
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="#fafafa" stroke="#ccc"/>"##,
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    for (id, phase, a, b) in windows(samples) {
        let (fill, what) = if phase == "observe" {
            ("#cfe3ff", "observation")
        } else {
            ("#ececec", "before-window")
        };
        let _ = write!(
            s,
            r#"<rect class="window" x="{:.1}" y="{TOP}" width="{:.1}" height="{}" fill="{fill}" opacity="0.8"><title>{} {what}</title></rect>"#,
            x(a),
            (x(b) - x(a)).max(1.0),
            H - TOP - BOTTOM,
            escape(&id)
        );
    }
    for i in 0..=4 {
        let v = lo + (hi - lo) * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            short(v),
            y = y(v)
        );
    }
    for i in 0..=5 {
        let t = start + (end - start) * i / 5;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle" fill="#555">{}</text>"##,
            x(t),
            H - 10.0,
            t.with_timezone(&Local).format("%H:%M:%S")
        );
    }
    if let Some((written, v)) = &p.objective {
        let _ = write!(
            s,
            r##"<line class="objective" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#c0392b" stroke-dasharray="6 4" stroke-width="1.5"><title>objective {}</title></line><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#c0392b">objective {}</text>"##,
            W - RIGHT,
            escape(written),
            W - RIGHT - 4.0,
            y(*v) - 4.0,
            escape(written),
            y = y(*v)
        );
    }
    if p.line.len() > 1 {
        let points: Vec<String> = p
            .line
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        let _ = write!(
            s,
            r##"<polyline class="series" fill="none" stroke="#1f5fa8" stroke-width="1.5" points="{}"/>"##,
            points.join(" ")
        );
    }
    for (t, v) in p.dots.iter().filter(|(_, v)| v.is_finite()) {
        let _ = write!(
            s,
            r##"<circle class="sample" cx="{:.1}" cy="{:.1}" r="2.2" fill="#e67e22"/>"##,
            x(*t),
            y(*v)
        );
    }
    for c in changes {
        let Some(at) = c.decided_at.or(c.applied_at) else {
            continue;
        };
        let verdict = c.verdict.as_deref().unwrap_or("open");
        let color = match c.kept {
            Some(true) => "#27ae60",
            Some(false) => "#c0392b",
            None => "#7f8c8d",
        };
        let label = format!("{}={} {verdict}", c.lever, c.to.as_deref().unwrap_or("?"));
        // Labels right of the marker, or left of it near the right edge.
        let (tx, anchor) = if x(at) > W * 0.6 {
            (x(at) - 5.0, "end")
        } else {
            (x(at) + 5.0, "start")
        };
        let _ = write!(
            s,
            r#"<g class="marker" data-verdict="{v}"><line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="{color}" stroke-width="1.5"/><circle cx="{px:.1}" cy="{TOP}" r="4" fill="{color}"/><text x="{tx:.1}" y="{}" font-size="11" text-anchor="{anchor}" fill="{color}">{l}</text><title>{l}: {r}</title></g>"#,
            H - BOTTOM,
            TOP + 12.0,
            v = escape(verdict),
            px = x(at),
            l = escape(&label),
            r = escape(c.reason.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</svg>");
    s
}
