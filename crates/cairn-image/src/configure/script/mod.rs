//! A reader for maintainer-script shell text: it walks a script as `sh`
//! would on a first `postinst configure` (or `preinst install`) and reports
//! the commands it would run with the words they would get, without running
//! any program.
//!
//! Owns evaluation over the syntax tree [`parse`] builds: variables and
//! `${...}` expansions with field splitting, `"$@"`, functions with their
//! arguments, files sourced with `.` (read from the environment's own
//! packages, see [`Context::world`]), `$(...)`, pipelines, and the
//! conditions whose operands are known: `[`/`test` on strings and integers,
//! `case` patterns, `&&`/`||`, `dpkg --compare-versions`. The text tools
//! scripts pipe words through (`echo`, `grep`, `sed s///`, `tr`, `basename`,
//! `dpkg -L` from the packages' file lists, see [`tools`]) are evaluated as
//! pure functions, so postgresql-common's man-page alternatives, built by a
//! sourced `dpkg -L | grep | sed` loop, are read like a literal call.
//!
//! Everything else is unknown, never guessed: a program's output or exit
//! status (`getent`, `[ -d ... ]`, `which`), unknown variables. A condition
//! that is unknown makes every branch read (what a first installation does:
//! maintainer scripts guard their calls with checks that pass on a fresh
//! system), and `return`/`exit` inside such a branch are not taken. A word
//! that cannot be evaluated leaves its command's words unresolved for the
//! caller to name. Evaluation is bounded (call depth, a step and a byte
//! budget, parse nesting), so a hostile script ends the reading, not the
//! process.

mod parse;
mod tools;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use parse::{Modifier, Node, Part, Redirect, Word};
use regex::Regex;
use tools::Pat;

use super::PackageInput;

/// A command after expansion: `words` is `None` when a word could not be
/// resolved (an unknown variable or a command substitution).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    pub words: Option<Vec<String>>,
    /// The command name when it is known even though arguments are not.
    pub program: Option<String>,
    pub line: usize,
}

/// What a script is read as part of.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Context<'a> {
    /// The package whose script this is (`$DPKG_MAINTSCRIPT_PACKAGE`).
    pub package: &'a str,
    /// `postinst` or `preinst` (`$DPKG_MAINTSCRIPT_NAME`; `preinst` gets `install`).
    pub script: &'a str,
    /// `$DPKG_MAINTSCRIPT_ARCH`.
    pub architecture: &'a str,
    /// Every package of the environment: `dpkg -L` lists their files, and a
    /// file sourced with `.` is read from the one that holds it with its
    /// bytes (see [`super::sourced_paths`]).
    pub world: &'a [PackageInput],
}

/// The simple commands `script` runs, read without context (tests).
#[cfg(test)]
pub(crate) fn commands(script: &str) -> Vec<Command> {
    read(
        script,
        Context {
            script: "postinst",
            ..Context::default()
        },
    )
}

/// The simple commands `script` runs in `context`, in order, loops unrolled.
pub(crate) fn read(script: &str, context: Context<'_>) -> Vec<Command> {
    let program = parse::parse(script);
    let positional = if context.script == "preinst" {
        vec!["install".to_string()]
    } else {
        vec!["configure".to_string(), String::new()]
    };
    let mut vars = BTreeMap::new();
    for (name, value) in [
        ("DPKG_MAINTSCRIPT_PACKAGE", context.package),
        ("DPKG_MAINTSCRIPT_NAME", context.script),
        ("DPKG_MAINTSCRIPT_ARCH", context.architecture),
    ] {
        vars.insert(name.to_string(), Value::Known(value.to_string()));
    }
    let mut shell = Shell {
        context,
        vars,
        positional,
        functions: BTreeMap::new(),
        depth: 0,
        uncertain: 0,
        record: true,
        line: None,
        last: Some(0),
        budget: Rc::new(Budget::default()),
        out: Rc::new(RefCell::new(Vec::new())),
        regexes: Rc::new(RefCell::new(HashMap::new())),
    };
    let mut io = Io {
        stdin: None,
        stdout: Sink::Discard,
    };
    shell.run_list(&program, &mut io);
    shell.out.take()
}

/// How deep function calls, sourced files and `$(...)` may nest.
const MAX_DEPTH: usize = 8;
/// How many simple commands one script may make us evaluate, calls and
/// loops included (real maintainer scripts stay in the low thousands; the
/// postgresql man-page loop is about 2,500).
const MAX_STEPS: usize = 50_000;
/// How many bytes the emulated tools and expansions may produce in all
/// (postgresql's man-page loop produces about 1 MB).
const MAX_BYTES: usize = 32 << 20;
/// How many pathname expansions one script may make (each reads every
/// package's file list).
const MAX_GLOBS: usize = 64;
/// How many fields one word may expand to.
const MAX_FIELDS: usize = 100_000;

/// An exit status: `None` when unknown.
type Status = Option<i32>;

enum Flow {
    Next(Status),
    Return(Status),
    Exit(Status),
    Break,
    Continue,
}

impl Flow {
    fn status(&self) -> Status {
        match self {
            Flow::Next(s) | Flow::Return(s) | Flow::Exit(s) => *s,
            Flow::Break | Flow::Continue => Some(0),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Known(String),
    /// Explicitly `unset`.
    Unset,
    Unknown,
}

#[derive(Default)]
struct Budget {
    steps: Cell<usize>,
    bytes: Cell<usize>,
    globs: Cell<usize>,
}

/// Where a command's standard output goes.
enum Sink {
    Discard,
    /// Captured; `None` once something unknown was written.
    Buffer(Option<String>),
}

struct Io {
    /// Standard input when known (a pipe from a known command).
    stdin: Option<String>,
    stdout: Sink,
}

/// `$name` as found.
enum Lookup {
    Set(String),
    /// Not set, known (unset, or a `DPKG_` variable dpkg leaves out).
    Unset,
    /// Not set by the script: the environment may have it.
    Missing,
    Unknown,
}

#[derive(Clone)]
struct Shell<'a> {
    context: Context<'a>,
    vars: BTreeMap<String, Value>,
    positional: Vec<String>,
    functions: BTreeMap<String, Rc<Node>>,
    /// Function calls, sourced files and substitutions being evaluated.
    depth: usize,
    /// How many enclosing branches may not run: `return`/`exit` are then
    /// not taken and unknown assignments keep earlier values.
    uncertain: usize,
    /// Whether commands are reported (not inside `$(...)`).
    record: bool,
    /// The line commands count at inside a function or sourced file: the call's.
    line: Option<usize>,
    last: Status,
    budget: Rc<Budget>,
    out: Rc<RefCell<Vec<Command>>>,
    regexes: Rc<RefCell<HashMap<String, Option<Regex>>>>,
}

/// Builtins and emulated tools whose run has no effect on the system, so
/// they are evaluated, not reported.
const PURE: &[&str] = &[
    ":", "true", "false", "[", "test", "echo", "printf", "basename", "dirname", "grep", "egrep",
    "fgrep", "sed", "tr", "cat",
];

impl<'a> Shell<'a> {
    fn step(&self) -> bool {
        let taken = self.budget.steps.get() + 1;
        self.budget.steps.set(taken);
        taken <= MAX_STEPS
    }

    /// Counts `bytes` produced; false once the budget is spent.
    fn spend(&self, bytes: usize) -> bool {
        let total = self.budget.bytes.get().saturating_add(bytes);
        self.budget.bytes.set(total);
        total <= MAX_BYTES
    }

    fn write(&self, sink: &mut Sink, text: &str) {
        if let Sink::Buffer(buffer) = sink {
            let within = self.spend(text.len());
            match buffer {
                Some(b) if within => b.push_str(text),
                _ => *buffer = None,
            }
        }
    }

    fn poison(sink: &mut Sink) {
        if let Sink::Buffer(buffer) = sink {
            *buffer = None;
        }
    }

    fn record(&self, words: Option<Vec<String>>, program: Option<String>, line: usize) {
        if self.record {
            self.out.borrow_mut().push(Command {
                words,
                program,
                line: self.line.unwrap_or(line),
            });
        }
    }

    fn run_list(&mut self, nodes: &[Node], io: &mut Io) -> Flow {
        let mut status = Some(0);
        for node in nodes {
            match self.run(node, io) {
                Flow::Next(s) => {
                    status = s;
                    self.last = s;
                }
                other => return other,
            }
        }
        Flow::Next(status)
    }

    /// Runs `nodes` as a branch that may not run.
    fn run_doubtful(&mut self, nodes: &[Node], io: &mut Io) -> Flow {
        self.uncertain += 1;
        let flow = self.run_list(nodes, io);
        self.uncertain -= 1;
        flow
    }

    fn run(&mut self, node: &Node, io: &mut Io) -> Flow {
        match node {
            Node::Simple {
                assignments,
                words,
                redirects,
                line,
            } => self.simple(assignments, words, redirects, *line, io),
            Node::Pipeline { bang, commands } => {
                let status = self.pipeline(commands, io);
                Flow::Next(match (bang, status) {
                    (false, s) => s,
                    (true, Some(0)) => Some(1),
                    (true, Some(_)) => Some(0),
                    (true, None) => None,
                })
            }
            Node::AndOr { first, rest } => self.and_or(first, rest, io),
            Node::If { arms, otherwise } => self.if_clause(arms, otherwise.as_deref(), io),
            Node::For { name, words, body } => self.for_clause(name, words.as_deref(), body, io),
            Node::Loop {
                until,
                condition,
                body,
            } => {
                let status = match self.run_list(condition, io) {
                    Flow::Next(s) => s,
                    other => return other,
                };
                let runs = match status {
                    Some(s) => (s == 0) != *until,
                    None => true,
                };
                if runs {
                    // The body is read once, as a branch that may not run
                    // again (or at all).
                    match self.run_doubtful(body, io) {
                        Flow::Next(_) | Flow::Break | Flow::Continue => {}
                        other => return other,
                    }
                    return Flow::Next(None);
                }
                Flow::Next(Some(0))
            }
            Node::Case { word, arms } => self.case_clause(word, arms, io),
            Node::Group { body, subshell } => {
                if *subshell {
                    let mut sub = self.clone();
                    Flow::Next(sub.run_list(body, io).status())
                } else {
                    self.run_list(body, io)
                }
            }
            Node::Redirected { node, redirects } => {
                if stdout_redirected(redirects) {
                    let mut sub_io = Io {
                        stdin: None,
                        stdout: Sink::Discard,
                    };
                    self.run(node, &mut sub_io)
                } else {
                    self.run(node, io)
                }
            }
            Node::Function { name, body } => {
                self.functions.insert(name.clone(), body.clone());
                Flow::Next(Some(0))
            }
            Node::Unparsed { line } => {
                self.record(None, None, *line);
                Shell::poison(&mut io.stdout);
                Flow::Next(None)
            }
        }
    }

    fn pipeline(&mut self, commands: &[Node], io: &mut Io) -> Status {
        if let [only] = commands {
            return self.run(only, io).status();
        }
        // Every part runs in a subshell: assignments there do not persist.
        let mut input = io.stdin.clone();
        let mut status = Some(0);
        for (k, command) in commands.iter().enumerate() {
            let last = k + 1 == commands.len();
            let mut sub = self.clone();
            let mut part_io = Io {
                stdin: input.take(),
                stdout: if last {
                    std::mem::replace(&mut io.stdout, Sink::Discard)
                } else {
                    Sink::Buffer(Some(String::new()))
                },
            };
            status = sub.run(command, &mut part_io).status();
            if last {
                io.stdout = part_io.stdout;
            } else if let Sink::Buffer(buffer) = part_io.stdout {
                input = buffer;
            }
        }
        status
    }

    fn and_or(&mut self, first: &Node, rest: &[(bool, Node)], io: &mut Io) -> Flow {
        let mut status = match self.run(first, io) {
            Flow::Next(s) => s,
            other => return other,
        };
        for (and, node) in rest {
            let runs = status.is_none_or(|s| (s == 0) == *and);
            if !runs {
                continue;
            }
            let doubtful = status.is_none();
            if doubtful {
                self.uncertain += 1;
            }
            let flow = self.run(node, io);
            if doubtful {
                self.uncertain -= 1;
            }
            let next = match flow {
                Flow::Next(s) => s,
                other => return other,
            };
            status = match (doubtful, and) {
                (false, _) => next,
                // `unknown || true` succeeds either way.
                (true, false) if next == Some(0) => Some(0),
                (true, _) => None,
            };
        }
        Flow::Next(status)
    }

    fn if_clause(
        &mut self,
        arms: &[(Vec<Node>, Vec<Node>)],
        otherwise: Option<&[Node]>,
        io: &mut Io,
    ) -> Flow {
        let mut doubt = 0;
        let mut result = Flow::Next(Some(0));
        let mut decided = false;
        for (condition, body) in arms {
            let status = match self.run_list(condition, io) {
                Flow::Next(s) => s,
                other => {
                    self.uncertain -= doubt;
                    return other;
                }
            };
            match status {
                Some(0) => {
                    result = self.run_list(body, io);
                    decided = true;
                    break;
                }
                Some(_) => {}
                None => {
                    if let Some(flow) = self.doubtful_arm(&mut doubt, body, io) {
                        return flow;
                    }
                }
            }
        }
        if !decided && let Some(body) = otherwise {
            result = self.run_list(body, io);
        }
        self.uncertain -= doubt;
        if doubt > 0 && matches!(result, Flow::Next(_)) {
            return Flow::Next(None);
        }
        result
    }

    /// Reads an arm whose condition is unknown: it may run, and so may the
    /// arms after it, so from here on the reading is uncertain (`doubt`
    /// holds the one level this adds, taken off by the caller at the end).
    /// `Some` ends the caller with a flow the arm could not have avoided.
    fn doubtful_arm(&mut self, doubt: &mut usize, body: &[Node], io: &mut Io) -> Option<Flow> {
        if *doubt == 0 {
            *doubt = 1;
            self.uncertain += 1;
        }
        match self.run_list(body, io) {
            flow @ (Flow::Return(_) | Flow::Exit(_)) => {
                self.uncertain -= *doubt;
                Some(flow)
            }
            _ => None,
        }
    }

    fn for_clause(
        &mut self,
        name: &str,
        words: Option<&[Word]>,
        body: &[Node],
        io: &mut Io,
    ) -> Flow {
        let values = match words {
            None => Some(self.positional.clone()),
            Some(words) => {
                let mut values = Some(Vec::new());
                for word in words {
                    match (self.expand(word), values.as_mut()) {
                        (Some(fields), Some(v)) => v.extend(fields),
                        _ => values = None,
                    }
                }
                values
            }
        };
        let Some(values) = values else {
            // Unknown words: the body is read once with the variable unknown.
            self.vars.insert(name.to_string(), Value::Unknown);
            return match self.run_doubtful(body, io) {
                Flow::Next(_) | Flow::Break | Flow::Continue => Flow::Next(None),
                other => other,
            };
        };
        let mut status = Some(0);
        for value in values {
            self.vars.insert(name.to_string(), Value::Known(value));
            match self.run_list(body, io) {
                Flow::Next(s) => status = s,
                Flow::Break => break,
                Flow::Continue => {}
                other => return other,
            }
        }
        Flow::Next(status)
    }

    fn case_clause(&mut self, word: &Word, arms: &[(Vec<Word>, Vec<Node>)], io: &mut Io) -> Flow {
        let subject = self.expand_joined(word);
        let mut doubt = 0;
        let mut result = Flow::Next(Some(0));
        for (patterns, body) in arms {
            let mut matched = Some(false);
            for pattern in patterns {
                let pattern = self.pattern(pattern);
                matched = match (&subject, pattern, matched) {
                    (_, _, Some(true)) => Some(true),
                    (Some(s), Some(p), m) => {
                        if tools::pattern_matches(&p, &s.chars().collect::<Vec<_>>()) {
                            Some(true)
                        } else {
                            m
                        }
                    }
                    _ => None,
                };
            }
            match matched {
                Some(false) => continue,
                Some(true) => {
                    result = self.run_list(body, io);
                    break;
                }
                None => {
                    if let Some(flow) = self.doubtful_arm(&mut doubt, body, io) {
                        return flow;
                    }
                }
            }
        }
        self.uncertain -= doubt;
        if doubt > 0 && matches!(result, Flow::Next(_)) {
            return Flow::Next(None);
        }
        result
    }

    fn assign(&mut self, name: &str, value: Option<String>) {
        match value {
            Some(v) => {
                self.vars.insert(name.to_string(), Value::Known(v));
            }
            // A value we cannot evaluate in a branch that may not run
            // (`priority=$(expr $priority - 1)` for foreign architectures)
            // keeps an earlier known value, which the default path uses.
            None if self.uncertain > 0 => {
                self.vars
                    .entry(name.to_string())
                    .and_modify(|v| {
                        if !matches!(v, Value::Known(_)) {
                            *v = Value::Unknown;
                        }
                    })
                    .or_insert(Value::Unknown);
            }
            None => {
                self.vars.insert(name.to_string(), Value::Unknown);
            }
        }
    }

    /// `NAME=value`: the name and the expanded value.
    fn assignment(&mut self, word: &Word) -> Option<(String, Option<String>)> {
        let name = parse::assignment_name(word)?.to_string();
        let mut value_word = word.clone();
        if let Some(Part::Text { text, .. }) = value_word.first_mut() {
            *text = text[name.len() + 1..].to_string();
        }
        let value = self.expand_joined(&value_word);
        Some((name, value))
    }

    fn simple(
        &mut self,
        assignments: &[Word],
        words: &[Word],
        redirects: &[Redirect],
        line: usize,
        io: &mut Io,
    ) -> Flow {
        if !self.step() {
            Shell::poison(&mut io.stdout);
            return Flow::Next(None);
        }
        if words.is_empty() {
            let last = self.last;
            self.last = Some(0);
            for word in assignments {
                if let Some((name, value)) = self.assignment(word) {
                    self.assign(&name, value);
                }
            }
            // `x=$(cmd)` has cmd's status.
            let status = self.last;
            self.last = last;
            return Flow::Next(status);
        }
        // Prefix assignments (`LC_ALL=C cmd`) only change cmd's environment.
        let mut fields = Some(Vec::new());
        for word in words {
            match (self.expand(word), fields.as_mut()) {
                (Some(f), Some(all)) => all.extend(f),
                _ => fields = None,
            }
        }
        let program = match &fields {
            Some(f) => f.first().cloned(),
            None => parse::literal_text(&words[0]).map(str::to_string),
        };
        let Some(name) = program.clone() else {
            self.record(None, None, line);
            Shell::poison(&mut io.stdout);
            return Flow::Next(None);
        };
        let discard = stdout_redirected(redirects);
        let writes_file = redirects.iter().any(|r| {
            r.op.starts_with('>')
                && r.op != ">&"
                && parse::literal_text(&r.target).is_none_or(|t| t != "/dev/null")
        });
        let stdin_redirected = redirects.iter().any(|r| r.fd == 0);
        let Some(fields) = fields else {
            self.record(None, Some(name), line);
            if !discard {
                Shell::poison(&mut io.stdout);
            }
            return Flow::Next(None);
        };
        let args = &fields[1..];
        if let Some(body) = self.functions.get(&name).cloned() {
            return self.call(&body, args, line, io, discard);
        }
        let stdin = if stdin_redirected {
            None
        } else {
            io.stdin.clone()
        };
        let mut scratch = Sink::Buffer(Some(String::new()));
        let out: &mut Sink = if discard {
            &mut scratch
        } else {
            &mut io.stdout
        };
        if let Some(flow) = self.builtin(&name, args, line, out) {
            return flow;
        }
        if PURE.contains(&name.as_str())
            && !writes_file
            && let Some((output, status)) = self.tool(&name, args, stdin)
        {
            match output {
                Some(text) => self.write(out, &text),
                None => Shell::poison(out),
            }
            return Flow::Next(status);
        }
        if name == "dpkg"
            && let Some((output, status)) = self.dpkg(args)
        {
            self.write(out, &output);
            return Flow::Next(status);
        }
        self.record(Some(fields.clone()), Some(name), line);
        Shell::poison(out);
        Flow::Next(None)
    }

    /// Shell builtins that change the shell itself; `None` for anything else.
    fn builtin(
        &mut self,
        name: &str,
        args: &[String],
        line: usize,
        out: &mut Sink,
    ) -> Option<Flow> {
        let certain = self.uncertain == 0;
        let code = |args: &[String]| args.first().and_then(|a| a.parse::<i32>().ok());
        Some(match name {
            "unset" => {
                let functions = args.first().is_some_and(|a| a == "-f");
                for arg in args.iter().filter(|a| !a.starts_with('-')) {
                    if functions {
                        self.functions.remove(arg);
                    } else {
                        self.vars.insert(arg.clone(), Value::Unset);
                    }
                }
                Flow::Next(Some(0))
            }
            "export" | "local" | "readonly" => {
                for arg in args.iter().filter(|a| !a.starts_with('-')) {
                    if let Some((n, v)) = arg.split_once('=')
                        && parse::is_name(n)
                    {
                        self.vars.insert(n.to_string(), Value::Known(v.to_string()));
                    }
                }
                Flow::Next(Some(0))
            }
            "set" => {
                if let Some(k) = args.iter().position(|a| a == "--") {
                    self.positional = args[k + 1..].to_vec();
                }
                Flow::Next(Some(0))
            }
            "shift" => {
                let n = code(args).unwrap_or(1).max(0) as usize;
                self.positional.drain(..n.min(self.positional.len()));
                Flow::Next(Some(0))
            }
            "read" => {
                for arg in args.iter().filter(|a| !a.starts_with('-')) {
                    self.vars.insert(arg.clone(), Value::Unknown);
                }
                Flow::Next(None)
            }
            "return" if certain => Flow::Return(code(args).or(self.last)),
            "exit" if certain => Flow::Exit(code(args).or(self.last)),
            "break" if certain => Flow::Break,
            "continue" if certain => Flow::Continue,
            "return" | "exit" | "break" | "continue" => Flow::Next(None),
            "." | "source" => return self.source(args, line, out),
            _ => return None,
        })
    }

    /// `. FILE` with FILE's bytes from the environment's packages; `None`
    /// (reported as a command) when they are not at hand. debconf's
    /// confmodule is never followed: its `db_*` functions are debconf's
    /// protocol, which configuration names as such.
    fn source(&mut self, args: &[String], line: usize, out: &mut Sink) -> Option<Flow> {
        let path = args.first()?;
        if path.starts_with("/usr/share/debconf/confmodule") || self.depth >= MAX_DEPTH {
            return None;
        }
        let text = sourced_text(self.context.world, path)?;
        let program = parse::parse(&text);
        let saved_line = self.line;
        self.line.get_or_insert(line);
        self.depth += 1;
        let mut io = Io {
            stdin: None,
            stdout: std::mem::replace(out, Sink::Discard),
        };
        let flow = self.run_list(&program, &mut io);
        *out = io.stdout;
        self.depth -= 1;
        self.line = saved_line;
        Some(match flow {
            Flow::Return(s) => Flow::Next(s),
            other => other,
        })
    }

    fn call(
        &mut self,
        body: &Node,
        args: &[String],
        line: usize,
        io: &mut Io,
        discard: bool,
    ) -> Flow {
        if self.depth >= MAX_DEPTH || !self.step() {
            self.record(None, None, line);
            Shell::poison(&mut io.stdout);
            return Flow::Next(None);
        }
        let saved = std::mem::replace(&mut self.positional, args.to_vec());
        let saved_line = self.line;
        self.line.get_or_insert(line);
        self.depth += 1;
        let flow = if discard {
            let mut sub_io = Io {
                stdin: io.stdin.clone(),
                stdout: Sink::Discard,
            };
            self.run(body, &mut sub_io)
        } else {
            self.run(body, io)
        };
        self.depth -= 1;
        self.line = saved_line;
        self.positional = saved;
        match flow {
            Flow::Exit(s) => Flow::Exit(s),
            other => Flow::Next(other.status()),
        }
    }

    fn compile(&self, re: &str) -> Option<Regex> {
        self.regexes
            .borrow_mut()
            .entry(re.to_string())
            .or_insert_with(|| {
                regex::RegexBuilder::new(re)
                    .size_limit(1 << 20)
                    .build()
                    .ok()
            })
            .clone()
    }

    /// The emulated pure tools: `Some((output, status))` when modelled,
    /// output `None` when it depends on what is not known.
    fn tool(
        &self,
        name: &str,
        args: &[String],
        stdin: Option<String>,
    ) -> Option<(Option<String>, Status)> {
        let mut compile = |re: &str| self.compile(re);
        let needs_input = |stdin: &Option<String>| stdin.is_none();
        Some(match name {
            ":" | "true" => (Some(String::new()), Some(0)),
            "false" => (Some(String::new()), Some(1)),
            "[" | "test" => {
                let args = if name == "[" {
                    args.strip_suffix(&["]".to_string()]).unwrap_or(args)
                } else {
                    args
                };
                let result = tools::test(args);
                (Some(String::new()), result.map(|r| i32::from(!r)))
            }
            "echo" => {
                let (newline, words) = match args.split_first() {
                    Some((flag, rest)) if flag == "-n" => (false, rest),
                    _ => (true, args),
                };
                let mut text = words.join(" ");
                if newline {
                    text.push('\n');
                }
                (Some(text), Some(0))
            }
            "printf" => (Some(tools::printf(args)?), Some(0)),
            "basename" => (tools::basename(args).map(|b| b + "\n"), Some(0)),
            "dirname" => (tools::dirname(args).map(|b| b + "\n"), Some(0)),
            "grep" | "egrep" | "fgrep" => {
                let mut args = args.to_vec();
                if name == "egrep" {
                    args.insert(0, "-E".into());
                } else if name == "fgrep" {
                    args.insert(0, "-F".into());
                }
                if needs_input(&stdin) {
                    return Some((None, None));
                }
                let (out, status) = tools::grep(&args, stdin.as_deref()?, &mut compile)?;
                (Some(out), Some(status))
            }
            "sed" => {
                if needs_input(&stdin) {
                    return Some((None, None));
                }
                (
                    Some(tools::sed(args, stdin.as_deref()?, &mut compile)?),
                    Some(0),
                )
            }
            "tr" => {
                if needs_input(&stdin) {
                    return Some((None, None));
                }
                (Some(tools::tr(args, stdin.as_deref()?)?), Some(0))
            }
            "cat" if args.is_empty() || args == ["-"] => (stdin, Some(0)),
            _ => return None,
        })
    }

    /// `dpkg -L PKG...` from the packages' file lists and `dpkg
    /// --compare-versions`; `None` for the rest.
    fn dpkg(&self, args: &[String]) -> Option<(String, Status)> {
        match args.first().map(String::as_str) {
            Some("-L" | "--listfiles") => {
                let mut out = String::new();
                let mut status = 0;
                for name in &args[1..] {
                    let name = name.split(':').next().unwrap_or(name);
                    let Some(package) = self.context.world.iter().find(|p| p.name == name) else {
                        // dpkg-query: package 'x' is not installed (on stderr).
                        status = 1;
                        continue;
                    };
                    out.push_str("/.\n");
                    for file in &package.files {
                        let path = file.path.trim_end_matches('/');
                        if !path.is_empty() {
                            out.push_str(path);
                            out.push('\n');
                        }
                    }
                }
                Some((out, Some(status)))
            }
            Some("--compare-versions") => {
                let [a, op, b] = &args[1..] else {
                    return None;
                };
                let result = compare_versions(a, op, b)?;
                Some((String::new(), Some(i32::from(!result))))
            }
            _ => None,
        }
    }

    // ----- expansion -----

    fn lookup(&self, name: &str) -> Lookup {
        let set = |v: &str| Lookup::Set(v.to_string());
        if let Ok(n) = name.parse::<usize>() {
            if n == 0 {
                return Lookup::Set(format!(
                    "/var/lib/dpkg/info/{}.{}",
                    self.context.package, self.context.script
                ));
            }
            return self.positional.get(n - 1).map_or(Lookup::Unset, |v| set(v));
        }
        match name {
            "#" => set(&self.positional.len().to_string()),
            "@" | "*" => set(&self.positional.join(" ")),
            "?" => self.last.map_or(Lookup::Unknown, |s| set(&s.to_string())),
            "$" | "!" | "-" => Lookup::Unknown,
            _ => match self.vars.get(name) {
                Some(Value::Known(v)) => set(v),
                Some(Value::Unset) => Lookup::Unset,
                Some(Value::Unknown) => Lookup::Unknown,
                // dpkg sets DPKG_ROOT and friends, empty in a normal install.
                None if name.starts_with("DPKG_") => set(""),
                None => Lookup::Missing,
            },
        }
    }

    /// A parameter's value, `None` when unknown (or over the byte budget).
    fn param(&mut self, name: &str, modifier: &Modifier) -> Option<String> {
        let value = self.param_value(name, modifier)?;
        self.spend(value.len()).then_some(value)
    }

    fn param_value(&mut self, name: &str, modifier: &Modifier) -> Option<String> {
        let found = self.lookup(name);
        let is_empty_set = matches!(&found, Lookup::Set(v) if v.is_empty());
        let absent = matches!(found, Lookup::Unset | Lookup::Missing);
        match modifier {
            Modifier::None => match found {
                Lookup::Set(v) => Some(v),
                Lookup::Unset => Some(String::new()),
                Lookup::Missing | Lookup::Unknown => None,
            },
            Modifier::Length => match found {
                Lookup::Set(v) => Some(v.chars().count().to_string()),
                Lookup::Unset => Some("0".into()),
                _ => None,
            },
            Modifier::Default { colon, word } | Modifier::Assign { colon, word } => {
                if matches!(found, Lookup::Unknown) {
                    return None;
                }
                if absent || (*colon && is_empty_set) {
                    let value = self.expand_joined(word)?;
                    if matches!(modifier, Modifier::Assign { .. }) {
                        self.vars.insert(name.into(), Value::Known(value.clone()));
                    }
                    Some(value)
                } else if let Lookup::Set(v) = found {
                    Some(v)
                } else {
                    None
                }
            }
            Modifier::Alternative { colon, word } => match found {
                Lookup::Unknown => None,
                Lookup::Set(v) if !(*colon && v.is_empty()) => self.expand_joined(word),
                _ => Some(String::new()),
            },
            Modifier::Error => match found {
                Lookup::Set(v) => Some(v),
                _ => None,
            },
            Modifier::Trim {
                suffix,
                longest,
                pattern,
            } => {
                let value = match found {
                    Lookup::Set(v) => v,
                    Lookup::Unset => String::new(),
                    _ => return None,
                };
                let pattern = self.pattern(pattern)?;
                Some(tools::trim(&value, &pattern, *suffix, *longest))
            }
        }
    }

    /// `$(...)`: its output, trailing newlines removed; `None` when unknown.
    fn capture(&mut self, program: &[Node]) -> Option<String> {
        if self.depth >= MAX_DEPTH || !self.step() {
            return None;
        }
        let mut sub = self.clone();
        sub.depth += 1;
        sub.record = false;
        sub.uncertain = 0;
        let mut io = Io {
            stdin: None,
            stdout: Sink::Buffer(Some(String::new())),
        };
        let status = sub.run_list(program, &mut io).status();
        self.last = status;
        match io.stdout {
            Sink::Buffer(Some(mut text)) => {
                text.truncate(text.trim_end_matches('\n').len());
                Some(text)
            }
            _ => None,
        }
    }

    /// One part's text and whether it was quoted; `None` when unknown.
    fn part_value(&mut self, part: &Part) -> Option<(String, bool)> {
        match part {
            Part::Text { text, quoted } => Some((text.clone(), *quoted)),
            Part::Param {
                name,
                modifier,
                quoted,
            } => Some((self.param(name, modifier)?, *quoted)),
            Part::Command { program, quoted } => Some((self.capture(program)?, *quoted)),
            Part::Arithmetic => None,
        }
    }

    /// A word without field splitting (assignments, `case` subjects).
    fn expand_joined(&mut self, word: &Word) -> Option<String> {
        let mut value = String::new();
        for part in word {
            value.push_str(&self.part_value(part)?.0);
        }
        Some(value)
    }

    /// A word as a pattern: quoted parts literal, unquoted ones special.
    fn pattern(&mut self, word: &Word) -> Option<Vec<Pat>> {
        let mut pattern = Vec::new();
        for part in word {
            let (text, quoted) = self.part_value(part)?;
            tools::push_pattern(&mut pattern, &text, quoted);
        }
        Some(pattern)
    }

    /// Expands a word into fields: unquoted values are split on whitespace,
    /// quoted text never is, `"$@"` gives one field per argument; an empty
    /// unquoted expansion yields no field.
    fn expand(&mut self, word: &Word) -> Option<Vec<String>> {
        let mut fields: Vec<String> = Vec::new();
        let mut current = String::new();
        let mut has_current = false;
        // Whether the word has unquoted pattern characters, and quoted text:
        // see [`Shell::pathnames`].
        let mut glob = false;
        let mut has_quoted = false;
        for part in word {
            let (value, quoted) = match part {
                Part::Text { text, quoted } => {
                    current.push_str(text);
                    has_current |= *quoted || !text.is_empty();
                    glob |= !*quoted && tools::has_pattern(text);
                    has_quoted |= *quoted;
                    continue;
                }
                Part::Param {
                    name,
                    modifier: Modifier::None,
                    quoted: true,
                } if name == "@" => {
                    let args = self.positional.clone();
                    for (k, arg) in args.iter().enumerate() {
                        if k > 0 {
                            fields.push(std::mem::take(&mut current));
                        }
                        current.push_str(arg);
                        has_current = true;
                    }
                    continue;
                }
                other => self.part_value(other)?,
            };
            if quoted {
                current.push_str(&value);
                has_current = true;
                has_quoted = true;
                continue;
            }
            glob |= tools::has_pattern(&value);
            let mut pieces = value.split_whitespace().peekable();
            if value.starts_with(char::is_whitespace) && has_current {
                fields.push(std::mem::take(&mut current));
                has_current = false;
            }
            while let Some(piece) = pieces.next() {
                current.push_str(piece);
                has_current = true;
                if pieces.peek().is_some() {
                    fields.push(std::mem::take(&mut current));
                }
            }
            if value.ends_with(char::is_whitespace) && has_current {
                fields.push(std::mem::take(&mut current));
                has_current = false;
            }
        }
        if has_current {
            fields.push(current);
        }
        if glob {
            // Pathname expansion: from the environment's file lists, or
            // unknown (a quoted part inside a pattern is not modelled).
            if has_quoted {
                return None;
            }
            let mut expanded = Vec::new();
            for field in &fields {
                if tools::has_pattern(field) {
                    expanded.extend(self.pathnames(field)?);
                } else {
                    expanded.push(field.clone());
                }
            }
            fields = expanded;
        }
        (fields.len() <= MAX_FIELDS).then_some(fields)
    }

    /// The paths of the environment's packages that an absolute `pattern`
    /// matches, sorted, as sh expands `/usr/lib/postgresql/*`; `None` when
    /// none does (a file a script creates is not in the lists, so a literal
    /// pattern would be a guess), for a relative pattern, or once
    /// [`MAX_GLOBS`] expansions were made.
    fn pathnames(&self, pattern: &str) -> Option<Vec<String>> {
        let globs = self.budget.globs.get() + 1;
        self.budget.globs.set(globs);
        if !pattern.starts_with('/') || globs > MAX_GLOBS {
            return None;
        }
        // Package paths are merged-/usr: `/lib/x/*` is matched as
        // `/usr/lib/x/*` and given back under `/lib`.
        let merged = super::merged_usr(pattern);
        let moved = merged.len() != pattern.len();
        let components: Vec<Vec<Pat>> = merged
            .split('/')
            .skip(1)
            .map(|c| {
                let mut p = Vec::new();
                tools::push_pattern(&mut p, c, false);
                p
            })
            .collect();
        let mut found = std::collections::BTreeSet::new();
        for file in self.context.world.iter().flat_map(|p| &p.files) {
            let parts: Vec<&str> = file.path.split('/').skip(1).collect();
            if parts.len() < components.len() {
                continue;
            }
            let matches = components.iter().zip(&parts).all(|(pat, name)| {
                // `*` and `?` never match a leading dot.
                let hidden = name.starts_with('.') && pat.first() != Some(&Pat::Char('.'));
                !hidden && tools::pattern_matches(pat, &name.chars().collect::<Vec<_>>())
            });
            if matches {
                let path = format!("/{}", parts[..components.len()].join("/"));
                found.insert(if moved {
                    path.strip_prefix("/usr").unwrap_or(&path).to_string()
                } else {
                    path
                });
            }
        }
        (!found.is_empty()).then(|| found.into_iter().collect())
    }
}

/// Whether a command's standard output goes elsewhere than its caller's.
fn stdout_redirected(redirects: &[Redirect]) -> bool {
    redirects
        .iter()
        .any(|r| r.fd == 1 && (r.op.starts_with('>') || r.op == "<>"))
}

/// The text of `path` from the package that ships it with its bytes.
fn sourced_text(world: &[PackageInput], path: &str) -> Option<String> {
    let wanted = super::merged_usr(path);
    world
        .iter()
        .flat_map(|p| &p.files)
        .find(|f| f.path == wanted || f.path == path)
        .and_then(|f| f.contents.as_ref())
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

/// `dpkg --compare-versions A OP B`; an empty version is earlier than any.
fn compare_versions(a: &str, op: &str, b: &str) -> Option<bool> {
    use std::cmp::Ordering;
    let parse = |v: &str| -> Option<Option<cairn_debian::Version>> {
        if v.trim().is_empty() {
            Some(None)
        } else {
            v.parse().ok().map(Some)
        }
    };
    let (va, vb) = (parse(a)?, parse(b)?);
    let order = va.cmp(&vb);
    // The `-nl` forms treat an empty version as later than any.
    let nl = op.ends_with("-nl");
    let order = if nl && (va.is_none() || vb.is_none()) && va != vb {
        order.reverse()
    } else {
        order
    };
    Some(match op.trim_end_matches("-nl") {
        "lt" | "<<" => order == Ordering::Less,
        "le" | "<=" | "<" => order != Ordering::Greater,
        "eq" | "=" => order == Ordering::Equal,
        "ne" => order != Ordering::Equal,
        "ge" | ">=" | ">" => order != Ordering::Less,
        "gt" | ">>" => order == Ordering::Greater,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
