#!/bin/sh
# spin-ignore burns CPU with SIGXCPU ignored: only the hard limit's SIGKILL
# stops it.
trap "" XCPU
while :; do :; done
