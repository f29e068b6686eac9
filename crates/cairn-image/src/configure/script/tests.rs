//! The reader's tests: the forms Debian's maintainer scripts use, quoted
//! from real packages where a test says so, and hostile input.

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
        1,
        "the body runs only where it is called, and `set -e` changes the shell only: {got:?}"
    );
    assert_eq!(got[0].line, 9);
    let words = got[0].words.clone().expect("resolved");
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
                  add vi /usr/bin/vim\nfoo $1\n";
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
            vec!["foo", "configure"],
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
    assert_eq!(got, [vec!["x"], vec!["y", "z"]]);
}

/// What `_link_manpages` in postgresql-common 248's maintscripts-functions
/// does, verbatim, sourced by postgresql-client-15's postinst, verbatim.
const MAINTSCRIPTS_FUNCTIONS: &str = r#"# arguments: version master package [package]
_link_manpages() {
    MANS=$(unset GREP_OPTIONS; dpkg -L $3 $4 $5 2>/dev/null | grep -E '/man/.*\.[1-9](\.gz)?$' | grep -v "$2") || true
    [ -n "$MANS" ] || return 0

    SLAVES=$(for i in $MANS; do TARGET=$(echo $i | sed "s/postgresql\/$1\///"); echo -n " --slave $TARGET $(basename $i) $i"; done)
    # pg_basebackup once moved from server to client; upgrades are still
    # affected by this for quite a while, so remove this alternative before
    # reinstalling it to avoid failure. This needs to be kept until we stop
    # supporting upgrades from -9.1.
    if [ "$2" = "psql.1.gz" ]; then
	OUT=$(LC_ALL=C update-alternatives --display postmaster.1.gz 2> /dev/null) || true
	if [ "${OUT#*auto mode}" != "$OUT" ] && [ "${OUT#*pg_basebackup.1.gz}" != "$OUT" ]; then
            echo "Adjusting postmaster.1.gz alternatives for pg_basebackup move..."
	    update-alternatives --remove postmaster.1.gz /usr/share/postgresql/9.1/man/man1/postmaster.1.gz
	fi
    # similarly, if we have both 9.1 and e. g. 9.3 installed, pg_basebackup.1
    # will already be in the psql.1.gz alternative group; if we upgrade 9.1, we
    # then must not try to put it into postmaster.1.gz again, as that will
    # fail
    elif [ "$2" = "postmaster.1.gz" ] && [ "$1" = "9.1" ]; then
	if update-alternatives --display psql.1.gz 2>/dev/null | grep -q pg_basebackup; then
	    #echo "Skipping postmaster.1.gz alternatives as pg_basebackup.1 is already in psql.1.gz group"
	    return
	fi
    fi

    # user might have removed the directories, allow u-a to succeed
    mkdir -p /usr/share/man/man1 /usr/share/man/man3 /usr/share/man/man7
    section=$(echo "$2" | sed -e 's/.*\.\(.*\)\..*/man\1/')
    case $1 in
        [89]*) priority=$(echo "$1" | tr -cd 0-9) ;;
        *) priority="${1}0" ;;
    esac
    update-alternatives --install /usr/share/man/$section/$2 \
	$2 /usr/share/postgresql/$1/man/$section/$2 \
	$priority $SLAVES
}

configure_client_version() {
    _link_manpages "$1" psql.1.gz "postgresql-client-$1"
}

# start debconf if we are in the server's postinst (can't run from a function)
if [ "${DPKG_MAINTSCRIPT_NAME:-}" = "postinst" ] && [ "$1" = "configure" ]; then
    case $DPKG_MAINTSCRIPT_PACKAGE in
        postgresql-[89].?|postgresql-[1-9]?)
            . /usr/share/debconf/confmodule
            ;;
    esac
fi
"#;

const CLIENT_POSTINST: &str = "#!/bin/sh\n\nset -e\n\nVERSION=${DPKG_MAINTSCRIPT_PACKAGE##*-}\n\n. /usr/share/postgresql-common/maintscripts-functions\n\nif [ \"$1\" = configure ]; then\n    configure_client_version $VERSION \"$2\"\nfi\n\n\n";

fn postgresql_world() -> Vec<PackageInput> {
    use super::super::testing::package;
    use super::super::{DataFile, DataKind};
    let mut common = package("postgresql-common", "", &["/usr/share/postgresql-common"]);
    common.files.push(DataFile {
        path: "/usr/share/postgresql-common/maintscripts-functions".into(),
        kind: DataKind::File,
        contents: Some(MAINTSCRIPTS_FUNCTIONS.as_bytes().to_vec()),
    });
    let client = package(
        "postgresql-client-15",
        CLIENT_POSTINST,
        &[
            "/usr/share/postgresql/15/man/man1",
            "/usr/share/postgresql/15/man/man1/psql.1.gz",
            "/usr/share/postgresql/15/man/man1/pg_dump.1.gz",
            "/usr/share/postgresql/15/man/man7/ABORT.7.gz",
            "/usr/share/doc/postgresql-client-15/copyright",
        ],
    );
    vec![common, client]
}

#[test]
fn a_sourced_helper_builds_postgresqls_man_page_alternatives() {
    let world = postgresql_world();
    let got = read(
        CLIENT_POSTINST,
        Context {
            package: "postgresql-client-15",
            script: "postinst",
            architecture: "amd64",
            world: &world,
        },
    );
    let calls: Vec<&Vec<String>> = got
        .iter()
        .filter_map(|c| c.words.as_ref())
        .filter(|w| w[0] == "update-alternatives" && w[1] == "--install")
        .collect();
    assert_eq!(calls.len(), 1, "{got:?}");
    // `--remove` of 9.1's page is read too: whether it runs depends on
    // `update-alternatives --display`'s output, which is not known. It
    // removes nothing that is registered.
    assert_eq!(
        calls[0].join(" "),
        "update-alternatives --install /usr/share/man/man1/psql.1.gz psql.1.gz \
         /usr/share/postgresql/15/man/man1/psql.1.gz 150 \
         --slave /usr/share/man/man1/pg_dump.1.gz pg_dump.1.gz /usr/share/postgresql/15/man/man1/pg_dump.1.gz \
         --slave /usr/share/man/man7/ABORT.7.gz ABORT.7.gz /usr/share/postgresql/15/man/man7/ABORT.7.gz"
    );
    // The call counts at the line of the postinst that led to it.
    assert!(got.iter().all(|c| c.line == 7 || c.line == 10), "{got:?}");
    // Without the helper's bytes, `.` is a command of its own and nothing
    // is guessed.
    let bare = read(
        CLIENT_POSTINST,
        Context {
            package: "postgresql-client-15",
            script: "postinst",
            ..Context::default()
        },
    );
    assert!(bare.iter().any(|c| c.program.as_deref() == Some(".")));
    assert!(
        !bare
            .iter()
            .any(|c| c.program.as_deref() == Some("update-alternatives"))
    );
}

#[test]
fn case_and_string_tests_take_one_branch() {
    // debhelper's postinst skeleton.
    let script = "case \"$1\" in\n    configure)\n        conf\n    ;;\n    abort-upgrade|abort-remove|abort-deconfigure)\n        abort\n    ;;\n    *)\n        echo \"postinst called with unknown argument \\`$1'\" >&2\n        exit 1\n    ;;\nesac\nafter\n";
    assert_eq!(words(script), [vec!["conf"], vec!["after"]]);
    let script = "if [ \"$1\" = upgrade ]; then a; elif [ -z \"$2\" ]; then b; else c; fi\n";
    assert_eq!(words(script), [vec!["b"]]);
    // An unknown condition reads every branch.
    let script = "if getent passwd x >/dev/null; then a; else b; fi\n";
    assert_eq!(
        words(script),
        [vec!["getent", "passwd", "x"], vec!["a"], vec!["b"]]
    );
}

#[test]
fn return_and_exit_are_taken_only_on_a_known_path() {
    let script = "f () {\n  [ -n \"$1\" ] || return 0\n  work $1\n}\nf\nf x\ng () {\n  getent group y || return 0\n  more\n}\ng\n[ \"$1\" = configure ] || exit 0\nlast\nexit 0\nnever\n";
    assert_eq!(
        words(script),
        [
            vec!["work", "x"],
            vec!["getent", "group", "y"],
            vec!["more"],
            vec!["last"]
        ]
    );
}

#[test]
fn compare_versions_decides_upgrade_branches() {
    let script = "if [ -z \"$2\" ] || dpkg --compare-versions \"$2\" lt 1.2-1; then\n  fresh\nfi\nif dpkg --compare-versions \"$2\" gt-nl 1.0; then\n  newer\nfi\n";
    assert_eq!(words(script), [vec!["fresh"], vec!["newer"]]);
    assert_eq!(compare_versions("1.2-1", "lt", "1.10"), Some(true));
    assert_eq!(compare_versions("2:1", "gt", "1:9"), Some(true));
    assert_eq!(compare_versions("", "lt", "1"), Some(true));
    assert_eq!(compare_versions("", "lt-nl", "1"), Some(false));
    assert_eq!(compare_versions("1", "frob", "1"), None);
}

#[test]
fn preinst_reads_as_a_fresh_install() {
    let script = "case \"$1\" in\n  install) fresh ;;\n  upgrade) old ;;\nesac\n";
    let got = read(
        script,
        Context {
            script: "preinst",
            ..Context::default()
        },
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].words.as_deref(), Some(&["fresh".to_string()][..]));
}

#[test]
fn heredocs_and_pipelines_into_files_are_read_correctly() {
    let script = "cat <<-EOF\n\tpg_renamecluster x\n\tEOF\necho hi > /etc/motd\necho quiet >/dev/null\nx=$(echo a b | tr a-z A-Z)\nuse $x\n";
    assert_eq!(
        words(script),
        [vec!["echo", "hi"], vec!["use", "A", "B"]],
        "the here-document is not run; echo into a file is an effect"
    );
}

#[test]
fn parameter_modifiers() {
    let script = "p=postgresql-client-15\nf=a.tar.gz\nuse ${p##*-} ${p#*-} ${f%.*} ${f%%.*} ${#p} ${unset_here:-d} ${p:+alt} ${q:=set} $q\n";
    assert_eq!(
        words(script),
        [vec![
            "use",
            "15",
            "client-15",
            "a.tar",
            "a",
            "20",
            "d",
            "alt",
            "set",
            "set"
        ]]
    );
    // Inside double quotes the pattern is still a pattern (postgresql-common
    // 278: `echo -n " --slave $TARGET ${man##*/} $man"`), and quoting inside
    // the braces makes it literal.
    let script =
        "man=/usr/share/pg/man7/ABORT.7.gz\nuse \" ${man##*/} \" \"${man%'.gz'}\" \"${man#'*'}\"\n";
    assert_eq!(
        words(script),
        [vec![
            "use",
            " ABORT.7.gz ",
            "/usr/share/pg/man7/ABORT.7",
            "/usr/share/pg/man7/ABORT.7.gz"
        ]]
    );
}

#[test]
fn hostile_scripts_end_the_reading_not_the_process() {
    // A sourced file that sources itself, and functions that fan out.
    use super::super::testing::package;
    use super::super::{DataFile, DataKind};
    let mut loops = package("loops", "", &[]);
    loops.files.push(DataFile {
        path: "/usr/share/loops/lib".into(),
        kind: DataKind::File,
        contents: Some(b". /usr/share/loops/lib\nstep\n".to_vec()),
    });
    let world = vec![loops];
    let got = read(
        ". /usr/share/loops/lib\n",
        Context {
            package: "loops",
            script: "postinst",
            world: &world,
            ..Context::default()
        },
    );
    assert!(got.len() <= MAX_DEPTH + 2, "{}", got.len());
    let fan = format!(
        "f () {{\n  for i in 1 2 3 4 5 6 7 8 9 10; do f; x=$(f); done\n}}\nf\nlast{}\n",
        ""
    );
    let got = commands(&fan);
    assert!(got.len() < MAX_STEPS);
    // Output that grows without bound is cut off by the byte budget.
    let grow = "x=a\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do x=\"$x$x\"; y=$(echo $x $x); done\nuse \"$x\"\n";
    let got = commands(grow);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].words, None);
}

/// postgresql-common 278 (trixie) relinks every installed version's man
/// pages in a loop over `/usr/lib/postgresql/*` before linking its own: the
/// pattern is expanded from the packages' file lists, never taken as a
/// literal `*` version.
#[test]
fn pathname_patterns_expand_from_the_packages_files_or_stay_unknown() {
    use super::super::testing::package;
    let script = "_link () {\n    VERSION=\"$1\"\n    update-alternatives --install /x/$VERSION x /y/$VERSION ${VERSION}0\n}\n\
relink () {\n    update-alternatives --list old >/dev/null 2>&1 || return 0\n    for dir in /usr/lib/pg/*; do\n        v=${dir#/usr/lib/pg/}\n        _link $v\n    done\n}\n\
VERSION=17\nrelink\n_link \"$VERSION\"\nfor f in /lib/pg/*/bin /nowhere/*; do use $f; done\nuse '*' *.conf\n";
    let world = vec![package(
        "pg",
        script,
        &[
            "/usr/lib/pg/17/bin/psql",
            "/usr/lib/pg/.hidden/x",
            "/usr/lib/pg/16/bin/psql",
        ],
    )];
    let context = Context {
        package: "pg",
        script: "postinst",
        world: &world,
        ..Context::default()
    };
    let got: Vec<Option<Vec<String>>> =
        read(script, context).into_iter().map(|c| c.words).collect();
    let installs: Vec<String> = got
        .iter()
        .flatten()
        .filter(|w| w[1] == "--install")
        .map(|w| w.join(" "))
        .collect();
    assert_eq!(
        installs,
        [
            "update-alternatives --install /x/16 x /y/16 160",
            "update-alternatives --install /x/17 x /y/17 170",
            "update-alternatives --install /x/17 x /y/17 170",
        ]
    );
    // `/lib/...` is matched merged-/usr and given back under `/lib`; a
    // pattern nothing matches, and a relative one, are unknown.
    let uses: Vec<&Option<Vec<String>>> = got
        .iter()
        .filter(|w| w.as_ref().is_none_or(|w| w[0] == "use"))
        .collect();
    assert_eq!(uses.len(), 2, "{got:?}");
    assert_eq!(uses[0], &None, "the loop over a pattern with no match");
    assert_eq!(uses[1], &None, "a relative pattern");
    let listed = read("for f in /lib/pg/*/bin; do use $f; done\n", context);
    assert_eq!(
        listed
            .iter()
            .map(|c| c.words.clone().unwrap().join(" "))
            .collect::<Vec<_>>(),
        ["use /lib/pg/16/bin", "use /lib/pg/17/bin"]
    );
}
