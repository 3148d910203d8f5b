/* log: formatted messages to stderr or the log file, one write() per line. */
#include "log.h"
#include "shim.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum vgpu_log_level log_level = VGPU_LOG_WARN;
static int log_fd = -1; /* the log file; -1: stderr */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

char *vgpu_strlcpy(char *dst, const char *src, size_t n)
{
    size_t len = strnlen(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
    return dst;
}

int vgpu_log_setup(enum vgpu_log_level level, const char *file)
{
    log_level = level;
    if (!file)
        return 0;
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0)
        return -errno;
    log_fd = fd;
    return 0;
}

int vgpu_log_enabled(enum vgpu_log_level level)
{
    return level <= log_level;
}

/* Formats one line: "[time ]vgpu-cuda[pid]: level: message\n". */
static size_t format(char *buf, size_t size, bool stamp, const char *level, const char *fmt,
                     va_list ap)
{
    size_t n = 0;
    if (stamp) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S ", &tm);
    }
    int k = snprintf(buf + n, size - n, "%s[%d]: %s: ", vgpu_shim_component, (int)getpid(), level);
    n += k > 0 ? (size_t)k : 0;
    if (n < size) {
        k = vsnprintf(buf + n, size - n, fmt, ap);
        n += k > 0 ? (size_t)k : 0;
    }
    if (n > size - 2)
        n = size - 2; /* truncated: keep the newline */
    buf[n++] = '\n';
    buf[n] = '\0';
    return n;
}

static void emit(int fd, bool stamp, const char *level, const char *fmt, va_list ap)
{
    char buf[1024];
    size_t n = format(buf, sizeof(buf), stamp, level, fmt, ap);
    ssize_t w;
    do
        w = write(fd, buf, n);
    while (w < 0 && errno == EINTR);
}

/* Logging never changes what the caller sees in errno (time zone lookups, vsnprintf
 * and write may set it). */
void vgpu_log(enum vgpu_log_level level, const char *fmt, ...)
{
    if (!vgpu_log_enabled(level))
        return;
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    emit(log_fd >= 0 ? log_fd : STDERR_FILENO, log_fd >= 0, level_names[level], fmt, ap);
    va_end(ap);
    errno = saved;
}

void vgpu_log_stderr(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    emit(STDERR_FILENO, false, "error", fmt, ap);
    va_end(ap);
    if (log_fd >= 0) {
        va_start(ap, fmt);
        emit(log_fd, true, "error", fmt, ap);
        va_end(ap);
    }
    errno = saved;
}
