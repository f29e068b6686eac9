//! The account behind `[containerize.config] user`: named users and groups that
//! don't exist yet are created (uid/gid 1000 unless given), numeric ones get an
//! entry so programs that look themselves up (postgres, ssh) work.

use cairn_manifest::{IdOrName, UserSpec};

/// A passwd/group entry to add to the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub group: String,
    pub gid: u32,
    pub home: String,
}

/// uid/gid for a named account whose id is not given.
const DEFAULT_ID: u32 = 1000;

/// Derives the account from the six `user` forms.
pub fn account_for(spec: &UserSpec) -> Account {
    let (name, uid) = match &spec.user {
        IdOrName::Name(n) if n == "root" => ("root".to_string(), 0),
        IdOrName::Name(n) => (n.clone(), DEFAULT_ID),
        IdOrName::Id(0) => ("root".to_string(), 0),
        IdOrName::Id(id) => (format!("user{id}"), *id),
    };
    let (group, gid) = match &spec.group {
        None => (
            if uid == 0 {
                "root".to_string()
            } else {
                name.clone()
            },
            uid,
        ),
        Some(IdOrName::Name(g)) if g == "root" => ("root".to_string(), 0),
        Some(IdOrName::Name(g)) => (g.clone(), if uid == 0 { DEFAULT_ID } else { uid }),
        Some(IdOrName::Id(0)) => ("root".to_string(), 0),
        Some(IdOrName::Id(id)) => (format!("group{id}"), *id),
    };
    let home = if uid == 0 {
        "/root".to_string()
    } else {
        format!("/home/{name}")
    };
    Account {
        name,
        uid,
        group,
        gid,
        home,
    }
}

impl Account {
    /// The `/etc/passwd` line, unless it is root (always present).
    pub fn passwd_line(&self) -> Option<String> {
        (self.uid != 0).then(|| {
            format!(
                "{}:x:{}:{}::{}:/bin/sh\n",
                self.name, self.uid, self.gid, self.home
            )
        })
    }

    /// The `/etc/group` line, unless it is root's group.
    pub fn group_line(&self) -> Option<String> {
        (self.gid != 0).then(|| format!("{}:x:{}:\n", self.group, self.gid))
    }
}

/// The parent directories of an absolute path, outermost first, without `/`.
pub fn parents(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    (1..parts.len()).map(|i| parts[..i].join("/")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> UserSpec {
        cairn_manifest::parse_user(text).unwrap()
    }

    #[test]
    fn all_six_user_forms() {
        let a = account_for(&spec("app"));
        assert_eq!(
            (a.name.as_str(), a.uid, a.group.as_str(), a.gid),
            ("app", 1000, "app", 1000)
        );
        let a = account_for(&spec("1234"));
        assert_eq!((a.uid, a.gid), (1234, 1234));
        let a = account_for(&spec("app:staff"));
        assert_eq!((a.uid, a.group.as_str(), a.gid), (1000, "staff", 1000));
        let a = account_for(&spec("1234:5678"));
        assert_eq!((a.uid, a.gid), (1234, 5678));
        let a = account_for(&spec("1234:staff"));
        assert_eq!((a.uid, a.group.as_str(), a.gid), (1234, "staff", 1234));
        let a = account_for(&spec("app:5678"));
        assert_eq!((a.name.as_str(), a.uid, a.gid), ("app", 1000, 5678));
        assert_eq!(account_for(&spec("root")).passwd_line(), None);
        assert_eq!(
            account_for(&spec("app")).passwd_line().unwrap(),
            "app:x:1000:1000::/home/app:/bin/sh\n"
        );
    }

    #[test]
    fn parents_outermost_first() {
        assert_eq!(parents("/var/lib/data"), vec!["var", "var/lib"]);
        assert!(parents("/data").is_empty());
    }
}
