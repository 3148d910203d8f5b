/* predict: the loader model run over one process of the plan. */
#include "predict.h"
#include "loader.h"

#include <string.h>

static const char *const sonames[VP_PREDICT_N] = {VP_SONAME_CUDA, VP_SONAME_NVML};

void vp_predict_process(const char *root, const struct vp_plan_process *pr,
                        const char *shim_dir, const char *const *preload,
                        struct vp_prediction *ret)
{
    *ret = (struct vp_prediction){0};
    _cleanup_(freep) char *llp = vp_xstrdup("");
    for (size_t i = 0; i < pr->libpath.n; i++) {
        char *next = vp_xasprintf("%s%s%s", llp, i ? ":" : "", pr->libpath.v[i]);
        free(llp);
        llp = next;
    }
    struct vp_lspace ls;
    if (vp_lspace_init(&ls, root, pr->libpath.n ? llp : NULL, "/") < 0) {
        for (int k = 0; k < VP_PREDICT_N; k++)
            ret->how[k] = vp_xasprintf("the loader model failed: %s", vp_last_error());
        return;
    }
    ls.trace = true; /* a library missing from a fake root must not stop the model */
    vp_strv_push(&ls.host_dirs, shim_dir);
    (void)vp_lspace_load_exe(&ls, pr->exe, preload);
    size_t caller = ls.exe;
    for (size_t i = 0; i < pr->backends.n && ls.exe != SIZE_MAX; i++) {
        size_t idx;
        if (vp_lspace_dlopen(&ls, ls.exe, pr->backends.v[i], &idx, NULL) == 0)
            caller = idx; /* the backend's libcudart asks for the driver later */
    }
    for (int k = 0; k < VP_PREDICT_N; k++) {
        ssize_t idx = vp_lspace_find_loaded(&ls, sonames[k]);
        if (idx >= 0) {
            const struct vp_lobj *o = &ls.objs[idx];
            _cleanup_(freep) char *d = vp_lfound_describe(&ls, &o->found);
            ret->file[k] = vp_xstrdup(o->name);
            ret->how[k] = vp_xasprintf("loaded %s; every later lookup matches it by soname", d);
            continue;
        }
        struct vp_lfound f = {0};
        if (ls.exe != SIZE_MAX && vp_lspace_resolve(&ls, caller, sonames[k], &f) == 0 &&
            f.how != VP_HOW_NOT_FOUND) {
            _cleanup_(freep) char *d = vp_lfound_describe(&ls, &f);
            ret->file[k] = vp_xstrdup(f.path);
            ret->how[k] = vp_xasprintf("a dlopen by name would find it %s", d);
        } else {
            ret->how[k] = vp_xstrdup("not loaded, and a dlopen by name would find nothing");
        }
        vp_lfound_release(&f);
    }
    vp_lspace_release(&ls);
}

void vp_prediction_release(struct vp_prediction *p)
{
    for (int k = 0; k < VP_PREDICT_N; k++) {
        free(p->file[k]);
        free(p->how[k]);
    }
    *p = (struct vp_prediction){0};
}
