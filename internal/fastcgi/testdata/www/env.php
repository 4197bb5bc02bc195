<?php
// Prints the meta-variables a test looks at, one NAME=value per line.
header('Content-Type: text/plain');
$names = ['SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'PATH_TRANSLATED', 'REQUEST_URI',
    'QUERY_STRING', 'DOCUMENT_ROOT', 'DOCUMENT_URI', 'REQUEST_METHOD', 'SERVER_NAME', 'SERVER_PORT',
    'SERVER_ADDR', 'REMOTE_ADDR', 'REMOTE_PORT', 'SERVER_PROTOCOL', 'HTTPS', 'HTTP_PROXY',
    'HTTP_X_CUSTOM', 'HTTP_AUTHORIZATION', 'CONTENT_LENGTH', 'CONTENT_TYPE', 'GATEWAY_INTERFACE',
    'SERVER_SOFTWARE', 'PHP_SELF', 'REDIRECT_STATUS', 'REQUEST_SCHEME'];
foreach ($names as $n) {
    if (array_key_exists($n, $_SERVER)) {
        echo $n, '=', $_SERVER[$n], "\n";
    }
}
