/* ops-nvml: the NVML requests (the daemon's device indices; NVML ignores
 * CUDA_VISIBLE_DEVICES) and the device naming both APIs share: the NVML UUID is made
 * from the CUDA UUID's bytes and the NVML bus id from the CUDA one, so they agree. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "session.h"

void hd_uuid_format(const unsigned char u[16], char out[41])
{
    snprintf(out, 41, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
}

int hd_pci_parse(const char *s, unsigned *domain, unsigned *bus, unsigned *device,
                 unsigned *function)
{
    unsigned v[4];
    int used = 0;
    if (sscanf(s, "%x:%x:%x.%x%n", &v[0], &v[1], &v[2], &v[3], &used) == 4 && !s[used]) {
        *domain = v[0];
    } else if (sscanf(s, "%x:%x.%x%n", &v[1], &v[2], &v[3], &used) == 3 && !s[used]) {
        *domain = 0;
    } else {
        return -EINVAL;
    }
    if (v[1] > 0xff || v[2] > 0x1f || v[3] > 7)
        return -EINVAL;
    *bus = v[1];
    *device = v[2];
    *function = v[3];
    return 0;
}

static int nvml_ok(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                   struct vr_ret *ret)
{
    (void)s, (void)h, (void)a, (void)ret;
    return 0;
}

static int nvml_driver_version(struct hd_session *s, const struct vr_hdr *h,
                               const struct vr_args *a, struct vr_ret *ret)
{
    (void)h, (void)a;
    ret->status = s->dev->nvml_driver_version(s->out.text, sizeof(s->out.text));
    if (ret->status == NVML_OK) {
        s->reply_bulk = s->out.text;
        s->reply_n = strlen(s->out.text) + 1;
    }
    return 0;
}

static int nvml_cuda_version(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                             struct vr_ret *ret)
{
    (void)h, (void)a;
    int v = 0;
    ret->status = s->dev->nvml_cuda_version(&v);
    ret->r[0] = (uint64_t)v;
    return 0;
}

static int nvml_count(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                      struct vr_ret *ret)
{
    (void)h, (void)a;
    ret->r[0] = (uint64_t)s->d->ndevs;
    return 0;
}

/* bytes, no more than the client's --memory-limit (as CUDA reports it). */
static uint64_t quota_clamp(const struct hd_session *s, uint64_t bytes)
{
    uint64_t limit = s->d->memory_limit;
    return limit && limit < bytes ? limit : bytes;
}

static int nvml_info(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                     struct vr_ret *ret)
{
    (void)h;
    struct vr_nvml_device *n = &s->out.nvml;
    if (a->a[0] >= (uint64_t)s->d->ndevs)
        return hd_fail(ret, NVML_INVALID_ARGUMENT);
    const struct hd_dev_info *di = &s->d->devs[a->a[0]];
    unsigned dom, bus, dev, fn = 0;

    memset(n, 0, sizeof(*n));
    snprintf(n->name, sizeof(n->name), "%s", di->name);
    hd_uuid_format(di->uuid, n->uuid);
    if (hd_pci_parse(di->pci_bus_id, &dom, &bus, &dev, &fn) < 0)
        dom = bus = dev = 0;
    snprintf(n->pci_bus_id, sizeof(n->pci_bus_id), "%08X:%02X:%02X.%X", dom, bus, dev, fn);
    n->pci_domain = dom;
    n->pci_bus = bus;
    n->pci_device = dev;
    n->pci_device_id = di->pci_device_id;
    n->pci_subsystem_id = di->pci_subsystem_id;
    n->cc_major = di->cc_major;
    n->cc_minor = di->cc_minor;
    n->index = (uint32_t)a->a[0];
    n->total_memory = quota_clamp(s, di->total_mem);
    s->reply_bulk = n;
    s->reply_n = sizeof(*n);
    return 0;
}

static int nvml_memory(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                       struct vr_ret *ret)
{
    (void)h;
    if (a->a[0] >= (uint64_t)s->d->ndevs)
        return hd_fail(ret, NVML_INVALID_ARGUMENT);
    uint64_t total = 0, free_b = 0, used = 0;
    ret->status = s->dev->nvml_memory((int)a->a[0], &total, &free_b, &used);
    if (ret->status == NVML_OK && s->d->memory_limit) {
        /* As CUDA frames it for a client under the quota: what it may still get (the
         * quota, or less when the device has less free), the rest used. An NVML session
         * holds no allocations of its own, and other clients' memory is not this one's
         * to count against its quota. */
        total = quota_clamp(s, total);
        free_b = free_b < total ? free_b : total;
        used = total - free_b;
    }
    ret->r[0] = total;
    ret->r[1] = free_b;
    ret->r[2] = used;
    return 0;
}

const struct hd_op hd_nvml_ops[] = {
    {VR_NVML_INIT, 0, nvml_ok},
    {VR_NVML_SHUTDOWN, 0, nvml_ok},
    {VR_NVML_SYSTEM_DRIVER_VERSION, 0, nvml_driver_version},
    {VR_NVML_SYSTEM_CUDA_VERSION, 0, nvml_cuda_version},
    {VR_NVML_DEVICE_COUNT, 0, nvml_count},
    {VR_NVML_DEVICE_INFO, 0, nvml_info},
    {VR_NVML_DEVICE_MEMORY, 0, nvml_memory},
    {0, 0, NULL},
};
