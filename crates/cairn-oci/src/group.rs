//! Which packages get a layer of their own when an image may have only so many
//! layers: the nixpkgs "popularity contest" rule.
//!
//! A package's popularity is the number of other packages that depend on it,
//! directly or transitively. Popular packages (libc6, base libraries) change
//! rarely and are shared by many images, so they deserve their own layers;
//! the long tail shares one. Pure logic: no I/O.

use std::collections::{BTreeMap, BTreeSet};

/// A package and the names of the packages it depends on (names outside the
/// set are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageNode {
    /// Package name, unique within the set.
    pub name: String,
    /// Names of direct dependencies.
    pub depends: Vec<String>,
}

/// Plans the package layers of an image that may have `max_layers` layers in
/// all, one of which is the CLI's top layer. Returns groups of indices into
/// `packages`, most popular first (ties by name): one package per group while
/// they fit in `max_layers - 1`, otherwise the `max_layers - 2` most popular
/// alone and every other package in one final group.
pub fn plan_layers(packages: &[PackageNode], max_layers: usize) -> Vec<Vec<usize>> {
    if packages.is_empty() {
        return Vec::new();
    }
    let popularity = popularity(packages);
    let mut order: Vec<usize> = (0..packages.len()).collect();
    order.sort_by(|&a, &b| {
        popularity[b]
            .cmp(&popularity[a])
            .then_with(|| packages[a].name.cmp(&packages[b].name))
    });
    if packages.len() < max_layers {
        return order.into_iter().map(|i| vec![i]).collect();
    }
    let alone = max_layers.saturating_sub(2);
    let rest = order.split_off(alone);
    let mut plan: Vec<Vec<usize>> = order.into_iter().map(|i| vec![i]).collect();
    plan.push(rest);
    plan
}

/// For each package, how many other packages reach it through dependencies.
fn popularity(packages: &[PackageNode]) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = packages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut popularity = vec![0; packages.len()];
    for start in 0..packages.len() {
        for reached in closure(packages, &index, start) {
            if reached != start {
                popularity[reached] += 1;
            }
        }
    }
    popularity
}

/// Every package reachable from `start` (including itself), iteratively so
/// deep or cyclic dependency graphs are fine.
fn closure(
    packages: &[PackageNode],
    index: &BTreeMap<&str, usize>,
    start: usize,
) -> BTreeSet<usize> {
    let mut seen = BTreeSet::from([start]);
    let mut stack = vec![start];
    while let Some(current) = stack.pop() {
        for dep in &packages[current].depends {
            if let Some(&i) = index.get(dep.as_str())
                && seen.insert(i)
            {
                stack.push(i);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, depends: &[&str]) -> PackageNode {
        PackageNode {
            name: name.into(),
            depends: depends.iter().map(|d| d.to_string()).collect(),
        }
    }

    /// app -> libfoo -> libc6; tool -> libc6; libc6 -> libgcc (cycle back is fine).
    fn sample() -> Vec<PackageNode> {
        vec![
            node("app", &["libfoo", "not-in-set"]),
            node("libfoo", &["libc6"]),
            node("libc6", &["libgcc"]),
            node("libgcc", &["libc6"]),
            node("tool", &["libc6"]),
        ]
    }

    fn names(packages: &[PackageNode], plan: &[Vec<usize>]) -> Vec<Vec<String>> {
        plan.iter()
            .map(|g| g.iter().map(|&i| packages[i].name.clone()).collect())
            .collect()
    }

    #[test]
    fn popularity_counts_transitive_reverse_dependencies() {
        // libc6: app, libfoo, libgcc, tool; libgcc: app, libfoo, libc6, tool.
        assert_eq!(popularity(&sample()), vec![0, 1, 4, 4, 0]);
    }

    #[test]
    fn each_package_alone_when_they_fit() {
        let pkgs = sample();
        let plan = plan_layers(&pkgs, 6);
        assert_eq!(
            names(&pkgs, &plan),
            [["libc6"], ["libgcc"], ["libfoo"], ["app"], ["tool"]]
        );
    }

    #[test]
    fn least_popular_share_the_last_layer() {
        let pkgs = sample();
        let plan = plan_layers(&pkgs, 5);
        let want: Vec<Vec<&str>> = vec![
            vec!["libc6"],
            vec!["libgcc"],
            vec!["libfoo"],
            vec!["app", "tool"],
        ];
        assert_eq!(names(&pkgs, &plan), want);
        assert_eq!(
            plan.len() + 1,
            5,
            "with the top layer the image has max_layers"
        );
    }

    #[test]
    fn degenerate_limits() {
        let pkgs = sample();
        assert_eq!(plan_layers(&pkgs, 2).len(), 1);
        assert_eq!(plan_layers(&pkgs, 1), vec![vec![2, 3, 1, 0, 4]]);
        assert!(plan_layers(&[], 10).is_empty());
        let all: usize = plan_layers(&pkgs, 3).iter().map(Vec::len).sum();
        assert_eq!(all, pkgs.len());
    }
}
