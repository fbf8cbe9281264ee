//! The self-contained HTML report: one page of inline CSS and inline SVG charts (drawn by
//! plotters), nothing fetched when it is opened. Every string that comes from the report (target,
//! server name, error types, thresholds, reasons) goes through [`escape`]; plotters escapes the
//! SVG's text too. A timeline has at most 512 points, so the page stays small whatever the run's
//! length (a 24-hour soak renders to a few hundred kB).

pub mod charts;
mod figures;

use std::fmt::Write as _;

use charts::Chart;

use super::Rendering;
use crate::chaos::report::{ChaosReport, PhaseSummary};
use crate::driver::Report;
use crate::profile::matrix::{CellResult, MatrixReport};
use crate::profile::report::{RunReport, ThresholdResult, ThresholdStatus, Tolerance, compare};
use crate::profile::stats::OpSummary;
use crate::profile::timeline::Timeline;

/// Text as HTML (element content or a quoted attribute value).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:16px 24px;color:#222;background:#fafafa}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.4em 0;font-size:.9em;background:#fff}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f0f0f0}
td.l,th.l{text-align:left}
.pass{color:#fff;background:#2ca02c}.fail{color:#fff;background:#d62728}.no_data{color:#fff;background:#7f7f7f}
.badge{padding:2px 10px;border-radius:4px;font-weight:bold}
figure{margin:.8em 0;background:#fff;border:1px solid #ddd;padding:6px}
figure svg{width:100%;height:auto;display:block}
figcaption{font-size:.85em;color:#444;padding:2px 6px}
.key{display:inline-block;margin-right:14px;white-space:nowrap}
.sw{display:inline-block;width:22px;height:0;border-top:3px solid;vertical-align:middle;margin-right:5px}
.sw.d{border-top-style:dashed}.sw.b{height:10px;border-top:none;opacity:.35}
.note{color:#666;font-style:italic}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:.4em 0}dt{color:#555}dd{margin:0}
";

/// The report as one HTML page (inline SVG and CSS only; nothing fetched when opened).
pub fn render(r: &Rendering<'_>) -> String {
    let mut page = Page::default();
    match r.report {
        Report::Run(run) => run_report(&mut page, run, r.baseline),
        Report::Matrix(m) => matrix_report(&mut page, m),
        Report::Chaos(c) => chaos_report(&mut page, c),
    }
    page.finish()
}

#[derive(Default)]
struct Page {
    title: String,
    body: String,
}

impl Page {
    fn finish(self) -> String {
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{}</title><style>{STYLE}</style></head>\n<body>\n{}\n<footer class=\"note\">\
             Rendered by mcp-canary {}; self-contained: nothing is fetched.</footer>\n</body></html>\n",
            self.title,
            self.body,
            env!("CARGO_PKG_VERSION"),
        )
    }

    fn h2(&mut self, text: &str) {
        let _ = writeln!(self.body, "<h2>{}</h2>", escape(text));
    }

    fn note(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p class=\"note\">{}</p>", escape(text));
    }

    /// A chart with its HTML legend (data never hidden under a legend box).
    fn chart(&mut self, id: &str, chart: &Chart) {
        if !chart.has_data() {
            let _ = writeln!(self.body, "<p class=\"note\">{}: no data.</p>", escape(&chart.title));
            return;
        }
        let _ =
            write!(self.body, "<figure class=\"chart\" id=\"chart-{}\">{}<figcaption>", escape(id), charts::svg(chart));
        let mut seen = Vec::new();
        for s in &chart.series {
            let class = if s.dashed { "sw d" } else { "sw" };
            key(&mut self.body, class, charts::hex(s.colour), &s.name);
        }
        for b in &chart.bands {
            if !seen.contains(&b.name) {
                key(&mut self.body, "sw b", charts::hex(b.colour), &b.name);
                seen.push(b.name.clone());
            }
        }
        for m in &chart.markers {
            if !seen.contains(&m.name) {
                key(&mut self.body, "sw", charts::hex(m.colour), &m.name);
                seen.push(m.name.clone());
            }
        }
        self.body.push_str("</figcaption></figure>\n");
    }

    fn raw_figure(&mut self, id: &str, svg: &str, caption: &str) {
        let _ = writeln!(
            self.body,
            "<figure class=\"chart\" id=\"chart-{}\">{svg}<figcaption>{caption}</figcaption></figure>",
            escape(id)
        );
    }
}

fn key(out: &mut String, class: &str, colour: String, name: &str) {
    let style = if class.ends_with('b') { "background" } else { "border-color" };
    let _ = write!(
        out,
        "<span class=\"key\"><span class=\"{class}\" style=\"{style}:{colour}\"></span>{}</span>",
        escape(name)
    );
}

fn utc(unix_s: f64) -> String {
    chrono::DateTime::from_timestamp(unix_s as i64, 0)
        .map_or_else(|| format!("{unix_s}"), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

fn duration(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.0} h {:.0} min", (s / 3600.0).floor(), (s % 3600.0) / 60.0)
    } else if s >= 60.0 {
        format!("{:.0} min {:.0} s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!("{s:.1} s")
    }
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "–".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.3}{unit}"))
}

/// Header: profile, target, time, verdict and why.
struct Header<'a> {
    profile: &'a str,
    target: &'a str,
    started_at: f64,
    elapsed_s: f64,
    verdict: &'a str,
    verdict_reason: Option<&'a str>,
    abort_reason: Option<&'a str>,
    extra: Vec<(&'static str, String)>,
}

fn header(page: &mut Page, h: Header<'_>) {
    page.title = format!("mcp-canary {} report: {}", escape(h.profile), escape(h.target));
    let class = if h.verdict == "pass" { "pass" } else { "fail" };
    let _ = writeln!(
        page.body,
        "<h1>mcp-canary {} report <span class=\"badge {class}\" id=\"verdict\">{}</span></h1>",
        escape(h.profile),
        escape(h.verdict)
    );
    let mut dl = String::from("<dl>");
    let mut item = |k: &str, v: &str| {
        let _ = write!(dl, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    };
    item("target", h.target);
    item("started", &utc(h.started_at));
    item("duration", &duration(h.elapsed_s));
    if let Some(reason) = h.verdict_reason {
        item("verdict reason", reason);
    }
    if let Some(reason) = h.abort_reason {
        item("aborted", reason);
    }
    for (k, v) in &h.extra {
        item(k, v);
    }
    dl.push_str("</dl>");
    page.body.push_str(&dl);
    page.body.push('\n');
}

fn thresholds(page: &mut Page, list: &[ThresholdResult], origin: &str) {
    page.h2("Thresholds");
    if list.is_empty() {
        page.note("No thresholds.");
        return;
    }
    let _ = writeln!(
        page.body,
        "<p>Origin: {}.</p><table id=\"thresholds\"><tr><th class=\"l\">threshold</th><th>result</th>\
         <th>observed</th><th>samples</th></tr>",
        escape(origin)
    );
    for t in list {
        let status = match t.status {
            ThresholdStatus::Pass => "pass",
            ThresholdStatus::Fail => "fail",
            ThresholdStatus::NoData => "no_data",
        };
        let _ = writeln!(
            page.body,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"{status}\">{status}</td><td>{:.4}</td><td>{}</td></tr>",
            escape(&t.threshold),
            t.observed,
            t.samples
        );
    }
    page.body.push_str("</table>\n");
}

fn op_row(out: &mut String, name: &str, s: &OpSummary) {
    let errors: Vec<String> = s.errors_by_type.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let l = &s.latency;
    let _ = writeln!(
        out,
        "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.2} %</td><td>{:.2}</td><td>{:.2}</td>\
         <td>{:.2}</td><td>{:.2}</td><td class=\"l\">{}</td></tr>",
        escape(name),
        s.count,
        s.errors,
        s.error_rate * 100.0,
        l.p50_ms,
        l.p95_ms,
        l.p99_ms,
        l.max_ms,
        escape(&errors.join(", "))
    );
}

fn op_table<'a>(page: &mut Page, rows: impl IntoIterator<Item = (&'a str, &'a OpSummary)>) {
    page.body.push_str(
        "<table id=\"operations\"><tr><th class=\"l\">operation</th><th>requests</th><th>errors</th>\
         <th>error rate</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th>\
         <th class=\"l\">errors by type</th></tr>\n",
    );
    for (name, s) in rows {
        op_row(&mut page.body, name, s);
    }
    page.body.push_str("</table>\n");
}

/// Throughput, latency, errors and population over the run.
fn timeline_charts(page: &mut Page, tl: &Timeline, baseline: Option<&Timeline>, mark: &dyn Fn(&mut Chart)) {
    for (id, mut c) in [
        ("throughput", figures::throughput(tl, baseline)),
        ("latency", figures::latency(tl, baseline)),
        ("errors", figures::errors(tl)),
        ("population", figures::population(tl)),
    ] {
        mark(&mut c);
        page.chart(id, &c);
    }
}

fn run_report(page: &mut Page, r: &RunReport, baseline: Option<&RunReport>) {
    let mut extra = Vec::new();
    if let Some(b) = baseline {
        extra.push(("baseline", format!("{} run of {}", b.target, utc(b.started_at))));
    }
    header(
        page,
        Header {
            profile: &r.profile,
            target: &r.target,
            started_at: r.started_at,
            elapsed_s: r.elapsed_s,
            verdict: &r.verdict,
            verdict_reason: r.verdict_reason.as_deref(),
            abort_reason: r.abort_reason.as_deref().or(r.aborted.then_some("yes")),
            extra,
        },
    );
    thresholds(page, &r.thresholds, r.thresholds_origin.as_str());
    if let Some(b) = baseline {
        page.h2("Against the baseline");
        let regressions = compare(b, r, Tolerance::default());
        if regressions.is_empty() {
            page.note(
                "No regression against the baseline (default tolerance: latency +20 % + 1 ms, error rate +0.1 pp).",
            );
        } else {
            page.body.push_str("<ul id=\"regressions\">");
            for reg in &regressions {
                let _ = write!(page.body, "<li>{}</li>", escape(&reg.to_string()));
            }
            page.body.push_str("</ul>\n");
        }
    }
    let base_tl = baseline.and_then(|b| b.timeline.as_ref());
    page.h2("Over time");
    match &r.timeline {
        Some(tl) => {
            if r.notify.is_some() {
                page.chart("deliveries", &figures::deliveries(tl, base_tl));
                page.chart("delivery-latency", &figures::delivery_latency(tl, base_tl));
            }
            if let Some(l) = &r.longevity {
                for (id, chart, slope) in figures::memory(tl, l.params.warmup_s) {
                    page.chart(id, &chart);
                    if let Some(slope) = slope {
                        let slope = if slope.abs() < 0.005 { 0.0 } else { slope };
                        page.note(&format!("{}: fitted slope after warm-up {slope:+.2} MiB/h", chart.title));
                    }
                }
            }
            // A notify run's timeline counts deliveries, not requests.
            if r.notify.is_none() || tl.points.iter().any(|p| p.requests > 0) {
                timeline_charts(page, tl, base_tl, &|_| {});
            }
        }
        None => page.note("This report has no timeline (written by an older mcp-canary)."),
    }
    if let Some(load) = &r.load {
        page.h2("Operations");
        let rows = std::iter::once(("total", &load.total))
            .chain(load.operations.iter().map(|(k, v)| (k.as_str(), v)))
            .chain(std::iter::once(("connect", &load.connect)));
        op_table(page, rows);
        let s = &load.slots;
        let _ = writeln!(
            page.body,
            "<p>Schedule: {} requests planned, {} sent ({} late), {} skipped, {} shed.</p>",
            s.planned, s.issued, s.late, s.skipped, s.shed
        );
    }
    if let Some(n) = &r.notify {
        page.h2("Notifications");
        let mut dl = String::from("<dl id=\"notify\">");
        for (k, v) in [
            ("sessions ready", n.sessions_ready.to_string()),
            ("broadcasts", n.broadcasts.to_string()),
            ("trigger errors", n.trigger_errors.to_string()),
            ("expected deliveries", n.expected.to_string()),
            ("received", n.received.to_string()),
            ("delivery ratio", format!("{:.4}", n.delivery_ratio)),
            ("sessions missing any", n.sessions_missing_any.to_string()),
            ("duplicates", n.duplicates.to_string()),
            ("out of order", n.out_of_order.to_string()),
            (
                "latency p50 / p95 / p99",
                format!("{:.1} / {:.1} / {:.1} ms", n.latency.p50_ms, n.latency.p95_ms, n.latency.p99_ms),
            ),
        ] {
            let _ = write!(dl, "<dt>{}</dt><dd>{}</dd>", k, escape(&v));
        }
        dl.push_str("</dl>\n");
        page.body.push_str(&dl);
    }
    if let Some(l) = &r.longevity {
        page.h2("Memory");
        page.body.push_str(
            "<table id=\"memory\"><tr><th class=\"l\">process</th><th>samples</th><th>first</th><th>last</th>\
             <th>max</th><th>growth</th><th>slope (reported)</th></tr>\n",
        );
        let rows =
            l.target_memory.iter().map(|m| ("target", m)).chain(std::iter::once(("mcp-canary", &l.daemon_memory)));
        for (name, m) in rows {
            let _ = writeln!(
                page.body,
                "<tr><td class=\"l\">{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                m.samples,
                mib(m.first_bytes),
                mib(m.last_bytes),
                mib(m.max_bytes),
                m.growth_ratio.map_or_else(|| "–".into(), |g| format!("{:+.1} %", g * 100.0)),
                m.slope_bytes_per_hour.map_or_else(|| "–".into(), |s| format!("{:+.2} MiB/h", s / 1048576.0)),
            );
        }
        page.body.push_str("</table>\n");
        let _ = writeln!(
            page.body,
            "<p>Sessions ended clean {}, unclean {}; warm-up {}; memory source {}.</p>",
            l.sessions_ended_clean,
            l.sessions_ended_unclean,
            duration(l.params.warmup_s),
            escape(l.params.memory_source.as_deref().unwrap_or("none")),
        );
    }
}

fn result_colour(r: CellResult) -> plotters::style::RGBColor {
    match r {
        CellResult::Works => charts::GREEN,
        CellResult::NotExercised => charts::BLUE,
        CellResult::Degraded => charts::ORANGE,
        CellResult::Broken => charts::RED,
    }
}

fn matrix_report(page: &mut Page, m: &MatrixReport) {
    header(
        page,
        Header {
            profile: &m.profile,
            target: &m.target,
            started_at: m.started_at,
            elapsed_s: m.ended_at - m.started_at,
            verdict: &m.verdict,
            verdict_reason: None,
            abort_reason: None,
            extra: vec![("server", format!("{} {}", m.server_name, m.server_version))],
        },
    );
    page.h2("Cells");
    let mut rows: Vec<(&str, &str)> = Vec::new();
    let mut columns: Vec<&str> = Vec::new();
    for c in &m.cells {
        let row = (c.capabilities.as_str(), c.response_mode.as_str());
        if !rows.contains(&row) {
            rows.push(row);
        }
        if !columns.contains(&c.protocol_version.as_str()) {
            columns.push(&c.protocol_version);
        }
    }
    let labels: Vec<String> = rows.iter().map(|(cap, mode)| format!("{cap} / {mode}")).collect();
    let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    let grid =
        charts::grid("Cells: capabilities / response mode (rows) by protocol version", &labels, &names, |r, c| {
            let (cap, mode) = rows[r];
            m.cells
                .iter()
                .find(|cell| {
                    cell.capabilities.as_str() == cap
                        && cell.response_mode.as_str() == mode
                        && cell.protocol_version == columns[c]
                })
                .map(|cell| (cell.result.as_str().replace('_', " "), result_colour(cell.result)))
        });
    let mut caption = String::new();
    for r in CellResult::ALL {
        let n = m.summary.get(r.as_str()).copied().unwrap_or(0);
        key(&mut caption, "sw b", charts::hex(result_colour(r)), &format!("{} ({n})", r.as_str().replace('_', " ")));
    }
    page.raw_figure("matrix", &grid, &caption);
    page.h2("Protocol versions");
    page.body.push_str("<table id=\"versions\"><tr><th class=\"l\">version</th><th class=\"l\">supported</th><th class=\"l\">detail</th></tr>\n");
    for v in &m.versions {
        let _ = writeln!(
            page.body,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            escape(&v.version),
            if v.supported { "yes" } else { "no" },
            escape(&v.detail)
        );
    }
    page.body.push_str("</table>\n");
    page.h2("Checks that did not work");
    let mut any = false;
    page.body.push_str("<table id=\"checks\"><tr><th class=\"l\">cell</th><th class=\"l\">feature</th><th class=\"l\">result</th><th class=\"l\">detail</th></tr>\n");
    for c in &m.cells {
        for k in c.checks.iter().filter(|k| k.result != CellResult::Works) {
            any = true;
            let _ = writeln!(
                page.body,
                "<tr><td class=\"l\">{} / {} / {}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                c.capabilities.as_str(),
                c.response_mode.as_str(),
                escape(&c.protocol_version),
                escape(&k.feature),
                k.result.as_str(),
                escape(&charts::clip(&k.detail, 300))
            );
        }
    }
    page.body.push_str("</table>\n");
    if !any {
        page.note("Every check worked.");
    }
}

fn phase(p: &PhaseSummary) -> String {
    format!("{} req, {} err, p95 {:.1} ms", p.requests.count, p.requests.errors, p.requests.latency.p95_ms)
}

fn chaos_report(page: &mut Page, c: &ChaosReport) {
    header(
        page,
        Header {
            profile: &c.profile,
            target: &c.target,
            started_at: c.started_at,
            elapsed_s: c.elapsed_s,
            verdict: &c.verdict,
            verdict_reason: c.verdict_reason.as_deref(),
            abort_reason: c.abort_reason.as_deref().or(c.aborted.then_some("yes")),
            extra: vec![(
                "load",
                format!(
                    "{} sessions at {} requests/min; warm-up {}",
                    c.params.sessions,
                    c.params.rpm,
                    duration(c.params.warmup_s)
                ),
            )],
        },
    );
    thresholds(page, &c.thresholds, c.thresholds_origin.as_str());
    page.h2("Over time");
    match &c.timeline {
        Some(tl) => timeline_charts(page, tl, None, &|chart| figures::chaos_marks(chart, &c.scenarios)),
        None => page.note("This report has no timeline (written by an older mcp-canary)."),
    }
    page.h2("Scenarios");
    page.body.push_str(
        "<table id=\"scenarios\"><tr><th class=\"l\">scenario</th><th class=\"l\">fault</th><th>started</th>\
         <th>detected after</th><th class=\"l\">by</th><th>recovered after</th><th class=\"l\">fault window</th>\
         <th class=\"l\">recovery window</th><th class=\"l\">injection errors</th></tr>\n",
    );
    for s in &c.scenarios {
        let recovered = if s.recovered { opt(s.recover_s, " s") } else { "not recovered".into() };
        let _ = writeln!(
            page.body,
            "<tr><td class=\"l\">{}</td><td class=\"l\"><code>{}</code></td><td>{}</td><td>{}</td><td class=\"l\">{}</td>\
             <td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            escape(&s.name),
            escape(&s.spec),
            opt(s.fault_started_s, " s"),
            opt(s.detect_s, " s"),
            escape(s.detected_by.as_deref().unwrap_or("–")),
            recovered,
            escape(&phase(&s.fault)),
            escape(&phase(&s.recovery)),
            escape(&s.injection_errors.join("; ")),
        );
    }
    page.body.push_str("</table>\n");
    let _ = writeln!(page.body, "<p>Before the faults: {}.</p>", escape(&phase(&c.baseline)));
}

#[cfg(test)]
mod tests;
