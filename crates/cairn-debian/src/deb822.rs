//! deb822 control-file paragraphs (`Packages`, `Release`, `control`).
//!
//! Owns the syntax only: fields, continuation lines, case-insensitive names and
//! blank-line separated paragraphs. It borrows from the input, so parsing
//! bookworm's ~63k-paragraph `Packages` file allocates one small `Vec` per
//! paragraph and nothing per field. What a field *means* belongs to the callers
//! ([`crate::release`], [`crate::index`]). OpenPGP armor is not handled here:
//! [`crate::release`] strips and verifies it first.

/// A syntax error, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct Deb822Error {
    pub line: usize,
    pub reason: String,
}

/// One `Name: value` field. For multi-line fields `value` keeps the
/// continuation lines verbatim (newline and leading space included), so the
/// first line is `value.lines().next()` and the rest are the following lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// One paragraph: its fields in file order, and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph<'a> {
    pub fields: Vec<Field<'a>>,
    /// 1-based line number of the first field, for error messages.
    pub line: usize,
}

impl<'a> Paragraph<'a> {
    /// The value of field `name` (matched case-insensitively), if present.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }

    /// The first line of field `name`; the summary of a `Description:`.
    pub fn first_line(&self, name: &str) -> Option<&'a str> {
        self.get(name)
            .map(|v| v.lines().next().unwrap_or("").trim())
    }
}

/// Parses every paragraph of `text`.
pub fn parse(text: &str) -> Result<Vec<Paragraph<'_>>, Deb822Error> {
    paragraphs(text).collect()
}

/// Iterates over the paragraphs of `text`, lazily.
pub fn paragraphs(text: &str) -> Paragraphs<'_> {
    Paragraphs {
        text,
        pos: 0,
        line: 1,
    }
}

/// Iterator returned by [`paragraphs`].
#[derive(Debug, Clone)]
pub struct Paragraphs<'a> {
    text: &'a str,
    /// Byte offset of the next unread line.
    pos: usize,
    /// 1-based line number of the line at `pos`.
    line: usize,
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, Deb822Error>;

    /// Reads each line once: blank lines end a paragraph (or are skipped
    /// before one), comments are skipped, anything else is a field or its
    /// continuation.
    fn next(&mut self) -> Option<Self::Item> {
        let mut paragraph = Paragraph {
            fields: Vec::new(),
            line: self.line,
        };
        while self.pos < self.text.len() {
            let line_no = self.line;
            let (start, line) = self.take_line();
            if is_blank(line) {
                if paragraph.fields.is_empty() {
                    continue;
                }
                return Some(Ok(paragraph));
            }
            if line.starts_with('#') {
                // Comments are allowed in deb822 files such as sources and control.
                continue;
            }
            if let Err(e) = self.add_line(&mut paragraph, start, line, line_no) {
                // Stop after the first error rather than report its echoes.
                self.pos = self.text.len();
                return Some(Err(e));
            }
        }
        (!paragraph.fields.is_empty()).then_some(Ok(paragraph))
    }
}

impl<'a> Paragraphs<'a> {
    /// The next line as (start offset, content without line ending); advances.
    fn take_line(&mut self) -> (usize, &'a str) {
        let start = self.pos;
        let rest = &self.text[start..];
        let (line, consumed) = match rest.find('\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += consumed;
        self.line += 1;
        (start, line.strip_suffix('\r').unwrap_or(line))
    }

    /// Adds a field line, or a continuation line (starting with space or tab)
    /// to the last field. `start` is the line's byte offset in the input.
    fn add_line(
        &self,
        paragraph: &mut Paragraph<'a>,
        start: usize,
        line: &'a str,
        line_no: usize,
    ) -> Result<(), Deb822Error> {
        if line.starts_with([' ', '\t']) {
            let end = start + line.trim_end().len();
            return self.extend_last_field(paragraph, end, line_no);
        }
        if paragraph.fields.is_empty() {
            paragraph.fields.reserve(24);
            paragraph.line = line_no;
        }
        paragraph.fields.push(field_start(line, line_no)?);
        Ok(())
    }

    /// Grows the last field's value to end at byte `end` of the input. Values
    /// are slices of the input, so a multi-line value is just a longer slice.
    fn extend_last_field(
        &self,
        paragraph: &mut Paragraph<'a>,
        end: usize,
        line: usize,
    ) -> Result<(), Deb822Error> {
        let Some(field) = paragraph.fields.last_mut() else {
            return Err(Deb822Error {
                line,
                reason: "continuation line before the first field".to_string(),
            });
        };
        let start = field.value.as_ptr() as usize - self.text.as_ptr() as usize;
        field.value = &self.text[start..end];
        Ok(())
    }
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b' ' || b == b'\t')
}

fn field_start(line: &str, line_no: usize) -> Result<Field<'_>, Deb822Error> {
    let error = |reason| Deb822Error {
        line: line_no,
        reason,
    };
    let Some((name, value)) = line.split_once(':') else {
        return Err(error(format!("expected 'Field: value', found '{line}'")));
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(error(format!("invalid field name '{name}'")));
    }
    Ok(Field {
        name,
        value: value.trim(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Package: hello\n\
Version: 2.10-3\n\
description: greet\n the world\n .\n politely\n\
\n\
\n\
# a comment\n\
Package: empty-first\n\
SHA256:\n 0123 12 main/Packages\n 4567 34 main/Packages.xz\n";

    #[test]
    fn parses_paragraphs_fields_and_continuations() {
        let ps = parse(TEXT).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].line, 1);
        assert_eq!(ps[0].get("Package"), Some("hello"));
        assert_eq!(ps[0].get("VERSION"), Some("2.10-3"));
        assert_eq!(
            ps[0].get("Description"),
            Some("greet\n the world\n .\n politely")
        );
        assert_eq!(ps[0].first_line("Description"), Some("greet"));
        assert_eq!(ps[1].line, 10);
        assert_eq!(ps[1].get("package"), Some("empty-first"));
        let sums: Vec<&str> = ps[1]
            .get("sha256")
            .unwrap()
            .lines()
            .map(str::trim)
            .collect();
        assert_eq!(
            sums,
            ["", "0123 12 main/Packages", "4567 34 main/Packages.xz"]
        );
        assert_eq!(ps[1].get("Missing"), None);
    }

    #[test]
    fn handles_crlf_and_whitespace_only_separators() {
        let ps = parse("A: 1\r\nB:  two \r\n \r\nC: 3\r\n  more\r\n").unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("b"), Some("two"));
        assert_eq!(ps[1].get("C"), Some("3\r\n  more"));
        assert_eq!(ps[1].first_line("C"), Some("3"));
    }

    #[test]
    fn empty_and_blank_input_have_no_paragraphs() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\n\n  \n").unwrap().is_empty());
    }

    #[test]
    fn reports_line_of_syntax_errors() {
        let err = parse("A: 1\n\nB: 2\nnot a field\n").unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.reason.contains("not a field"), "{err}");
        let err = parse(" leading continuation\n").unwrap_err();
        assert_eq!(err.line, 1);
        let err = parse("Bad Name: x\n").unwrap_err();
        assert!(err.to_string().contains("invalid field name"), "{err}");
    }

    #[test]
    fn iterator_stops_after_an_error() {
        let results: Vec<_> = paragraphs("oops\n\nA: 1\n").collect();
        assert_eq!(results.len(), 1);
        assert!(results[0].is_err());
    }
}
