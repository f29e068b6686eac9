VERSION=${DPKG_MAINTSCRIPT_PACKAGE##*-}
. /usr/share/fuzz/lib
link () {
    MANS=$(dpkg -L $3 2>/dev/null | grep -E '/man/.*\.[1-9](\.gz)?$' | grep -v "$2") || true
    [ -n "$MANS" ] || return 0
    SLAVES=$(for i in $MANS; do T=$(echo $i | sed "s/x\/$1\///"); echo -n " --slave $T $(basename $i) $i"; done)
    case $1 in [89]*) p=$(echo "$1" | tr -cd 0-9) ;; *) p="${1}0" ;; esac
    update-alternatives --install /usr/share/man/man1/$2 $2 /x/$1/$2 $p $SLAVES
}
link "$VERSION" a.1.gz fuzz
cat <<-EOF2
	not a command
	EOF2
x=$( (echo a; echo b) | while read l; do echo "$l"; done )
printf '%s\n' "${x:-none}" "${#x}" "${x%%b*}"
