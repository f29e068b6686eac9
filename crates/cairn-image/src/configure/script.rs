//! A small reader for maintainer-script shell text: enough of POSIX sh to find
//! the commands a postinst runs and the literal words they are given.
//!
//! Owns tokenising (quotes, comments, line continuations, `;`/`&&`/`||`/`|`
//! separators), simple variable assignments and `$VAR`/`${VAR}`/
//! `${VAR:-default}` expansion with field splitting, `for NAME in WORDS;
//! do ...; done` loops, the script's own functions (read where they are
//! called, with their arguments) and `$(...)` whose commands only `echo`
//! (within a depth and a step budget, so a hostile script cannot make the
//! reading run away). It does not evaluate conditions: every branch is read,
//! so an `if`'s body counts as run (maintainer scripts guard their calls with
//! `[ "$1" = configure ]` and `getent` checks that are true on a fresh
//! install). Anything it cannot evaluate (a substitution that runs another
//! program, arithmetic, unknown variables, files sourced with `.`) makes the
//! word unresolved rather than guessed.

use std::collections::BTreeMap;

/// One piece of a word before expansion.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// Literal text; `quoted` text is not field-split or keyword-checked.
    Text { text: String, quoted: bool },
    /// `$NAME`, `${NAME}` or `${NAME:-default}`.
    Var {
        name: String,
        default: Option<String>,
        quoted: bool,
    },
    /// `$(TEXT)`: evaluated where its output is known (functions and
    /// `echo`, see [`capture`]), else unresolved.
    Command { text: String, quoted: bool },
    /// `` `...` ``, `$((...))` and the like: never evaluated.
    Substitution,
}

type RawWord = Vec<Part>;

/// A simple command before expansion, with its 1-based line.
#[derive(Debug, Clone)]
struct RawCommand {
    words: Vec<RawWord>,
    line: usize,
}

/// A command after expansion: `words` is `None` when a word could not be
/// resolved (an unknown variable or a command substitution).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    pub words: Option<Vec<String>>,
    /// The command name when it is known even though arguments are not.
    pub program: Option<String>,
    pub line: usize,
}

/// The simple commands `script` runs, in order, loops unrolled, with the
/// positional arguments of a first `postinst configure`.
pub(crate) fn commands(script: &str) -> Vec<Command> {
    let mut env = Env::default();
    env.vars.insert("1".into(), "configure".into());
    env.vars.insert("2".into(), String::new());
    let mut out = Vec::new();
    run_script(script, &mut env, &mut out);
    out
}

/// Reads `script`'s function definitions into `env`, then runs the rest.
fn run_script(script: &str, env: &mut Env, out: &mut Vec<Command>) {
    let text = take_functions(&join_continuations(script), &mut env.functions);
    run_block(&tokenize(&text), env, out);
}

#[derive(Default, Clone)]
struct Env {
    vars: BTreeMap<String, String>,
    /// Function name -> body text, as defined so far.
    functions: BTreeMap<String, String>,
    /// Function calls and command substitutions being evaluated: bounded, so
    /// a hostile script that recurses ends the reading, not the process.
    depth: usize,
    /// Simple commands read so far, shared with every subshell copy: a
    /// script whose calls fan out (`f () { echo $(f) $(f) $(f); }`) stops
    /// being evaluated after [`MAX_STEPS`], however shallow.
    steps: std::rc::Rc<std::cell::Cell<usize>>,
}

/// How deep function calls and `$(...)` may nest.
const MAX_DEPTH: usize = 8;
/// How many simple commands one script may make us read, calls included
/// (real maintainer scripts stay in the hundreds).
const MAX_STEPS: usize = 20_000;

impl Env {
    /// Counts one step; false once the budget is spent.
    fn step(&self) -> bool {
        let taken = self.steps.get() + 1;
        self.steps.set(taken);
        taken <= MAX_STEPS
    }
}

/// Takes the `NAME () {` ... `}` definitions (the body ending at the first
/// line that is just `}`, as maintainer scripts write them) out of `script`
/// into `functions`, leaving empty lines so line numbers stay. A body is then
/// read only where the function is called, with that call's arguments (xz-utils
/// builds its `--slave` list with one: `$(slave /usr/bin unlzma unxz ...)`).
fn take_functions(script: &str, functions: &mut BTreeMap<String, String>) -> String {
    let lines: Vec<&str> = script.split('\n').collect();
    let mut out = String::with_capacity(script.len());
    let mut i = 0;
    while i < lines.len() {
        let Some((name, brace)) = function_header(lines[i]) else {
            out.push_str(lines[i]);
            out.push('\n');
            i += 1;
            continue;
        };
        let start = if brace { i + 1 } else { i + 2 };
        let opened = brace || lines.get(i + 1).is_some_and(|l| l.trim() == "{");
        let end = (start..lines.len()).find(|&j| lines[j].trim() == "}");
        match (opened, end) {
            (true, Some(end)) => {
                functions.insert(name, lines[start..end].join("\n"));
                out.extend(std::iter::repeat_n('\n', end + 1 - i));
                i = end + 1;
            }
            _ => {
                out.push_str(lines[i]);
                out.push('\n');
                i += 1;
            }
        }
    }
    out
}

/// `NAME () {`, `NAME()` or `function NAME() {`: the name, and whether the
/// brace is on this line.
fn function_header(line: &str) -> Option<(String, bool)> {
    let text = line.trim();
    let text = text.strip_prefix("function ").unwrap_or(text);
    let (name, rest) = text.split_once('(')?;
    let name = name.trim();
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return None;
    }
    match rest.trim_start().strip_prefix(')')?.trim() {
        "{" => Some((name.to_string(), true)),
        "" => Some((name.to_string(), false)),
        _ => None,
    }
}

/// The output of `$(text)` run in a copy of `env` (a subshell), when every
/// command it runs is an `echo` (directly, in loops, or in functions it
/// calls): what those print, trailing newlines removed, as sh does. Anything
/// else prints what only running it would tell: unresolved.
fn capture(text: &str, env: &Env) -> Option<String> {
    if env.depth >= MAX_DEPTH || !env.step() {
        return None;
    }
    let mut sub = env.clone();
    sub.depth += 1;
    let mut ran = Vec::new();
    run_script(text, &mut sub, &mut ran);
    let mut output = String::new();
    for command in ran {
        let words = command.words?;
        let (program, args) = words.split_first()?;
        if program != "echo" {
            return None;
        }
        match args.split_first() {
            Some((flag, rest)) if flag == "-n" => output.push_str(&rest.join(" ")),
            _ => {
                output.push_str(&args.join(" "));
                output.push('\n');
            }
        }
    }
    output.truncate(output.trim_end_matches('\n').len());
    Some(output)
}

/// Joins `\`-newline continuations, as sh does. Single quotes are not
/// tracked: an apostrophe in a comment (`# doesn't`) would flip the state, and
/// a continuation inside single quotes does not occur in maintainer scripts.
fn join_continuations(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'\n') => {
                chars.next();
                // Keep the line count so errors name the right line.
                out.push(' ');
                out.push('\u{0}');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Splits text into simple commands of raw words.
fn tokenize(text: &str) -> Vec<RawCommand> {
    let chars: Vec<char> = text.chars().collect();
    let mut commands = Vec::new();
    let mut words: Vec<RawWord> = Vec::new();
    let mut word: RawWord = Vec::new();
    let mut line = 1;
    let mut start_line = 1;
    let mut i = 0;
    let flush_word = |word: &mut RawWord, words: &mut Vec<RawWord>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    let flush_command =
        |words: &mut Vec<RawWord>, commands: &mut Vec<RawCommand>, start_line: usize| {
            if !words.is_empty() {
                commands.push(RawCommand {
                    words: std::mem::take(words),
                    line: start_line,
                });
            }
        };
    while i < chars.len() {
        let c = chars[i];
        if words.is_empty() && word.is_empty() {
            start_line = line;
        }
        match c {
            '\u{0}' => {
                line += 1;
                i += 1;
            }
            '\n' | ';' | '&' | '|' | '(' | ')' | '{' | '}' if word.is_empty() || c != '{' => {
                if c == '\n' {
                    line += 1;
                }
                flush_word(&mut word, &mut words);
                flush_command(&mut words, &mut commands, start_line);
                i += 1;
            }
            ' ' | '\t' => {
                flush_word(&mut word, &mut words);
                i += 1;
            }
            '#' if word.is_empty() => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\'' => {
                let end = find(&chars, i + 1, '\'');
                push_text(&mut word, chars[i + 1..end].iter().collect(), true);
                i = end + 1;
            }
            '"' => {
                i = read_double_quoted(&chars, i + 1, &mut word, &mut line);
            }
            '\\' => {
                if let Some(&next) = chars.get(i + 1) {
                    push_text(&mut word, next.to_string(), true);
                }
                i += 2;
            }
            '$' => i = read_dollar(&chars, i, &mut word, false),
            '`' => {
                word.push(Part::Substitution);
                i = find(&chars, i + 1, '`') + 1;
            }
            _ => {
                push_text(&mut word, c.to_string(), false);
                i += 1;
            }
        }
    }
    flush_word(&mut word, &mut words);
    flush_command(&mut words, &mut commands, start_line);
    commands
}

/// The index of the next `target` at or after `from`, or the end.
fn find(chars: &[char], from: usize, target: char) -> usize {
    (from..chars.len())
        .find(|&j| chars[j] == target)
        .unwrap_or(chars.len())
}

fn push_text(word: &mut RawWord, text: String, quoted: bool) {
    if let Some(Part::Text {
        text: last,
        quoted: q,
    }) = word.last_mut()
        && *q == quoted
    {
        last.push_str(&text);
        return;
    }
    word.push(Part::Text { text, quoted });
}

fn read_double_quoted(chars: &[char], mut i: usize, word: &mut RawWord, line: &mut usize) -> usize {
    // An empty "" is still a word.
    push_text(word, String::new(), true);
    while i < chars.len() && chars[i] != '"' {
        match chars[i] {
            '\\' if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                push_text(word, chars[i + 1].to_string(), true);
                i += 2;
            }
            '$' => i = read_dollar(chars, i, word, true),
            '`' => {
                word.push(Part::Substitution);
                i = find(chars, i + 1, '`') + 1;
            }
            c => {
                if c == '\n' || c == '\u{0}' {
                    *line += 1;
                }
                if c != '\u{0}' {
                    push_text(word, c.to_string(), true);
                }
                i += 1;
            }
        }
    }
    i + 1
}

/// Reads a `$` expansion starting at `chars[i] == '$'`; returns the next index.
fn read_dollar(chars: &[char], i: usize, word: &mut RawWord, quoted: bool) -> usize {
    match chars.get(i + 1) {
        Some('(') => {
            let end = skip_balanced(chars, i + 1);
            if chars.get(i + 2) == Some(&'(') || end > chars.len() || chars[end - 1] != ')' {
                // Arithmetic, or no closing parenthesis.
                word.push(Part::Substitution);
            } else {
                word.push(Part::Command {
                    text: chars[i + 2..end - 1].iter().collect(),
                    quoted,
                });
            }
            end
        }
        Some('{') => {
            let end = find(chars, i + 2, '}');
            let inner: String = chars[i + 2..end].iter().collect();
            if let Some((name, _)) = inner.split_once(":+") {
                // `${DPKG_ROOT:+--root=$DPKG_ROOT}`: empty when the variable
                // is, which the DPKG_ ones are in a normal install.
                if name.starts_with("DPKG_") {
                    push_text(word, String::new(), quoted);
                } else {
                    word.push(Part::Substitution);
                }
                return end + 1;
            }
            let (name, default) = match inner.split_once(":-").or_else(|| inner.split_once('-')) {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (inner.clone(), None),
            };
            if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                word.push(Part::Var {
                    name,
                    default,
                    quoted,
                });
            } else {
                // ${#x}, ${x%y} and friends.
                word.push(Part::Substitution);
            }
            end + 1
        }
        Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            word.push(Part::Var {
                name: chars[i + 1..j].iter().collect(),
                default: None,
                quoted,
            });
            j
        }
        Some(c) if c.is_ascii_digit() || matches!(c, '@' | '*' | '#' | '?' | '$' | '!' | '-') => {
            word.push(Part::Var {
                name: c.to_string(),
                default: None,
                quoted,
            });
            i + 2
        }
        _ => {
            push_text(word, "$".into(), quoted);
            i + 1
        }
    }
}

/// Skips `(...)` with nesting, from the opening parenthesis.
fn skip_balanced(chars: &[char], open: usize) -> usize {
    let mut depth = 0;
    let mut j = open;
    while j < chars.len() {
        match chars[j] {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    chars.len()
}

/// Shell reserved words that may start a simple command's text.
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "esac",
];

/// Runs a block of raw commands, unrolling `for` loops.
fn run_block(raw: &[RawCommand], env: &mut Env, out: &mut Vec<Command>) {
    let mut i = 0;
    while i < raw.len() {
        if is_if_false(&raw[i]) {
            i = end_of_branch(raw, i + 1);
            continue;
        }
        let words = strip_keywords(&raw[i].words);
        if words.first().and_then(literal).as_deref() == Some("for")
            && let Some((var, values, body, next)) = read_for(raw, i, env)
        {
            // Replay the body once per value, in order.
            for value in values {
                env.vars.insert(var.clone(), value);
                run_block(&body, env, out);
            }
            i = next;
            continue;
        }
        run_simple(words, raw[i].line, env, out);
        i += 1;
    }
}

/// `if false ...`: the one condition that is evaluated, because scripts use
/// it to switch code off (openjdk's postinst: `if false && [ -e ... ]`).
fn is_if_false(command: &RawCommand) -> bool {
    let mut words = command.words.iter().map(literal);
    words.next().flatten().as_deref() == Some("if")
        && words.next().flatten().as_deref() == Some("false")
}

/// The index of the `else`, `elif` or `fi` that ends the branch starting at
/// `from`, skipping nested `if`s.
fn end_of_branch(raw: &[RawCommand], from: usize) -> usize {
    let mut depth = 0;
    for (j, command) in raw.iter().enumerate().skip(from) {
        match command.words.first().and_then(literal).as_deref() {
            Some("if") => depth += 1,
            Some("fi") if depth > 0 => depth -= 1,
            Some("else" | "elif" | "fi") if depth == 0 => return j,
            _ => {}
        }
    }
    raw.len()
}

/// The words of a command after leading reserved words.
fn strip_keywords(words: &[RawWord]) -> &[RawWord] {
    let mut rest = words;
    while let Some(first) = rest.first()
        && literal(first).is_some_and(|w| KEYWORDS.contains(&w.as_str()))
    {
        rest = &rest[1..];
    }
    rest
}

/// The unquoted literal text of a word, if it is only that.
fn literal(word: &RawWord) -> Option<String> {
    match word.as_slice() {
        [
            Part::Text {
                text,
                quoted: false,
            },
        ] => Some(text.clone()),
        _ => None,
    }
}

/// `for VAR in WORDS` at `raw[i]`: the variable, its values, the body up to the
/// matching `done`, and the index after it.
fn read_for(
    raw: &[RawCommand],
    i: usize,
    env: &Env,
) -> Option<(String, Vec<String>, Vec<RawCommand>, usize)> {
    let words = strip_keywords(&raw[i].words);
    let var = literal(words.get(1)?)?;
    if literal(words.get(2)?)?.as_str() != "in" {
        return None;
    }
    let mut values = Vec::new();
    for word in &words[3..] {
        values.extend(expand(word, env)?);
    }
    let mut depth = 0;
    let mut body = Vec::new();
    for (j, command) in raw.iter().enumerate().skip(i + 1) {
        let first = command.words.first().and_then(literal);
        match first.as_deref() {
            Some("for" | "while" | "until") => depth += 1,
            Some("done") if depth == 0 => {
                return Some((var, values, strip_do(body), j + 1));
            }
            Some("done") => depth -= 1,
            _ => {}
        }
        body.push(command.clone());
    }
    None
}

/// Drops the `do` that opens a loop body.
fn strip_do(mut body: Vec<RawCommand>) -> Vec<RawCommand> {
    if let Some(first) = body.first_mut()
        && first.words.first().and_then(literal).as_deref() == Some("do")
    {
        first.words.remove(0);
    }
    body
}

/// Applies assignments or records the command.
fn run_simple(words: &[RawWord], line: usize, env: &mut Env, out: &mut Vec<Command>) {
    if words.is_empty() {
        return;
    }
    let assignments: Vec<(String, &RawWord)> = words.iter().map_while(|w| assignment(w)).collect();
    if assignments.len() == words.len() {
        for (name, value) in assignments {
            match expand_joined(value, env) {
                Some(v) => {
                    env.vars.insert(name, v);
                }
                // A value we cannot evaluate (`priority=$(expr $priority - 1)`
                // in a branch for foreign architectures) keeps an earlier
                // literal value, which is what the default path uses.
                None => {
                    env.vars.entry(name).or_insert_with(|| "\u{1}".into());
                }
            }
        }
        return;
    }
    let program = words.first().and_then(literal);
    if program.as_deref() == Some("unset") {
        // An unset variable expands to nothing (scripts do not `set -u`
        // before using one they unset).
        for word in &words[1..] {
            if let Some(name) = literal(word) {
                env.vars.insert(name, String::new());
            }
        }
        return;
    }
    // `in_sysroot CMD ARGS` (dbus's DPKG_ROOT helper) runs CMD as is on a
    // fresh install, so the command is CMD.
    let skip = assignments.len()
        + usize::from(
            words.len() > assignments.len() + 1
                && words
                    .get(assignments.len())
                    .and_then(literal)
                    .is_some_and(|w| SYSROOT_WRAPPERS.contains(&w.as_str())),
        );
    let mut expanded = Vec::new();
    let mut resolved = true;
    for word in &words[skip..] {
        match expand(word, env) {
            Some(fields) => expanded.extend(fields),
            None => resolved = false,
        }
    }
    if resolved
        && env.depth < MAX_DEPTH
        && env.step()
        && let Some(body) = expanded.first().and_then(|f| env.functions.get(f)).cloned()
    {
        call(&body, &expanded[1..], line, env, out);
        return;
    }
    out.push(Command {
        program: if resolved {
            expanded.first().cloned()
        } else {
            words.get(skip).and_then(literal)
        },
        words: resolved.then_some(expanded),
        line,
    });
}

/// Runs a function's `body` with `args` as its positional parameters (the
/// caller's come back afterwards); its commands count at the call's `line`.
fn call(body: &str, args: &[String], line: usize, env: &mut Env, out: &mut Vec<Command>) {
    const POSITIONAL: [&str; 10] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "#"];
    let saved: Vec<Option<String>> = POSITIONAL
        .iter()
        .map(|p| env.vars.get(*p).cloned())
        .collect();
    for (k, name) in POSITIONAL[..9].iter().enumerate() {
        env.vars.insert(
            (*name).to_string(),
            args.get(k).cloned().unwrap_or_default(),
        );
    }
    env.vars.insert("#".into(), args.len().to_string());
    env.depth += 1;
    let first = out.len();
    run_script(body, env, out);
    env.depth -= 1;
    for command in &mut out[first..] {
        command.line = line;
    }
    for (name, value) in POSITIONAL.iter().zip(saved) {
        match value {
            Some(value) => env.vars.insert((*name).to_string(), value),
            None => env.vars.remove(*name),
        };
    }
}

/// Script-defined functions that run their arguments as a command, inside
/// `$DPKG_ROOT` when it is set (empty for cairn, as for a plain install).
const SYSROOT_WRAPPERS: &[&str] = &["in_sysroot"];

/// `NAME=value` as a name and the value's parts.
fn assignment(word: &RawWord) -> Option<(String, &RawWord)> {
    let Some(Part::Text {
        text,
        quoted: false,
    }) = word.first()
    else {
        return None;
    };
    let (name, _) = text.split_once('=')?;
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (name.to_string(), word))
}

/// The value of an assignment word (everything after the first `=`), unsplit.
fn expand_joined(word: &RawWord, env: &Env) -> Option<String> {
    let mut value = String::new();
    for (k, part) in word.iter().enumerate() {
        match part {
            Part::Text { text, .. } if k == 0 => {
                value.push_str(text.split_once('=').map_or("", |(_, v)| v));
            }
            Part::Text { text, .. } => value.push_str(text),
            Part::Var { name, default, .. } => value.push_str(&lookup(env, name, default)?),
            Part::Command { text, .. } => value.push_str(&capture(text, env)?),
            Part::Substitution => return None,
        }
    }
    Some(value)
}

fn lookup(env: &Env, name: &str, default: &Option<String>) -> Option<String> {
    match (env.vars.get(name), default) {
        (Some(v), _) if v == "\u{1}" => None,
        (Some(v), Some(d)) if v.is_empty() => Some(d.clone()),
        (Some(v), _) => Some(v.clone()),
        (None, Some(d)) => Some(d.clone()),
        // Debhelper snippets read DPKG_ROOT and friends, empty in a normal
        // install; any other unknown name is unresolved.
        (None, None) if name.starts_with("DPKG_") => Some(String::new()),
        (None, None) => None,
    }
}

/// Expands a word into fields: unquoted variable values are split on
/// whitespace, quoted text never is; an empty unquoted expansion yields no field.
fn expand(word: &RawWord, env: &Env) -> Option<Vec<String>> {
    let mut fields: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut has_current = false;
    for part in word {
        match part {
            Part::Text { text, quoted } => {
                current.push_str(text);
                has_current |= *quoted || !text.is_empty();
            }
            Part::Var { quoted, .. } | Part::Command { quoted, .. } => {
                let value = match part {
                    Part::Var { name, default, .. } => lookup(env, name, default)?,
                    Part::Command { text, .. } => capture(text, env)?,
                    _ => unreachable!("matched above"),
                };
                if *quoted {
                    current.push_str(&value);
                    has_current = true;
                    continue;
                }
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
            Part::Substitution => return None,
        }
    }
    if has_current {
        fields.push(current);
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<Vec<String>> {
        commands(script)
            .into_iter()
            .map(|c| {
                c.words
                    .unwrap_or_else(|| vec![format!("<unresolved {:?}>", c.program)])
            })
            .collect()
    }

    /// xz-utils 5.4.1's postinst, verbatim: the slave list is the output of
    /// a function called in a loop inside `$(...)`.
    #[test]
    fn functions_called_in_a_command_substitution_give_their_echoed_words() {
        let script = r#"#!/bin/sh
set -e

slave () {
	dir=$1 filename=$2 target=$3
	echo "--slave $dir/$filename $filename $dir/$target"
}

update-alternatives --install /usr/bin/lzma lzma /usr/bin/xz 20 $(
	slave /usr/share/man/man1 lzma.1.gz xz.1.gz
	slave /usr/bin unlzma unxz
	for util in cat more
	do
		slave /usr/bin lz$util xz$util
	done
)
"#;
        let got = commands(script);
        assert_eq!(
            got.len(),
            2,
            "the body runs only where it is called: {got:?}"
        );
        assert_eq!(got[1].line, 9);
        let words = got[1].words.clone().expect("resolved");
        assert_eq!(
            words.join(" "),
            "update-alternatives --install /usr/bin/lzma lzma /usr/bin/xz 20 \
             --slave /usr/share/man/man1/lzma.1.gz lzma.1.gz /usr/share/man/man1/xz.1.gz \
             --slave /usr/bin/unlzma unlzma /usr/bin/unxz \
             --slave /usr/bin/lzcat lzcat /usr/bin/xzcat \
             --slave /usr/bin/lzmore lzmore /usr/bin/xzmore"
        );
    }

    #[test]
    fn a_called_function_runs_with_its_arguments_and_the_callers_come_back() {
        let script = "add () {\n  update-alternatives --install /usr/bin/$1 $1 $2 10\n}\n\
                      add vi /usr/bin/vim\necho $1\n";
        assert_eq!(
            words(script),
            [
                vec![
                    "update-alternatives",
                    "--install",
                    "/usr/bin/vi",
                    "vi",
                    "/usr/bin/vim",
                    "10"
                ],
                vec!["echo", "configure"],
            ]
        );
    }

    #[test]
    fn substitutions_that_run_anything_but_echo_or_recurse_stay_unresolved() {
        let got = commands("x=$(dpkg --print-architecture)\nfoo $x $(uname -m)\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].words, None);
        assert_eq!(got[0].program.as_deref(), Some("foo"));
        // A function that calls itself: bounded, unresolved, no overflow.
        let got = commands("loop () {\n  echo $(loop)\n}\nbar $(loop)\n");
        assert_eq!(got.last().and_then(|c| c.words.clone()), None);
        // One that fans out 10-fold per level: the step budget ends it.
        let fan = format!("f () {{\n  echo{}\n}}\nbaz $(f)\n", " $(f)".repeat(10));
        let got = commands(&fan);
        assert_eq!(got.last().and_then(|c| c.words.clone()), None);
    }

    #[test]
    fn splits_commands_and_strips_keywords() {
        let got = words(
            "set -e\nif [ \"$1\" = configure ]; then\n  foo a 'b c' \"d e\" # note\nfi\nx && y || z | w\n",
        );
        assert_eq!(
            got,
            [
                vec!["set", "-e"],
                vec!["[", "configure", "=", "configure", "]"],
                vec!["foo", "a", "b c", "d e"],
                vec!["x"],
                vec!["y"],
                vec!["z"],
                vec!["w"],
            ]
        );
    }

    #[test]
    fn joins_continuations_and_keeps_line_numbers() {
        let cmds = commands("a \\\n  b \\\n  c\nd\n");
        assert_eq!(
            cmds[0].words.as_deref(),
            Some(&["a", "b", "c"].map(String::from)[..])
        );
        assert_eq!(cmds[1].line, 4);
    }

    #[test]
    fn expands_simple_variables_with_field_splitting() {
        let got = words(
            "basedir=/usr/lib/jvm/j\nmandir=$basedir/man\ns=\"--slave /a b $mandir/c\"\nua --install /usr/bin/x x ${basedir}/bin/x 10 $s \"$s\" ${none:-dflt}\n",
        );
        assert_eq!(
            got[0],
            [
                "ua",
                "--install",
                "/usr/bin/x",
                "x",
                "/usr/lib/jvm/j/bin/x",
                "10",
                "--slave",
                "/a",
                "b",
                "/usr/lib/jvm/j/man/c",
                "--slave /a b /usr/lib/jvm/j/man/c",
                "dflt"
            ]
        );
    }

    #[test]
    fn unknown_variables_and_substitutions_are_unresolved() {
        let cmds = commands("tool $nope\ntool $(uname -m)\ntool `date`\n");
        assert!(cmds.iter().all(|c| c.words.is_none()));
        assert!(cmds.iter().all(|c| c.program.as_deref() == Some("tool")));
    }

    #[test]
    fn an_unevaluable_assignment_keeps_the_literal_value() {
        let got = words("p=1711\nif x; then p=$(expr $p - 1); fi\nuse $p\nq=$(foo)\nuse $q\n");
        assert_eq!(got[0], ["x"]);
        assert_eq!(got[1], ["use", "1711"]);
        assert_eq!(got[2], ["<unresolved Some(\"use\")>"]);
    }

    #[test]
    fn in_sysroot_runs_its_arguments() {
        // dbus-system-bus-common 1.14.10-1~deb12u1's postinst.
        let script = "MESSAGEUSER=messagebus\nin_sysroot () {\n    if [ -z \"${DPKG_ROOT:-}\" ]; then\n        \"$@\"\n    fi\n}\nin_sysroot adduser --system \\\n  --quiet --group \"$MESSAGEUSER\"\n";
        let all = words(script);
        assert!(
            all.iter()
                .any(|w| w == &["adduser", "--system", "--quiet", "--group", "messagebus"]),
            "{all:?}"
        );
    }

    #[test]
    fn unrolls_for_loops() {
        let got =
            words("tools='java keytool'\nfor i in $tools; do\n  reg /usr/bin/$i $i\ndone\nafter\n");
        assert_eq!(
            got,
            [
                vec!["reg", "/usr/bin/java", "java"],
                vec!["reg", "/usr/bin/keytool", "keytool"],
                vec!["after"],
            ]
        );
    }

    #[test]
    fn if_false_branches_are_skipped() {
        let got = words(
            "if false && [ -e x ]; then\n  a\n  if y; then b; fi\nelse\n  c\nfi\nif false; then d; elif e; then f; fi\ng\n",
        );
        assert_eq!(got, [vec!["c"], vec!["e"], vec!["f"], vec!["g"]]);
    }

    #[test]
    fn unset_and_dpkg_variables_are_empty() {
        let got = words("a=1\nunset a || true\nx $a\ny ${DPKG_ROOT:+--root=$DPKG_ROOT} z\n");
        assert_eq!(got[0], ["true"]);
        assert_eq!(got[1], ["x"]);
        assert_eq!(got[2], ["y", "z"]);
    }
}
