#!/bin/sh
# Ignores SIGTERM, starts a child that outlives it in the same process group, records
# both pids in $PIDFILE and then never answers.
trap '' TERM
sleep 1000 &
echo "$$ $!" > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
wait
