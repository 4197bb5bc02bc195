<?php
header('Bad Name: x');
echo "should not be seen";
