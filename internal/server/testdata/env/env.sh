#!/bin/sh
# Prints the CGI environment the script got, sorted, minus REMOTE_PORT.
echo "Content-Type: text/plain"
echo
env | grep -v '^REMOTE_PORT=' | LC_ALL=C sort
