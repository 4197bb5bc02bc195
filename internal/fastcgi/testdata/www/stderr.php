<?php
error_log('marker-from-stderr-php');
echo "ok";
