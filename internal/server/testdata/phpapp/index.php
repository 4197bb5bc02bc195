<?php
// A small front controller, as CMSs and frameworks are: every URL that is not a
// file comes here, and the route is read from REQUEST_URI.
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$notes = getenv('NOTES_FILE') ?: (__DIR__ . '/../notes.txt');
if ($_SERVER['REQUEST_METHOD'] === 'POST' && $path === '/notes') {
    file_put_contents($notes, ($_POST['text'] ?? '') . "\n", FILE_APPEND);
    header('Location: /notes?added=1', true, 303);
    exit;
}
header('Content-Type: text/plain; charset=utf-8');
switch (true) {
case $path === '/' || $path === '/index.php':
    echo "route=home\n";
    echo "link=/blog/first-post\n";
    break;
case preg_match('#^/blog/([a-z0-9-]+)$#', $path, $m) === 1:
    echo "route=post slug={$m[1]}\n";
    break;
case $path === '/notes':
    echo "route=notes\n", is_file($notes) ? file_get_contents($notes) : '';
    break;
default:
    http_response_code(404);
    echo "route=none\n";
}
// What a PHP app builds its URLs and decisions from, as nginx's fastcgi_params
// give it; the differential test against nginx compares these lines.
foreach (['REQUEST_URI', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'SCRIPT_FILENAME', 'DOCUMENT_URI',
          'DOCUMENT_ROOT', 'REQUEST_METHOD', 'SERVER_PROTOCOL', 'GATEWAY_INTERFACE', 'REQUEST_SCHEME', 'HTTPS',
          'SERVER_ADDR', 'SERVER_PORT', 'HTTP_HOST', 'REMOTE_ADDR', 'CONTENT_TYPE', 'CONTENT_LENGTH',
          'REDIRECT_STATUS', 'PHP_SELF'] as $k) {
    echo $k, '=', $_SERVER[$k] ?? '(unset)', "\n";
}
