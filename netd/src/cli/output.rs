//! How the CLI prints: Docker's tables, `--format` (json, Go templates, `table ...`) for
//! lists, inspect's JSON. Views and rows are typed (`api_types.rs`, the row types of each
//! command); Go templates address fields by name, so they run on a `Value` made from them.
use anyhow::{anyhow, bail};
use serde::Serialize;
use serde_json::Value;

use super::template::Template;

/// Prints inspect results (an indented JSON array, or each object through `--format`), then
/// the errors; fails when there were any. As Docker's `inspect.Inspect`: a template that does
/// not parse fails with exit code 64 before anything is looked up; one that fails on an object
/// is that object's error (`template parsing error: ...`), and when no object printed anything
/// a lone newline is printed.
pub(super) fn print_inspect<T: Serialize>(
    (found, errors): (Vec<T>, Vec<anyhow::Error>),
    format: Option<&str>,
) -> anyhow::Result<()> {
    let found = values(&found)?;
    let mut errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    match format {
        Some(f) if f != "json" => {
            let tpl = Template::parse(f).map_err(|e| super::Exit::new(format!("template parsing error: {e}"), 64))?;
            let mut out = String::new();
            for v in &found {
                match tpl.execute(v) {
                    Ok(text) => out += &(text + "\n"),
                    Err(e) => errors.push(format!("template parsing error: {e}")),
                }
            }
            print!("{}", if out.is_empty() { "\n" } else { &out });
        }
        Some(_) => found.iter().for_each(|v| println!("{v}")),
        None => println!("{}", docker_json(&Value::Array(found))),
    }
    if !errors.is_empty() {
        bail!(errors.join("\n"));
    }
    Ok(())
}

/// The views or rows as JSON values, fields in their types' order.
fn values<T: Serialize>(items: &[T]) -> anyhow::Result<Vec<Value>> {
    Ok(items.iter().map(serde_json::to_value).collect::<Result<_, _>>()?)
}

/// JSON indented with four spaces, as Docker prints inspect output.
fn docker_json(v: &Value) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser).expect("JSON values serialize");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// How a list command words template failures: `ps` says "failed to parse template: ..." and
/// "failed to execute template: ...", `network ls` "template parsing error: ..." for both.
pub(super) struct ListFormat<'a> {
    /// Docker's default `table` format (`table {{.ID}}\t{{.Name}}...`).
    pub default_table: &'a str,
    /// Each field's column title, for the header row of `table` formats.
    pub headers: &'a [(&'a str, &'a str)],
    /// The Go type Docker's template runs on (`*formatter.ContainerContext`).
    pub context_type: &'a str,
    pub parse_error: &'a str,
    pub exec_error: &'a str,
}

/// Prints list rows as Docker's CLI does (`formatter.Context`): no format, `table` or an empty
/// one is the default table; `table ...` prints a header row and aligns the `\t`-separated
/// columns with Go's tabwriter; any other text is a Go template run on each row. The literal
/// two characters `\t` and `\n` in the format are a tab and a newline, and spaces around it
/// are dropped.
///
/// `json` is a template for Docker 20.10 (it prints the word `json` for every row); netd
/// prints each row as JSON, as `{{json .}}` and Docker from 23.0 do.
pub(super) fn print_rows<T: Serialize>(format: Option<&str>, list: &ListFormat, rows: &[T]) -> anyhow::Result<()> {
    print!("{}", format_rows(format, list, &values(rows)?)?);
    Ok(())
}

fn format_rows(format: Option<&str>, list: &ListFormat, rows: &[Value]) -> anyhow::Result<String> {
    let format = match format {
        None | Some("" | "table") => list.default_table,
        Some("json") => "{{json .}}",
        Some(f) => f,
    };
    let (table, body) = match format.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let body = body.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n");
    let tpl = Template::parse(&body).map_err(|e| anyhow!("{}{e}", list.parse_error))?;
    let mut out = String::new();
    for r in rows {
        out += &tpl.execute_row(r, list.context_type).map_err(|e| anyhow!("{}{e}", list.exec_error))?;
        out.push('\n');
    }
    if !table {
        return Ok(out);
    }
    // Docker runs the template on the column titles, with functions that return their first
    // argument unchanged (`{{upper .Names}}` is headed NAMES), and ignores a failure there.
    let titles: serde_json::Map<String, Value> =
        list.headers.iter().map(|(k, h)| (k.to_string(), Value::from(*h))).collect();
    let header = tpl.execute_header(&Value::Object(titles)).unwrap_or_default();
    Ok(tabwriter(&format!("{header}\n{out}")))
}

/// Docker's `Ellipsis`: at most `n` characters, the last one `…` when cut.
pub(super) fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// A header row and rows of cells, laid out as Docker's tables.
pub(super) fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut text = header.join("\t") + "\n";
    for row in rows {
        text += &row.join("\t");
        text.push('\n');
    }
    tabwriter(&text)
}

/// Go's `text/tabwriter` as Docker's CLI sets it up (`tabwriter.NewWriter(out, 10, 1, 3, ' ',
/// 0)`). Cells end with a tab; a line's last cell (after its last tab) is not part of any
/// column and is never padded. A column is laid out per block of consecutive lines that have
/// a cell in it: as wide as its widest cell (in characters) plus three spaces, at least ten.
/// Empty cells are padded too, so a row whose last column is empty ends in spaces.
pub(super) fn tabwriter(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut w = TabWriter { lines: &lines, widths: Vec::new(), out: String::new() };
    w.format(0, lines.len());
    w.out
}

struct TabWriter<'a> {
    lines: &'a [Vec<&'a str>],
    widths: Vec<usize>,
    out: String,
}

impl TabWriter<'_> {
    /// Go's `Writer.format`: lays out the column `widths.len()` in each block of lines that
    /// have it, recursing for the columns to its right; writes lines as their layout is known.
    fn format(&mut self, line0: usize, line1: usize) {
        let column = self.widths.len();
        let has_column = |line: &Vec<&str>| column < line.len() - 1;
        let mut line0 = line0;
        let mut this = line0;
        while this < line1 {
            if !has_column(&self.lines[this]) {
                this += 1;
                continue;
            }
            self.write_lines(line0, this);
            line0 = this;
            let mut width = 10;
            while this < line1 && has_column(&self.lines[this]) {
                width = width.max(self.lines[this][column].chars().count() + 3);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
            // Go's loop steps past the line that ended the block: it has no cell here.
            this += 1;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, cell) in self.lines[i].iter().enumerate() {
                self.out.push_str(cell);
                if let Some(&width) = self.widths.get(j) {
                    let pad = width - cell.chars().count();
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

/// `--filter KEY=VALUE` arguments, as Docker's `filters.Args`: keys lower-cased, keys and
/// values trimmed; values of one key are alternatives (except `label`, where all must hold),
/// different keys must all match.
#[derive(Debug, Default)]
pub(super) struct Filters(Vec<(String, String)>);

impl Filters {
    /// Parses the arguments of `netd COMMAND`, whose daemon knows the keys `valid`. A value
    /// without `=` is refused as Docker's flag parsing does (exit code 125); an unknown key as
    /// its daemon does.
    pub fn parse(args: &[String], command: &str, valid: &[&str]) -> anyhow::Result<Self> {
        let mut filters = Vec::new();
        for arg in args {
            let Some((key, value)) = arg.split_once('=') else {
                let text = format!(
                    "invalid argument {arg:?} for \"-f, --filter\" flag: bad format of filter (expected name=value)\n\
                     See 'netd {command} --help'."
                );
                return Err(super::Exit::new(text, 125).into());
            };
            filters.push((key.trim().to_lowercase(), value.trim().to_string()));
        }
        if let Some((key, _)) = filters.iter().find(|(k, _)| !valid.contains(&k.as_str())) {
            bail!("Error response from daemon: Invalid filter '{key}'");
        }
        Ok(Filters(filters))
    }

    /// The values given for `key`.
    pub fn get(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// No value of `key` given, or one of them matches.
    pub fn any(&self, key: &str, matches: impl Fn(&str) -> bool) -> bool {
        let values = self.get(key);
        values.is_empty() || values.into_iter().any(matches)
    }

    /// `name=`: each value is a regular expression searched for in `name` (which Docker
    /// writes `/NAME` for containers); one that does not compile matches nothing.
    pub fn any_regex(&self, key: &str, name: &str) -> bool {
        self.any(key, |v| regex::Regex::new(v).is_ok_and(|re| re.is_match(name)))
    }

    /// `label=KEY` or `label=KEY=VALUE`: every value must hold (Docker's `MatchKVList`).
    pub fn labels(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.get("label").into_iter().all(|v| match v.split_once('=') {
            Some((k, val)) => labels.get(k).map(String::as_str) == Some(val),
            None => labels.contains_key(v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_like_docker() {
        let out = format_table(
            &["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
            &[vec!["7fca4eb8c647".into(), "bridge".into(), "bridge".into(), "local".into()]],
        );
        assert_eq!(out, "NETWORK ID     NAME      DRIVER    SCOPE\n7fca4eb8c647   bridge    bridge    local\n");
    }

    /// Go's tabwriter, as measured on Docker 20.10.24's `ps` and `network ls` tables.
    #[test]
    fn tabwriter_like_go() {
        // Empty cells are padded, so an empty last column leaves trailing spaces.
        assert_eq!(
            tabwriter("NAMES\tPORTS\ndb\t\nweb\t0.0.0.0:8080->80/tcp\n"),
            "NAMES     PORTS\ndb        \nweb       0.0.0.0:8080->80/tcp\n"
        );
        // Widths are in characters: `…` is one.
        assert_eq!(
            tabwriter("A\tB\n\"sh -c 'sleep 600 &&…\"\tx\n"),
            "A                        B\n\"sh -c 'sleep 600 &&…\"   x\n"
        );
        // A line without a tab ends the column block: the lines after it are laid out anew.
        // (The outputs of Go 1.19's text/tabwriter with Docker's settings.)
        assert_eq!(
            tabwriter("a\tb\nlong-cell-here\tc\nno tabs\nx\ty\n"),
            "a                b\nlong-cell-here   c\nno tabs\nx         y\n"
        );
        assert_eq!(tabwriter("\n\n"), "\n\n");
        assert_eq!(
            tabwriter("a\tb\tc\nxx\tyyyyyyyyyyyyy\nq\n\tz\tw\n"),
            "a         b         c\nxx        yyyyyyyyyyyyy\nq\n          z         w\n"
        );
    }

    fn rows() -> Vec<Value> {
        vec![
            serde_json::json!({"ID": "b89059978ac0", "Names": "db", "Ports": "", "Status": "Up 22 seconds"}),
            serde_json::json!({"ID": "83c2a2aa8eaf", "Names": "web", "Ports": "0.0.0.0:8080->80/tcp, :::8080->80/tcp", "Status": "Up 22 seconds"}),
        ]
    }

    const LIST: ListFormat = ListFormat {
        default_table: "table {{.ID}}\\t{{.Names}}",
        headers: &[("ID", "CONTAINER ID"), ("Names", "NAMES"), ("Ports", "PORTS"), ("Status", "STATUS")],
        context_type: "*formatter.ContainerContext",
        parse_error: "failed to parse template: ",
        exec_error: "failed to execute template: ",
    };

    #[test]
    fn list_formats_like_dockers_cli() {
        let f = |format: Option<&str>| format_rows(format, &LIST, &rows()).map_err(|e| e.to_string());
        let default = "CONTAINER ID   NAMES\nb89059978ac0   db\n83c2a2aa8eaf   web\n";
        assert_eq!(f(None).unwrap(), default);
        assert_eq!(f(Some("table")).unwrap(), default);
        assert_eq!(f(Some("")).unwrap(), default);
        assert_eq!(f(Some("{{.Names}}")).unwrap(), "db\nweb\n");
        // Spaces around the format go; `\t` and `\n` as two characters are a tab and a newline.
        assert_eq!(f(Some("  {{.Names}}  ")).unwrap(), "db\nweb\n");
        assert_eq!(f(Some(r"{{.Names}}\t{{.Ports}}")).unwrap(), "db\t\nweb\t0.0.0.0:8080->80/tcp, :::8080->80/tcp\n");
        assert_eq!(
            f(Some(r"table {{.Names}}\t{{.Status}}")).unwrap(),
            "NAMES     STATUS\ndb        Up 22 seconds\nweb       Up 22 seconds\n"
        );
        assert_eq!(
            f(Some(r"table {{.Names}}\t{{.Ports}}")).unwrap(),
            "NAMES     PORTS\ndb        \nweb       0.0.0.0:8080->80/tcp, :::8080->80/tcp\n"
        );
        assert_eq!(
            f(Some(r"table {{.Names}}\n{{.ID}}")).unwrap(),
            "NAMES\nCONTAINER ID\ndb\nb89059978ac0\nweb\n83c2a2aa8eaf\n"
        );
        assert_eq!(
            f(Some(r"table {{upper .Names}}\t{{json .ID}}")).unwrap(),
            "NAMES     CONTAINER ID\nDB        \"b89059978ac0\"\nWEB       \"83c2a2aa8eaf\"\n"
        );
        assert_eq!(f(Some("table ")).unwrap(), "\n\n\n");
        // A row's Label method, headed by its key.
        let labelled = [serde_json::json!({"Names": "back", "Labels": "env=prod,tier=web"})];
        assert_eq!(
            format_rows(Some(r#"table {{.Names}}\t{{.Label "tier"}}\t{{.Label "nope"}}|"#), &LIST, &labelled).unwrap(),
            "NAMES     tier      nope|\nback      web       |\n"
        );
        assert_eq!(f(Some("json")).unwrap(), f(Some("{{json .}}")).unwrap());
        assert!(f(Some("json")).unwrap().contains(r#""Ports":"0.0.0.0:8080-\u003e80/tcp, :::8080-\u003e80/tcp""#));
        assert_eq!(f(Some("{{.Names")).unwrap_err(), "failed to parse template: template: :1: unclosed action");
        assert_eq!(
            f(Some("{{.Nope}}")).unwrap_err(),
            "failed to execute template: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
        );
    }

    #[test]
    fn inspect_json_uses_four_spaces() {
        assert_eq!(docker_json(&serde_json::json!([{"Name": "x"}])), "[\n    {\n        \"Name\": \"x\"\n    }\n]");
    }

    #[test]
    fn ellipsis_like_docker() {
        assert_eq!(ellipsis("sleep 600", 20), "sleep 600");
        assert_eq!(ellipsis("docker-entrypoint.sh mysqld", 20), "docker-entrypoint.s…");
    }
}
