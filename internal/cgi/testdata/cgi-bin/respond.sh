#!/bin/sh
# Sends the response named by the query string, for the header-handling tests.
case "$QUERY_STRING" in
ok)          printf 'Content-Type: text/plain\r\nX-Script: yes\r\n\r\nbody' ;;
lf)          printf 'Content-Type: text/plain\nX-Script: lf\n\nbody' ;;
status)      printf 'Status: 404 Not Here\r\nContent-Type: text/plain\r\n\r\nmissing' ;;
status-only) printf 'Status: 201\n\n' ;;
fold)        printf 'Content-Type: text/plain\nX-Long: a\n  b\n\nfolded' ;;
cookies)     printf 'Content-Type: text/plain\nSet-Cookie: a=1\nSet-Cookie: b=2\n\n' ;;
length)      printf 'Content-Type: text/plain\nContent-Length: 5\n\nhello' ;;
hop)         printf 'Content-Type: text/plain\nConnection: close\nTransfer-Encoding: chunked\n\nplain' ;;
nocontent)   printf 'Status: 204 No Content\n\nignored body' ;;
notmodified) printf 'Status: 304\n\n' ;;
location)    printf 'Location: http://example.com/elsewhere\n\n' ;;
location-status) printf 'Status: 301 Moved\nLocation: /moved\n\n' ;;
scheme-relative) printf 'Location: //evil.example/x\n\n' ;;
local)       printf 'Location: /cgi-bin/respond.sh?ok\n\n' ;;
local-env)   printf 'Location: /cgi-bin/envc?redirected\n\n' ;;
local-loop)  printf 'Location: /cgi-bin/respond.sh?local-loop\n\n' ;;
status-tab)  printf 'Status: 404\tNot Here\nContent-Type: text/plain\n\nmissing' ;;
location-empty) printf 'Location:\n\n' ;;
location-twice) printf 'Location: /cgi-bin/respond.sh?ok\nLocation: http://evil.example/\n\nbody' ;;
proxy-auth)  printf 'Content-Type: text/plain\nProxy-Authenticate: Basic realm="x"\nProxy-Connection: close\n\nplain' ;;
huge-header) printf 'Content-Type: text/plain\n'; i=0; while [ $i -lt 400 ]; do printf 'X-H%d: %0100d\n' $i 0; i=$((i+1)); done; printf '\nbody' ;;
bad-name)    printf 'Content-Type: text/plain\nBad Name: x\n\nbody' ;;
bad-ctl)     printf 'Content-Type: text/plain\nX-Bad: a\001b\n\nbody' ;;
bad-nul)     printf 'Content-Type: text/plain\nX-Bad: a\000b\n\nbody' ;;
bad-cr)      printf 'Content-Type: text/plain\nX-Bad: a\rSet-Cookie: x=1\n\nbody' ;;
bad-status)  printf 'Status: 2000 Bogus\nContent-Type: text/plain\n\nbody' ;;
bad-status-word) printf 'Status: OK\nContent-Type: text/plain\n\nbody' ;;
bad-status-1xx) printf 'Status: 101 Switching\nContent-Type: text/plain\n\nbody' ;;
bad-length)  printf 'Content-Type: text/plain\nContent-Length: -1\n\nbody' ;;
no-header)   printf 'just some text\n' ;;
empty)       ;;
crash)       printf 'Content-Type: text/pl'; exit 3 ;;
big)         printf 'Content-Type: text/plain\n\n'; i=0; while [ $i -lt 2000 ]; do printf '%064d\n' $i; i=$((i+1)); done ;;
*)           printf 'Status: 400 Bad Request\nContent-Type: text/plain\n\nunknown case' ;;
esac
