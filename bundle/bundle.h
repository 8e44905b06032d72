/* nanoshim's bundle library: the on-disk contract between the shim
 * (containerd-shim-nano-v2), containerd and the manager. One header per
 * concept; this one pulls them all in. */
#pragma once

#include "address.h"
#include "atomic.h"
#include "exitfile.h"
#include "id.h"
#include "loopdev.h"
#include "mount.h"
#include "mountopt.h"
#include "pidfile.h"
#include "quote.h"
#include "runcopts.h"
#include "sha256.h"
#include "spec.h"
