<?php
// Echoes the request body back with its length and a digest, so large bodies can be
// checked without printing them.
header('Content-Type: text/plain');
$body = file_get_contents('php://input');
echo 'len=', strlen($body), "\n";
echo 'sha256=', hash('sha256', $body), "\n";
echo 'content_length=', $_SERVER['CONTENT_LENGTH'] ?? '', "\n";
