<?php
echo "real ", $_SERVER['SCRIPT_NAME'];
