/* log: the shims' messages. They go to stderr or to the configured log file, one
 * write() per line, never to stdout (`ollama gpu-discover` prints JSON there). */
#ifndef VGPU_LOG_H
#define VGPU_LOG_H

enum vgpu_log_level { VGPU_LOG_ERROR, VGPU_LOG_WARN, VGPU_LOG_INFO, VGPU_LOG_DEBUG };

/* Sets the level and the file (NULL: stderr). Called once, by the configuration;
 * until then messages of level warn and above go to stderr. Returns 0, or a negative
 * errno when the file cannot be opened (messages then stay on stderr). */
int vgpu_log_setup(enum vgpu_log_level level, const char *file);
/* Whether a message of this level would be written. */
int vgpu_log_enabled(enum vgpu_log_level level);
void vgpu_log(enum vgpu_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes a message to stderr and, when one is configured, to the log file too,
 * whatever the level: configuration errors are shown where a person looks first. */
void vgpu_log_stderr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
