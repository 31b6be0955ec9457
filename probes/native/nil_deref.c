/* nil_deref: dies of a SIGSEGV at address 0x10 (a field read through a NULL pointer), for
 * wedge's generic nil-deref-crash signature on a native core. */
#include <stdio.h>

struct record {
    long id;
    long size;
    long offset;
};

__attribute__((noinline)) long record_offset(const struct record *r)
{
    return r->offset;
}

int main(void)
{
    const struct record *volatile r = NULL;
    printf("ready\n");
    fflush(stdout);
    return (int)record_offset(r);
}
