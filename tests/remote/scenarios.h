/* scenarios: the remote-backend scenarios remote-test runs, one per CTest entry. Each
 * returns 0 (passed), 1 (failed, with FAIL lines on stderr) or 77 (skipped, with a SKIP
 * line saying why). */
#ifndef VGPU_TEST_REMOTE_SCENARIOS_H
#define VGPU_TEST_REMOTE_SCENARIOS_H

/* remote-api.c */
int scenario_discovery(const char *transport);
int scenario_copies(const char *transport);
int scenario_module(const char *ptx_path);
/* remote-clients.c */
int scenario_killed_client(void);
int scenario_quotas(void);
int scenario_fork(void);
/* remote-wire.c */
int scenario_malformed(void);
int scenario_host_down(void);
int scenario_vsock(void);
int scenario_sigterm(void);

/* remote-hostd.c */
int scenario_images(void);
int scenario_slow_hello(void);
int scenario_burst(void);
int scenario_handles(void);
int scenario_launch_extra(const char *ptx_path);
int scenario_limits(void);

#endif
