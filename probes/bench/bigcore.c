/* bigcore: touches N MiB of heap (argv[1], default 1024) so its core is that large, prints
 * "ready", then waits; the benchmark aborts it for a core of known size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
  char *p = malloc(mib << 20);
  if (!p)
    return 2;
  for (size_t i = 0; i < (mib << 20); i += 4096)
    p[i] = (char)i | 1;
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  pause();
  return 0;
}
