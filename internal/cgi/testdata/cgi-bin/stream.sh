#!/bin/sh
# Writes one line, waits until the test writes to the FIFO named by $FIFO, writes another.
printf 'Content-Type: text/plain\n\nfirst\n'
read line < "$FIFO"
printf 'second\n'
