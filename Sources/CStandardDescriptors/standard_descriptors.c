#include "standard_descriptors.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static unsigned closed_at_start;

unsigned standard_descriptors_closed_at_start(void) { return closed_at_start; }

// Before main, and before anything in the process opens a file of its own.
__attribute__((constructor(101))) static void open_closed_at_start(void) {
  for (int descriptor = 0; descriptor <= 2; descriptor++) {
    if (fcntl(descriptor, F_GETFD) >= 0 || errno != EBADF) continue;
    closed_at_start |= 1u << descriptor;
    // The lowest free descriptor is this one: those below it are open by now.
    int opened = open("/dev/null", O_RDWR);
    if (opened >= 0 && opened != descriptor) close(opened);
  }
}
