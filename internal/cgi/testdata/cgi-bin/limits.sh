#!/bin/sh
# limits reports the CPU time limit of a process it forks: what max_cpu gave
# anything the script started, however soon.
printf "Content-Type: text/plain\r\n\r\n"
grep "^Max cpu time" /proc/self/limits
