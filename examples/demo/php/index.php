<?php
// The demo's PHP page: a contact form (validated, CSRF-protected, messages appended to
// a file, no mail) and an image upload copied into a gallery.
declare(strict_types=1);
require __DIR__ . '/lib.php';

start_session();

if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    check_csrf();
    $action = $_POST['action'] ?? '';
    if ($action === 'contact') {
        handle_contact();
    } elseif ($action === 'upload') {
        handle_upload();
    } else {
        http_response_code(400);
        exit('Unknown action.');
    }
    redirect_home();
}

function handle_contact(): void
{
    $name = trim((string)($_POST['name'] ?? ''));
    $email = trim((string)($_POST['email'] ?? ''));
    $message = trim((string)($_POST['message'] ?? ''));
    $errors = [];
    if ($name === '' || !fits($name, 100)) {
        $errors[] = 'Name: 1 to 100 characters.';
    }
    if (filter_var($email, FILTER_VALIDATE_EMAIL) === false) {
        $errors[] = 'Email: a valid address, like you@example.com.';
    }
    if ($message === '' || !fits($message, 2000)) {
        $errors[] = 'Message: 1 to 2000 characters.';
    }
    if ($errors) {
        http_response_code(422);
        $_SESSION['old'] = compact('name', 'email', 'message');
        foreach ($errors as $e) {
            flash('error', $e);
        }
        return;
    }
    $line = json_encode(['time' => gmdate('Y-m-d\\TH:i:s\\Z'), 'name' => $name, 'email' => $email, 'message' => $message],
        JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES) . "\n";
    if (file_put_contents(data_dir() . '/messages.jsonl', $line, FILE_APPEND | LOCK_EX) === false) {
        flash('error', 'Could not save the message.');
        return;
    }
    unset($_SESSION['old']);
    flash('ok', 'Thank you, ' . $name . ': your message was saved.');
}

// fits reports whether $s is valid UTF-8 of at most $max characters (iconv is part of
// every PHP build; mbstring is an extra package).
function fits(string $s, int $max): bool
{
    $n = @iconv_strlen($s, 'UTF-8');
    return $n !== false && $n <= $max;
}

function handle_upload(): void
{
    $f = $_FILES['image'] ?? null;
    if (!is_array($f) || !isset($f['error']) || is_array($f['error'])) {
        flash('error', 'Choose one image to upload.');
        return;
    }
    if ($f['error'] === UPLOAD_ERR_INI_SIZE || $f['error'] === UPLOAD_ERR_FORM_SIZE || $f['size'] > MAX_UPLOAD) {
        flash('error', 'The image is too large (5 MB at most).');
        return;
    }
    if ($f['error'] !== UPLOAD_ERR_OK) {
        flash('error', 'The upload failed (error ' . (int)$f['error'] . ').');
        return;
    }
    // The type comes from the bytes, never from the client's name or Content-Type.
    $type = (new finfo(FILEINFO_MIME_TYPE))->file($f['tmp_name']);
    $size = @getimagesize($f['tmp_name']);
    if (!isset(IMAGE_TYPES[$type]) || $size === false) {
        flash('error', 'Only PNG, JPEG, GIF and WebP images are accepted.');
        return;
    }
    if ($size[0] * $size[1] > MAX_PIXELS) {
        flash('error', 'The image is too large (25 megapixels at most).');
        return;
    }
    // A random name with the right extension: nothing the client chose reaches the disk.
    $name = bin2hex(random_bytes(8)) . '.' . IMAGE_TYPES[$type];
    $path = data_dir() . '/gallery/' . $name;
    if (!move_uploaded_file($f['tmp_name'], $path)) {
        flash('error', 'Could not store the image.');
        return;
    }
    if (make_thumbnail($path, data_dir() . '/gallery/thumbs/' . thumb_name($name), IMAGE_TYPES[$type])) {
        flash('ok', 'Image added to the gallery, with a thumbnail made by GD.');
    } else {
        flash('ok', 'Image added to the gallery.');
    }
}

function recent_messages(int $n): array
{
    $file = data_dir() . '/messages.jsonl';
    if (!is_file($file)) {
        return [];
    }
    $lines = file($file, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) ?: [];
    $out = [];
    foreach (array_slice($lines, -$n) as $l) {
        $m = json_decode($l, true);
        if (is_array($m)) {
            $out[] = $m;
        }
    }
    return array_reverse($out);
}

// iso_time makes a stored time ISO 8601 in UTC for <time datetime>.
function iso_time(string $t): string
{
    $ts = strtotime($t);
    return $ts === false ? '' : gmdate('Y-m-d\\TH:i:s\\Z', $ts);
}

function gallery(): array
{
    $files = glob(data_dir() . '/gallery/*.{png,jpg,gif,webp}', GLOB_BRACE) ?: [];
    usort($files, fn($a, $b) => filemtime($b) <=> filemtime($a));
    return array_map('basename', $files);
}

$flashes = $_SESSION['flash'] ?? [];
$old = $_SESSION['old'] ?? ['name' => '', 'email' => '', 'message' => ''];
unset($_SESSION['flash']);
$token = csrf_token();
header('Content-Type: text/html; charset=utf-8');
// blob: shows the image chosen for upload before it is sent.
header("Content-Security-Policy: default-src 'self'; img-src 'self' blob:");
?>
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PHP · gantry demo</title>
<?= part('head.html') ?></head>
<body>
<?= part('header.html') ?><main id="main">
  <h1>PHP through FastCGI</h1>
  <p class="lead">Served by <?= h(PHP_SAPI) ?> <?= h(PHP_VERSION) ?> via <?= h($_SERVER['SERVER_SOFTWARE'] ?? '') ?>.</p>

  <?php foreach ($flashes as [$kind, $text]): ?>
    <p class="alert <?= $kind === 'ok' ? 'alert-success' : 'alert-error' ?>" role="<?= $kind === 'ok' ? 'status' : 'alert' ?>"><?= h($text) ?></p>
  <?php endforeach; ?>

  <section>
    <h2>Contact</h2>
    <form class="stack" method="post" action="./">
      <input type="hidden" name="csrf" value="<?= h($token) ?>">
      <input type="hidden" name="action" value="contact">
      <label for="name">Name</label>
      <input id="name" name="name" required maxlength="100" autocomplete="name" value="<?= h($old['name']) ?>">
      <label for="email">Email</label>
      <input id="email" name="email" type="email" required autocomplete="email" value="<?= h($old['email']) ?>">
      <label for="message">Message</label>
      <textarea id="message" name="message" required maxlength="2000" rows="4"><?= h($old['message']) ?></textarea>
      <div class="form-actions"><button type="submit" class="btn-primary">Send</button></div>
    </form>
    <?php $msgs = recent_messages(10); if ($msgs): ?>
      <h3>Latest messages</h3>
      <ul class="entries">
        <?php foreach ($msgs as $m): ?>
          <li><strong><?= h((string)$m['name']) ?></strong> <time datetime="<?= h(iso_time((string)$m['time'])) ?>" data-relative><?= h((string)$m['time']) ?></time><br><?= nl2br(h((string)$m['message'])) ?></li>
        <?php endforeach; ?>
      </ul>
    <?php endif; ?>
  </section>

  <section>
    <h2>Gallery</h2>
    <p class="muted"><?= gd_available()
        ? 'Each upload gets a thumbnail (' . THUMB_SIZE . ' pixels at most) made on the server with PHP\'s GD extension.'
        : 'PHP\'s GD extension is not installed (apt-get install php-gd), so the gallery shows the originals.' ?></p>
    <form class="stack" method="post" action="./" enctype="multipart/form-data">
      <input type="hidden" name="csrf" value="<?= h($token) ?>">
      <input type="hidden" name="action" value="upload">
      <input type="hidden" name="MAX_FILE_SIZE" value="<?= MAX_UPLOAD ?>">
      <label for="image">Image (PNG, JPEG, GIF, WebP; 5 MB at most)</label>
      <input id="image" name="image" type="file" accept="image/png,image/jpeg,image/gif,image/webp" required data-preview="image-preview">
      <figure class="preview" id="image-preview" hidden><img alt="The image you chose, before it is sent"><figcaption class="muted"></figcaption></figure>
      <div class="form-actions"><button type="submit" class="btn-primary">Upload</button></div>
    </form>
    <div class="gallery-grid">
      <?php foreach (gallery() as $img): ?>
        <a href="image.php?f=<?= h(rawurlencode($img)) ?>"><img src="image.php?f=<?= h(rawurlencode($img)) ?>&amp;thumb=1" alt="Uploaded image <?= h($img) ?>" width="160" height="160" loading="lazy"></a>
      <?php endforeach; ?>
    </div>
  </section>
</main>
<?= part('footer.html') ?></body>
</html>
