#!/usr/bin/env bash
# A throwaway PostgreSQL server for `genlab search --storage` on one machine (Debian's postgresql package), in a
# folder of its own, on a Unix socket only (no TCP port). The server refuses to run as root: as root it runs as the
# postgres user. For workers on several machines use a real server (listen_addresses, pg_hba.conf) instead.
#   scripts/pg_local.sh start /tmp/genlab-pg    # prints the --storage URL: postgresql://postgres@/genlab?host=/tmp/genlab-pg
#   scripts/pg_local.sh stop /tmp/genlab-pg     # stops it (the folder stays: delete it yourself when done)
set -euo pipefail
cmd=${1:?usage: scripts/pg_local.sh start|stop FOLDER}; dir=${2:?usage: scripts/pg_local.sh start|stop FOLDER}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "error: PostgreSQL is not installed: apt-get install postgresql" >&2; exit 1; }
as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
case $cmd in
  start)
    mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-k $dir -c listen_addresses=''" start >/dev/null
    "${as[@]}" "$bin/createdb" -h "$dir" -U postgres genlab
    echo "postgresql://postgres@/genlab?host=$dir" ;;
  stop)
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null ;;
  *) echo "usage: scripts/pg_local.sh start|stop FOLDER" >&2; exit 2 ;;
esac
