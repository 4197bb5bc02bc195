# Reads its stdin to the end and answers with what it saw: CONTENT_LENGTH, the
# number of bytes and their sha256. The test prepends the #! line for this machine's perl.
use strict;
use Digest::SHA;

binmode STDIN;
my $d = Digest::SHA->new(256);
my ($n, $buf) = (0, '');
while (my $r = read(STDIN, $buf, 65536)) {
    $d->add($buf);
    $n += $r;
}
print "Content-Type: text/plain\r\n\r\n";
print "content_length=", (defined $ENV{CONTENT_LENGTH} ? $ENV{CONTENT_LENGTH} : 'unset'), "\n";
print "len=$n\nsha256=", $d->hexdigest, "\n";
