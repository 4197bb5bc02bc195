/* Reports what a CGI program receives: argv, the environment, the descriptors open
   beyond 0-2, and stdin. The tests check each against RFC 3875 and DESIGN.md §4.2. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    char buf[65536];
    ssize_t n;
    fputs("Content-Type: text/plain\r\n\r\n", stdout);
    printf("ARGC=%d\n", argc);
    for (int i = 1; i < argc; i++) printf("ARGV=%s\n", argv[i]);
    for (int fd = 3; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) != -1) printf("OPENFD=%d\n", fd);
    for (char **e = environ; *e; e++) printf("ENV %s\n", *e);
    fputs("STDIN=", stdout);
    fflush(stdout);
    while ((n = read(0, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
    return 0;
}
