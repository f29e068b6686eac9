#!/bin/sh
set -e
case "$1" in
    configure)
        if [ -z "$2" ] || dpkg --compare-versions "$2" lt 1.2-1; then
            adduser --system --group --home /var/lib/seed seed
        fi
        update-alternatives --install /usr/bin/seed seed /usr/bin/seed-real 50 \
            --slave /usr/share/man/man1/seed.1.gz seed.1.gz /usr/share/man/man1/seed-real.1.gz
    ;;
    abort-upgrade|abort-remove|abort-deconfigure) ;;
    *) echo "postinst called with unknown argument \`$1'" >&2; exit 1 ;;
esac
#DEBHELPER#
exit 0
