#!/bin/sh
printf 'HTTP/1.1 299 Raw Output\r\nX-Raw: yes\r\nContent-Length: 8\r\nConnection: close\r\n\r\nraw body'
