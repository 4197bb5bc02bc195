<?php
// Runs only when asked for by its own path; never shown as source.
echo "helper ran\n";
