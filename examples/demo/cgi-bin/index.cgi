#!/usr/bin/perl
# The demo's CGI piece: a guestbook, one Perl process per request (RFC 3875).
# GET shows the latest entries and a form; POST validates an entry, appends it to a
# file under an exclusive lock and answers 303 back to the page (Post/Redirect/Get).
# Core Perl only. Entries go to $DEMO_DATA_DIR, else .data/ beside this script (a
# dot-directory gantry never serves), else /tmp/gantry-demo-cgi.
use strict;
use warnings;
use utf8;
use Encode qw(decode encode);
use Fcntl qw(:flock O_WRONLY O_APPEND O_CREAT);
use File::Basename qw(dirname);
use POSIX qw(strftime);

use constant {
    MAX_BODY    => 8192,
    MAX_NAME    => 60,
    MAX_MESSAGE => 500,
    SHOW        => 20,
};

binmode STDOUT;

# The page's own URL: the directory when the server ran index.cgi for it.
(my $home = $ENV{SCRIPT_NAME} // '') =~ s{(?<=/)index\.cgi$}{};

sub html {
    my $s = shift // '';
    $s =~ s/&/&amp;/g;
    $s =~ s/</&lt;/g;
    $s =~ s/>/&gt;/g;
    $s =~ s/"/&quot;/g;
    $s =~ s/'/&#39;/g;
    return $s;
}

# The page parts every page of the demo shares, from ../assets/partials.
sub part {
    my $name = shift;
    my $file = dirname($0) . "/../assets/partials/$name";
    open my $fh, '<:raw', $file or return '';
    local $/;
    my $text = <$fh>;
    close $fh;
    return decode('UTF-8', $text);
}

# An entry's time as ISO 8601 for <time datetime>; entries from before were
# written as "2024-05-01 12:30 UTC".
sub iso_time {
    my $t = shift // '';
    return "$1T$2:00Z" if $t =~ /^(\d{4}-\d\d-\d\d) (\d\d:\d\d) UTC$/;
    return $t if $t =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
    return '';
}

sub data_file {
    for my $dir ($ENV{DEMO_DATA_DIR}, dirname($0) . '/.data', '/tmp/gantry-demo-cgi') {
        next unless defined $dir && length $dir;
        mkdir $dir, 0700 unless -d $dir;
        return "$dir/guestbook.tsv" if -d $dir && -w $dir;
    }
    return;
}

sub url_decode {
    my $s = shift;
    $s =~ tr/+/ /;
    $s =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
    return $s;
}

sub parse_form {
    my %f;
    for my $pair (split /[&;]/, shift) {
        my ($k, $v) = split /=/, $pair, 2;
        next unless defined $k;
        # Malformed UTF-8 becomes U+FFFD instead of failing the request.
        $f{url_decode($k)} = decode('UTF-8', url_decode($v // ''));
    }
    return %f;
}

sub read_entries {
    my $file = data_file() or return ();
    open my $fh, '<', $file or return ();
    flock $fh, LOCK_SH;
    my @lines = <$fh>;
    close $fh;
    my @entries;
    for my $line (@lines[ ($#lines >= SHOW ? $#lines - SHOW + 1 : 0) .. $#lines ]) {
        chomp $line;
        my ($time, $name, $message) = split /\t/, decode('UTF-8', $line), 3;
        next unless defined $message;
        # One pass, so that the "\\" written for a typed backslash is never read as
        # the start of a "\n" or "\t".
        s/\\([nt\\])/$1 eq 'n' ? "\n" : $1 eq 't' ? "\t" : "\\"/ge for $name, $message;
        unshift @entries, { time => $time, name => $name, message => $message };
    }
    return @entries;
}

sub add_entry {
    my ($name, $message) = @_;
    my $file = data_file() or return 0;
    s/\\/\\\\/g, s/\t/\\t/g, s/\r?\n/\\n/g, s/\r/\\n/g for $name, $message;
    my $line = join("\t", strftime('%Y-%m-%dT%H:%M:%SZ', gmtime), $name, $message) . "\n";
    sysopen my $fh, $file, O_WRONLY | O_APPEND | O_CREAT, 0600 or return 0;
    flock $fh, LOCK_EX or return 0;
    my $ok = print {$fh} encode('UTF-8', $line);
    close $fh or $ok = 0;
    return $ok;
}

sub respond {
    my ($status, %page) = @_;
    print "Status: $status\r\n" if $status;
    print "Content-Type: text/html; charset=utf-8\r\n";
    print "Content-Security-Policy: default-src 'self'\r\n";
    print "X-Content-Type-Options: nosniff\r\n\r\n";
    my $errors = '';
    $errors .= '<p class="alert alert-error" role="alert">' . html($_) . "</p>\n" for @{ $page{errors} || [] };
    my $entries = '';
    for my $e (read_entries()) {
        my $msg = html($e->{message});
        $msg =~ s/\n/<br>/g;
        my $iso = iso_time($e->{time});
        my $when = $iso ? '<time datetime="' . html($iso) . '" data-relative>' . html($e->{time}) . '</time>'
                        : '<span class="muted">' . html($e->{time}) . '</span>';
        $entries .= '<li><strong>' . html($e->{name}) . "</strong> $when<br>$msg</li>\n";
    }
    $entries = $entries ? "<ul class=\"entries\">\n$entries</ul>" : '<p class="muted">No entries yet: be the first.</p>';
    my ($name, $message) = map { html($_) } ($page{name} // '', $page{message} // '');
    my ($software, $gateway, $method, $script) =
        map { html($ENV{$_} // '') } qw(SERVER_SOFTWARE GATEWAY_INTERFACE REQUEST_METHOD SCRIPT_NAME);
    my $action = html($home);
    my ($head, $header, $footer) = map { part($_) } qw(head.html header.html footer.html);
    my $out = <<"HTML";
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Guestbook · gantry demo</title>
$head</head>
<body>
$header<main id="main">
  <h1>Guestbook, as CGI</h1>
  <p class="lead">A Perl script that <code>$software</code> ran as process $$ for this
    $method request ($gateway, <code>$script</code>).</p>
  $errors
  <section>
    <h2>Sign the guestbook</h2>
    <form class="stack" method="post" action="$action">
      <label for="name">Name</label>
      <input id="name" name="name" required maxlength="${\ MAX_NAME}" value="$name" autocomplete="name">
      <label for="message">Message</label>
      <textarea id="message" name="message" required maxlength="${\ MAX_MESSAGE}" rows="4">$message</textarea>
      <div class="form-actions"><button type="submit" class="btn-primary">Sign</button></div>
    </form>
  </section>
  <section>
    <h2>Latest entries</h2>
    $entries
  </section>
</main>
$footer</body>
</html>
HTML
    print encode('UTF-8', $out);
}

sub fail {
    my ($status, $text) = @_;
    print "Status: $status\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n$text\n";
    exit 0;
}

my $method = $ENV{REQUEST_METHOD} // 'GET';
if ($method eq 'GET' || $method eq 'HEAD') {
    respond(0);
    exit 0;
}
fail('405 Method Not Allowed', 'GET or POST only.') unless $method eq 'POST';

# A form posted from another site is refused: browsers send Origin with every POST.
if (defined $ENV{HTTP_ORIGIN}) {
    my $scheme = ($ENV{HTTPS} // '') eq 'on' ? 'https' : 'http';
    fail('403 Forbidden', 'Cross-site form posts are refused.')
        unless $ENV{HTTP_ORIGIN} eq "$scheme://" . ($ENV{HTTP_HOST} // '');
}
my $type = $ENV{CONTENT_TYPE} // '';
fail('415 Unsupported Media Type', 'Send the form as application/x-www-form-urlencoded.')
    unless $type =~ m{^application/x-www-form-urlencoded\b}i;
my $length = $ENV{CONTENT_LENGTH} // 0;
fail('413 Content Too Large', 'The entry is too long.') if $length !~ /^\d+$/ || $length > MAX_BODY;
my $body = '';
while (length($body) < $length) {
    my $n = read STDIN, $body, $length - length($body), length($body);
    last unless $n;
}
my %form = parse_form($body);
my $name = $form{name} // '';
my $message = $form{message} // '';
s/^\s+|\s+$//g for $name, $message;
$name =~ s/[\x00-\x1f\x7f]//g;          # a name is one line
$message =~ s/[\x00-\x09\x0b-\x1f\x7f]//g;  # a message keeps its line breaks
my @errors;
push @errors, 'Name: 1 to ' . MAX_NAME . ' characters.' if !length($name) || length($name) > MAX_NAME;
push @errors, 'Message: 1 to ' . MAX_MESSAGE . ' characters.' if !length($message) || length($message) > MAX_MESSAGE;
if (@errors) {
    respond('422 Unprocessable Content', errors => \@errors, name => $name, message => $message);
    exit 0;
}
fail('500 Internal Server Error', 'Could not save the entry.') unless add_entry($name, $message);
# A Location with a Status is a redirect for the client (RFC 3875 §6.2.4).
print "Status: 303 See Other\r\nLocation: $home\r\nContent-Type: text/plain\r\n\r\nSaved.\n";
