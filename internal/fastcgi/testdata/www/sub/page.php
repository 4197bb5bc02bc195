<?php
echo "sub page ", $_SERVER['SCRIPT_NAME'], " ", $_SERVER['PATH_INFO'] ?? '';
