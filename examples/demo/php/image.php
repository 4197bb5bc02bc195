<?php
// Serves one gallery image. The name must be one index.php generated, so no path
// and no other file can be asked for.
declare(strict_types=1);
require __DIR__ . '/lib.php';

$f = $_GET['f'] ?? '';
$types = array_flip(IMAGE_TYPES);
if (!is_string($f) || !preg_match('/\A[0-9a-f]{16}\.(png|jpg|gif|webp)\z/', $f, $m)) {
    http_response_code(404);
    exit('No such image.');
}
$path = data_dir() . '/gallery/' . $f;
// ?thumb=1 asks for the thumbnail, which GD made at upload; the original else.
if (isset($_GET['thumb']) && is_file(data_dir() . '/gallery/thumbs/' . thumb_name($f))) {
    $path = data_dir() . '/gallery/thumbs/' . thumb_name($f);
    $m[1] = pathinfo($path, PATHINFO_EXTENSION);
}
if (!is_file($path)) {
    http_response_code(404);
    exit('No such image.');
}
header('Content-Type: ' . $types[$m[1]]);
header('Content-Length: ' . filesize($path));
header('X-Content-Type-Options: nosniff');
header('Cache-Control: public, max-age=86400');
readfile($path);
