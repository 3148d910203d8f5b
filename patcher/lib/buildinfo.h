/* buildinfo: parses the build information block Go (1.18+) writes into every binary,
 * to tell the Ollama release from the file itself without running it. */
#ifndef VP_BUILDINFO_H
#define VP_BUILDINFO_H

#include <stdint.h>

#define VP_BUILDINFO_MAGIC "\xff Go buildinf:"
#define VP_BUILDINFO_MAGIC_LEN 14

struct vp_buildinfo {
    char *toolchain;      /* "go1.22.0" */
    char *ollama_version; /* value of -X github.com/ollama/ollama/version.Version=, or NULL */
};

/* Parses the block at p (len bytes available). Returns 0 and fills ret (strings owned
 * by the caller), -EBADMSG when it is malformed, -ENOTSUP for the pre-1.18 layout. */
int vp_buildinfo_parse(const uint8_t *p, uint64_t len, struct vp_buildinfo *ret);
/* Extracts the Ollama version from a Go modinfo text; NULL when absent. */
char *vp_buildinfo_ollama_version(const char *modinfo, uint64_t len);

#endif
