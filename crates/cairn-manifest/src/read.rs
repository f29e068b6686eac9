//! Typed access to a spanned TOML tree: "this key must be a string", "no keys
//! but these", with every failure pointing at the key or value it is about.
//!
//! The schema itself (which tables hold which keys) is in `parse.rs`.

use crate::diagnostics::{Problem, did_you_mean};
use crate::validate::Broken;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A TOML table being read, with the dotted path used in messages.
pub(crate) struct Table<'a, 'i> {
    entries: &'a DeTable<'i>,
    /// Dotted path of this table (`containerize.config`); empty at the root.
    pub path: String,
    /// Where this table's key is written (`0..0` at the root), for "missing
    /// key" errors: implicit tables have no span of their own.
    pub key_span: Range<usize>,
}

/// One key and its value.
pub(crate) struct Field<'a, 'i> {
    /// The key as written (unquoted).
    pub key: &'a str,
    /// Where the key is written.
    pub key_span: Range<usize>,
    /// Dotted path of the key (`containerize.config.user`).
    pub path: String,
    value: &'a Spanned<DeValue<'i>>,
}

/// An item of a string list, with its own span.
pub(crate) struct Item {
    pub text: String,
    pub span: Range<usize>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// The document's root table.
    pub fn root(entries: &'a DeTable<'i>) -> Self {
        Table {
            entries,
            path: String::new(),
            key_span: 0..0,
        }
    }

    /// Fields in the order they are written, so the first error reported is
    /// the first one in the file.
    pub fn fields(&self) -> Vec<Field<'a, 'i>> {
        let mut fields: Vec<_> = self
            .entries
            .iter()
            .map(|(key, value)| self.field(key, value))
            .collect();
        fields.sort_by_key(|f| f.key_span.start);
        fields
    }

    /// The field `key`, if present.
    pub fn get(&self, key: &str) -> Option<Field<'a, 'i>> {
        let (key, value) = self.entries.get_key_value(key)?;
        Some(self.field(key, value))
    }

    fn field(
        &self,
        key: &'a Spanned<std::borrow::Cow<'i, str>>,
        value: &'a Spanned<DeValue<'i>>,
    ) -> Field<'a, 'i> {
        let path = match self.path.as_str() {
            "" => key.get_ref().to_string(),
            parent => format!("{parent}.{}", key.get_ref()),
        };
        Field {
            key: key.get_ref().as_ref(),
            key_span: key.span(),
            path,
            value,
        }
    }

    /// Fails on the first key not in `allowed`, suggesting the closest one.
    pub fn deny_unknown(&self, allowed: &[&str]) -> Result<(), Problem> {
        let Some(field) = self
            .fields()
            .into_iter()
            .find(|f| !allowed.contains(&f.key))
        else {
            return Ok(());
        };
        let place = match self.path.as_str() {
            "" => "in manifest".to_string(),
            path => format!("in [{path}]"),
        };
        let help = match did_you_mean(field.key, allowed.iter().copied()) {
            Some(close) => format!("did you mean '{close}'?"),
            None => format!("expected one of: {}", allowed.join(", ")),
        };
        Err(Problem::new(
            field.key_span,
            format!("unknown key '{}' {place}", field.key),
        )
        .label("unknown key")
        .help(help))
    }

    /// A required field, or a problem at this table's key naming what is missing.
    pub fn required(&self, key: &str, example: &str) -> Result<Field<'a, 'i>, Problem> {
        self.get(key).ok_or_else(|| {
            Problem::new(
                self.key_span.clone(),
                format!("{}: missing '{key}'", self.path),
            )
            .label("missing key")
            .help(format!("add {key} = {example}"))
        })
    }

    /// Reads an optional string field.
    pub fn opt_string(&self, key: &str) -> Result<Option<String>, Problem> {
        self.get(key).map(|f| f.string()).transpose()
    }

    /// Reads an optional boolean field.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, Problem> {
        self.get(key).map(|f| f.boolean()).transpose()
    }

    /// Reads an optional list of strings.
    pub fn opt_list(&self, key: &str) -> Result<Option<Vec<Item>>, Problem> {
        self.get(key).map(|f| f.string_list()).transpose()
    }

    /// Reads an optional table of string values.
    pub fn opt_string_map(
        &self,
        key: &str,
    ) -> Result<Option<Vec<(Field<'a, 'i>, String)>>, Problem> {
        self.get(key).map(|f| f.string_map()).transpose()
    }

    /// Reads an optional subtable.
    pub fn opt_table(&self, key: &str) -> Result<Option<Table<'a, 'i>>, Problem> {
        self.get(key).map(|f| f.table()).transpose()
    }
}

impl<'a, 'i> Field<'a, 'i> {
    /// Span of the value.
    pub fn span(&self) -> Range<usize> {
        self.value.span()
    }

    /// A problem with this field's value: `path: message`.
    pub fn broken(&self, broken: Broken) -> Problem {
        self.problem_at(self.span(), broken)
    }

    /// A problem at `span` inside this field's value (a list item, say).
    pub fn problem_at(&self, span: Range<usize>, broken: Broken) -> Problem {
        let problem =
            Problem::new(span, format!("{}: {}", self.path, broken.message)).label("invalid value");
        match broken.help {
            Some(help) => problem.help(help),
            None => problem,
        }
    }

    fn wrong_type(&self, expected: &str, example: &str) -> Problem {
        let found = self.value.get_ref().type_str();
        Problem::new(
            self.span(),
            format!("{}: expected {expected}, found {found}", self.path),
        )
        .label("wrong type")
        .help(format!("write it as {} = {example}", self.key))
    }

    /// The value as a string. No manifest string may hold a NUL byte: every
    /// one ends up in an environment variable, an argument or a path, where
    /// the C side silently cuts it at the NUL.
    pub fn str(&self) -> Result<&'a str, Problem> {
        let text = self
            .value
            .get_ref()
            .as_str()
            .ok_or_else(|| self.wrong_type("a string", "\"...\""))?;
        refuse_nul(&self.path, text, self.span())?;
        Ok(text)
    }

    /// The value as an owned string.
    pub fn string(&self) -> Result<String, Problem> {
        self.str().map(str::to_string)
    }

    /// The value as a boolean.
    pub fn boolean(&self) -> Result<bool, Problem> {
        self.value
            .get_ref()
            .as_bool()
            .ok_or_else(|| self.wrong_type("true or false", "true"))
    }

    /// The value as an integer.
    pub fn integer(&self) -> Result<i64, Problem> {
        let int = self
            .value
            .get_ref()
            .as_integer()
            .ok_or_else(|| self.wrong_type("an integer", "100"))?;
        i64::from_str_radix(int.as_str(), int.radix())
            .map_err(|_| Problem::new(self.span(), format!("{}: {int} is too large", self.path)))
    }

    /// Whether the value is an array (for "string or list" keys).
    pub fn is_array(&self) -> bool {
        self.value.get_ref().is_array()
    }

    /// The value as a list of strings, each with its span.
    pub fn string_list(&self) -> Result<Vec<Item>, Problem> {
        let array = self
            .value
            .get_ref()
            .as_array()
            .ok_or_else(|| self.wrong_type("a list of strings", "[\"...\"]"))?;
        array
            .iter()
            .map(|item| match item.get_ref().as_str() {
                Some(text) => refuse_nul(&self.path, text, item.span()).map(|()| Item {
                    text: text.to_string(),
                    span: item.span(),
                }),
                None => Err(Problem::new(
                    item.span(),
                    format!(
                        "{}: expected a list of strings, found {} in it",
                        self.path,
                        item.get_ref().type_str()
                    ),
                )
                .label("not a string")
                .help("quote each item, e.g. [\"8080\"]")),
            })
            .collect()
    }

    /// The value as a table.
    pub fn table(&self) -> Result<Table<'a, 'i>, Problem> {
        let entries = self
            .value
            .get_ref()
            .as_table()
            .ok_or_else(|| self.wrong_type("a table", "{ ... }"))?;
        Ok(Table {
            entries,
            path: self.path.clone(),
            key_span: self.key_span.clone(),
        })
    }

    /// The value as a table whose values are all strings (`[vars]`, labels).
    pub fn string_map(&self) -> Result<Vec<(Field<'a, 'i>, String)>, Problem> {
        let table = self.table()?;
        table
            .fields()
            .into_iter()
            .map(|field| {
                let value = field.string()?;
                Ok((field, value))
            })
            .collect()
    }
}

/// A problem at `span` when `text` holds a NUL byte (TOML allows `\u0000`).
fn refuse_nul(path: &str, text: &str, span: Range<usize>) -> Result<(), Problem> {
    if !text.contains('\0') {
        return Ok(());
    }
    Err(
        Problem::new(span, format!("{path}: the value contains a NUL byte"))
            .label("NUL byte")
            .help("remove the \\u0000 escape: NUL cannot appear in variables, arguments or paths"),
    )
}

/// Collects `(field, value)` pairs into a map keyed by the field's key.
pub(crate) fn into_map<T>(pairs: Vec<(Field<'_, '_>, T)>) -> BTreeMap<String, T> {
    pairs
        .into_iter()
        .map(|(field, value)| (field.key.to_string(), value))
        .collect()
}
