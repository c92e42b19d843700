//! How the CLI prints: Docker's tables, `--format` (json, Go templates, `table ...`) for
//! lists, inspect's JSON. Views and rows are typed (`api_types.rs`, the row types of each
//! command); Go templates address fields by name, so they run on a `Value` made from them.
use anyhow::{anyhow, bail};
use serde::Serialize;
use serde_json::Value;

use super::template::Template;

/// Prints inspect results (an indented JSON array, or each object through `--format`), then
/// the errors; fails when there were any.
pub(super) fn print_inspect<T: Serialize>(
    (found, errors): (Vec<T>, Vec<anyhow::Error>),
    format: Option<&str>,
) -> anyhow::Result<()> {
    let found = values(&found)?;
    match format {
        Some(f) if f != "json" => {
            let tpl = Template::parse(f)?;
            for v in &found {
                println!("{}", tpl.execute(v)?);
            }
        }
        Some(_) => found.iter().for_each(|v| println!("{v}")),
        None => println!("{}", docker_json(&Value::Array(found))),
    }
    if !errors.is_empty() {
        bail!(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"));
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

/// Prints list rows as Docker does: a table, `--format json` (one object per line), or a Go
/// template per row (`table ...` adds a header row).
pub(super) fn print_rows<T: Serialize>(
    format: Option<&str>,
    header: &[&str],
    keys: &[&str],
    rows: &[T],
) -> anyhow::Result<()> {
    let rows = values(rows)?;
    match format {
        None | Some("table") => {
            let cell = |r: &Value, k: &str| r.get(k).map(str_of).ok_or_else(|| anyhow!("rows have no field {k}"));
            let cells = rows
                .iter()
                .map(|r| keys.iter().map(|k| cell(r, k)).collect::<anyhow::Result<Vec<_>>>())
                .collect::<anyhow::Result<Vec<_>>>()?;
            print_table(header, &cells);
        }
        Some("json") => rows.iter().for_each(|r| println!("{r}")),
        Some(f) => {
            let (table, f) = match f.strip_prefix("table") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, f),
            };
            let tpl = Template::parse(f)?;
            let mut lines = Vec::new();
            for r in &rows {
                lines.push(tpl.execute(r)?);
            }
            if table {
                // The header row: each field's column title.
                let titles: serde_json::Map<String, Value> =
                    keys.iter().zip(header).map(|(k, h)| (k.to_string(), Value::from(*h))).collect();
                lines.insert(0, tpl.execute(&Value::Object(titles))?);
                let cells: Vec<Vec<String>> =
                    lines.iter().map(|l| l.split('\t').map(str::to_string).collect()).collect();
                print!("{}", format_rows(&cells));
            } else {
                lines.iter().for_each(|l| println!("{l}"));
            }
        }
    }
    Ok(())
}

/// Docker's `Ellipsis`: at most `n` characters, the last one `…` when cut.
pub(super) fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Docker's tabwriter layout (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`): each column is
/// as wide as its widest cell plus three spaces, and at least ten.
pub(super) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", format_table(header, rows));
}

pub(super) fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut all = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    all.extend(rows.iter().cloned());
    format_rows(&all)
}

fn format_rows(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = (widths[i] + 3).max(10) - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn str_of(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
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
