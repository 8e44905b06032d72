/* Capability names for the specs nanoshimd writes: one canonical spelling
 * ("CAP_NET_ADMIN") through libcap-ng's name table, and containerd's default set
 * with a user's --cap-add / --cap-drop applied. */
#pragma once

#include <stddef.h>

/* Longest canonical name ("CAP_CHECKPOINT_RESTORE") is 22 bytes; room to spare. */
#define CAPS_NAME_MAX 48

/* Canonical "CAP_NET_ADMIN" for "net_admin", "NET_ADMIN", "cap_net_admin" or
 * "CAP_NET_ADMIN" (case-insensitive, looked up with capng_name_to_capability);
 * "ALL" (any case) becomes "ALL". Returns 0, -EINVAL for a name libcap-ng does not
 * know (NULL and "" included), or -ENAMETOOLONG if outlen is too small. */
int caps_canonical(const char *name, char *out, size_t outlen);

/* containerd's oci.defaultUnixCaps (CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD,
 * NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL,
 * AUDIT_WRITE) with drop then add applied, as Docker's TweakCapabilities does:
 * - "ALL" in add: every capability libcap-ng names up to CAP_LAST_CAP, in number
 *   order, minus the explicit drops;
 * - "ALL" in drop: nothing is left before the adds;
 * - otherwise the defaults (in containerd's order) minus the drops, then the adds
 *   not already present, in the order given (an add wins over a drop of the same
 *   capability).
 * add and drop are NULL-terminated and may be NULL. Returns a malloc'd
 * NULL-terminated array of canonical names, without duplicates (free it with
 * caps_free), or NULL with errno set (EINVAL: err says `unknown capability "X"`;
 * ENOMEM). err may be NULL. */
char **caps_effective(const char *const *add, const char *const *drop, char *err, size_t errlen);

/* Frees a caps_effective result; NULL is fine. */
void caps_free(char **caps);
