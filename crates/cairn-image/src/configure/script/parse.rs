//! The maintainer-script parser: POSIX sh text to a syntax tree.
//!
//! Owns lexing (quotes, comments, continuations, `$...` expansions with their
//! modifiers, operators, redirections, here-documents, whose bodies are
//! skipped) and a recursive-descent parser for lists, `&&`/`||`, pipelines,
//! `if`, `for`, `while`/`until`, `case`, `{ }`, `( )` and function
//! definitions. Written here because no permissively licensed, maintained
//! sh parser exists (conch-parser was last released in 2019; yash-syntax is
//! GPL-3.0, and cairn is Apache-2.0).
//!
//! It never fails: text it cannot parse (a stray `fi`, bash's `a=(x y)`)
//! becomes an [`Node::Unparsed`] at its line and parsing goes on, and
//! nesting deeper than [`MAX_NEST`] stops being parsed, so a hostile script
//! cannot exhaust the stack.

use std::rc::Rc;

/// How deep compound commands and `$(...)` may nest before the parser stops
/// descending (real maintainer scripts nest fewer than 10 levels).
pub(super) const MAX_NEST: usize = 48;

/// One piece of a word before expansion.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Part {
    /// Literal text; `quoted` text is not field-split or pattern-special.
    Text { text: String, quoted: bool },
    /// `$NAME`, `${NAME}` or `${NAME<modifier>}`.
    Param {
        name: String,
        modifier: Modifier,
        quoted: bool,
    },
    /// `$(...)` or `` `...` ``, parsed once where it is read.
    Command {
        program: Rc<Vec<Node>>,
        quoted: bool,
    },
    /// `$((...))`: never evaluated.
    Arithmetic,
}

/// What follows the name in `${NAME...}`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Modifier {
    None,
    /// `${#NAME}`.
    Length,
    /// `${NAME:-w}` (`colon`: also when empty) and `${NAME-w}`.
    Default {
        colon: bool,
        word: Word,
    },
    /// `${NAME:=w}`.
    Assign {
        colon: bool,
        word: Word,
    },
    /// `${NAME:+w}`.
    Alternative {
        colon: bool,
        word: Word,
    },
    /// `${NAME:?w}`.
    Error,
    /// `${NAME#p}`, `${NAME##p}` (prefix) and `${NAME%p}`, `${NAME%%p}`.
    Trim {
        suffix: bool,
        longest: bool,
        pattern: Word,
    },
}

pub(super) type Word = Vec<Part>;

/// A redirection: the file descriptor (default 0 or 1 by operator), the
/// operator and its target word.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Redirect {
    pub fd: u32,
    pub op: &'static str,
    pub target: Word,
}

/// A node of the syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Simple {
        /// `NAME=value` words before the command name.
        assignments: Vec<Word>,
        words: Vec<Word>,
        redirects: Vec<Redirect>,
        line: usize,
    },
    /// `a | b | c`, `! a`.
    Pipeline { bang: bool, commands: Vec<Node> },
    /// `a && b || c`.
    AndOr {
        first: Box<Node>,
        rest: Vec<(bool, Node)>,
    },
    /// `if c; then ...; elif c; then ...; else ...; fi`.
    If {
        arms: Vec<(Vec<Node>, Vec<Node>)>,
        otherwise: Option<Vec<Node>>,
    },
    /// `for NAME in WORDS; do ...; done` (`words: None`: `"$@"`).
    For {
        name: String,
        words: Option<Vec<Word>>,
        body: Vec<Node>,
    },
    /// `while`/`until` loops.
    Loop {
        until: bool,
        condition: Vec<Node>,
        body: Vec<Node>,
    },
    /// `case WORD in PATTERNS) ...;; esac`.
    Case {
        word: Word,
        arms: Vec<(Vec<Word>, Vec<Node>)>,
    },
    /// `{ ...; }` (`subshell: false`) or `( ... )`.
    Group { body: Vec<Node>, subshell: bool },
    /// A compound command with redirections after it (`done < file`).
    Redirected {
        node: Box<Node>,
        redirects: Vec<Redirect>,
    },
    /// `NAME () COMMAND`.
    Function { name: String, body: Rc<Node> },
    /// Text the parser could not read, at this line.
    Unparsed { line: usize },
}

/// Parses `text` into a list of commands.
pub(super) fn parse(text: &str) -> Vec<Node> {
    parse_nested(text, 0)
}

fn parse_nested(text: &str, nest: usize) -> Vec<Node> {
    let tokens = Lexer::new(text, nest).run();
    let mut parser = Parser {
        tokens,
        at: 0,
        nest,
    };
    let mut nodes = Vec::new();
    loop {
        nodes.extend(parser.list(&[]));
        if parser.at >= parser.tokens.len() {
            break;
        }
        // A token no rule takes (a stray `fi`, `)` or `;;`): skip it.
        nodes.push(Node::Unparsed {
            line: parser.tokens[parser.at].line,
        });
        parser.at += 1;
    }
    nodes
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(Word),
    /// `&&`, `||`, `|`, `;`, `;;`, `&`, `(`, `)`.
    Op(&'static str),
    /// A redirection operator with its explicit file descriptor.
    Redirect(Option<u32>, &'static str),
    Newline,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    line: usize,
    nest: usize,
    tokens: Vec<Token>,
    /// Here-documents whose bodies start after the current line:
    /// (delimiter, strip leading tabs).
    heredocs: Vec<(String, bool)>,
}

const OPERATORS: &[&str] = &[
    "&&", "||", ";;", "<<-", "<<<", "<<", ">>", "<&", ">&", "<>", ">|", "|", ";", "&", "(", ")",
    "<", ">",
];

impl Lexer {
    fn new(text: &str, nest: usize) -> Lexer {
        Lexer {
            chars: text.chars().collect(),
            at: 0,
            line: 1,
            nest,
            tokens: Vec::new(),
            heredocs: Vec::new(),
        }
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.at + k).copied()
    }

    fn run(mut self) -> Vec<Token> {
        while self.at < self.chars.len() {
            let c = self.chars[self.at];
            match c {
                '\\' if self.peek(1) == Some('\n') => {
                    self.at += 2;
                    self.line += 1;
                }
                ' ' | '\t' | '\r' => self.at += 1,
                '#' => {
                    while self.at < self.chars.len() && self.chars[self.at] != '\n' {
                        self.at += 1;
                    }
                }
                '\n' => {
                    self.push(Tok::Newline);
                    self.at += 1;
                    self.line += 1;
                    self.skip_heredocs();
                }
                _ => {
                    if let Some(op) = self.operator() {
                        self.at += op.chars().count();
                        if op.starts_with('<') || op.starts_with('>') {
                            self.redirect(None, op);
                        } else {
                            self.push(Tok::Op(op));
                        }
                        continue;
                    }
                    let line = self.line;
                    let word = self.word();
                    // `2>/dev/null`: a word of digits right before `<`/`>` is
                    // the redirection's file descriptor.
                    if let Some(fd) = literal_text(&word).and_then(|t| t.parse::<u32>().ok())
                        && let Some(op) = self.operator()
                        && (op.starts_with('<') || op.starts_with('>'))
                    {
                        self.at += op.chars().count();
                        self.redirect(Some(fd), op);
                        continue;
                    }
                    self.tokens.push(Token {
                        tok: Tok::Word(word),
                        line,
                    });
                }
            }
        }
        self.tokens
    }

    fn push(&mut self, tok: Tok) {
        self.tokens.push(Token {
            tok,
            line: self.line,
        });
    }

    fn operator(&self) -> Option<&'static str> {
        OPERATORS
            .iter()
            .copied()
            .find(|op| op.chars().enumerate().all(|(k, c)| self.peek(k) == Some(c)))
    }

    fn redirect(&mut self, fd: Option<u32>, op: &'static str) {
        self.push(Tok::Redirect(fd, op));
        if op == "<<" || op == "<<-" {
            // The delimiter word follows; its body is skipped at the next newline.
            while matches!(self.peek(0), Some(' ' | '\t')) {
                self.at += 1;
            }
            let word = self.word();
            let delimiter: String = word
                .iter()
                .map(|p| match p {
                    Part::Text { text, .. } => text.clone(),
                    _ => String::new(),
                })
                .collect();
            self.heredocs.push((delimiter, op == "<<-"));
            self.tokens.push(Token {
                tok: Tok::Word(word),
                line: self.line,
            });
        }
    }

    fn skip_heredocs(&mut self) {
        for (delimiter, strip) in std::mem::take(&mut self.heredocs) {
            while self.at < self.chars.len() {
                let end = (self.at..self.chars.len())
                    .find(|&j| self.chars[j] == '\n')
                    .unwrap_or(self.chars.len());
                let line: String = self.chars[self.at..end].iter().collect();
                self.at = (end + 1).min(self.chars.len());
                self.line += 1;
                let line = if strip {
                    line.trim_start_matches('\t')
                } else {
                    &line
                };
                if line == delimiter {
                    break;
                }
            }
        }
    }

    /// Reads one word up to an unquoted blank, newline or operator.
    fn word(&mut self) -> Word {
        let mut word = Word::new();
        while let Some(c) = self.peek(0) {
            match c {
                ' ' | '\t' | '\n' | '\r' => break,
                '\\' if self.peek(1) == Some('\n') => {
                    self.at += 2;
                    self.line += 1;
                }
                '\\' => {
                    if let Some(next) = self.peek(1) {
                        push_text(&mut word, next.to_string(), true);
                    }
                    self.at += 2;
                }
                '\'' => {
                    let end = self.find('\'', self.at + 1);
                    let text: String = self.chars[self.at + 1..end].iter().collect();
                    self.line += text.matches('\n').count();
                    push_text(&mut word, text, true);
                    self.at = end + 1;
                }
                '"' => {
                    self.at += 1;
                    self.double_quoted(&mut word);
                }
                '$' => self.dollar(&mut word, false),
                '`' => self.backquote(&mut word, false),
                _ if self.operator().is_some() => break,
                _ => {
                    push_text(&mut word, c.to_string(), false);
                    self.at += 1;
                }
            }
        }
        word
    }

    fn find(&self, target: char, from: usize) -> usize {
        (from..self.chars.len())
            .find(|&j| self.chars[j] == target)
            .unwrap_or(self.chars.len())
    }

    fn double_quoted(&mut self, word: &mut Word) {
        // An empty "" is still a word.
        push_text(word, String::new(), true);
        while let Some(c) = self.peek(0) {
            match c {
                '"' => {
                    self.at += 1;
                    return;
                }
                '\\' if self.peek(1) == Some('\n') => {
                    self.at += 2;
                    self.line += 1;
                }
                '\\' if matches!(self.peek(1), Some('"' | '\\' | '$' | '`')) => {
                    push_text(word, self.chars[self.at + 1].to_string(), true);
                    self.at += 2;
                }
                '$' => self.dollar(word, true),
                '`' => self.backquote(word, true),
                _ => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    push_text(word, c.to_string(), true);
                    self.at += 1;
                }
            }
        }
    }

    /// `` `...` ``: the text with `\$`, `` \` `` and `\\` unescaped, parsed.
    fn backquote(&mut self, word: &mut Word, quoted: bool) {
        let mut text = String::new();
        let mut j = self.at + 1;
        while j < self.chars.len() && self.chars[j] != '`' {
            if self.chars[j] == '\\' && matches!(self.chars.get(j + 1), Some('$' | '`' | '\\')) {
                j += 1;
            }
            text.push(self.chars[j]);
            j += 1;
        }
        self.line += text.matches('\n').count();
        self.at = j + 1;
        word.push(self.command(&text, quoted));
    }

    fn command(&self, text: &str, quoted: bool) -> Part {
        let program = if self.nest + 1 >= MAX_NEST {
            vec![Node::Unparsed { line: self.line }]
        } else {
            parse_nested(text, self.nest + 1)
        };
        Part::Command {
            program: Rc::new(program),
            quoted,
        }
    }

    /// Reads a `$` expansion at `self.at`.
    fn dollar(&mut self, word: &mut Word, quoted: bool) {
        match self.peek(1) {
            Some('(') if self.peek(2) == Some('(') => {
                self.at = self.skip_parens(self.at + 1);
                word.push(Part::Arithmetic);
            }
            Some('(') => {
                let end = self.skip_parens(self.at + 1);
                let inner_end = end.saturating_sub(1).max(self.at + 2);
                let text: String = self.chars[self.at + 2..inner_end.min(self.chars.len())]
                    .iter()
                    .collect();
                let part = self.command(&text, quoted);
                self.line += text.matches('\n').count();
                self.at = end;
                word.push(part);
            }
            Some('{') => {
                let end = self.skip_braces(self.at + 1);
                let inner: String = self.chars[self.at + 2..end.saturating_sub(1).max(self.at + 2)]
                    .iter()
                    .collect();
                self.at = end;
                word.push(self.braced(&inner, quoted));
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = self.at + 1;
                while j < self.chars.len()
                    && (self.chars[j].is_ascii_alphanumeric() || self.chars[j] == '_')
                {
                    j += 1;
                }
                word.push(Part::Param {
                    name: self.chars[self.at + 1..j].iter().collect(),
                    modifier: Modifier::None,
                    quoted,
                });
                self.at = j;
            }
            Some(c)
                if c.is_ascii_digit() || matches!(c, '@' | '*' | '#' | '?' | '$' | '!' | '-') =>
            {
                word.push(Part::Param {
                    name: c.to_string(),
                    modifier: Modifier::None,
                    quoted,
                });
                self.at += 2;
            }
            _ => {
                push_text(word, "$".into(), quoted);
                self.at += 1;
            }
        }
    }

    /// `${...}`'s inside: a name and its modifier.
    fn braced(&self, inner: &str, quoted: bool) -> Part {
        let param = |name: &str, modifier| Part::Param {
            name: name.to_string(),
            modifier,
            quoted,
        };
        if let Some(name) = inner.strip_prefix('#')
            && !name.is_empty()
            && is_name(name)
        {
            return param(name, Modifier::Length);
        }
        let split = inner
            .char_indices()
            .find(|&(k, c)| {
                let special = k == 0 && matches!(c, '@' | '*' | '#' | '?' | '$' | '!' | '-');
                !(c.is_ascii_alphanumeric() || c == '_' || special)
            })
            .map_or(inner.len(), |(k, _)| k);
        let (name, rest) = inner.split_at(split);
        if name.is_empty() || self.nest + 1 >= MAX_NEST {
            return Part::Arithmetic;
        }
        let sub = |text: &str, quoted: bool| -> Word {
            // The modifier's word is read as inside double quotes when the
            // expansion is, else as a word of its own. A trim's pattern is
            // always a pattern: `"${man##*/}"` removes the directory.
            let mut lexer = Lexer::new(text, self.nest + 1);
            let mut word = Word::new();
            if quoted {
                lexer.chars.push('"');
                lexer.double_quoted(&mut word);
            } else {
                while lexer.at < lexer.chars.len() {
                    let before = lexer.at;
                    word.extend(lexer.word());
                    if lexer.at == before {
                        push_text(&mut word, lexer.chars[lexer.at].to_string(), false);
                        lexer.at += 1;
                    }
                }
            }
            word
        };
        let (colon, op_text) = match rest.strip_prefix(':') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let mut ops = op_text.chars();
        let modifier = match (ops.next(), colon) {
            (None, false) => Modifier::None,
            (Some('-'), _) => Modifier::Default {
                colon,
                word: sub(&op_text[1..], quoted),
            },
            (Some('='), _) => Modifier::Assign {
                colon,
                word: sub(&op_text[1..], quoted),
            },
            (Some('+'), _) => Modifier::Alternative {
                colon,
                word: sub(&op_text[1..], quoted),
            },
            (Some('?'), _) => Modifier::Error,
            (Some(c @ ('#' | '%')), false) => {
                let longest = ops.next() == Some(c);
                let skip = if longest { 2 } else { 1 };
                Modifier::Trim {
                    suffix: c == '%',
                    longest,
                    pattern: sub(&op_text[skip..], false),
                }
            }
            _ => return Part::Arithmetic,
        };
        param(name, modifier)
    }

    /// From an opening `(`, the index after its matching `)`, skipping
    /// quoted text and nested parentheses.
    fn skip_parens(&self, open: usize) -> usize {
        self.skip_balanced(open, '(', ')')
    }

    fn skip_braces(&self, open: usize) -> usize {
        self.skip_balanced(open, '{', '}')
    }

    fn skip_balanced(&self, open: usize, up: char, down: char) -> usize {
        let mut depth = 0usize;
        let mut j = open;
        while j < self.chars.len() {
            match self.chars[j] {
                '\\' => j += 1,
                '\'' if up == '(' => j = self.find('\'', j + 1),
                '"' => {
                    j += 1;
                    while j < self.chars.len() && self.chars[j] != '"' {
                        if self.chars[j] == '\\' {
                            j += 1;
                        }
                        j += 1;
                    }
                }
                c if c == up => depth += 1,
                c if c == down => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return j + 1;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        self.chars.len()
    }
}

pub(super) fn is_name(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn push_text(word: &mut Word, text: String, quoted: bool) {
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

/// The unquoted literal text of a word, if it is only that.
pub(super) fn literal_text(word: &Word) -> Option<&str> {
    match word.as_slice() {
        [
            Part::Text {
                text,
                quoted: false,
            },
        ] => Some(text),
        _ => None,
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    nest: usize,
}

/// Reserved words that end a list when they start a command.
const CLOSERS: &[&str] = &["then", "elif", "else", "fi", "do", "done", "esac", "}"];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|t| &t.tok)
    }

    fn line(&self) -> usize {
        self.tokens
            .get(self.at)
            .or(self.tokens.last())
            .map_or(1, |t| t.line)
    }

    fn peek_reserved(&self) -> Option<&str> {
        match self.peek() {
            Some(Tok::Word(w)) => literal_text(w),
            _ => None,
        }
    }

    fn at_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn skip_newlines(&mut self) {
        while matches!(self.peek(), Some(Tok::Newline)) {
            self.at += 1;
        }
    }

    /// Consumes the reserved word `word` if it is next (after newlines).
    fn expect(&mut self, word: &str) -> bool {
        self.skip_newlines();
        if self.peek_reserved() == Some(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// A list of and-or lists, up to end of input, a closing reserved word,
    /// `)` or `;;` (left for the caller), or one of `stop`.
    fn list(&mut self, stop: &[&str]) -> Vec<Node> {
        let mut nodes = Vec::new();
        loop {
            while matches!(self.peek(), Some(Tok::Newline | Tok::Op(";" | "&"))) {
                self.at += 1;
            }
            match self.peek() {
                None | Some(Tok::Op(")" | ";;")) => break,
                Some(Tok::Word(_)) => {
                    if let Some(w) = self.peek_reserved()
                        && (CLOSERS.contains(&w) || stop.contains(&w))
                    {
                        break;
                    }
                }
                _ => {}
            }
            let before = self.at;
            match self.and_or() {
                Some(node) => nodes.push(node),
                None if self.at == before => break,
                None => {}
            }
        }
        nodes
    }

    fn and_or(&mut self) -> Option<Node> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let and = match self.peek() {
                Some(Tok::Op("&&")) => true,
                Some(Tok::Op("||")) => false,
                _ => break,
            };
            self.at += 1;
            self.skip_newlines();
            match self.pipeline() {
                Some(node) => rest.push((and, node)),
                None => break,
            }
        }
        Some(if rest.is_empty() {
            first
        } else {
            Node::AndOr {
                first: Box::new(first),
                rest,
            }
        })
    }

    fn pipeline(&mut self) -> Option<Node> {
        let bang = self.peek_reserved() == Some("!");
        if bang {
            self.at += 1;
        }
        let mut commands = vec![self.command()?];
        while self.at_op("|") {
            self.at += 1;
            self.skip_newlines();
            match self.command() {
                Some(node) => commands.push(node),
                None => break,
            }
        }
        Some(if commands.len() == 1 && !bang {
            commands.remove(0)
        } else {
            Node::Pipeline { bang, commands }
        })
    }

    fn command(&mut self) -> Option<Node> {
        if self.nest >= MAX_NEST {
            let line = self.line();
            self.skip_to_end();
            return Some(Node::Unparsed { line });
        }
        self.nest += 1;
        let node = self.command_inner();
        self.nest -= 1;
        let node = node?;
        // Redirections after a compound command.
        let mut redirects = Vec::new();
        if !matches!(node, Node::Simple { .. } | Node::Function { .. }) {
            while let Some(Tok::Redirect(fd, op)) = self.peek().cloned() {
                self.at += 1;
                redirects.push(self.redirect_target(fd, op));
            }
        }
        Some(if redirects.is_empty() {
            node
        } else {
            Node::Redirected {
                node: Box::new(node),
                redirects,
            }
        })
    }

    fn skip_to_end(&mut self) {
        self.at = self.tokens.len();
    }

    fn command_inner(&mut self) -> Option<Node> {
        let line = self.line();
        if self.at_op("(") {
            self.at += 1;
            let body = self.list(&[]);
            if self.at_op(")") {
                self.at += 1;
            }
            return Some(Node::Group {
                body,
                subshell: true,
            });
        }
        match self.peek_reserved() {
            Some("if") => return Some(self.if_clause()),
            Some("for") => return Some(self.for_clause()),
            Some(w @ ("while" | "until")) => {
                let until = w == "until";
                self.at += 1;
                let condition = self.list(&["do"]);
                self.expect("do");
                let body = self.list(&[]);
                self.expect("done");
                return Some(Node::Loop {
                    until,
                    condition,
                    body,
                });
            }
            Some("case") => return Some(self.case_clause()),
            Some("{") => {
                self.at += 1;
                let body = self.list(&[]);
                self.expect("}");
                return Some(Node::Group {
                    body,
                    subshell: false,
                });
            }
            Some("function") => {
                self.at += 1;
                let name = self.peek_reserved().map(str::to_string);
                if let Some(name) = name {
                    self.at += 1;
                    if self.at_op("(") {
                        self.at += 1;
                        if self.at_op(")") {
                            self.at += 1;
                        }
                    }
                    return self.function_body(name, line);
                }
                return Some(Node::Unparsed { line });
            }
            _ => {}
        }
        // `NAME ( )`: a function definition.
        if let Some(name) = self.peek_reserved()
            && is_function_name(name)
            && matches!(
                self.tokens.get(self.at + 1).map(|t| &t.tok),
                Some(Tok::Op("("))
            )
            && matches!(
                self.tokens.get(self.at + 2).map(|t| &t.tok),
                Some(Tok::Op(")"))
            )
        {
            let name = name.to_string();
            self.at += 3;
            return self.function_body(name, line);
        }
        self.simple(line)
    }

    fn function_body(&mut self, name: String, line: usize) -> Option<Node> {
        self.skip_newlines();
        match self.command() {
            Some(body) => Some(Node::Function {
                name,
                body: Rc::new(body),
            }),
            None => Some(Node::Unparsed { line }),
        }
    }

    fn redirect_target(&mut self, fd: Option<u32>, op: &'static str) -> Redirect {
        let target = match self.peek().cloned() {
            Some(Tok::Word(w)) => {
                self.at += 1;
                w
            }
            _ => Word::new(),
        };
        let default = if op.starts_with('<') { 0 } else { 1 };
        Redirect {
            fd: fd.unwrap_or(default),
            op,
            target,
        }
    }

    fn simple(&mut self, line: usize) -> Option<Node> {
        let mut assignments = Vec::new();
        let mut words = Vec::new();
        let mut redirects = Vec::new();
        loop {
            match self.peek().cloned() {
                Some(Tok::Word(word)) => {
                    self.at += 1;
                    if words.is_empty() && assignment_name(&word).is_some() {
                        assignments.push(word);
                    } else {
                        words.push(word);
                    }
                }
                Some(Tok::Redirect(fd, op)) => {
                    self.at += 1;
                    redirects.push(self.redirect_target(fd, op));
                }
                // `a=(x y)` (a bash array) and the like.
                Some(Tok::Op("(")) if !assignments.is_empty() || !words.is_empty() => {
                    self.skip_group();
                    return Some(Node::Unparsed { line });
                }
                _ => break,
            }
        }
        if assignments.is_empty() && words.is_empty() && redirects.is_empty() {
            return None;
        }
        Some(Node::Simple {
            assignments,
            words,
            redirects,
            line,
        })
    }

    /// Skips a parenthesised group the grammar does not take.
    fn skip_group(&mut self) {
        let mut depth = 0usize;
        while let Some(tok) = self.peek() {
            match tok {
                Tok::Op("(") => depth += 1,
                Tok::Op(")") => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.at += 1;
                        return;
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
    }

    fn if_clause(&mut self) -> Node {
        self.at += 1;
        let mut arms = Vec::new();
        let mut otherwise = None;
        loop {
            let condition = self.list(&[]);
            self.expect("then");
            let body = self.list(&[]);
            arms.push((condition, body));
            self.skip_newlines();
            match self.peek_reserved() {
                Some("elif") => self.at += 1,
                Some("else") => {
                    self.at += 1;
                    otherwise = Some(self.list(&[]));
                    self.expect("fi");
                    break;
                }
                _ => {
                    self.expect("fi");
                    break;
                }
            }
        }
        Node::If { arms, otherwise }
    }

    fn for_clause(&mut self) -> Node {
        self.at += 1;
        let name = self.peek_reserved().unwrap_or("").to_string();
        if !name.is_empty() {
            self.at += 1;
        }
        self.skip_newlines();
        let mut words = None;
        if self.peek_reserved() == Some("in") {
            self.at += 1;
            let mut list = Vec::new();
            while let Some(Tok::Word(w)) = self.peek().cloned() {
                self.at += 1;
                list.push(w);
            }
            words = Some(list);
        }
        if self.at_op(";") {
            self.at += 1;
        }
        self.expect("do");
        let body = self.list(&[]);
        self.expect("done");
        Node::For { name, words, body }
    }

    fn case_clause(&mut self) -> Node {
        self.at += 1;
        let word = match self.peek().cloned() {
            Some(Tok::Word(w)) => {
                self.at += 1;
                w
            }
            _ => Word::new(),
        };
        self.expect("in");
        let mut arms = Vec::new();
        loop {
            self.skip_newlines();
            if self.peek_reserved() == Some("esac") {
                self.at += 1;
                break;
            }
            if self.at_op("(") {
                self.at += 1;
            }
            let mut patterns = Vec::new();
            while let Some(Tok::Word(w)) = self.peek().cloned() {
                self.at += 1;
                patterns.push(w);
                if self.at_op("|") {
                    self.at += 1;
                } else {
                    break;
                }
            }
            if !self.at_op(")") {
                // Not a pattern list: give up on this case at the next `esac`.
                while self.peek().is_some() && self.peek_reserved() != Some("esac") {
                    self.at += 1;
                }
                self.at = (self.at + 1).min(self.tokens.len());
                break;
            }
            self.at += 1;
            let body = self.list(&["esac"]);
            arms.push((patterns, body));
            if self.at_op(";;") {
                self.at += 1;
            }
        }
        Node::Case { word, arms }
    }
}

fn is_function_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !CLOSERS.contains(&name)
}

/// `NAME=...`: the name, if the word is an assignment.
pub(super) fn assignment_name(word: &Word) -> Option<&str> {
    let Some(Part::Text {
        text,
        quoted: false,
    }) = word.first()
    else {
        return None;
    };
    let (name, _) = text.split_once('=')?;
    is_name(name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple_words(nodes: &[Node]) -> Vec<Vec<String>> {
        fn walk(node: &Node, out: &mut Vec<Vec<String>>) {
            match node {
                Node::Simple { words, .. } => out.push(
                    words
                        .iter()
                        .map(|w| literal_text(w).unwrap_or("?").to_string())
                        .collect(),
                ),
                Node::Pipeline { commands, .. } => commands.iter().for_each(|c| walk(c, out)),
                Node::AndOr { first, rest } => {
                    walk(first, out);
                    rest.iter().for_each(|(_, n)| walk(n, out));
                }
                Node::If { arms, otherwise } => {
                    for (c, b) in arms {
                        c.iter().chain(b).for_each(|n| walk(n, out));
                    }
                    otherwise.iter().flatten().for_each(|n| walk(n, out));
                }
                Node::For { body, .. } | Node::Group { body, .. } => {
                    body.iter().for_each(|n| walk(n, out))
                }
                Node::Loop {
                    condition, body, ..
                } => condition.iter().chain(body).for_each(|n| walk(n, out)),
                Node::Case { arms, .. } => {
                    arms.iter().flat_map(|(_, b)| b).for_each(|n| walk(n, out))
                }
                Node::Redirected { node, .. } => walk(node, out),
                Node::Function { body, .. } => walk(body, out),
                Node::Unparsed { .. } => out.push(vec!["<unparsed>".into()]),
            }
        }
        let mut out = Vec::new();
        nodes.iter().for_each(|n| walk(n, &mut out));
        out
    }

    #[test]
    fn heredoc_bodies_are_not_commands() {
        let nodes = parse("cat <<-EOF\n\trm -rf /\n\tEOF\nafter\ncat <<'X' >&2\n$(boom)\nX\nend\n");
        assert_eq!(
            simple_words(&nodes),
            [vec!["cat"], vec!["after"], vec!["cat"], vec!["end"]]
        );
    }

    #[test]
    fn case_arms_with_alternatives() {
        let nodes =
            parse("case $x in\n  a|b) one ;;\n  (c*) two; three;;\n  *) four\nesac\nfive\n");
        let Node::Case { arms, .. } = &nodes[0] else {
            panic!("{nodes:?}")
        };
        assert_eq!(arms.len(), 3);
        assert_eq!(arms[0].0.len(), 2);
        assert_eq!(
            simple_words(&nodes),
            [
                vec!["one"],
                vec!["two"],
                vec!["three"],
                vec!["four"],
                vec!["five"]
            ]
        );
    }

    #[test]
    fn redirections_are_taken_out_of_the_words() {
        let nodes = parse("grep -q x 2>/dev/null >&2 < in\n");
        let Node::Simple {
            words, redirects, ..
        } = &nodes[0]
        else {
            panic!()
        };
        assert_eq!(words.len(), 3);
        assert_eq!(
            redirects.iter().map(|r| (r.fd, r.op)).collect::<Vec<_>>(),
            [(2, ">"), (1, ">&"), (0, "<")]
        );
    }

    #[test]
    fn broken_text_becomes_unparsed_and_parsing_goes_on() {
        let nodes = parse("fi\na=(x y)\nok\n");
        assert_eq!(
            simple_words(&nodes),
            [vec!["<unparsed>"], vec!["<unparsed>"], vec!["ok"]]
        );
    }

    #[test]
    fn deep_nesting_is_cut_off_without_overflowing_the_stack() {
        let deep = format!("{}x{}", "( ".repeat(100_000), " )".repeat(100_000));
        let nodes = parse(&deep);
        assert!(!nodes.is_empty());
        let deep = format!("{}x{}", "$(".repeat(10_000), ")".repeat(10_000));
        let nodes = parse(&format!("echo {deep}\n"));
        assert_eq!(nodes.len(), 1);
        let deep = "if a; then ".repeat(50_000);
        assert!(!parse(&deep).is_empty());
    }

    #[test]
    fn functions_in_every_form() {
        let nodes = parse("f () {\n  a\n}\ng() { b; }\nfunction h {\n c\n}\nf\n");
        assert!(matches!(&nodes[0], Node::Function { name, .. } if name == "f"));
        assert!(matches!(&nodes[1], Node::Function { name, .. } if name == "g"));
        assert!(matches!(&nodes[2], Node::Function { name, .. } if name == "h"));
        assert_eq!(nodes.len(), 4);
    }
}
