/* fileops: exact copies and restores of installed files — content, owner, group, mode
 * (set-id bits included), extended attributes (capabilities included) and mtime — the
 * one place backups are made and originals are put back. */
#ifndef VP_FILEOPS_H
#define VP_FILEOPS_H

#include <stdbool.h>
#include <sys/stat.h>

/* Gives dst the owner, mode and extended attributes of src (st is src's stat), in the
 * order that keeps set-id bits and capabilities (chown clears them); with mtime, also
 * src's modification time. what names the file in messages. */
int vp_copy_attributes(int src, int dst, const struct stat *st, bool mtime, const char *what);

/* Makes dst an exact copy of the open file src: written under a temporary name beside
 * dst, synced, then renamed, so dst is never a partial copy. */
int vp_copy_exact(int src, const char *dst);

/* Keeps the inode open as fd reachable as keep: a hard link to that very inode (never
 * to whatever the path names by now), or an exact copy across file systems. A symbolic
 * link (fd opened O_PATH | O_NOFOLLOW) is kept as itself, or as a new link with its
 * target, owner and mtime. Returns 0,
 * or -EEXIST when keep exists already. */
int vp_keep_inode(int fd, const char *keep);

/* Puts the file (or link) kept at backup back at path: the same inode through a fresh
 * name and a rename, or an exact copy of it across file systems. */
int vp_restore_file(const char *path, const char *backup);

/* Puts a symbolic link back: path -> target, or removes path when target is NULL/"". */
int vp_restore_link(const char *path, const char *target);

/* Whether path names the inode (dev, ino) right now (not following a final link). */
bool vp_same_inode(const char *path, dev_t dev, ino_t ino);

#endif
