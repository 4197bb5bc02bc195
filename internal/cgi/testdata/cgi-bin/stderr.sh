#!/bin/sh
echo "first complaint" >&2
printf 'Content-Type: text/plain\n\nok'
printf 'no newline at the end' >&2
