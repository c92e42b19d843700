//! The part of Go's text/template that Docker users put in `--format`: field paths
//! (`.NetworkSettings.Networks`), `range`/`if`/`with` with `else` (and `else if`, `else
//! with`), variables (`$k, $v :=`), pipelines (`|`), string, number and bool constants,
//! text/template's functions (`and or not eq ne lt le gt ge len index print printf println`)
//! and Docker's (`json split join lower upper title`). Values print the way Go prints them:
//! `[a b]` for lists, `map[k:v]` for objects, and `printf` takes Go's verbs and flags (`fmt`).
//!
//! Anything else is an error, never output that looks right and is not: an unknown function
//! or action (`template`, `define`, `block`, `break`, `continue`), a printf verb this engine
//! does not print, a comparison Go would refuse.
//!
//! `parse` turns the source into `Node`s, `exec` runs them against a JSON value, `funcs` has
//! the functions, `compare` Go's comparison rules and `fmt` Go's fmt package.
//!
//! Not the `gtmpl` crate (0.7.1): it prints lists and maps with Rust's `Debug` (`[String("a")]`),
//! keeps maps in a `HashMap` (random `range` order, `json` key order lost), always runs a
//! `range`'s `{{else}}` and fails on `range` over a missing field; none of that is reachable
//! from its function hooks.
use serde_json::Value;
use thiserror::Error;

mod compare;
mod exec;
mod fmt;
mod funcs;
mod parse;

/// Go's texts: `template: :1: unclosed action` for a template that does not parse,
/// `template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"` for a field that
/// is not there; other failures while executing are `template: executing: ...`.
#[derive(Debug, Error, PartialEq)]
pub enum TemplateError {
    #[error("template: :1: {0}")]
    Parse(String),
    #[error("template: executing: {0}")]
    Exec(String),
    /// A failure at a node of the source: its line and column (Go's, the byte offset in the
    /// line), the node as written, and what went wrong.
    #[error("template: :{line}:{col}: executing \"\" at <{context}>: {message}")]
    At { line: usize, col: usize, context: String, message: String },
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
    /// `.A.B` (empty path = `.`), and where Go places the node: the byte offset in the source
    /// of its second field when chained, else of the field.
    Field(Vec<String>, usize),
    /// `$name.A.B` (`$` alone is the root).
    Var(String, Vec<String>),
    /// A string, number, bool or nil constant.
    Literal(Value),
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
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        else_body: Vec<Node>,
    },
    If {
        pipe: Pipeline,
        body: Vec<Node>,
        else_body: Vec<Node>,
    },
    /// `{{with}}`: like `if`, with dot set to the pipeline's value in the body.
    With {
        pipe: Pipeline,
        body: Vec<Node>,
        else_body: Vec<Node>,
    },
}

/// Go's `strconv.Quote`, as Docker quotes `ps`'s COMMAND.
pub(super) fn go_quote(s: &str) -> String {
    fmt::go_quote(s)
}

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    nodes: Vec<Node>,
    src: String,
}

/// How a template runs: on an inspected object (Docker's fallback to the raw JSON, where a
/// missing key is an error), on a list row of a Go type, or on a row's column titles.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Mode<'a> {
    /// The Go type of a list row (`*formatter.ContainerContext`): a field it does not have is
    /// "can't evaluate field X in type T", and `{{json .}}` escapes `<`, `>` and `&` as the
    /// row's own `MarshalJSON` does.
    pub row_type: Option<&'a str>,
    /// Docker's `HeaderFunctions`: `json`, `split`, `join`, `title`, `lower`, `upper`,
    /// `truncate` and `pad` return their first argument.
    pub header: bool,
}

impl Template {
    pub fn parse(src: &str) -> Result<Self> {
        Ok(Self { nodes: parse::parse(src)?, src: src.to_string() })
    }

    /// Runs on an inspected object.
    pub fn execute(&self, data: &Value) -> Result<String> {
        self.run(data, Mode::default())
    }

    /// Runs on a list row of the Go type `row_type`.
    pub fn execute_row(&self, data: &Value, row_type: &str) -> Result<String> {
        self.run(data, Mode { row_type: Some(row_type), header: false })
    }

    /// Runs on the column titles of a `table` format.
    pub fn execute_header(&self, titles: &Value) -> Result<String> {
        self.run(titles, Mode { row_type: None, header: true })
    }

    fn run(&self, data: &Value, mode: Mode) -> Result<String> {
        exec::execute(&self.nodes, data, mode).map_err(|e| match e {
            exec::Failure::Plain(e) => e,
            exec::Failure::At { pos, context, message } => {
                let before = &self.src[..pos.min(self.src.len())];
                let (line, col) = match before.rfind('\n') {
                    Some(nl) => (1 + before.matches('\n').count(), pos - nl - 1),
                    None => (1, pos),
                };
                TemplateError::At { line, col, context, message }
            }
        })
    }
}

/// Renders `src` against `data` in one go.
#[cfg(test)]
pub fn render(src: &str, data: &Value) -> Result<String> {
    Template::parse(src)?.execute(data)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_empty_action_word_has_a_position_fuzz_crash() {
        let src = "{{range }}{{\u{714}\0\0\0\0\0\0\ttworkSettings.Networks}}{${k}}={{$v.IPAddreys}} {{end}}";
        let err = Template::parse(src).expect_err("not a valid template").to_string();
        assert_eq!(err, "template: :1: missing value for command");
    }

    fn container() -> Value {
        json!({
            "Name": "/web",
            "Config": { "Cmd": ["sleep", "60"] },
            "Labels": {},
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
        assert_eq!(render("{{.Labels.missing}}", &c).unwrap(), "<no value>");
        assert_eq!(render("{{.Config.Cmd}}", &c).unwrap(), "[sleep 60]");
    }

    #[test]
    fn the_seeds_range_split_format() {
        // `docker inspect --format='{{range .NetworkSettings.Networks}}{{split .IPAddress ","}}{{end}}' web`
        let out =
            render(r#"{{range .NetworkSettings.Networks}}{{split .IPAddress ","}}{{end}}"#, &container()).unwrap();
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
        assert_eq!(render("{{range .Labels.nothing}}x{{else}}none{{end}}", &c).unwrap(), "none");
        assert_eq!(render("{{if .NetworkSettings.IPAddress}}yes{{else}}no{{end}}", &c).unwrap(), "yes");
        assert_eq!(render("a {{- .Name -}} b", &c).unwrap(), "a/webb");
        assert_eq!(render("{{range .Config.Cmd}}{{println .}}{{end}}", &c).unwrap(), "sleep\n60\n");
    }

    #[test]
    fn go_documented_pipelines() {
        // The examples of https://pkg.go.dev/text/template#hdr-Examples, each printing "output".
        for src in [
            r#"{{"\"output\""}}"#,
            r#"{{`"output"`}}"#,
            r#"{{printf "%q" "output"}}"#,
            r#"{{"output" | printf "%q"}}"#,
            r#"{{printf "%q" (print "out" "put")}}"#,
            r#"{{"put" | printf "%s%s" "out" | printf "%q"}}"#,
            r#"{{"output" | printf "%s" | printf "%q"}}"#,
            r#"{{with "output"}}{{printf "%q" .}}{{end}}"#,
            r#"{{with $x := "output" | printf "%q"}}{{$x}}{{end}}"#,
            r#"{{with $x := "output"}}{{printf "%q" $x}}{{end}}"#,
            r#"{{with $x := "output"}}{{$x | printf "%q"}}{{end}}"#,
        ] {
            assert_eq!(render(src, &json!({})).unwrap(), r#""output""#, "{src}");
        }
        // Trim markers, from the same page.
        assert_eq!(render("{{23 -}} < {{- 45}}", &json!({})).unwrap(), "23<45");
        assert_eq!(render("{{- 23 -}}\n\t< \r\n{{-\t45}}", &json!({})).unwrap(), "23<45");
        assert_eq!(render("a {{- /* a comment */ -}} b", &json!({})).unwrap(), "ab");
    }

    #[test]
    fn constants_read_like_go() {
        let v = json!({});
        assert_eq!(render(r#"{{printf "%q" "a\rb\x41\u263a\101\"\\"}}"#, &v).unwrap(), r#""a\rbA☺A\"\\""#);
        assert_eq!(render(r#"{{"tab\there" | printf "%s"}}|{{`raw\n`}}"#, &v).unwrap(), "tab\there|raw\\n");
        assert_eq!(render("{{printf \"%T %T %T %T\" 1 1.0 .5 true}}", &v).unwrap(), "int float64 float64 bool");
        for src in [r#"{{"\z"}}"#, r#"{{"\xzz"}}"#, r#"{{"\xff"}}"#, r#"{{"\u12"}}"#, "{{\"a\nb\"}}"] {
            assert!(matches!(render(src, &v), Err(TemplateError::Parse(_))), "{src}");
        }
    }

    #[test]
    fn printf_through_templates() {
        let c = json!({"Labels": {}, "Name": "web", "Count": 3, "Ratio": 1.5178, "On": true, "Ports": [80, 443], "Labels": {"b": "2", "a": "1"}});
        assert_eq!(render(r#"{{printf "%-10s|" .Name}}"#, &c).unwrap(), "web       |");
        assert_eq!(render(r#"{{printf "%5d" .Count}}"#, &c).unwrap(), "    3");
        assert_eq!(render(r#"{{printf "%.2f" .Ratio}}"#, &c).unwrap(), "1.52");
        assert_eq!(render(r#"{{printf "%t %v" .On .Ports}}"#, &c).unwrap(), "true [80 443]");
        assert_eq!(render(r#"{{printf "%v" .Labels}}"#, &c).unwrap(), "map[a:1 b:2]");
        assert_eq!(render(r#"{{printf "%d" .Name}}"#, &c).unwrap(), "%!d(string=web)");
        assert_eq!(render(r#"{{printf "%s %s" .Name}}"#, &c).unwrap(), "web %!s(MISSING)");
        assert_eq!(render(r#"{{printf "%s" .Name .Count}}"#, &c).unwrap(), "web%!(EXTRA int=3)");
        // A missing field is a nil operand to a function, `<no value>` only when printed.
        assert_eq!(render(r#"{{printf "%v" .Labels.missing}}"#, &c).unwrap(), "<nil>");
        assert_eq!(render(r#"{{print .Labels.missing}} {{.Labels.missing}}"#, &c).unwrap(), "<nil> <no value>");
        assert_eq!(render(r#"{{printf "%d|%.1f|%v|%q" 0755 2.25 1e3 "x"}}"#, &c).unwrap(), "493|2.2|1000|\"x\"");
        assert_eq!(render(r#"{{printf "%x %d %v" 0x1F -0b101 true}}"#, &c).unwrap(), "1f -5 true");
        assert_eq!(render(r#"{{print "a" 1 2 "b"}}|{{println "a" 1}}"#, &c).unwrap(), "a1 2b|a 1\n");
        assert_eq!(render("{{.Ratio}} {{1e21}} {{0.000001}}", &c).unwrap(), "1.5178 1e+21 1e-06");
        for (src, mentions) in [
            (r#"{{printf "%z" .Count}}"#, "unknown verb %z"),
            (r#"{{printf "%x" .Ratio}}"#, "hexadecimal floating point"),
            (r#"{{printf .Count}}"#, "expected string; got int"),
            (r#"{{printf}}"#, "want at least 1 got 0"),
        ] {
            let err = render(src, &c).unwrap_err().to_string();
            assert!(err.contains("template: executing: ") && err.contains(mentions), "{src}: {err}");
        }
    }

    #[test]
    fn with_and_else_chains() {
        let c = container();
        assert_eq!(render("{{with .NetworkSettings}}{{.IPAddress}}{{end}}", &c).unwrap(), "172.17.0.2");
        assert_eq!(render("{{with .Labels.missing}}yes{{else}}no {{.Name}}{{end}}", &c).unwrap(), "no /web");
        assert_eq!(render("{{with .Labels.missing}}a{{else with .Name}}{{.}}{{end}}", &c).unwrap(), "/web");
        assert_eq!(render("{{with .Labels.missing}}a{{else with .Labels.nothing}}b{{else}}c{{end}}", &c).unwrap(), "c");
        assert_eq!(render(r#"{{with $n := .Name}}{{$n}}={{.}}{{end}}"#, &c).unwrap(), "/web=/web");
        assert_eq!(render(r#"{{with $n := .Labels.missing}}x{{else}}{{$n}}{{end}}"#, &c).unwrap(), "<no value>");
        let ifs = r#"{{if eq .N 1}}one{{else if eq .N 2}}two{{else if eq .N 3}}three{{else}}many{{end}}"#;
        for (n, want) in [(1, "one"), (2, "two"), (3, "three"), (9, "many")] {
            assert_eq!(render(ifs, &json!({ "N": n })).unwrap(), want);
        }
        assert_eq!(render(r#"{{if $x := .Name}}{{$x}}{{end}}"#, &c).unwrap(), "/web");
        // Go's truth: false, 0, "", nil and empty lists and maps are false.
        let falsy = json!({"F": false, "Z": 0, "Z2": 0.0, "E": "", "N": null, "L": [], "M": {}});
        for field in ["F", "Z", "Z2", "E", "N", "L", "M", "M.missing"] {
            assert_eq!(
                render(&format!("{{{{if .{field}}}}}t{{{{else}}}}f{{{{end}}}}"), &falsy).unwrap(),
                "f",
                "{field}"
            );
            assert_eq!(
                render(&format!("{{{{with .{field}}}}}t{{{{else}}}}f{{{{end}}}}"), &falsy).unwrap(),
                "f",
                "{field}"
            );
        }
        let truthy = json!({"T": true, "I": -1, "S": "0", "L": [0], "M": {"k": null}});
        for field in ["T", "I", "S", "L", "M"] {
            assert_eq!(
                render(&format!("{{{{if .{field}}}}}t{{{{else}}}}f{{{{end}}}}"), &truthy).unwrap(),
                "t",
                "{field}"
            );
        }
    }

    #[test]
    fn and_or_not_return_like_go() {
        let c = json!({"A": "a", "E": "", "Z": 0, "L": [], "Items": ["x"]});
        assert_eq!(render("{{and .A .E}}|{{and .E .A}}|{{and .A 1 2}}", &c).unwrap(), "||2");
        assert_eq!(render("{{or .E .A}}|{{or .E .Z}}|{{or .A .E}}", &c).unwrap(), "a|0|a");
        assert_eq!(render("{{not .E}} {{not .A}} {{not .L}}", &c).unwrap(), "true false true");
        assert_eq!(render("{{.E | or .Z}}|{{.A | and 1}}", &c).unwrap(), "|a");
        // Short-circuit: the argument after the deciding one is not evaluated (it would fail).
        assert_eq!(render("{{and .L (index .L 5)}}", &c).unwrap(), "[]");
        assert_eq!(render("{{or .Items (index .L 5)}}", &c).unwrap(), "[x]");
        assert!(render("{{or .L (index .L 5)}}", &c).unwrap_err().to_string().contains("index out of range"));
        assert_eq!(render("{{if and .A (not .E)}}yes{{end}}", &c).unwrap(), "yes");
        for src in ["{{and}}", "{{or}}", "{{not}}", "{{not 1 2}}"] {
            assert!(render(src, &c).unwrap_err().to_string().contains("wrong number of args"), "{src}");
        }
    }

    #[test]
    fn comparisons_follow_go() {
        let c = json!({"S": "bridge", "I": 3, "F": 1.5, "B": true, "L": [1], "N": null, "M": {}});
        for (src, want) in [
            (r#"{{eq .S "bridge"}}"#, "true"),
            (r#"{{eq .S "host" "none" "bridge"}}"#, "true"),
            (r#"{{eq .S "host" "none"}}"#, "false"),
            (r#"{{ne .S "host"}}"#, "true"),
            ("{{eq .I 3}} {{lt .I 4}} {{le .I 3}} {{gt .I 3}} {{ge .I 3}}", "true true true false true"),
            ("{{lt .F 2.0}} {{gt .F 1.25}} {{eq .F 1.5}}", "true true true"),
            (r#"{{lt "a" "b"}} {{ge "b" "a"}}"#, "true true"),
            ("{{eq .B true}} {{ne .B false}}", "true true"),
            (r#"{{eq .N nil}} {{eq .M.x "x"}} {{ne .M.x "x"}}"#, "true false true"),
        ] {
            assert_eq!(render(src, &c).unwrap(), want, "{src}");
        }
        for (src, message) in [
            ("{{eq .I 3.0}}", "error calling eq: incompatible types for comparison"),
            (r#"{{eq .I "3"}}"#, "error calling eq: incompatible types for comparison"),
            ("{{lt .I .F}}", "error calling lt: incompatible types for comparison"),
            ("{{gt .B false}}", "error calling gt: invalid type for comparison"),
            ("{{lt .L 1}}", "error calling lt: invalid type for comparison"),
            ("{{eq .L .L}}", "error calling eq: non-comparable type"),
            ("{{eq .I}}", "error calling eq: missing argument for comparison"),
            ("{{ne .I}}", "wrong number of args for ne: want 2 got 1"),
            ("{{lt 1 2 3}}", "wrong number of args for lt: want 2 got 3"),
        ] {
            assert_eq!(render(src, &c).unwrap_err().to_string(), format!("template: executing: {message}"), "{src}");
        }
    }

    #[test]
    fn unsupported_syntax_is_an_error() {
        let c = container();
        for src in [
            "{{template \"x\"}}",
            "{{define \"x\"}}y{{end}}",
            "{{block \"x\" .}}y{{end}}",
            "{{range .Config.Cmd}}{{break}}{{end}}",
            "{{range .Config.Cmd}}{{continue}}{{end}}",
            "{{range .A}}a{{else if .B}}b{{end}}",
            "{{if .A}}a{{else with .B}}b{{end}}",
            "{{if .A}}a{{else}}b{{else}}c{{end}}",
            "{{$a, $b := .Name}}",
            "{{if $a, $b := .Name}}{{end}}",
            "{{range $i, $k, $v := .Config.Cmd}}{{end}}",
            "{{end}}",
            "{{else}}",
            "{{end .Name}}",
            "{{.Name-x}}",
            "{{.Name.}}",
            "{{nil}}",
            "{{0x}}",
            "{{99999999999999999999}}",
            "{{/* unclosed }}",
            "{{/* a */ .Name}}",
        ] {
            assert!(matches!(render(src, &c), Err(TemplateError::Parse(_))), "{src}: {:?}", render(src, &c));
        }
        for src in ["{{nosuch}}", "{{.Name | nosuch}}", "{{if .Name}}{{nosuch 1}}{{end}}"] {
            assert_eq!(render(src, &c), Err(TemplateError::Parse("function \"nosuch\" not defined".into())));
        }
    }

    #[test]
    fn errors_are_reported() {
        assert!(matches!(render("{{.Name", &json!({})), Err(TemplateError::Parse(_))));
        assert!(matches!(render("{{range .A}}", &json!({})), Err(TemplateError::Parse(_))));
        assert!(matches!(render("{{nosuch .A}}", &json!({})), Err(TemplateError::Parse(_))));
        assert!(matches!(render("{{.A.B}}", &json!({"A": "x"})), Err(TemplateError::At { .. })));
    }

    /// Texts measured on Docker 20.10.24 (`network inspect -f`, `inspect -f`, `ps --format`).
    #[test]
    fn dockers_error_texts() {
        let net = json!({"Name": "front", "IPAM": {"Driver": "default", "Options": {}, "Config": []}, "Labels": {"env": "prod"}});
        let err = |src: &str| Template::parse(src).and_then(|t| t.execute(&net)).unwrap_err().to_string();
        assert_eq!(err("{{.Name"), "template: :1: unclosed action");
        assert_eq!(err("{{nosuch .Name}}"), "template: :1: function \"nosuch\" not defined");
        assert_eq!(err("{{.Nope}}"), "template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\"");
        assert_eq!(
            err("{{.IPAM.Nope}}"),
            "template: :1:7: executing \"\" at <.IPAM.Nope>: map has no entry for key \"Nope\""
        );
        assert_eq!(
            err("{{.Name.X}}"),
            "template: :1:7: executing \"\" at <.Name.X>: can't evaluate field X in type interface {}"
        );
        assert_eq!(
            err("a\nbc {{.Nope}}"),
            "template: :2:5: executing \"\" at <.Nope>: map has no entry for key \"Nope\""
        );
        // A key a map (Labels, Options, ...) does not have is nothing, as on Docker's structs.
        assert_eq!(
            render("{{.Labels.nope}}|{{index .Labels \"nope\"}}|{{.Labels.env}}", &net).unwrap(),
            "<no value>||prod"
        );
        let row = json!({"Names": "web"});
        let tpl = Template::parse("{{.Nope}}").unwrap();
        assert_eq!(
            tpl.execute_row(&row, "*formatter.ContainerContext").unwrap_err().to_string(),
            "template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
        );
    }

    #[test]
    fn structs_print_like_go_structs() {
        let net = json!({
            "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]},
            "Options": {"com.docker.network.bridge.name": "brx"},
            "ConfigFrom": {"Network": ""},
            "Labels": {"tier": "web", "env": "prod"}
        });
        assert_eq!(render("{{.IPAM}}", &net).unwrap(), "{default map[] [{172.18.0.0/16  172.18.0.1 map[]}]}");
        assert_eq!(render("{{.Options}}", &net).unwrap(), "map[com.docker.network.bridge.name:brx]");
        assert_eq!(render("{{.ConfigFrom}} {{.Labels}}", &net).unwrap(), "{} map[env:prod tier:web]");
        assert_eq!(render(r#"{{index .Options "com.docker.network.bridge.name"}}"#, &net).unwrap(), "brx");
    }

    #[test]
    fn dockers_functions() {
        let c = json!({"Name": "/web", "Cmd": ["sleep", "1000"]});
        assert_eq!(
            render(r#"{{println .Name}}{{upper .Name}} {{lower "AbC"}} {{title "hello world-x"}} {{join .Cmd "+"}} {{split "a,b" ","}} {{len .Cmd}}"#, &c).unwrap(),
            "/web\n/WEB abc Hello World-X sleep+1000 [a b] 2"
        );
        assert_eq!(render("{{truncate .Name 3}}|{{pad .Name 2 3}}|", &c).unwrap(), "/we|  /web   |");
        assert_eq!(
            render(r#"{{json .Cmd}} {{json .Name}} {{json "a&b<c>"}}"#, &c).unwrap(),
            r#"["sleep","1000"] "/web" "a&b<c>""#
        );
        // A list row's own JSON escapes HTML characters (Docker's MarshalJSON of the row).
        let row = json!({"Ports": "0.0.0.0:80->80/tcp"});
        let tpl = Template::parse("{{json .}} {{json .Ports}}").unwrap();
        assert_eq!(tpl.execute_row(&row, "T").unwrap(), r#"{"Ports":"0.0.0.0:80-\u003e80/tcp"} "0.0.0.0:80->80/tcp""#);
        // Header rows: Docker's header functions return their argument.
        let tpl = Template::parse(r#"{{upper .Names}}\t{{json .ID}}\t{{truncate .Names 1}}"#).unwrap();
        assert_eq!(
            tpl.execute_header(&json!({"Names": "NAMES", "ID": "CONTAINER ID"})).unwrap(),
            r#"NAMES\tCONTAINER ID\tNAMES"#
        );
    }
}
