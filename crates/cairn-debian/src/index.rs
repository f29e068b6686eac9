//! A set of verified `Packages` indices, searchable by name and by provided name.

use crate::package::PackageRecord;
use std::collections::HashMap;

/// All package records from the configured sources, for one architecture.
#[derive(Debug, Clone, Default)]
pub struct PackageIndex {
    pub records: Vec<PackageRecord>,
    /// Record positions by package name.
    by_name: HashMap<String, Vec<usize>>,
    /// Record positions by provided (virtual) name.
    by_provides: HashMap<String, Vec<usize>>,
}

impl PackageIndex {
    /// Builds the lookup tables over `records`.
    pub fn new(records: Vec<PackageRecord>) -> PackageIndex {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_provides: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            by_name.entry(r.name.clone()).or_default().push(i);
            for p in &r.provides {
                by_provides.entry(p.name.clone()).or_default().push(i);
            }
        }
        PackageIndex {
            records,
            by_name,
            by_provides,
        }
    }

    /// Records whose package name is `name`.
    pub fn by_name(&self, name: &str) -> impl Iterator<Item = (usize, &PackageRecord)> {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .map(|&i| (i, &self.records[i]))
    }

    /// Records that provide `name` (virtual packages).
    pub fn providers(&self, name: &str) -> impl Iterator<Item = (usize, &PackageRecord)> {
        self.by_provides
            .get(name)
            .into_iter()
            .flatten()
            .map(|&i| (i, &self.records[i]))
    }

    /// All distinct package names (for suggestions and search).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}
