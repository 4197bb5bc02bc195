<?php
header('Content-Type: text/plain');
echo "route=admin\nSCRIPT_NAME=", $_SERVER['SCRIPT_NAME'], "\nREQUEST_URI=", $_SERVER['REQUEST_URI'], "\n";
