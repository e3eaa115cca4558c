// The one header the CLibPQ module map names: libpq's client API. A header of our own (rather
// than naming libpq-fe.h in the module map) lets the include path come from pkg-config, which
// differs between distributions (/usr/include/postgresql on Debian).
#ifndef CLIBPQ_H
#define CLIBPQ_H

#include <libpq-fe.h>

#endif
