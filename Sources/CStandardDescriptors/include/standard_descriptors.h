#ifndef STANDARD_DESCRIPTORS_H
#define STANDARD_DESCRIPTORS_H

// Standard input, output and error held open from the process's start. The kernel gives every
// new file the lowest free descriptor: started with 0, 1 or 2 closed (`>&-`, a supervisor that
// closes them), a process's first epoll, eventfd and sockets took those numbers, and what was
// meant for standard error went into them. libdispatch makes its first descriptors before any
// Swift code runs, so a constructor here opens /dev/null on each closed one first.

// Which of descriptors 0, 1 and 2 were closed when the process started: bit 1 << n for n.
unsigned standard_descriptors_closed_at_start(void);

#endif
