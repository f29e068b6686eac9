//! Long descriptions from an archive's `Translation-*` files.
//!
//! Debian's `Packages` files carry only a description's first line and its
//! `Description-md5`; the text lives in `<component>/i18n/Translation-en`,
//! one paragraph per distinct description (`Package`, `Description-md5`,
//! `Description-en`), listed with its sha256 in the signed InRelease. apt
//! matches a package to its text by that md5, not by name (packages share
//! descriptions), and so does this module.
//!
//! Owns choosing which listed file to read and finding a description in its
//! text. Fetching and verifying the file is [`crate::fetch`].

use crate::deb822;
use crate::release::{FileDigest, Release};

/// The `Translation-<lang>` file of `component` to read, among those the
/// release lists: the best compression this client can read.
pub fn pick_translation<'r>(
    release: &'r Release,
    component: &str,
    lang: &str,
) -> Option<(&'r str, &'r FileDigest)> {
    ["xz", "gz", ""].iter().find_map(|ext| {
        let dot = if ext.is_empty() { "" } else { "." };
        let path = format!("{component}/i18n/Translation-{lang}{dot}{ext}");
        release
            .sha256
            .get_key_value(&path)
            .map(|(p, d)| (p.as_str(), d))
    })
}

/// The lines after the first of the description whose `Description-md5` is
/// `md5`, as written (each starts with a space; ` .` is an empty line), from
/// the text of a `Translation-<lang>` file.
///
/// Finds the md5 with a plain substring search (a 32 MB file is scanned in
/// milliseconds, where parsing every paragraph would take ten times longer),
/// then reads only the paragraph around it.
pub fn long_description(text: &str, md5: &str, lang: &str) -> Option<String> {
    let md5 = md5.to_ascii_lowercase();
    let needle = format!("Description-md5: {md5}");
    let mut from = 0;
    while let Some(found) = text[from..].find(&needle) {
        let at = from + found;
        from = at + needle.len();
        let start = text[..at].rfind("\n\n").map_or(0, |i| i + 2);
        let end = text[at..].find("\n\n").map_or(text.len(), |i| at + i);
        let Some(Ok(paragraph)) = deb822::paragraphs(&text[start..end]).next() else {
            continue;
        };
        if paragraph
            .get("Description-md5")
            .map(str::to_ascii_lowercase)
            != Some(md5.clone())
        {
            continue;
        }
        let field = format!("Description-{lang}");
        let rest = paragraph
            .get(&field)
            .and_then(|v| v.split_once('\n'))
            .map(|(_, rest)| rest.replace("\r\n", "\n"));
        if let Some(rest) = rest.filter(|r| !r.trim().is_empty()) {
            return Some(rest);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSLATION: &str = "Package: hello\n\
Description-md5: c4a4aec43084cfb4a44c959b27e3a6d6\n\
Description-en: example package based on GNU hello\n \
The GNU hello program produces a familiar, friendly greeting.\n \
.\n \
Seriously though: this is an example.\n\
\n\
Package: hello-traditional\n\
Description-md5: 0123456789abcdef0123456789abcdef\n\
Description-en: the classic greeting\n \
An older hello.\n\
\n\
Package: shortonly\n\
Description-md5: ffffffffffffffffffffffffffffffff\n\
Description-en: nothing more\n";

    #[test]
    fn finds_the_text_by_md5_not_by_name() {
        let text = long_description(TRANSLATION, "C4A4AEC43084CFB4A44C959B27E3A6D6", "en")
            .expect("found by md5, in any case");
        assert_eq!(
            text,
            " The GNU hello program produces a familiar, friendly greeting.\n .\n Seriously though: this is an example."
        );
        assert_eq!(
            long_description(TRANSLATION, "0123456789abcdef0123456789abcdef", "en").as_deref(),
            Some(" An older hello."),
            "the last paragraph but one, between blank lines"
        );
        assert_eq!(
            long_description(TRANSLATION, "ffffffffffffffffffffffffffffffff", "en"),
            None,
            "a one-line description has no long part"
        );
        assert_eq!(
            long_description(TRANSLATION, "00000000000000000000000000000000", "en"),
            None
        );
        assert_eq!(
            long_description(TRANSLATION, "c4a4aec43084cfb4a44c959b27e3a6d6", "de"),
            None,
            "another language's field is not this one"
        );
    }

    #[test]
    fn picks_the_best_listed_compression() {
        let sha = |n: u8| format!("{n:064x}");
        let text = format!(
            "Suite: bookworm\nCodename: bookworm\nDate: Sat, 10 Aug 2024 09:13:17 UTC\n\
SHA256:\n {} 10 main/i18n/Translation-en\n {} 5 main/i18n/Translation-en.xz\n {} 4 main/binary-amd64/Packages.xz\n",
            sha(1),
            sha(2),
            sha(3)
        );
        let release = Release::parse(&text, "u", 1_723_281_197, "x").unwrap();
        let (path, digest) = pick_translation(&release, "main", "en").unwrap();
        assert_eq!((path, digest.size), ("main/i18n/Translation-en.xz", 5));
        assert!(pick_translation(&release, "contrib", "en").is_none());
    }
}
