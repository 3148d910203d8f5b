/* json: a small streaming JSON writer for --json output (pretty-printed, one key per
 * line, so shell tests can grep it). */
#ifndef VP_JSON_H
#define VP_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vp_json {
    FILE *out;
    int depth;
    bool first; /* no member written yet at this depth */
};

void vp_json_init(struct vp_json *j, FILE *out);
void vp_json_begin_object(struct vp_json *j, const char *key); /* key NULL inside arrays/top */
void vp_json_end_object(struct vp_json *j);
void vp_json_begin_array(struct vp_json *j, const char *key);
void vp_json_end_array(struct vp_json *j);
void vp_json_string(struct vp_json *j, const char *key, const char *value); /* NULL → null */
void vp_json_int(struct vp_json *j, const char *key, int64_t value);
void vp_json_uint(struct vp_json *j, const char *key, uint64_t value);
void vp_json_double(struct vp_json *j, const char *key, double value);
void vp_json_bool(struct vp_json *j, const char *key, bool value);
/* Ends the document with a newline. */
void vp_json_finish(struct vp_json *j);

#endif
