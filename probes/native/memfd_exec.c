/* memfd_exec: run a program from an anonymous memory file, as runc does with its own binary.
 *
 *   memfd_exec PROGRAM [ARGS...]
 *
 * Copies PROGRAM into a memfd named "wedge-probe" and executes it with fexecve, so that
 * /proc/PID/exe reads "/memfd:wedge-probe (deleted)" and no path on disk names the code.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: memfd_exec PROGRAM [ARGS...]\n");
        return 2;
    }
    int src = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (src < 0) { perror(argv[1]); return 1; }
    struct stat st;
    if (fstat(src, &st) != 0) { perror("fstat"); return 1; }
    int mfd = memfd_create("wedge-probe", 0);
    if (mfd < 0) { perror("memfd_create"); return 1; }
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = sendfile(mfd, src, &off, (size_t)(st.st_size - off));
        if (n <= 0) { perror("sendfile"); return 1; }
    }
    close(src);
    fexecve(mfd, argv + 1, environ);
    perror("fexecve");
    return 1;
}
