<?php
// Response headers the gateways' shared parser must judge (internal/cgiresp).
switch ($_GET['case'] ?? '') {
case 'tab':       // a tab between the code and the reason
    header("Status: 404\tNope");
    break;
case 'emptyloc':  // header("Location: ".$url) with an empty $url: PHP adds Status: 302
    header('Location: ');
    break;
case 'twoloc':
    header('Location: /a');
    header('Location: http://evil.example/', false);
    break;
case 'hop':
    header('Proxy-Authenticate: Basic realm="x"');
    header('Proxy-Connection: close');
    header('Keep-Alive: timeout=5');
    break;
case 'size':      // about n bytes of header, over several STDOUT records
    $n = (int)$_GET['n'];
    for ($i = 0; $i * 110 < $n; $i++) {
        header("X-H$i: " . str_repeat('v', 100));
    }
    break;
}
echo 'page';
