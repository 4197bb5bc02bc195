#!/bin/sh
# Holds its process slot until the test writes to $FIFO.
echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
read line < "$FIFO"
printf 'Content-Type: text/plain\n\nreleased'
