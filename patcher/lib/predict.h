/* predict: what the loader model (loader.h) says answers libcuda.so.1 and
 * libnvidia-ml.so.1 in one of Ollama's processes — as it is today, and with the shims
 * loaded the way the patch loads them. The planner uses the second as proof before it
 * writes anything; the first tells the operator what the patch changes. */
#ifndef VP_PREDICT_H
#define VP_PREDICT_H

#include "plan.h"

/* Models process pr under root: its executable with preload (NULL-terminated, may be
 * NULL) loaded first, then every backend dlopen()ed, with Ollama's LD_LIBRARY_PATH.
 * Files under shim_dir are read where they are (it is never re-rooted). */
void vp_predict_process(const char *root, const struct vp_plan_process *pr,
                        const char *shim_dir, const char *const *preload,
                        struct vp_prediction *ret);
void vp_prediction_release(struct vp_prediction *p);

#endif
