//! The part of Go's text/template that Docker users put in `--format`: field paths
//! (`.NetworkSettings.Networks`), `range`/`if`/`else`/`end`, variables (`$k, $v :=`),
//! pipelines (`|`), string literals and Docker's functions (`json`, `split`, `join`, `index`,
//! `lower`, `upper`, `title`, `len`, `println`, `print`, `printf` with %s/%v/%d/%q). Values
//! print the way Go prints them: `[a b]` for lists, `map[k:v]` for objects.
//!
//! `parse` turns the source into `Node`s, `exec` runs them against a JSON value, `funcs` has
//! the functions and Go's way of printing values.
//!
//! Not the `gtmpl` crate (0.7.1): it prints lists and maps with Rust's `Debug` (`[String("a")]`),
//! keeps maps in a `HashMap` (random `range` order, `json` key order lost), always runs a
//! `range`'s `{{else}}` and fails on `range` over a missing field; none of that is reachable
//! from its function hooks.
use serde_json::Value;
use thiserror::Error;

mod exec;
mod funcs;
mod parse;

#[derive(Debug, Error, PartialEq)]
pub enum TemplateError {
    #[error("template parsing error: {0}")]
    Parse(String),
    #[error("template: executing: {0}")]
    Exec(String),
}

type Result<T> = std::result::Result<T, TemplateError>;

fn parse_err(msg: impl Into<String>) -> TemplateError {
    TemplateError::Parse(msg.into())
}

fn exec_err(msg: impl Into<String>) -> TemplateError {
    TemplateError::Exec(msg.into())
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// `.A.B` (empty path = `.`).
    Field(Vec<String>),
    /// `$name.A.B` (`$` alone is the root).
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Func(String),
    /// `( pipeline )`, optionally followed by a field chain: `(index .M "k").Field`.
    Sub(Pipeline, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Command {
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    decl: Vec<String>,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    Range { pipe: Pipeline, body: Vec<Node>, else_body: Vec<Node> },
    If { pipe: Pipeline, body: Vec<Node>, else_body: Vec<Node> },
}

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Self> {
        Ok(Self { nodes: parse::parse(src)? })
    }

    pub fn execute(&self, data: &Value) -> Result<String> {
        exec::execute(&self.nodes, data)
    }
}

/// Renders `src` against `data` in one go.
#[cfg(test)]
pub fn render(src: &str, data: &Value) -> Result<String> {
    Template::parse(src)?.execute(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container() -> Value {
        json!({
            "Name": "/web",
            "Config": { "Cmd": ["sleep", "60"] },
            "NetworkSettings": {
                "IPAddress": "172.17.0.2",
                "Networks": {
                    "bridge": { "IPAddress": "172.17.0.2", "Gateway": "172.17.0.1" },
                    "my_bridge": { "IPAddress": "172.19.0.3", "Gateway": "172.19.0.1" }
                }
            }
        })
    }

    #[test]
    fn fields_and_json() {
        let c = container();
        assert_eq!(render("{{.Name}}", &c).unwrap(), "/web");
        assert_eq!(render("{{.NetworkSettings.IPAddress}}", &c).unwrap(), "172.17.0.2");
        assert_eq!(
            render("{{json .NetworkSettings.Networks.bridge}}", &c).unwrap(),
            r#"{"IPAddress":"172.17.0.2","Gateway":"172.17.0.1"}"#
        );
        assert_eq!(render("{{.Missing}}", &c).unwrap(), "<no value>");
        assert_eq!(render("{{.Config.Cmd}}", &c).unwrap(), "[sleep 60]");
    }

    #[test]
    fn the_seeds_range_split_format() {
        // `docker inspect --format='{{range .NetworkSettings.Networks}}{{split .IPAddress ","}}{{end}}' web`
        let out = render(r#"{{range .NetworkSettings.Networks}}{{split .IPAddress ","}}{{end}}"#, &container()).unwrap();
        assert_eq!(out, "[172.17.0.2][172.19.0.3]");
    }

    #[test]
    fn range_with_variables_index_and_pipes() {
        let c = container();
        let out = render("{{range $name, $net := .NetworkSettings.Networks}}{{$name}}={{$net.IPAddress}} {{end}}", &c);
        assert_eq!(out.unwrap(), "bridge=172.17.0.2 my_bridge=172.19.0.3 ");
        assert_eq!(render(r#"{{(index .NetworkSettings.Networks "my_bridge").IPAddress}}"#, &c).unwrap(), "172.19.0.3");
        assert_eq!(render(r#"{{index .NetworkSettings.Networks "my_bridge" "Gateway"}}"#, &c).unwrap(), "172.19.0.1");
        assert_eq!(render("{{.Name | upper}}", &c).unwrap(), "/WEB");
        assert_eq!(render(r#"{{join .Config.Cmd " "}}"#, &c).unwrap(), "sleep 60");
        assert_eq!(render("{{len .NetworkSettings.Networks}}", &c).unwrap(), "2");
        assert_eq!(render(r#"{{printf "%s/%d" .Name 16}}"#, &c).unwrap(), "/web/16");
        assert_eq!(render("{{range .Nothing}}x{{else}}none{{end}}", &c).unwrap(), "none");
        assert_eq!(render("{{if .NetworkSettings.IPAddress}}yes{{else}}no{{end}}", &c).unwrap(), "yes");
        assert_eq!(render("a {{- .Name -}} b", &c).unwrap(), "a/webb");
        assert_eq!(render("{{range .Config.Cmd}}{{println .}}{{end}}", &c).unwrap(), "sleep\n60\n");
    }

    #[test]
    fn errors_are_reported() {
        assert!(matches!(render("{{.Name", &json!({})), Err(TemplateError::Parse(_))));
        assert!(matches!(render("{{range .A}}", &json!({})), Err(TemplateError::Parse(_))));
        assert!(matches!(render("{{nosuch .A}}", &json!({})), Err(TemplateError::Exec(_))));
        assert!(matches!(render("{{.A.B}}", &json!({"A": "x"})), Err(TemplateError::Exec(_))));
    }
}

