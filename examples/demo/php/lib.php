<?php
// Shared by the demo's PHP pages: where data lives, the session, CSRF tokens, escaping.
declare(strict_types=1);

const MAX_UPLOAD = 5 * 1024 * 1024;
const IMAGE_TYPES = ['image/png' => 'png', 'image/jpeg' => 'jpg', 'image/gif' => 'gif', 'image/webp' => 'webp'];

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
            foreach (['sessions', 'gallery'] as $sub) {
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
    session_start(['cookie_httponly' => true, 'cookie_samesite' => 'Strict', 'use_strict_mode' => true,
        'cookie_path' => '/']);
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
