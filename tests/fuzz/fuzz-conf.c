/* Fuzz target: the /etc/vgpu/vgpu.conf parser. Whatever it accepts must be a valid
 * value for its key (parsing the accepted value again must accept it unchanged). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vp_conf c = {0};
    vp_conf_parse(&c, (const char *)data, size, "fuzz");
    for (int k = 0; k < VP_CONF_NKEYS; k++) {
        const char *v = vp_conf_get(&c, k);
        if (!v)
            continue;
        char *line = vp_xasprintf("%s = \"%s\"\n", vp_conf_key_name(k), v);
        struct vp_conf again = {0};
        vp_conf_parse(&again, line, strlen(line), "again");
        if (!vp_conf_get(&again, k) || strcmp(vp_conf_get(&again, k), v) != 0)
            abort(); /* an accepted value that does not read back */
        vp_conf_release(&again);
        free(line);
    }
    vp_conf_release(&c);
    return 0;
}
