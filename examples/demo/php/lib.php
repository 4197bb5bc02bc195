<?php
// Shared by the demo's PHP pages: where data lives, the session, CSRF tokens, escaping.
declare(strict_types=1);

const MAX_UPLOAD = 5 * 1024 * 1024;
const IMAGE_TYPES = ['image/png' => 'png', 'image/jpeg' => 'jpg', 'image/gif' => 'gif', 'image/webp' => 'webp'];
// Larger images are refused before they are decoded: a small file can claim a huge
// canvas, which GD would allocate in full.
const MAX_PIXELS = 25_000_000;
const THUMB_SIZE = 320;

// data_dir is where messages, sessions and the gallery are written: DEMO_DATA_DIR, else
// ./data beside this file, else (a read-only checkout, php-fpm as www-data) the temp dir.
function data_dir(): string
{
    static $dir = null;
    if ($dir !== null) {
        return $dir;
    }
    foreach ([getenv('DEMO_DATA_DIR') ?: '', __DIR__ . '/data', sys_get_temp_dir() . '/gantry-demo-php'] as $d) {
        if ($d === '') {
            continue;
        }
        if ((is_dir($d) || @mkdir($d, 0700, true)) && is_writable($d)) {
            foreach (['sessions', 'gallery', 'gallery/thumbs'] as $sub) {
                if (!is_dir("$d/$sub")) {
                    @mkdir("$d/$sub", 0700);
                }
            }
            return $dir = $d;
        }
    }
    http_response_code(500);
    exit('No writable data directory: set DEMO_DATA_DIR.');
}

function start_session(): void
{
    session_save_path(data_dir() . '/sessions');
    session_name('demo_php');
    // Secure over HTTPS: the cookie carries the CSRF token, which a plain-HTTP
    // request to the same host must never see.
    $https = ($_SERVER['HTTPS'] ?? '') !== '' && strtolower((string)$_SERVER['HTTPS']) !== 'off';
    session_start(['cookie_httponly' => true, 'cookie_samesite' => 'Strict', 'use_strict_mode' => true,
        'cookie_path' => '/', 'cookie_secure' => $https]);
}

function csrf_token(): string
{
    if (empty($_SESSION['csrf'])) {
        $_SESSION['csrf'] = bin2hex(random_bytes(32));
    }
    return $_SESSION['csrf'];
}

// check_csrf answers 403 unless the form carries this session's token.
function check_csrf(): void
{
    $sent = $_POST['csrf'] ?? '';
    if (!is_string($sent) || empty($_SESSION['csrf']) || !hash_equals($_SESSION['csrf'], $sent)) {
        http_response_code(403);
        header('Content-Type: text/plain; charset=utf-8');
        exit("Invalid or missing CSRF token: reload the form and try again.\n");
    }
}

function h(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

// flash keeps a message for the page shown after the redirect.
function flash(string $kind, string $text): void
{
    $_SESSION['flash'][] = [$kind, $text];
}

function redirect_home(): never
{
    header('Location: ./', true, 303);
    exit;
}

// part returns one of the page parts every page of the demo shares.
function part(string $name): string
{
    $text = @file_get_contents(__DIR__ . '/../assets/partials/' . $name);
    return $text === false ? '' : $text;
}

// gd_available reports whether PHP has GD (Debian: apt-get install php-gd).
function gd_available(): bool
{
    return function_exists('imagecreatetruecolor');
}

// make_thumbnail writes a copy of $src at most THUMB_SIZE pixels wide and high,
// in the same format, to $dst; false without GD or when the image cannot be read.
function make_thumbnail(string $src, string $dst, string $ext): bool
{
    if (!gd_available()) {
        return false;
    }
    $size = @getimagesize($src);
    if ($size === false || $size[0] < 1 || $size[1] < 1 || $size[0] * $size[1] > MAX_PIXELS) {
        return false;
    }
    [$w, $h] = $size;
    $scale = min(1, THUMB_SIZE / max($w, $h));
    $tw = max(1, (int)round($w * $scale));
    $th = max(1, (int)round($h * $scale));
    $img = match ($ext) {
        'png' => @imagecreatefrompng($src),
        'jpg' => @imagecreatefromjpeg($src),
        'gif' => @imagecreatefromgif($src),
        'webp' => function_exists('imagecreatefromwebp') ? @imagecreatefromwebp($src) : false,
        default => false,
    };
    if ($img === false) {
        return false;
    }
    $thumb = imagecreatetruecolor($tw, $th);
    imagealphablending($thumb, false);
    imagesavealpha($thumb, true);
    imagefill($thumb, 0, 0, imagecolorallocatealpha($thumb, 0, 0, 0, 127));
    imagecopyresampled($thumb, $img, 0, 0, 0, 0, $tw, $th, $w, $h);
    $ok = match ($ext) {
        'jpg' => imagejpeg($thumb, $dst, 85),
        'webp' => function_exists('imagewebp') && imagewebp($thumb, $dst, 85),
        default => imagepng($thumb, $dst, 6), // GIF thumbnails are PNG: no palette loss
    };
    imagedestroy($img);
    imagedestroy($thumb);
    return $ok;
}

// thumb_name is the thumbnail file of a gallery image.
function thumb_name(string $name): string
{
    [$base, $ext] = explode('.', $name, 2);
    return $base . '.' . ($ext === 'gif' ? 'png' : $ext);
}
