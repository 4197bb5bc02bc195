<?php
// The worker dies after the headers and part of the body went out.
header('Content-Type: text/plain');
echo str_repeat("partial\n", 100);
flush();
posix_kill(getmypid(), 9);
