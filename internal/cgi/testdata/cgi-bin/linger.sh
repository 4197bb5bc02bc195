#!/bin/sh
# Answers, closes its output and keeps running, like a script that starts slow work.
printf 'Content-Type: text/plain\nContent-Length: 4\n\ndone'
exec >&- 2>&-
sleep 1000
