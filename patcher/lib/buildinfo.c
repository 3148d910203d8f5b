/* buildinfo: Go's build information block ("\xff Go buildinf:", inline-string layout). */
#include "buildinfo.h"
#include "util.h"

#include <errno.h>
#include <string.h>

static int uvarint(const uint8_t *p, uint64_t len, uint64_t *pos, uint64_t *ret)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return -EBADMSG;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *ret = v;
            return 0;
        }
    }
    return -EBADMSG;
}

char *vp_buildinfo_ollama_version(const char *modinfo, uint64_t len)
{
    static const char key[] = "ollama/ollama/version.Version=";
    const char *hit = memmem(modinfo, len, key, sizeof(key) - 1);
    if (!hit)
        return NULL;
    const char *v = hit + sizeof(key) - 1, *end = modinfo + len, *q = v;
    while (q < end && (strchr("0123456789.-+", *q) || (*q >= 'a' && *q <= 'z') ||
                       (*q >= 'A' && *q <= 'Z')))
        q++;
    if (q == v)
        return NULL;
    /* Tags are spelled with a leading 'v' in some builds. */
    if (*v == 'v' && q - v > 1)
        v++;
    return vp_xstrndup(v, (size_t)(q - v));
}

int vp_buildinfo_parse(const uint8_t *p, uint64_t len, struct vp_buildinfo *ret)
{
    *ret = (struct vp_buildinfo){0};
    if (len < 32 || memcmp(p, VP_BUILDINFO_MAGIC, VP_BUILDINFO_MAGIC_LEN) != 0)
        return -EBADMSG;
    if (!(p[15] & 2))
        return -ENOTSUP; /* pointer layout of Go < 1.18: strings live elsewhere */
    uint64_t pos = 32, vlen, mlen;
    if (uvarint(p, len, &pos, &vlen) < 0 || vlen > len - pos)
        return -EBADMSG;
    const uint8_t *ver = p + pos;
    pos += vlen;
    if (uvarint(p, len, &pos, &mlen) < 0 || mlen > len - pos)
        return -EBADMSG;
    ret->toolchain = vp_xstrndup((const char *)ver, vlen);
    ret->ollama_version = vp_buildinfo_ollama_version((const char *)p + pos, mlen);
    return 0;
}
