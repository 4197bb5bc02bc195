<?php
http_response_code(418);
header('X-Multi: a', false);
header('X-Multi: b', false);
setcookie('c1', 'v1');
setcookie('c2', 'v2');
echo "teapot";
