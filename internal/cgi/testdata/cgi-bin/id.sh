#!/bin/sh
printf 'Content-Type: text/plain\n\n%s %s groups %s' "$(id -u)" "$(id -g)" "$(id -G)"
