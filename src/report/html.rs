//! Building blocks of the single-file HTML reports: escaping, the page frame with its inline
//! stylesheet, tables and number formats. Plain string building: every report is one static
//! page, so a template engine would add a dependency and nothing else.

use std::fmt::Write;

use super::results::CommandStats;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif;
  margin: 0 auto; padding: 1rem 1.5rem 3rem; max-width: 1100px; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
nav a { margin-right: .9rem; }
.meta { color: #555; }
.meta span { margin-right: 1.2rem; white-space: nowrap; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .92rem; }
th, td { padding: .28rem .6rem; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
th { background: #f4f4f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .25rem; font-weight: 600;
  font-size: .85rem; color: #fff; }
.pass { background: #2a7d2e; } .fail { background: #c62828; } .skip { background: #888; }
.better { color: #2a7d2e; } .worse { color: #c62828; } .same { color: #666; }
.warning { background: #fff4e5; border-left: 4px solid #f57c00; padding: .5rem .8rem; }
.headline { font-size: 1.1rem; background: #eef5fc; border-left: 4px solid #1f77b4; padding: .5rem .8rem; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; }
pre { background: #f6f6f8; padding: .8rem; overflow-x: auto; font-size: .85rem; }
details summary { cursor: pointer; font-weight: 600; margin: .6rem 0; }
footer { margin-top: 3rem; color: #777; font-size: .85rem; }
";

/// An HTML document under construction. Every `push_*` escapes what it is given, except
/// `push_raw`, which takes markup the caller built from escaped parts (or plotters' SVG).
pub struct Page {
    body: String,
}

impl Page {
    pub fn new() -> Page {
        Page {
            body: String::new(),
        }
    }

    pub fn push_raw(&mut self, html: &str) {
        self.body.push_str(html);
    }

    pub fn heading(&mut self, level: u8, id: Option<&str>, text: &str) {
        let id = id.map_or(String::new(), |id| format!(" id=\"{}\"", escape(id)));
        let _ = writeln!(self.body, "<h{level}{id}>{}</h{level}>", escape(text));
    }

    pub fn paragraph(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p>{}</p>", escape(text));
    }

    pub fn paragraph_class(&mut self, class: &str, text: &str) {
        let _ = writeln!(self.body, "<p class=\"{class}\">{}</p>", escape(text));
    }

    pub fn pre(&mut self, text: &str) {
        let _ = writeln!(self.body, "<pre>{}</pre>", escape(text));
    }

    /// A chart with a caption; `svg` is plotters' output, whose text plotters escapes itself.
    pub fn figure(&mut self, svg: &str, caption: &str) {
        let _ = writeln!(
            self.body,
            "<figure>{svg}<figcaption>{}</figcaption></figure>",
            escape(caption)
        );
    }

    pub fn table(&mut self, table: &Table) {
        self.body.push_str(&table.to_html());
    }

    /// The whole document: doctype, head with the stylesheet, the body built so far.
    pub fn finish(self, title: &str) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
            escape(title),
            self.body
        )
    }
}

impl Default for Page {
    fn default() -> Self {
        Page::new()
    }
}

/// A cell: text (escaped when rendered) or markup built by the caller.
pub enum Cell {
    Text(String),
    Num(String),
    Html(String),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    pub fn num(s: impl Into<String>) -> Cell {
        Cell::Num(s.into())
    }

    /// A coloured label: `class` is one of `pass`, `fail`, `skip`.
    pub fn badge(class: &str, text: &str) -> Cell {
        Cell::Html(format!(
            "<span class=\"badge {class}\">{}</span>",
            escape(text)
        ))
    }
}

/// A table with a header row; columns named in `numeric` are right-aligned.
pub struct Table {
    header: Vec<(String, bool)>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// Header names; a name starting with `#` is a numeric column (the `#` is not shown).
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header
                .iter()
                .map(|h| match h.strip_prefix('#') {
                    Some(name) => (name.to_string(), true),
                    None => (h.to_string(), false),
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn to_html(&self) -> String {
        let mut out = String::from("<table>\n<thead><tr>");
        for (name, numeric) in &self.header {
            let class = if *numeric { " class=\"num\"" } else { "" };
            let _ = write!(out, "<th{class}>{}</th>", escape(name));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for cell in row {
                match cell {
                    Cell::Text(t) => {
                        let _ = write!(out, "<td>{}</td>", escape(t));
                    }
                    Cell::Num(t) => {
                        let _ = write!(out, "<td class=\"num\">{}</td>", escape(t));
                    }
                    Cell::Html(h) => {
                        let _ = write!(out, "<td>{h}</td>");
                    }
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out
    }
}

/// Microseconds as milliseconds, `-` when absent.
pub fn ms(us: Option<u64>) -> String {
    match us {
        Some(us) => ms_f(us as f64),
        None => "-".to_string(),
    }
}

/// Microseconds (fractional) as milliseconds with three significant decimals for small values.
pub fn ms_f(us: f64) -> String {
    let ms = us / 1000.0;
    if ms < 10.0 {
        format!("{ms:.3}")
    } else if ms < 1000.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

pub fn percent(fraction: f64) -> String {
    if fraction == 0.0 {
        "0%".to_string()
    } else if fraction < 0.0001 {
        format!("{:.4}%", fraction * 100.0)
    } else {
        format!("{:.2}%", fraction * 100.0)
    }
}

/// `timeout=3 reset=1`.
pub fn kinds(map: &std::collections::BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The per-command table used for the headline numbers and for each phase.
pub fn command_table(commands: &[CommandStats]) -> Table {
    let mut table = Table::new(&[
        "command",
        "#count",
        "#errors",
        "#error rate",
        "#mean ms",
        "#p50 ms",
        "#p90 ms",
        "#p99 ms",
        "#p99.9 ms",
        "#max ms",
        "errors by kind",
    ]);
    for c in commands {
        let rate = if c.count == 0 {
            0.0
        } else {
            c.errors as f64 / c.count as f64
        };
        table.row(vec![
            Cell::text(&c.metric),
            Cell::num(c.count.to_string()),
            Cell::num(c.errors.to_string()),
            Cell::num(percent(rate)),
            Cell::num(c.mean_us.map_or("-".to_string(), ms_f)),
            Cell::num(ms(c.p50_us)),
            Cell::num(ms(c.p90_us)),
            Cell::num(ms(c.p99_us)),
            Cell::num(ms(c.p999_us)),
            Cell::num(ms(c.max_us)),
            Cell::text(kinds(&c.errors_by_kind)),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script> 'q'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; &#39;q&#39;"
        );
    }

    #[test]
    fn table_escapes_cells_but_not_badges() {
        let mut t = Table::new(&["name", "#n", "state"]);
        t.row(vec![
            Cell::text("<b>"),
            Cell::num("5"),
            Cell::badge("pass", "PASS"),
        ]);
        let html = t.to_html();
        assert!(html.contains("<td>&lt;b&gt;</td>"));
        assert!(html.contains("<th class=\"num\">n</th>"));
        assert!(html.contains("<td class=\"num\">5</td>"));
        assert!(html.contains("<span class=\"badge pass\">PASS</span>"));
    }

    #[test]
    fn number_formats() {
        assert_eq!(ms(Some(1234)), "1.234");
        assert_eq!(ms(Some(45_600)), "45.6");
        assert_eq!(ms(Some(2_500_000)), "2500");
        assert_eq!(ms(None), "-");
        assert_eq!(percent(0.0123), "1.23%");
        assert_eq!(percent(0.0), "0%");
    }
}
