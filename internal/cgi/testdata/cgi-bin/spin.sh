#!/bin/sh
# spin burns CPU until something stops it (max_cpu).
while :; do :; done
