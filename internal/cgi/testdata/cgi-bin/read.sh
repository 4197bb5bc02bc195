#!/bin/sh
# Reads all of stdin before answering with its length.
n=$(wc -c)
printf 'Content-Type: text/plain\n\n%s' "$n"
