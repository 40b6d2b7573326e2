/*
 * A snapshot's seal: proof, which a snapshot cannot forge, that this user
 * made it on this host.  @backup writes SEAL, an HMAC-SHA256 under a key
 * of the user's (XDG_CONFIG_HOME/vm/seal.key, 0600, made on first use)
 * of the snapshot's content: its MANIFEST's lines but CHAIN and SEAL
 * (manifest_seal_digest), so every file and block.  A restore applies
 * the settings of a sealed snapshot as they are; any other snapshot is
 * from elsewhere, and only its guest's settings apply.
 */
#ifndef VM_SEAL_H
#define VM_SEAL_H

#include <stdbool.h>

#define SNAP_SEAL "SEAL"

/*
 * SEAL's text for content digest (64 hex digits); with create, the key is
 * made when there is none.  Returns 0, -ENOENT (no key, or none could be
 * made) or -errno.
 */
int seal_make(const char *digest, bool create, char **text);

/* dir/SEAL is this user's seal of content digest. */
bool seal_holds(const char *dir, const char *digest);

#endif
