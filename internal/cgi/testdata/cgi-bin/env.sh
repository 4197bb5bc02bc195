#!/bin/sh
# Prints its environment and echoes its stdin.
printf 'Content-Type: text/plain\n\n'
env | sed 's/^/ENV /'
printf 'STDIN='
cat
