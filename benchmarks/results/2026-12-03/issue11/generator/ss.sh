#!/usr/bin/env bash
# every 1s for 4 snapshots: unread bytes queued at the server's sockets (sport 18123) and at the generator's (dport 18123)
sleep 2.5
for i in 1 2 3; do
  ss -tnH state established '( sport = :18123 )' | awk '{n++; if ($1>0) {q++; b+=$1}} END {printf "server sockets %d, with unread requests %d (%d bytes); ", n, q, b}'
  ss -tnH state established '( dport = :18123 )' | awk '{n++; if ($1>0) {q++; b+=$1}} END {printf "generator sockets %d, with unread answers %d (%d bytes)\n", n, q, b}'
  sleep 1
done
