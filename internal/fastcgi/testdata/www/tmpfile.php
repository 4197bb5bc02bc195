<?php
// Leaves a temp file behind, then waits to be killed.
$f = tempnam(sys_get_temp_dir(), "soak");
file_put_contents($f, "left");
header("Content-Type: text/plain");
echo $f;
