//! The report page: a header, one plot per SLA metric and throughput, the
//! changelog and the deploys. Its Content-Security-Policy forbids loading
//! anything, so a report that needed the network would show it at once.

use std::fmt::Write as _;

use chrono::{DateTime, Local, Utc};

use super::svg::{escape, plot};
use super::Report;

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn opt(t: Option<DateTime<Utc>>) -> String {
    t.map(local).unwrap_or_else(|| "–".into())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:980px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;font-size:13px;width:100%}\
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}\
.kept{color:#27ae60;font-weight:600}.rolled{color:#c0392b;font-weight:600}.note{color:#666;font-size:13px}\
.legend span{margin-right:16px;font-size:13px}figure{margin:8px 0 18px}figcaption{font-size:14px;margin-bottom:4px}";

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\
<title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n",
        t = escape(&r.title)
    );
    let kept = r.changes.iter().filter(|c| c.kept == Some(true)).count();
    let rolled = r.changes.iter().filter(|c| c.kept == Some(false)).count();
    let _ = writeln!(
        s,
        "<p>{} to {} &middot; {} samples &middot; {} changes ({kept} kept, {rolled} rolled back) &middot; {} deploys &middot; generated {}</p>",
        local(r.start),
        local(r.end),
        r.samples.len(),
        r.changes.len(),
        r.deploys.len(),
        local(r.generated)
    );
    s.push_str("<p class=\"legend\"><span style=\"color:#1f5fa8\">&#9473; Prometheus</span><span style=\"color:#e67e22\">&#9679; tuning.log samples</span><span style=\"color:#c0392b\">&#9476; objective</span><span style=\"background:#cfe3ff\">&nbsp;observation window&nbsp;</span> <span style=\"background:#ececec\">&nbsp;before-window&nbsp;</span><span style=\"color:#27ae60\">| kept</span><span style=\"color:#c0392b\">| rolled back</span></p>\n");
    for n in &r.notes {
        let _ = writeln!(s, "<p class=\"note\">note: {}</p>", escape(n));
    }
    s.push_str("<h2>Metrics</h2>\n");
    for p in &r.plots {
        let _ = writeln!(
            s,
            "<figure><figcaption><b>{}</b> ({}){}</figcaption>{}</figure>",
            escape(&p.metric),
            escape(&p.unit),
            p.description
                .as_ref()
                .map(|d| format!(": {}", escape(d)))
                .unwrap_or_default(),
            plot(p, r.start, r.end, &r.samples, &r.changes)
        );
    }
    s.push_str("<h2>Changelog</h2>\n<table class=\"changes\"><tr><th>change</th><th>lever</th><th>from &rarr; to</th><th>applied</th><th>judged</th><th>verdict</th><th>result</th><th>reason</th></tr>\n");
    for c in &r.changes {
        let (class, result) = match c.kept {
            Some(true) => ("kept", "kept"),
            Some(false) => ("rolled", "rolled back"),
            None => ("", "open"),
        };
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{} &rarr; {}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{result}</td><td>{}</td></tr>",
            escape(&c.id),
            escape(&c.lever),
            escape(c.from.as_deref().unwrap_or("(default)")),
            escape(c.to.as_deref().unwrap_or("(default)")),
            opt(c.applied_at),
            opt(c.decided_at),
            escape(c.verdict.as_deref().unwrap_or("–")),
            escape(c.reason.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</table>\n<h2>Deploys</h2>\n<table class=\"deploys\"><tr><th>deploy</th><th>service</th><th>kind</th><th>from</th><th>to</th><th>started</th><th>finished</th><th>outcome</th><th>reason</th></tr>\n");
    for d in &r.deploys {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&d.id),
            escape(&d.service),
            escape(&d.kind),
            escape(&d.old),
            escape(&d.new),
            local(d.started_at),
            opt(d.finished_at),
            escape(d.outcome.as_deref().unwrap_or("unfinished")),
            escape(d.reason.as_deref().unwrap_or(""))
        );
    }
    if r.deploys.is_empty() {
        s.push_str("<tr><td colspan=\"9\">none in this span</td></tr>\n");
    }
    // Counts what the browser actually drew, for the headless check.
    s.push_str("</table>\n<script>document.body.dataset.plots = document.querySelectorAll('svg.plot').length;</script>\n</body></html>\n");
    s
}
