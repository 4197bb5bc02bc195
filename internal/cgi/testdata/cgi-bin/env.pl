#!/usr/bin/perl
# Prints its environment and echoes CONTENT_LENGTH bytes of stdin.
use strict;
use warnings;
binmode STDOUT;
print "Content-Type: text/plain\r\n\r\n";
print "ARGC=", scalar(@ARGV) + 1, "\n";
print "ARGV=$_\n" for @ARGV;
print "ENV $_=$ENV{$_}\n" for sort keys %ENV;
my $body = '';
read(STDIN, $body, $ENV{CONTENT_LENGTH}) if $ENV{CONTENT_LENGTH};
print "STDIN=$body";
