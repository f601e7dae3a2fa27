#!/bin/sh
# Backup and restore of Nessie's version store (PostgreSQL, JDBC2): every branch, tag, commit and piece of
# content lives in its tables, so a dump of that database is the whole repository.
#
#   nessie-backup.sh dump FILE        pg_dump (custom format) of $PGDATABASE into FILE; fails unless the
#                                     dump holds the JDBC2 store's tables (refs2, objs2)
#   nessie-backup.sh upload FILE      put FILE at s3://$S3_BACKUP_BUCKET/nessie/<UTC time>.dump, then
#                                     nessie/latest.txt naming it; prints the key
#   nessie-backup.sh download FILE    get s3://$S3_BACKUP_BUCKET/$BACKUP_KEY (default: the key that
#                                     nessie/latest.txt names) into FILE, checked against its SHA-256
#   nessie-backup.sh restore FILE     replace $PGDATABASE's content with FILE's, in one transaction;
#                                     refuses while anything else is connected to it (scale Nessie to 0)
#
# The CronJob nessie-backup runs dump (postgres image) then upload (curl image); the restore Job
# (templates/restore-job.yaml) download then restore. test/deploy/nessie-backup.test.ts runs this file
# against a real PostgreSQL, the real Nessie server and the local stack's S3.
# PostgreSQL: the libpq variables PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD.
# S3: S3_ENDPOINT, S3_REGION, S3_PATH_STYLE (true: path-style URLs), S3_BACKUP_BUCKET, S3_ACCESS_KEY,
# S3_SECRET_KEY. Requests are signed with SigV4 by curl (--aws-sigv4; 7.87 or newer signs with the
# x-amz-content-sha256 value it is given): the payload's SHA-256, so that S3 refuses a body that does not
# match. Given explicitly, it works the same on curl versions that would otherwise send UNSIGNED-PAYLOAD
# or (before 8) no such header, which S3 refuses.
# POSIX sh: it runs under dash (postgres image) and BusyBox (curl image).
set -eu

die() { echo "nessie-backup: error: $*" >&2; exit 1; }
need() { for v in "$@"; do eval "[ -n \"\${$v:-}\" ]" || die "$v is not set"; done; }
# The tables of Nessie's JDBC2 version store (nessie.version.store.type=JDBC2, application.properties).
STORE_TABLES="objs2 refs2"
# SHA-256 of the empty body (GET requests).
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# s3_url KEY: the object's URL, path-style or virtual-hosted.
s3_url() {
  endpoint=${S3_ENDPOINT%/}
  if [ "${S3_PATH_STYLE:-false}" = true ]; then
    echo "$endpoint/$S3_BACKUP_BUCKET/$1"
  else
    echo "${endpoint%%://*}://$S3_BACKUP_BUCKET.${endpoint#*://}/$1"
  fi
}

# s3 METHOD KEY PAYLOAD_SHA256 [curl options...]: one signed request; the key pair goes to curl on its
# standard input, never on its command line. Fails on any HTTP error, printing S3's error document.
s3() {
  s3_method=$1 s3_key=$2 s3_payload=$3
  shift 3
  printf 'user = "%s:%s"\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" |
    curl --silent --show-error --fail-with-body --config - --retry 3 --retry-connrefused \
      --aws-sigv4 "aws:amz:$S3_REGION:s3" -H "x-amz-content-sha256: $s3_payload" \
      -X "$s3_method" "$@" "$(s3_url "$s3_key")"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# tables FILE: the tables whose data FILE holds (fails when FILE is not a pg_dump archive).
tables() {
  pg_restore --list "$1" >/dev/null || return 1
  pg_restore --list "$1" | sed -n 's/^[0-9]*; [0-9]* [0-9]* TABLE DATA [^ ]* \([^ ]*\) .*/\1/p' | sort | tr '\n' ' ' | sed 's/ $//'
}

dump() {
  need PGHOST PGDATABASE PGUSER
  # One consistent snapshot (pg_dump reads in a single repeatable-read transaction) while Nessie serves.
  pg_dump --format=custom --compress=6 --file="$1"
  found=$(tables "$1") || die "pg_dump wrote no readable archive"
  for t in $STORE_TABLES; do
    case " $found " in *" $t "*) ;; *) die "the dump of $PGDATABASE has no table '$t' (found: ${found:-none}); is this Nessie's database?" ;; esac
  done
  echo "nessie-backup: dumped $PGDATABASE on $PGHOST ($(wc -c <"$1" | tr -d ' ') bytes; tables: $found)"
}

upload() {
  need S3_ENDPOINT S3_REGION S3_BACKUP_BUCKET S3_ACCESS_KEY S3_SECRET_KEY
  [ -s "$1" ] || die "$1 is missing or empty"
  key="nessie/$(date -u +%Y%m%dT%H%M%SZ).dump"
  sum=$(sha256_of "$1")
  s3 PUT "$key" "$sum" -H "x-amz-meta-sha256: $sum" -H "Content-Type: application/octet-stream" --upload-file "$1" >/dev/null
  # The pointer the restore reads by default; written only once the dump is stored.
  pointer=$(mktemp)
  printf '%s\n' "$key" >"$pointer"
  s3 PUT nessie/latest.txt "$(sha256_of "$pointer")" -H "Content-Type: text/plain" --upload-file "$pointer" >/dev/null
  rm -f "$pointer"
  echo "nessie-backup: wrote s3://$S3_BACKUP_BUCKET/$key (sha256 $sum)"
}

download() {
  need S3_ENDPOINT S3_REGION S3_BACKUP_BUCKET S3_ACCESS_KEY S3_SECRET_KEY
  key=${BACKUP_KEY:-}
  if [ -z "$key" ] || [ "$key" = latest ]; then
    key=$(s3 GET nessie/latest.txt "$EMPTY_SHA256") || die "cannot read s3://$S3_BACKUP_BUCKET/nessie/latest.txt; set BACKUP_KEY"
  fi
  case "$key" in nessie/*.dump) ;; *) die "BACKUP_KEY '$key' is not a backup (nessie/<UTC time>.dump)" ;; esac
  s3 GET "$key" "$EMPTY_SHA256" --dump-header "$1.headers" --output "$1"
  want=$(tr -d '\r' <"$1.headers" | sed -n 's/^[Xx]-[Aa]mz-[Mm]eta-[Ss]ha256: *//p' | tail -n 1)
  rm -f "$1.headers"
  got=$(sha256_of "$1")
  [ -n "$want" ] || die "s3://$S3_BACKUP_BUCKET/$key carries no sha256 metadata; not written by this script"
  [ "$got" = "$want" ] || die "s3://$S3_BACKUP_BUCKET/$key: sha256 $got, but it was stored with $want"
  echo "nessie-backup: downloaded s3://$S3_BACKUP_BUCKET/$key (sha256 $got)"
}

restore() {
  need PGHOST PGDATABASE PGUSER
  [ -s "$1" ] || die "$1 is missing or empty"
  found=$(tables "$1") || die "$1 is not a pg_dump archive"
  for t in $STORE_TABLES; do
    case " $found " in *" $t "*) ;; *) die "$1 holds no Nessie repository: no table '$t' (tables: ${found:-none})" ;; esac
  done
  # Nessie caches what it read: replacing the tables under a running server would leave it serving
  # some of that. Nessie must be scaled to 0 first (deploy/README.md); this check is a safety net for
  # when it was not (an idle server may hold no connection, so it cannot prove Nessie is down).
  others=$(PGDATABASE=postgres psql -X -v ON_ERROR_STOP=1 -v db="$PGDATABASE" -At <<'SQL'
SELECT count(*) FROM pg_stat_activity WHERE datname = :'db' AND pid <> pg_backend_pid();
SQL
  )
  [ "$others" = 0 ] || die "$others other session(s) are connected to $PGDATABASE: scale Nessie to 0 (and suspend the CronJobs) first"
  exists=$(PGDATABASE=postgres psql -X -v ON_ERROR_STOP=1 -v db="$PGDATABASE" -At <<'SQL'
SELECT count(*) FROM pg_database WHERE datname = :'db';
SQL
  )
  if [ "$exists" = 0 ]; then
    echo "nessie-backup: database $PGDATABASE does not exist; creating it"
    PGDATABASE=postgres psql -X -v ON_ERROR_STOP=1 -v db="$PGDATABASE" -q <<'SQL'
CREATE DATABASE :"db";
SQL
  fi
  # --clean drops what the dump recreates; --single-transaction: all or nothing, so a failed restore
  # leaves the database as it was.
  pg_restore --clean --if-exists --no-owner --no-privileges --exit-on-error --single-transaction \
    --dbname="$PGDATABASE" "$1"
  echo "nessie-backup: restored $PGDATABASE on $PGHOST from $1 (tables: $found); start Nessie again"
}

[ $# -eq 2 ] || die "usage: nessie-backup.sh dump|upload|download|restore FILE"
case "$1" in
  dump | upload | download | restore) "$1" "$2" ;;
  *) die "unknown command '$1' (dump, upload, download, restore)" ;;
esac
