<?php
// The worker dies before sending a byte.
posix_kill(getmypid(), 9);
