<?php
// Sends a first line at once, then waits (up to 10 s) for the file named by ?wait to
// exist before sending the rest: a test proves streaming by creating that file only
// after it has read the first line. A response that was held back says "timeout".
header('Content-Type: text/plain');
while (ob_get_level()) {
    ob_end_flush();
}
echo "first\n";
flush();
$deadline = microtime(true) + 10;
while (!file_exists($_GET['wait']) && microtime(true) < $deadline) {
    usleep(10000);
}
echo file_exists($_GET['wait']) ? "second\n" : "timeout\n";
