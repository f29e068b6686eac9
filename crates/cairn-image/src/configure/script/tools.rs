//! The text tools maintainer scripts pipe words through, as pure functions
//! over strings: `test`/`[`, `grep`, `sed`'s `s` command, `tr`, `printf`,
//! `basename`, `dirname`, and shell pattern matching (`case`, `${x#p}`).
//!
//! Each returns `None` for a form it does not model (an option it does not
//! know, a regular expression the `regex` crate cannot express such as a
//! back-reference), so the caller treats the result as unknown rather than
//! guessing. Regular expressions are POSIX BRE/ERE translated to the `regex`
//! crate's syntax; pattern matching is written here (about 60 lines)
//! because shell quoting decides per character what is special, which glob
//! crates cannot be told.

use regex::Regex;

/// One element of a shell pattern.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Pat {
    Char(char),
    /// `?`
    Any,
    /// `*`
    Star,
    /// `[...]`: ranges, negated with `!` or `^`.
    Class {
        negate: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Appends `text` to `out` as pattern elements: unquoted text has `*`, `?`
/// and `[...]` special, quoted text is literal.
pub(super) fn push_pattern(out: &mut Vec<Pat>, text: &str, quoted: bool) {
    if quoted {
        out.extend(text.chars().map(Pat::Char));
        return;
    }
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => out.push(Pat::Star),
            '?' => out.push(Pat::Any),
            '[' => {
                if let Some((class, next)) = bracket(&chars, i) {
                    out.push(class);
                    i = next;
                    continue;
                }
                out.push(Pat::Char('['));
            }
            c => out.push(Pat::Char(c)),
        }
        i += 1;
    }
}

/// Whether unquoted `text` holds pattern characters (`*`, `?`, `[...]`).
pub(super) fn has_pattern(text: &str) -> bool {
    let mut pattern = Vec::new();
    push_pattern(&mut pattern, text, false);
    pattern.iter().any(|p| !matches!(p, Pat::Char(_)))
}

/// `[...]` at `chars[open]`: the class and the index after `]`.
fn bracket(chars: &[char], open: usize) -> Option<(Pat, usize)> {
    let mut i = open + 1;
    let negate = matches!(chars.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        if c == ']' && !first {
            return Some((Pat::Class { negate, ranges }, i + 1));
        }
        first = false;
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let end = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == ':' && chars[j + 1] == ']')?;
            let name: String = chars[i + 2..end].iter().collect();
            ranges.extend(class_ranges(&name)?);
            i = end + 2;
            continue;
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            ranges.push((c, chars[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    None
}

/// The ASCII ranges of a POSIX character class (the C locale's).
fn class_ranges(name: &str) -> Option<Vec<(char, char)>> {
    Some(match name {
        "digit" => vec![('0', '9')],
        "lower" => vec![('a', 'z')],
        "upper" => vec![('A', 'Z')],
        "alpha" => vec![('a', 'z'), ('A', 'Z')],
        "alnum" => vec![('a', 'z'), ('A', 'Z'), ('0', '9')],
        "xdigit" => vec![('0', '9'), ('a', 'f'), ('A', 'F')],
        "space" => vec![(' ', ' '), ('\t', '\r')],
        "blank" => vec![(' ', ' '), ('\t', '\t')],
        "punct" => vec![('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        _ => return None,
    })
}

fn matches_one(pat: &Pat, c: char) -> bool {
    match pat {
        Pat::Char(p) => *p == c,
        Pat::Any => true,
        Pat::Star => true,
        Pat::Class { negate, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negate
        }
    }
}

/// Whether `pat` matches all of `text` (linear-time, backtracking only to
/// the last `*`).
pub(super) fn pattern_matches(pat: &[Pat], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() && pat[p] == Pat::Star {
            star = Some((p, t));
            p += 1;
        } else if p < pat.len() && matches_one(&pat[p], text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|x| *x == Pat::Star)
}

/// `${value#pat}` and friends: removes the shortest or longest prefix or
/// suffix `pat` matches.
pub(super) fn trim(value: &str, pat: &[Pat], suffix: bool, longest: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let mut cuts: Vec<usize> = (0..=n).collect();
    if longest != suffix {
        cuts.reverse();
    }
    for cut in cuts {
        let (part, rest) = if suffix {
            (&chars[cut..], &chars[..cut])
        } else {
            (&chars[..cut], &chars[cut..])
        };
        if pattern_matches(pat, part) {
            return rest.iter().collect();
        }
    }
    value.to_string()
}

/// `test ARGS` (without the `]` of `[`): `Some(result)` when every operand
/// is a string or integer comparison, `None` for file tests and the rest.
pub(super) fn test(args: &[String]) -> Option<bool> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Some(k) = a.iter().position(|x| *x == "-o") {
        let (l, r) = (test(&args[..k]), test(&args[k + 1..]));
        return match (l, r) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        };
    }
    if a.len() > 3
        && let Some(k) = a.iter().position(|x| *x == "-a")
    {
        let (l, r) = (test(&args[..k]), test(&args[k + 1..]));
        return match (l, r) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        };
    }
    match a.as_slice() {
        [] => Some(false),
        ["!", rest @ ..] if !rest.is_empty() => test(&args[1..]).map(|r| !r),
        [s] => Some(!s.is_empty()),
        ["-n", s] => Some(!s.is_empty()),
        ["-z", s] => Some(s.is_empty()),
        [_, _] => None,
        [l, "=" | "==", r] => Some(l == r),
        [l, "!=", r] => Some(l != r),
        [l, op @ ("-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge"), r] => {
            let (l, r) = (l.trim().parse::<i64>().ok()?, r.trim().parse::<i64>().ok()?);
            Some(match *op {
                "-eq" => l == r,
                "-ne" => l != r,
                "-lt" => l < r,
                "-le" => l <= r,
                "-gt" => l > r,
                _ => l >= r,
            })
        }
        _ => None,
    }
}

/// A POSIX regular expression (basic, or extended with `extended`) in the
/// `regex` crate's syntax; `None` for back-references.
pub(super) fn translate_regex(re: &str, extended: bool) -> Option<String> {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let next = *chars.get(i + 1)?;
                i += 2;
                match next {
                    '1'..='9' => return None,
                    '(' | ')' | '{' | '}' | '|' | '+' | '?' if !extended => out.push(next),
                    'n' => out.push_str("\\n"),
                    't' => out.push_str("\\t"),
                    c if c.is_ascii_alphanumeric() => return None,
                    c => {
                        out.push('\\');
                        out.push(c);
                    }
                }
                continue;
            }
            '[' => {
                let (class, next) = regex_bracket(&chars, i)?;
                out.push_str(&class);
                i = next;
                continue;
            }
            '(' | ')' | '{' | '}' | '|' | '+' | '?' if !extended => {
                out.push('\\');
                out.push(c);
            }
            '*' if out.is_empty() || out.ends_with('(') || out.ends_with('|') => {
                out.push_str("\\*")
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

/// A bracket expression, with backslashes literal as POSIX has them.
fn regex_bracket(chars: &[char], open: usize) -> Option<(String, usize)> {
    let mut out = String::from("[");
    let mut i = open + 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        if c == ']' && !first {
            out.push(']');
            return Some((out, i + 1));
        }
        first = false;
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let end = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == ':' && chars[j + 1] == ']')?;
            out.extend(&chars[i..end + 2]);
            i = end + 2;
            continue;
        }
        if matches!(c, '\\' | '[' | ']' | '&' | '~' | '^') {
            out.push('\\');
        }
        out.push(c);
        i += 1;
    }
    None
}

/// Splits text into lines, without their newlines.
fn lines(input: &str) -> impl Iterator<Item = &str> {
    let body = input.strip_suffix('\n').unwrap_or(input);
    body.split('\n').filter(move |_| !input.is_empty())
}

/// `grep ARGS` over `input`: its output and exit status. `None` when it
/// reads files or uses an option not modelled.
pub(super) fn grep(
    args: &[String],
    input: &str,
    compile: &mut dyn FnMut(&str) -> Option<Regex>,
) -> Option<(String, i32)> {
    let (mut extended, mut fixed, mut invert, mut quiet, mut whole, mut icase) =
        (false, false, false, false, false, false);
    let mut patterns = Vec::new();
    let mut operands = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-e" => patterns.push(it.next()?.clone()),
            "--" => {
                operands.extend(it.by_ref().cloned());
            }
            flag if flag.starts_with('-') && flag.len() > 1 => {
                for f in flag[1..].chars() {
                    match f {
                        'E' => extended = true,
                        'F' => fixed = true,
                        'v' => invert = true,
                        'q' => quiet = true,
                        'x' => whole = true,
                        'i' => icase = true,
                        's' => {}
                        _ => return None,
                    }
                }
            }
            _ => operands.push(arg.clone()),
        }
    }
    if patterns.is_empty() {
        if operands.is_empty() {
            return None;
        }
        patterns.push(operands.remove(0));
    }
    if !operands.is_empty() {
        return None;
    }
    let mut alternatives = Vec::new();
    for p in patterns.iter().flat_map(|p| p.split('\n')) {
        let re = if fixed {
            regex::escape(p)
        } else {
            translate_regex(p, extended)?
        };
        alternatives.push(format!("(?:{re})"));
    }
    let mut re = alternatives.join("|");
    if whole {
        re = format!("^(?:{re})$");
    }
    if icase {
        re = format!("(?i){re}");
    }
    let re = compile(&re)?;
    let mut out = String::new();
    let mut selected = false;
    for line in lines(input) {
        if re.is_match(line) != invert {
            selected = true;
            if !quiet {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Some((out, if selected { 0 } else { 1 }))
}

/// One `s` command of a sed script.
struct Substitute {
    re: Regex,
    replacement: String,
    global: bool,
    print: bool,
}

/// `sed ARGS` over `input`, for scripts of `s` commands only.
pub(super) fn sed(
    args: &[String],
    input: &str,
    compile: &mut dyn FnMut(&str) -> Option<Regex>,
) -> Option<String> {
    let mut scripts = Vec::new();
    let mut quiet = false;
    let mut extended = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-e" | "--expression" => scripts.push(it.next()?.clone()),
            "-n" | "--quiet" | "--silent" => quiet = true,
            "-E" | "-r" => extended = true,
            "-ne" | "-en" => {
                quiet = true;
                scripts.push(it.next()?.clone());
            }
            flag if flag.starts_with('-') => return None,
            // A file operand (or a script after -e): files are not read.
            _ if !scripts.is_empty() => return None,
            script => scripts.push(script.to_string()),
        }
    }
    let mut commands = Vec::new();
    for script in &scripts {
        for command in split_sed(script)? {
            commands.push(parse_substitute(&command, extended, compile)?);
        }
    }
    let mut out = String::new();
    for line in lines(input) {
        let mut line = line.to_string();
        for s in &commands {
            if !s.re.is_match(&line) {
                continue;
            }
            line = if s.global {
                s.re.replace_all(&line, s.replacement.as_str()).into_owned()
            } else {
                s.re.replace(&line, s.replacement.as_str()).into_owned()
            };
            if s.print {
                out.push_str(&line);
                out.push('\n');
            }
        }
        if !quiet {
            out.push_str(&line);
            out.push('\n');
        }
    }
    Some(out)
}

/// Splits a sed script into commands at `;` and newlines outside `s`'s parts.
fn split_sed(script: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = script.chars().collect();
    let mut commands = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && matches!(chars[i], ';' | '\n' | ' ' | '\t') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        if chars[i] != 's' {
            return None;
        }
        let delim = *chars.get(i + 1)?;
        let start = i;
        let mut seen = 0;
        let mut j = i + 2;
        // The delimiter after `s` is read; two more end the RE and replacement.
        while j < chars.len() && seen < 2 {
            if chars[j] == '\\' {
                j += 2;
                continue;
            }
            if chars[j] == delim {
                seen += 1;
            }
            j += 1;
        }
        if seen < 2 {
            return None;
        }
        while j < chars.len() && !matches!(chars[j], ';' | '\n') {
            j += 1;
        }
        commands.push(chars[start..j].iter().collect());
        i = j;
    }
    Some(commands)
}

fn parse_substitute(
    command: &str,
    extended: bool,
    compile: &mut dyn FnMut(&str) -> Option<Regex>,
) -> Option<Substitute> {
    let chars: Vec<char> = command.chars().collect();
    let delim = chars[1];
    let mut parts = vec![String::new()];
    let mut i = 2;
    while i < chars.len() && parts.len() < 3 {
        let c = chars[i];
        if c == '\\' && chars.get(i + 1) == Some(&delim) {
            parts.last_mut()?.push(delim);
            i += 2;
            continue;
        }
        if c == '\\' {
            parts.last_mut()?.push(c);
            if let Some(&n) = chars.get(i + 1) {
                parts.last_mut()?.push(n);
            }
            i += 2;
            continue;
        }
        if c == delim {
            parts.push(String::new());
        } else {
            parts.last_mut()?.push(c);
        }
        i += 1;
    }
    let flags: String = chars[i..].iter().collect();
    let (mut global, mut print, mut icase) = (false, false, false);
    for f in flags.trim().chars() {
        match f {
            'g' => global = true,
            'p' => print = true,
            'I' | 'i' => icase = true,
            _ => return None,
        }
    }
    let mut re = translate_regex(&parts[0], extended)?;
    if icase {
        re = format!("(?i){re}");
    }
    Some(Substitute {
        re: compile(&re)?,
        replacement: sed_replacement(&parts[1]),
        global,
        print,
    })
}

/// A sed replacement in the `regex` crate's syntax: `\1` -> `${1}`, `&` -> `${0}`.
fn sed_replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(d @ '0'..='9') => out.push_str(&format!("${{{d}}}")),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '&' => out.push_str("${0}"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// A `tr` set: ranges, escapes and `[:class:]`.
fn tr_set(text: &str) -> Option<Vec<char>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = match chars[i] {
            '\\' => {
                i += 1;
                match chars.get(i)? {
                    'n' => '\n',
                    't' => '\t',
                    c => *c,
                }
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == ':' && chars[j + 1] == ']')?;
                let name: String = chars[i + 2..end].iter().collect();
                for (lo, hi) in class_ranges(&name)? {
                    out.extend(lo..=hi);
                }
                i = end + 2;
                continue;
            }
            c => c,
        };
        if chars.get(i + 1) == Some(&'-') && i + 2 < chars.len() {
            let hi = chars[i + 2];
            if (hi as u32).saturating_sub(c as u32) > 0x1_0000 {
                return None;
            }
            out.extend(c..=hi);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Some(out)
}

/// `tr ARGS` over `input`: `-d SET`, `-cd SET` and `SET1 SET2`.
pub(super) fn tr(args: &[String], input: &str) -> Option<String> {
    let (mut delete, mut complement) = (false, false);
    let mut sets = Vec::new();
    for arg in args {
        match arg.as_str() {
            flag if flag.starts_with('-') && flag.len() > 1 && sets.is_empty() => {
                for f in flag[1..].chars() {
                    match f {
                        'd' => delete = true,
                        'c' | 'C' => complement = true,
                        _ => return None,
                    }
                }
            }
            set => sets.push(tr_set(set)?),
        }
    }
    match (delete, sets.as_slice()) {
        (true, [set]) => Some(
            input
                .chars()
                .filter(|c| set.contains(c) == complement)
                .collect(),
        ),
        (false, [from, to]) if !complement && !to.is_empty() => Some(
            input
                .chars()
                .map(|c| match from.iter().position(|f| *f == c) {
                    Some(k) => to[k.min(to.len() - 1)],
                    None => c,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// `printf FORMAT ARGS` with `%s`, `%d`, `%%` and backslash escapes; the
/// format is reused while arguments remain, as printf does.
pub(super) fn printf(args: &[String]) -> Option<String> {
    let (format, mut rest) = args.split_first()?;
    let mut out = String::new();
    loop {
        let mut consumed = false;
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    _ => return None,
                },
                '%' => match chars.next()? {
                    '%' => out.push('%'),
                    conv @ ('s' | 'd') => {
                        let (arg, tail) = rest.split_first().map_or(("", rest), |(a, t)| (a, t));
                        rest = tail;
                        consumed = true;
                        if conv == 'd' {
                            out.push_str(&arg.parse::<i64>().ok().unwrap_or(0).to_string());
                        } else {
                            out.push_str(arg);
                        }
                    }
                    _ => return None,
                },
                c => out.push(c),
            }
        }
        if rest.is_empty() || !consumed {
            return Some(out);
        }
    }
}

/// `basename PATH [SUFFIX]`.
pub(super) fn basename(args: &[String]) -> Option<String> {
    let path = args.first()?;
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Some(if path.is_empty() { "" } else { "/" }.to_string());
    }
    let mut base = trimmed.rsplit('/').next().unwrap_or(trimmed).to_string();
    if let Some(suffix) = args.get(1)
        && base != *suffix
        && let Some(stripped) = base.strip_suffix(suffix.as_str())
    {
        base = stripped.to_string();
    }
    Some(base)
}

/// `dirname PATH`.
pub(super) fn dirname(args: &[String]) -> Option<String> {
    let path = args.first()?.trim_end_matches('/');
    Some(match path.rsplit_once('/') {
        None => ".".into(),
        Some((dir, _)) => {
            let dir = dir.trim_end_matches('/');
            if dir.is_empty() {
                "/".into()
            } else {
                dir.into()
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn pat(text: &str) -> Vec<Pat> {
        let mut p = Vec::new();
        push_pattern(&mut p, text, false);
        p
    }

    fn compile(re: &str) -> Option<Regex> {
        Regex::new(re).ok()
    }

    #[test]
    fn patterns_match_as_in_case() {
        let m = |p: &str, t: &str| pattern_matches(&pat(p), &t.chars().collect::<Vec<_>>());
        assert!(m("[89]*", "9.6"));
        assert!(!m("[89]*", "15"));
        assert!(m("postgresql-[1-9]?", "postgresql-15"));
        assert!(!m("postgresql-[89].?", "postgresql-15"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXbYbc"));
        assert!(m("[!a]", "b"));
        assert!(m("[[:digit:]]x", "7x"));
        let mut quoted = Vec::new();
        push_pattern(&mut quoted, "*", true);
        assert!(!pattern_matches(&quoted, &['x']));
    }

    #[test]
    fn trims_prefixes_and_suffixes() {
        assert_eq!(trim("postgresql-client-15", &pat("*-"), false, true), "15");
        assert_eq!(
            trim("postgresql-client-15", &pat("*-"), false, false),
            "client-15"
        );
        assert_eq!(trim("a.tar.gz", &pat(".*"), true, false), "a.tar");
        assert_eq!(trim("a.tar.gz", &pat(".*"), true, true), "a");
        assert_eq!(trim("abc", &pat("x"), true, true), "abc");
    }

    #[test]
    fn test_evaluates_strings_and_integers_only() {
        assert_eq!(test(&s(&["psql.1.gz", "=", "psql.1.gz"])), Some(true));
        assert_eq!(test(&s(&["-n", ""])), Some(false));
        assert_eq!(test(&s(&["!", "-z", "x"])), Some(true));
        assert_eq!(test(&s(&["3", "-lt", "10"])), Some(true));
        assert_eq!(
            test(&s(&["a", "=", "a", "-a", "b", "!=", "b"])),
            Some(false)
        );
        assert_eq!(test(&s(&["-d", "/etc"])), None);
        assert_eq!(test(&s(&["-e", "/x", "-o", "a", "=", "a"])), Some(true));
    }

    #[test]
    fn grep_and_sed_as_maintscripts_use_them() {
        let input = "/.\n/usr/share/postgresql/15/man/man1/psql.1.gz\n/usr/share/doc/x\n/usr/share/postgresql/15/man/man7/ABORT.7.gz\n";
        let (out, status) =
            grep(&s(&["-E", r"/man/.*\.[1-9](\.gz)?$"]), input, &mut compile).unwrap();
        assert_eq!(status, 0);
        assert_eq!(out.lines().count(), 2);
        let (out, _) = grep(&s(&["-v", "psql.1.gz"]), &out, &mut compile).unwrap();
        assert_eq!(out, "/usr/share/postgresql/15/man/man7/ABORT.7.gz\n");
        assert_eq!(
            grep(&s(&["-q", "nothing"]), input, &mut compile).unwrap().1,
            1
        );
        assert_eq!(grep(&s(&["x", "/etc/file"]), input, &mut compile), None);

        let sed_out = sed(
            &s(&[r"s/postgresql\/15\///"]),
            "/usr/share/postgresql/15/man/man1/psql.1.gz",
            &mut compile,
        );
        assert_eq!(sed_out.as_deref(), Some("/usr/share/man/man1/psql.1.gz\n"));
        let sed_out = sed(
            &s(&["-e", r"s/.*\.\(.*\)\..*/man\1/"]),
            "psql.1.gz\n",
            &mut compile,
        );
        assert_eq!(sed_out.as_deref(), Some("man1\n"));
        assert_eq!(sed(&s(&["-i", "s/a/b/", "/etc/x"]), "", &mut compile), None);
        assert_eq!(sed(&s(&["/x/d"]), "x\n", &mut compile), None);
        assert_eq!(sed(&s(&[r"s/\(a\)\1/b/"]), "aa\n", &mut compile), None);
        assert_eq!(
            sed(&s(&["-n", "s/^v: *//p"]), "a\nv: 3\n", &mut compile).as_deref(),
            Some("3\n")
        );
    }

    #[test]
    fn tr_printf_basename_dirname() {
        assert_eq!(tr(&s(&["-cd", "0-9"]), "9.6").as_deref(), Some("96"));
        assert_eq!(tr(&s(&["a-z", "A-Z"]), "abc").as_deref(), Some("ABC"));
        assert_eq!(tr(&s(&["-s", "x"]), "abc"), None);
        assert_eq!(
            printf(&s(&["%s-%d\\n", "a", "1", "b", "2"])).as_deref(),
            Some("a-1\nb-2\n")
        );
        assert_eq!(basename(&s(&["/a/b/c.1.gz"])).as_deref(), Some("c.1.gz"));
        assert_eq!(basename(&s(&["/a/b/c.gz", ".gz"])).as_deref(), Some("c"));
        assert_eq!(dirname(&s(&["/a/b/c"])).as_deref(), Some("/a/b"));
        assert_eq!(dirname(&s(&["c"])).as_deref(), Some("."));
        assert_eq!(dirname(&s(&["/c"])).as_deref(), Some("/"));
    }

    #[test]
    fn regexes_translate_from_posix() {
        assert_eq!(
            translate_regex(r"a\(b\)*c\{2\}", false).as_deref(),
            Some("a(b)*c{2}")
        );
        assert_eq!(
            translate_regex("a(b)+", false).as_deref(),
            Some(r"a\(b\)\+")
        );
        assert_eq!(translate_regex("a(b)+", true).as_deref(), Some("a(b)+"));
        assert_eq!(translate_regex(r"[\.]x", false).as_deref(), Some(r"[\\.]x"));
        assert_eq!(translate_regex("*a", false).as_deref(), Some(r"\*a"));
        assert_eq!(translate_regex(r"\1", false), None);
    }
}
