<?php
// Prints the CGI environment PHP got, sorted, minus what changes per request
// or per connection; X-Env-Sum carries its hash for HEAD requests.
$s = $_SERVER;
unset($s['REMOTE_PORT'], $s['REQUEST_TIME'], $s['REQUEST_TIME_FLOAT']);
ksort($s, SORT_STRING);
$out = '';
foreach ($s as $k => $v) {
    if (is_string($v)) {
        $out .= $k . '=' . $v . "\n";
    }
}
header('Content-Type: text/plain');
header('X-Env-Sum: ' . md5($out));
echo $out;
