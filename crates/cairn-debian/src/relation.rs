//! Relationship fields (`Depends`, `Pre-Depends`, `Provides`, `Conflicts`,
//! `Breaks`): parsing and matching a single relation against a version.

use crate::version::Version;
use std::fmt;

/// A version operator in a relation: `<< <= = >= >>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionOp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

/// One `name[:arch] [(op version)]` term.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub name: String,
    /// `any`, `native`, or an architecture name, from `name:arch`.
    pub arch: Option<String>,
    pub constraint: Option<(VersionOp, Version)>,
}

/// One comma-separated entry: alternatives joined by `|`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub alternatives: Vec<Relation>,
}

/// A relationship field that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid relation '{input}': {reason}")]
pub struct RelationError {
    pub input: String,
    pub reason: String,
}

impl Dependency {
    /// Parses a whole field value, e.g. `libc6 (>= 2.34), python3:any | python3-minimal`.
    /// Architecture restrictions `[amd64]` and build profiles `<!nocheck>` are
    /// evaluated for `arch` and dropped.
    pub fn parse_list(field: &str, arch: &str) -> Result<Vec<Dependency>, RelationError> {
        todo!("{field} {arch}")
    }
}

impl Relation {
    /// Parses one term, e.g. `python3 (>= 3.11)`.
    pub fn parse(term: &str) -> Result<Relation, RelationError> {
        todo!("{term}")
    }

    /// Whether `version` satisfies this relation's constraint (true when unconstrained).
    pub fn accepts(&self, version: &Version) -> bool {
        todo!("{version}")
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some((op, v)) = &self.constraint {
            let op = match op {
                VersionOp::Lt => "<<",
                VersionOp::Le => "<=",
                VersionOp::Eq => "=",
                VersionOp::Ge => ">=",
                VersionOp::Gt => ">>",
            };
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alt) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{alt}")?;
        }
        Ok(())
    }
}
