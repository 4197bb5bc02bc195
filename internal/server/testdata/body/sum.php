<?php
// Answers with what PHP saw of the request body: CONTENT_LENGTH, the length of
// php://input and its sha256.
header('Content-Type: text/plain');
$body = file_get_contents('php://input');
echo 'content_length=', $_SERVER['CONTENT_LENGTH'] ?? 'unset', "\n";
echo 'len=', strlen($body), "\n";
echo 'sha256=', hash('sha256', $body), "\n";
