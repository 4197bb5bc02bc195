<?php
// The worker dies after the headers and part of the body went out. Reading the
// (empty) body first leaves nothing unread in the socket, so the kernel delivers what
// was sent before reporting the connection's end.
file_get_contents('php://input');
header('Content-Type: text/plain');
echo str_repeat("partial\n", 100);
while (ob_get_level()) {
    ob_end_flush();
}
flush();
posix_kill(getmypid(), 9);
